"""The generator of the shared test vectors (``protocol/chainchat_protocol/vectors/*.json``), which
the Python tests and the web client's tests read to prove interoperability.

Conventions (language-neutral on purpose): raw bytes are lowercase hex in fields ending ``_hex``;
wire objects (envelopes, log entries, proof objects) appear exactly as they travel, with their own
base64url fields; every file carries a ``description``. All values are deterministic: keys and
randomness derive from SHA-256 of fixed labels (``seed_label``), so regenerating is reproducible.

``python -m tools.vectors --regenerate`` rewrites the files from the implementation; ``--check``
(``make lint``, and ``tools/tests/test_vectors.py``) fails if they drifted. A tool, not part of the
protocol: the envelope, stream and safety-number vectors come from the SDK's code
(``chainchat.crypto``), and the protocol knows no client. The protocol keeps the files and their
loader (:mod:`chainchat_protocol.vectors`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from typing import Any

from chainchat_protocol import merkle
from chainchat_protocol.b64 import b64e
from chainchat_protocol.canonical import canonical_json
from chainchat_protocol.keys import key_id
from chainchat_protocol.log_entry import LogEntry, entry_bytes, leaf_bytes, leaf_hash
from chainchat_protocol.vectors import VECTORS_DIR

__all__ = ["NAMES", "build", "main", "seed"]


def seed(label: str) -> bytes:
    """Deterministic 32 bytes for a vector: SHA-256(``"chainchat/vectors/" + label``)."""
    return hashlib.sha256(b"chainchat/vectors/" + label.encode()).digest()


# ----- small, dependency-free vectors ----------------------------------------------------------


def _b64() -> dict[str, Any]:
    valid = [b"", b"\x00", b"\xff\xfe", b"\xfb\xff\xbf", b"hello world", bytes(range(32))]
    invalid = {
        "AA==": "padding",
        "A": "impossible length",
        "AB": "non-zero trailing bits",
        "AAF": "non-zero trailing bits",
        "+/8": "standard alphabet",
        "AA AA": "whitespace",
        "AA\n": "newline",
        "Zm9v=": "padding",
    }
    return {
        "description": "base64url without padding; decoders must reject every `invalid` entry",
        "valid": [{"bytes_hex": v.hex(), "b64": b64e(v)} for v in valid],
        "invalid": [{"b64": k, "reason": r} for k, r in invalid.items()],
    }


_CANONICAL_INPUTS = [
    '{"b": 2, "a": 1, "c": {"z": [3, 2, 1], "y": null, "x": true}}',
    '{"numbers": [0, -0.0, 1, -1, 1.5, 0.1, 1e21, 1e-7, 1.2345678901234568e20, 9007199254740991]}',
    '{"\\u20ac": "euro", "\\ud83d\\ude00": "smile", "\\ufb01": "ligature", "a": "ascii"}',
    '{"s": "quote \\" backslash \\\\ slash / ctrl \\u001f del \\u007f nl \\n tab \\t"}',
    '{"v": 1, "suite": "hpke-x25519-aes256gcm", "conversation_id": "c1", "sender_id": "u1", '
    '"sender_key_id": "00112233445566778899aabbccddeeff"}',
    "[]",
    '"caf\\u00e9"',
]


def _canonical() -> dict[str, Any]:
    cases = []
    for text in _CANONICAL_INPUTS:
        out = canonical_json(json.loads(text))
        cases.append({"input": text, "canonical": out.decode("utf-8"), "canonical_hex": out.hex()})
    return {
        "description": "RFC 8785 canonical JSON: parse `input`, canonicalise, expect `canonical` "
        "(UTF-8 bytes `canonical_hex`); keys sort by UTF-16 code units",
        "cases": cases,
    }


def _device(label: str) -> dict[str, str]:
    """Deterministic device key material (private halves from :func:`seed`)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    xs, es = seed(f"{label}/x25519"), seed(f"{label}/ed25519")
    xp = X25519PrivateKey.from_private_bytes(xs).public_key().public_bytes_raw()
    ep = Ed25519PrivateKey.from_private_bytes(es).public_key().public_bytes_raw()
    return {
        "x25519_private_hex": xs.hex(),
        "ed25519_private_hex": es.hex(),
        "x25519_public_hex": xp.hex(),
        "ed25519_public_hex": ep.hex(),
        "key_id": key_id(xp, ep),
    }


def _key_ids() -> dict[str, Any]:
    return {
        "description": "key_id = hex(SHA-256(x25519_public || ed25519_public)[:16]); private "
        "keys are raw 32-byte X25519 scalars / Ed25519 seeds",
        "cases": [_device(label) for label in ("alice/phone", "alice/laptop", "bob/phone")],
    }


# ----- Merkle (RFC 9162) -----------------------------------------------------------------------

_CT_LEAVES = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]


def _merkle() -> dict[str, Any]:
    tree = merkle.MerkleTree()
    tree.extend(bytes.fromhex(h) for h in _CT_LEAVES)
    big = merkle.MerkleTree()
    big.extend(i.to_bytes(2, "big") for i in range(37))

    def incl(t: merkle.MerkleTree, i: int, n: int) -> dict[str, Any]:
        path = [h.hex() for h in t.inclusion_proof(i, n)]
        return {
            "leaf_index": i,
            "tree_size": n,
            "leaf_hash_hex": t.leaf_hash_at(i).hex(),
            "root_hex": t.root(n).hex(),
            "proof_hex": path,
        }

    def cons(t: merkle.MerkleTree, m: int, n: int) -> dict[str, Any]:
        path = [h.hex() for h in t.consistency_proof(m, n)]
        return {
            "first": m,
            "second": n,
            "first_root_hex": t.root(m).hex(),
            "second_root_hex": t.root(n).hex(),
            "proof_hex": path,
        }

    return {
        "description": "RFC 9162 Merkle tree over SHA-256. `ct` reproduces the RFC 6962 reference "
        "data published with certificate-transparency / trillian / transparency-dev merkle "
        "(leaf_index 0-based); `generated` uses leaves uint16_be(i) for i in 0..36",
        "ct": {
            "leaves_hex": _CT_LEAVES,
            "roots_hex": [tree.root(n).hex() for n in range(len(_CT_LEAVES) + 1)],
            "inclusion": [incl(tree, i, n) for i, n in ((0, 1), (0, 8), (5, 8), (2, 3), (1, 5))],
            "consistency": [cons(tree, m, n) for m, n in ((1, 1), (1, 8), (6, 8), (2, 5))],
        },
        "generated": {
            "size": big.size,
            "root_hex": big.root().hex(),
            "inclusion": [incl(big, i, n) for i, n in ((0, 37), (36, 37), (17, 32), (20, 21))],
            "consistency": [cons(big, m, n) for m, n in ((3, 37), (16, 37), (31, 32), (7, 13))],
        },
    }


def _log_entry() -> dict[str, Any]:
    entries = [
        LogEntry(
            kind=k,
            id=f"{k}-{i}",
            digest=hashlib.sha256(f"object {i}".encode()).hexdigest(),
            at=f"2025-01-01T00:00:0{i}.000Z",
        )
        for i, k in enumerate(("message", "file", "key", "audit", "tombstone"))
    ]
    tree = merkle.MerkleTree()
    for e in entries:
        tree.append_hash(leaf_hash(e))
    proof = {
        "status": "anchored",
        "entry": entries[2].model_dump(mode="json"),
        "leaf_index": 2,
        "tree_size": tree.size,
        "root_hash": tree.root().hex(),
        "inclusion_proof": [h.hex() for h in tree.inclusion_proof(2)],
        "head_index": 0,
        "tx_hash": "0x" + seed("tx").hex(),
        "block_number": 7,
        "chain_id": 1337,
        "contract_address": "0x" + seed("contract")[:20].hex(),
    }
    return {
        "description": "Log entries: entry_bytes = canonical JSON, leaf = SHA-256(entry_bytes), "
        "leaf_hash = SHA-256(0x00 || leaf); `proof` is a SPEC §6 proof object for entries[2] "
        "(chain fields illustrative) that verifies offline",
        "entries": [
            {
                "entry": e.model_dump(mode="json"),
                "entry_bytes": entry_bytes(e).decode(),
                "leaf_hex": leaf_bytes(e).hex(),
                "leaf_hash_hex": leaf_hash(e).hex(),
            }
            for e in entries
        ],
        "proof": proof,
    }


# ----- vectors produced with the SDK ----------------------------------------------------------


def _vector_devices() -> tuple[dict[str, dict[str, str]], dict[str, Any]]:
    from chainchat.crypto.keys import DeviceKeys

    devices = {lbl: _device(lbl) for lbl in ("alice/phone", "alice/laptop", "bob/phone")}
    keys = {
        lbl: DeviceKeys(bytes.fromhex(d["x25519_private_hex"]), bytes.fromhex(d["ed25519_private_hex"]))
        for lbl, d in devices.items()
    }
    return devices, keys


def _envelope(suite: str, version: int = 1) -> dict[str, Any]:
    from chainchat.crypto.envelope import SealRandomness, blowfish_keys, key_commitment, seal_envelope
    from chainchat_protocol.envelope import header_aad, signing_digest, signing_input, wrap_info

    devices, keys = _vector_devices()
    recipients = [keys[lbl].public(lbl.split("/")[0]) for lbl in ("bob/phone", "alice/laptop")]
    label = suite if version == 1 else f"v{version}/{suite}"  # v1 labels predate v2
    nonce = seed(f"{label}/nonce")[:12] if suite.endswith("gcm") else seed(f"{label}/nonce")[:4]
    rnd = SealRandomness(
        content_key=seed(f"{label}/content_key"),
        nonce=nonce if suite.endswith("gcm") else nonce + bytes(4),
        ephemeral_ikm=[seed(f"{label}/ephemeral/{i}") for i in range(len(recipients))],
    )
    body = {"type": "text", "text": "Hello, Bob! Grüße 👋", "sent_at": "2025-01-01T12:00:00.000Z"}
    env = seal_envelope(
        body,
        sender=keys["alice/phone"],
        sender_id="alice",
        conversation_id="conv-1",
        recipients=recipients,
        suite=suite,
        version=version,
        randomness=rnd,
    )
    out: dict[str, Any] = {
        "description": _ENVELOPE_DESCRIPTIONS[version].format(suite=suite),
        "suite": suite,
        "sender": {"user_id": "alice", "device": devices["alice/phone"]},
        "recipients": [
            {
                "user_id": r.user_id,
                "device": devices[f"{r.user_id}/" + lbl],
                "ephemeral_ikm_hex": ikm.hex(),
            }
            for r, lbl, ikm in zip(recipients, ("phone", "laptop"), rnd.ephemeral_ikm or (), strict=True)
        ],
        "content_key_hex": rnd.content_key.hex(),
        "nonce_hex": rnd.nonce.hex(),
        "body": body,
        "body_bytes_hex": canonical_json(body).hex(),
        "header_aad": header_aad(env).decode(),
        "blowfish_keys_hex": [k.hex() for k in blowfish_keys(rnd.content_key)]
        if suite.endswith("blowfish")
        else None,
        "signing_input": signing_input(env).decode(),
        "signing_digest_hex": signing_digest(env).hex(),
        "envelope": env.model_dump(mode="json"),
    }
    if version >= 2:
        out["wrap_info_hex"] = wrap_info(env).hex()
        out["key_commit_hex"] = key_commitment(rnd.content_key, rnd.nonce).hex()
        out["salamander"] = _salamander(env.model_dump(mode="json"), label, keys, devices)
    return out


_ENVELOPE_DESCRIPTIONS = {
    1: "Message envelope v1, suite {suite}: sealing with these inputs must give "
    "`envelope` byte for byte; each recipient device must open it to `body`. HPKE base mode, "
    "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, info 'chainchat/v1/wrap', "
    "aad = header_aad; ephemeral key = DeriveKeyPair(ephemeral_ikm)",
    2: "Message envelope v2 (docs/envelope.md), suite {suite}: sealing with these inputs must give "
    "`envelope` byte for byte; each recipient device must open it to `body` and report it "
    "key-committing. HPKE base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, info = "
    "'chainchat/v2/wrap' || header_aad (`wrap_info_hex`), empty aad; ephemeral key = "
    "DeriveKeyPair(ephemeral_ikm); key_commit = HMAC-SHA256(content key, 'chainchat/v1/commit' || "
    "nonce). `salamander`: the same envelope with bob's wrapped key replaced by a wrap of "
    "`other_key_hex` and signed again by alice: bob must reject it with `bad_key_commit`, alice "
    "still opens it",
}


def _salamander(
    envelope: dict[str, Any], label: str, keys: dict[str, Any], devices: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """A validly signed envelope whose recipients unwrap different content keys."""
    from chainchat.crypto.envelope import wrap_key
    from chainchat_protocol.envelope import signing_digest

    other_key, ikm = seed(f"{label}/salamander/other_key"), seed(f"{label}/salamander/ephemeral")
    bob = keys["bob/phone"].public("bob")
    forged = {k: v for k, v in envelope.items() if k != "signature"}
    forged["recipients"] = [wrap_key(bob, other_key, envelope, ikm).model_dump(), *envelope["recipients"][1:]]
    forged["signature"] = b64e(keys["alice/phone"].sign(signing_digest(forged)))
    return {
        "other_key_hex": other_key.hex(),
        "ephemeral_ikm_hex": ikm.hex(),
        "envelope": forged,
        "rejected_by": {"user_id": "bob", "key_id": devices["bob/phone"]["key_id"], "code": "bad_key_commit"},
        "opened_by": {"user_id": "alice", "key_id": devices["alice/laptop"]["key_id"]},
    }


def _pattern(size: int) -> bytes:
    return bytes(i % 251 for i in range(size))


def _stream() -> dict[str, Any]:
    from chainchat.crypto.stream import ciphertext_size, encrypt_chunks

    key, prefix = seed("stream/key"), seed("stream/prefix")[:7]
    cases = []
    for size in (0, 1, 100, 65536, 65537, 2 * 65536 + 5):
        ct = b"".join(encrypt_chunks(key, [_pattern(size)], prefix=prefix))
        assert len(ct) == ciphertext_size(size)
        case: dict[str, Any] = {
            "plaintext_size": size,
            "ciphertext_size": len(ct),
            "ciphertext_sha256_hex": hashlib.sha256(ct).hexdigest(),
        }
        if size <= 100:
            case["ciphertext_hex"] = ct.hex()
        cases.append(case)
    return {
        "description": "STREAM over AES-256-GCM, 64 KiB chunks. File = 'CCST' || 0x01 || prefix(7) "
        "|| chunks; chunk i = AES-GCM(key, prefix || uint32_be(i) || last(0x00/0x01), pt_i, "
        "aad=header) as ct || tag16. Plaintext of size n is bytes(i % 251 for i in range(n))",
        "key_hex": key.hex(),
        "prefix_hex": prefix.hex(),
        "cases": cases,
    }


def _safety() -> dict[str, Any]:
    from chainchat.crypto.safety import format_safety_number, safety_fingerprint, safety_number

    a = [_device("alice/phone")["key_id"], _device("alice/laptop")["key_id"]]
    b = [_device("bob/phone")["key_id"]]
    cases = []
    for ua, ka, ub, kb in (
        ("alice", a[:1], "bob", b),
        ("alice", a, "bob", b),
        ("bob", b, "alice", a),
    ):
        number = safety_number(ua, ka, ub, kb)
        cases.append(
            {
                "user_a": ua,
                "key_ids_a": ka,
                "user_b": ub,
                "key_ids_b": kb,
                "fingerprint_a": safety_fingerprint(ua, ka),
                "fingerprint_b": safety_fingerprint(ub, kb),
                "safety_number": number,
                "display": format_safety_number(number),
            }
        )
    return {
        "description": "Safety numbers v0 (see chainchat.crypto.safety): per user h = "
        "uint16_be(0) || key || utf8(user_id), key = sorted key ids as bytes; 5200 x "
        "h = SHA-512(h || key); 6 x (5 bytes big-endian mod 100000); halves sorted",
        "cases": cases,
    }


_BUILDERS: dict[str, Callable[[], dict[str, Any]]] = {
    "b64": _b64,
    "canonical_json": _canonical,
    "key_ids": _key_ids,
    "merkle": _merkle,
    "log_entry": _log_entry,
    "envelope_aes256gcm": lambda: _envelope("hpke-x25519-aes256gcm"),
    "envelope_blowfish": lambda: _envelope("hpke-x25519-blowfish"),
    "envelope_v2_aes256gcm": lambda: _envelope("hpke-x25519-aes256gcm", 2),
    "envelope_v2_blowfish": lambda: _envelope("hpke-x25519-blowfish", 2),
    "stream": _stream,
    "safety_numbers": _safety,
}
NAMES = tuple(_BUILDERS)


def build(name: str) -> dict[str, Any]:
    """Recompute vector file ``name`` from the implementation."""
    return _BUILDERS[name]()


def _dump(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """CLI: ``--regenerate`` writes every vector file, ``--check`` reports drift (exit 1)."""
    parser = argparse.ArgumentParser(prog="python -m tools.vectors")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--regenerate", action="store_true")
    group.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for name in NAMES:
        path = VECTORS_DIR / f"{name}.json"
        text = _dump(build(name))
        if args.regenerate:
            path.write_text(text, "utf-8")
        elif not path.exists() or path.read_text("utf-8") != text:
            stale.append(name)
    if stale:
        sys.stderr.write(f"stale vectors: {', '.join(stale)}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
