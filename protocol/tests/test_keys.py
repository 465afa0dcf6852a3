import hashlib

import pytest

from chainchat_protocol.keys import is_key_id, key_id
from chainchat_protocol.vectors import load


def test_definition() -> None:
    x, e = bytes(range(32)), bytes(range(32, 64))
    assert key_id(x, e) == hashlib.sha256(x + e).hexdigest()[:32]
    assert is_key_id(key_id(x, e))


def test_shared_vectors() -> None:
    for case in load("key_ids")["cases"]:
        got = key_id(bytes.fromhex(case["x25519_public_hex"]), bytes.fromhex(case["ed25519_public_hex"]))
        assert got == case["key_id"]


def test_rejects_wrong_sizes() -> None:
    with pytest.raises(ValueError, match="32 raw bytes"):
        key_id(b"\x00" * 31, b"\x00" * 32)


@pytest.mark.parametrize("value", ["A" * 32, "0" * 31, "0" * 33, 5, None, "g" * 32])
def test_is_key_id_rejects(value: object) -> None:
    assert not is_key_id(value)
