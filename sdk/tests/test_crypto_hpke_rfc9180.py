"""Both HPKE implementations the SDK uses reproduce RFC 9180 Appendix A.1.1 (base mode,
DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM; the RFC's only X25519 + AES-GCM vector, same
KEM and KDF as our suite), and agree with each other on our own suite (AES-256-GCM)."""

from cryptography.hazmat.bindings._rust import openssl as rust_openssl
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from pyhpke import AEADId, CipherSuite, KDFId, KEMId

A11 = {
    "info": "4f6465206f6e2061204772656369616e2055726e",
    "ikmE": "7268600d403fce431561aef583ee1613527cff655c1343f29812e66706df3234",
    "ikmR": "6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037",
    "skRm": "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8",
    "pkRm": "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d",
    "enc": "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
    "pt": "4265617574792069732074727574682c20747275746820626561757479",
    "aad": "436f756e742d30",  # "Count-0": the first message of the context
    "ct": "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a",
}
V = {k: bytes.fromhex(v) for k, v in A11.items()}


def test_pyhpke_reproduces_rfc9180_a11() -> None:
    suite = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES128_GCM)
    recipient = suite.kem.derive_key_pair(V["ikmR"])
    assert recipient.public_key.to_public_bytes() == V["pkRm"]
    enc, sender = suite.create_sender_context(
        recipient.public_key, info=V["info"], eks=suite.kem.derive_key_pair(V["ikmE"])
    )
    assert (enc, sender.seal(V["pt"], V["aad"])) == (V["enc"], V["ct"])
    opener = suite.create_recipient_context(V["enc"], recipient.private_key, info=V["info"])
    assert opener.open(V["ct"], V["aad"]) == V["pt"]


def test_cryptography_opens_rfc9180_a11() -> None:
    """``cryptography``'s single-shot HPKE takes no ``aad`` and no injected ephemeral key, and the
    RFC's ciphertexts all have one ("Count-0"); its own test hook ``_decrypt_with_aad`` (the same
    Rust code path with an aad) checks the key schedule against the RFC."""
    sk = X25519PrivateKey.from_private_bytes(V["skRm"])
    assert sk.public_key().public_bytes_raw() == V["pkRm"]
    suite = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_128_GCM)
    opened = rust_openssl.hpke._decrypt_with_aad(suite, V["enc"] + V["ct"], sk, info=V["info"], aad=V["aad"])
    assert opened == V["pt"]


def test_cryptography_and_pyhpke_agree_on_our_suite() -> None:
    sk = X25519PrivateKey.from_private_bytes(V["skRm"])
    ours = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
    py = CipherSuite.new(KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.AES256_GCM)
    sealed = ours.encrypt(V["pt"], sk.public_key(), info=V["info"])
    ctx = py.create_recipient_context(sealed[:32], py.kem.deserialize_private_key(V["skRm"]), info=V["info"])
    assert ctx.open(sealed[32:], b"") == V["pt"]
    enc, sender = py.create_sender_context(
        py.kem.deserialize_public_key(V["pkRm"]), info=V["info"], eks=py.kem.derive_key_pair(V["ikmE"])
    )
    assert ours.decrypt(enc + sender.seal(V["pt"], b""), sk, info=V["info"]) == V["pt"]
