"""Structural validation of envelopes, as the chat server runs it (no keys needed)."""

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from chainchat_protocol.b64 import b64e
from chainchat_protocol.canonical import canonical_json
from chainchat_protocol.envelope import (
    MAX_ENVELOPE_BYTES,
    Envelope,
    envelope_bytes,
    envelope_digest,
    header_aad,
    signing_digest,
    signing_input,
    wrap_info,
)
from chainchat_protocol.vectors import load


def _raw(suite: str = "aes256gcm") -> dict[str, Any]:
    env: dict[str, Any] = copy.deepcopy(load(f"envelope_{suite}")["envelope"])
    return env


@pytest.mark.parametrize("suite", ["aes256gcm", "blowfish", "v2_aes256gcm", "v2_blowfish"])
def test_vector_envelopes_are_valid(suite: str) -> None:
    vector = load(f"envelope_{suite}")
    env = Envelope.model_validate(vector["envelope"])
    assert header_aad(env).decode() == vector["header_aad"]
    assert signing_input(env).decode() == vector["signing_input"]
    assert signing_digest(env).hex() == vector["signing_digest_hex"]
    assert envelope_bytes(env) == canonical_json(vector["envelope"])
    assert len(envelope_digest(env)) == 64
    assert ("key_commit" in env.model_dump(mode="json")) == (env.v == 2)
    if env.v == 2:
        assert wrap_info(env).hex() == vector["wrap_info_hex"]
        assert wrap_info(env) == b"chainchat/v2/wrap" + header_aad(env)
    else:
        assert wrap_info(env) == b"chainchat/v1/wrap"


def test_header_aad_is_canonical_header() -> None:
    env = Envelope.model_validate(_raw())
    assert json.loads(header_aad(env)) == env.header()
    assert list(json.loads(header_aad(env))) == sorted(env.header())


def _mutations() -> list[tuple[str, Any]]:
    return [
        ("v", 2),  # a v2 envelope needs key_commit
        ("v", 3),
        ("key_commit", b64e(b"\x00" * 32)),  # v1 has none
        ("key_commit", None),  # not even a null one
        ("suite", "hpke-x25519-chacha"),
        ("suite", "hpke-x25519-blowfish"),  # nonce size no longer fits the suite
        ("nonce", b64e(b"\x00" * 8)),
        ("nonce", "AAAAAAAAAAAAAAAA="),
        ("ciphertext", b64e(b"\x00" * 15)),
        ("ciphertext", "not base64!"),
        ("signature", b64e(b"\x00" * 63)),
        ("sender_key_id", "ABCDEF" * 5 + "00"),
        ("sender_id", ""),
        ("conversation_id", "has space"),
        ("recipients", []),
        ("extra", "field"),
    ]


@pytest.mark.parametrize(("field", "value"), _mutations())
def test_rejects(field: str, value: Any) -> None:
    raw = _raw()
    raw[field] = value
    with pytest.raises(ValidationError):
        Envelope.model_validate(raw)


@pytest.mark.parametrize(
    ("field", "value"),
    [("enc", b64e(b"\x00" * 31)), ("wrapped_key", b64e(b"\x00" * 32)), ("key_id", "0" * 31),
     ("user_id", "")],
)  # fmt: skip
def test_rejects_bad_recipient(field: str, value: str) -> None:
    raw = _raw()
    raw["recipients"][0][field] = value
    with pytest.raises(ValidationError):
        Envelope.model_validate(raw)


def test_rejects_duplicate_recipient() -> None:
    raw = _raw()
    raw["recipients"].append(dict(raw["recipients"][0]))
    with pytest.raises(ValidationError, match="duplicate"):
        Envelope.model_validate(raw)


def test_rejects_oversize() -> None:
    raw = _raw()
    raw["ciphertext"] = b64e(b"\x00" * (MAX_ENVELOPE_BYTES * 3 // 4))
    with pytest.raises(ValidationError, match="larger than"):
        Envelope.model_validate(raw)


def test_v2_key_commit_is_required_and_sized() -> None:
    raw = _raw("v2_aes256gcm")
    Envelope.model_validate(raw)
    for value in (None, b64e(b"\x00" * 31), "not base64!"):
        with pytest.raises(ValidationError):
            Envelope.model_validate({**raw, "key_commit": value})
    with pytest.raises(ValidationError, match="key_commit"):
        Envelope.model_validate({k: v for k, v in raw.items() if k != "key_commit"})


def test_canonical_bytes_are_computed_once_and_never_stale_for_a_copy() -> None:
    env = Envelope.model_validate(_raw())
    assert envelope_bytes(env) is envelope_bytes(env)  # the validator's bytes, kept
    other = env.model_copy(update={"ciphertext": b64e(b"\x00" * 40)})
    assert envelope_bytes(other) == canonical_json(other.model_dump(mode="json"))
    assert envelope_bytes(other) != envelope_bytes(env)
    with pytest.raises(ValidationError):  # fields stay frozen: the kept bytes cannot go stale
        env.ciphertext = b64e(b"\x00" * 40)  # type: ignore[misc]
