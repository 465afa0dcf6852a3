import pytest

from chainchat.crypto.safety import format_safety_number, safety_fingerprint, safety_number
from chainchat_protocol.vectors import load

A = ["11" * 16]
B = ["22" * 16, "33" * 16]


def test_vectors() -> None:
    for case in load("safety_numbers")["cases"]:
        assert safety_fingerprint(case["user_a"], case["key_ids_a"]) == case["fingerprint_a"]
        assert safety_fingerprint(case["user_b"], case["key_ids_b"]) == case["fingerprint_b"]
        number = safety_number(case["user_a"], case["key_ids_a"], case["user_b"], case["key_ids_b"])
        assert number == case["safety_number"]
        assert format_safety_number(number) == case["display"]


def test_symmetric_and_shape() -> None:
    n = safety_number("alice", A, "bob", B)
    assert n == safety_number("bob", B, "alice", A)
    assert len(n) == 60
    assert n.isdigit()
    groups = format_safety_number(n).split(" ")
    assert len(groups) == 12
    assert all(len(g) == 5 for g in groups)


def test_key_order_does_not_matter_but_keys_do() -> None:
    assert safety_fingerprint("bob", B) == safety_fingerprint("bob", list(reversed(B)))
    assert safety_fingerprint("bob", B) != safety_fingerprint("bob", B[:1])
    assert safety_fingerprint("bob", B) != safety_fingerprint("bobby", B)


@pytest.mark.parametrize("key_ids", [[], ["XYZ"], ["AB" * 16]])
def test_rejects_bad_key_ids(key_ids: list[str]) -> None:
    with pytest.raises(ValueError, match="key id"):
        safety_fingerprint("u", key_ids)


def test_format_rejects() -> None:
    with pytest.raises(ValueError, match="60 digits"):
        format_safety_number("123")
