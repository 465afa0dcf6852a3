import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainchat_protocol.b64 import B64Error, b64d, b64d_exact, b64e, decoded_size
from chainchat_protocol.vectors import load


@given(st.binary(max_size=200))
def test_roundtrip(data: bytes) -> None:
    text = b64e(data)
    assert "=" not in text
    assert b64d(text) == data
    assert decoded_size(text) == len(data)


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


@settings(deadline=None)
@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=12))
def test_accepts_exactly_the_canonical_spellings(text: str) -> None:
    """Only the last character's unused bits are checked: the same as re-encoding and comparing."""
    if len(text) % 4 == 1:
        return
    padded = text + "=" * (-len(text) % 4)
    canonical = b64e(base64.urlsafe_b64decode(padded)) == text
    try:
        b64d(text)
        accepted = True
    except B64Error:
        accepted = False
    assert accepted == canonical
