import json

import pytest

from chainchat.crypto.errors import KeyFileError
from chainchat.crypto.keys import (
    DeviceKeys,
    PublicDeviceKey,
    export_device_keys,
    import_device_keys,
    verify_signature,
)
from chainchat_protocol.b64 import b64e
from chainchat_protocol.vectors import load


def test_vector_devices() -> None:
    for case in load("key_ids")["cases"]:
        keys = DeviceKeys(
            bytes.fromhex(case["x25519_private_hex"]), bytes.fromhex(case["ed25519_private_hex"])
        )
        assert keys.x25519_public.hex() == case["x25519_public_hex"]
        assert keys.ed25519_public.hex() == case["ed25519_public_hex"]
        assert keys.key_id == case["key_id"]


def test_generate_sign_verify() -> None:
    keys = DeviceKeys.generate()
    sig = keys.sign(b"msg")
    assert verify_signature(keys.ed25519_public, sig, b"msg")
    assert not verify_signature(keys.ed25519_public, sig, b"other")
    assert not verify_signature(b"\x00" * 31, sig, b"msg")
    assert keys.key_id not in {DeviceKeys.generate().key_id for _ in range(3)}
    assert "private" not in repr(keys)
    assert keys.key_id in repr(keys)


def test_public_key_and_publish_body() -> None:
    keys = DeviceKeys.generate()
    body = keys.publish_body(["hpke-x25519-aes256gcm"])
    pub = PublicDeviceKey.from_b64("u1", body["x25519_public"], body["ed25519_public"])
    assert pub == keys.public("u1")
    assert pub.key_id == keys.key_id


@pytest.mark.parametrize("passphrase", [None, "correct horse"])
def test_export_import_roundtrip(passphrase: str | None) -> None:
    keys = DeviceKeys.generate()
    data = export_device_keys(keys, passphrase)
    assert (b64e(keys.x25519_private) in data.decode()) is (passphrase is None)
    again = import_device_keys(data, passphrase)
    assert again.x25519_private == keys.x25519_private
    assert again.ed25519_private == keys.ed25519_private


def test_import_failures() -> None:
    keys = DeviceKeys.generate()
    sealed = export_device_keys(keys, "pw")
    with pytest.raises(KeyFileError) as exc:
        import_device_keys(sealed, "wrong")
    assert exc.value.code == "bad_passphrase"
    with pytest.raises(KeyFileError) as exc:
        import_device_keys(sealed)
    assert exc.value.code == "passphrase_required"
    doc = json.loads(export_device_keys(keys))
    doc["key_id"] = "0" * 32
    with pytest.raises(KeyFileError, match="does not match"):
        import_device_keys(json.dumps(doc).encode())
    with pytest.raises(KeyFileError, match="malformed"):
        import_device_keys(b"{not json")


def test_rejects_bad_private_key_sizes() -> None:
    with pytest.raises(ValueError, match="32 raw bytes"):
        DeviceKeys(b"\x01" * 31, b"\x01" * 32)
