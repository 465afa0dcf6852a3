import pytest
from hypothesis import given
from hypothesis import strategies as st

from chainchat_protocol.b64 import B64Error, b64d, b64d_exact, b64e
from chainchat_protocol.vectors import load


@given(st.binary(max_size=200))
def test_roundtrip(data: bytes) -> None:
    text = b64e(data)
    assert "=" not in text
    assert b64d(text) == data


def test_shared_vectors() -> None:
    vectors = load("b64")
    for case in vectors["valid"]:
        assert b64e(bytes.fromhex(case["bytes_hex"])) == case["b64"]
        assert b64d(case["b64"]).hex() == case["bytes_hex"]
    for case in vectors["invalid"]:
        with pytest.raises(B64Error):
            b64d(case["b64"])


@pytest.mark.parametrize("text", ["AA==", "A", "AB", "AAF", "+/8", "AA AA", "é", "AA\n"])
def test_rejects_non_canonical(text: str) -> None:
    with pytest.raises(B64Error):
        b64d(text)


def test_exact_size() -> None:
    assert b64d_exact(b64e(b"x" * 12), 12) == b"x" * 12
    with pytest.raises(B64Error):
        b64d_exact(b64e(b"x" * 11), 12)


def test_rejects_non_string() -> None:
    with pytest.raises(B64Error):
        b64d(b"AAAA")  # type: ignore[arg-type]
