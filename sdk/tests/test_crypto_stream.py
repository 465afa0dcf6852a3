import hashlib
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chainchat.crypto.errors import (
    StreamAuthenticationError,
    StreamError,
    StreamFormatError,
    StreamTrailingDataError,
    StreamTruncatedError,
)
from chainchat.crypto.stream import (
    CHUNK_SIZE,
    HEADER_SIZE,
    adecrypt_chunks,
    aencrypt_chunks,
    ciphertext_size,
    decrypt_chunks,
    decrypt_file,
    encrypt_chunks,
    encrypt_file,
    generate_file_key,
    plaintext_size,
)
from chainchat_protocol.vectors import load

KEY = bytes(range(32))
SEALED = CHUNK_SIZE + 16


def _enc(data: bytes, key: bytes = KEY, pieces: int = 1) -> bytes:
    step = max(1, len(data) // pieces)
    parts = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
    return b"".join(encrypt_chunks(key, parts))


def _dec(data: bytes, key: bytes = KEY, piece: int = 10_000) -> bytes:
    return b"".join(decrypt_chunks(key, (data[i : i + piece] for i in range(0, len(data), piece))))


def test_vectors() -> None:
    v = load("stream")
    key, prefix = bytes.fromhex(v["key_hex"]), bytes.fromhex(v["prefix_hex"])
    for case in v["cases"]:
        pt = bytes(i % 251 for i in range(case["plaintext_size"]))
        ct = b"".join(encrypt_chunks(key, [pt], prefix=prefix))
        assert len(ct) == case["ciphertext_size"] == ciphertext_size(len(pt))
        assert hashlib.sha256(ct).hexdigest() == case["ciphertext_sha256_hex"]
        if "ciphertext_hex" in case:
            assert ct.hex() == case["ciphertext_hex"]
        assert _dec(ct, key) == pt


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from([0, 1, 100, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE]),
    st.integers(1, 7),
    st.integers(1, 200_000),
)
def test_roundtrip_any_slicing(size: int, pieces: int, read: int) -> None:
    data = os.urandom(size)
    ct = _enc(data, pieces=pieces)
    assert len(ct) == ciphertext_size(size)
    assert plaintext_size(len(ct)) == size
    assert _dec(ct, piece=read) == data


def test_empty_file_is_one_empty_final_chunk() -> None:
    ct = _enc(b"")
    assert len(ct) == HEADER_SIZE + 16 == ciphertext_size(0)
    assert _dec(ct) == b""


def _chunks(ct: bytes) -> tuple[bytes, list[bytes]]:
    body = ct[HEADER_SIZE:]
    return ct[:HEADER_SIZE], [body[i : i + SEALED] for i in range(0, len(body), SEALED)]


DATA = os.urandom(3 * CHUNK_SIZE + 1234)


def _raises(exc: type[StreamError], ct: bytes, key: bytes = KEY) -> None:
    with pytest.raises(exc):
        _dec(ct, key)


def test_truncation_detected() -> None:
    header, chunks = _chunks(_enc(DATA))
    _raises(StreamTruncatedError, header + b"".join(chunks[:-1]))  # missing last chunk
    _raises(StreamTruncatedError, header + chunks[0])
    _raises(StreamTruncatedError, header)
    _raises(StreamFormatError, header[:5])
    _raises(StreamAuthenticationError, header + b"".join(chunks)[:-1])  # cut inside a chunk


def test_reordering_and_duplication_detected() -> None:
    header, c = _chunks(_enc(DATA))
    _raises(StreamAuthenticationError, header + c[1] + c[0] + c[2] + c[3])
    _raises(StreamAuthenticationError, header + c[0] + c[0] + c[1] + c[2] + c[3])
    _raises(StreamAuthenticationError, header + c[0] + c[2] + c[3])  # dropped middle chunk


def test_appended_data_detected() -> None:
    full = _enc(os.urandom(2 * CHUNK_SIZE))  # final chunk is full size
    header, c = _chunks(full)
    _raises(StreamTrailingDataError, full + c[0])
    _raises(StreamTrailingDataError, full + os.urandom(100))
    _raises(StreamAuthenticationError, _enc(b"short") + b"junk" * 10)


def test_wrong_key_and_bad_header() -> None:
    ct = _enc(DATA)
    _raises(StreamAuthenticationError, ct, generate_file_key())
    _raises(StreamFormatError, b"XXXX" + ct[4:])
    _raises(StreamFormatError, ct[:4] + b"\x02" + ct[5:])
    _raises(StreamAuthenticationError, ct[:5] + bytes([ct[5] ^ 1]) + ct[6:])  # prefix is bound


def test_nothing_released_from_a_failed_chunk() -> None:
    header, c = _chunks(_enc(DATA))
    released: list[bytes] = []
    plaintext = decrypt_chunks(KEY, [header, c[0], c[2]])
    released.append(next(plaintext))
    with pytest.raises(StreamAuthenticationError):
        next(plaintext)
    assert released == [DATA[:CHUNK_SIZE]]


def test_sizes() -> None:
    assert ciphertext_size(CHUNK_SIZE) == HEADER_SIZE + CHUNK_SIZE + 16
    assert ciphertext_size(CHUNK_SIZE + 1) == HEADER_SIZE + CHUNK_SIZE + 1 + 32
    for bad in (HEADER_SIZE, HEADER_SIZE + 15, HEADER_SIZE + SEALED + 3):
        with pytest.raises(StreamFormatError):
            plaintext_size(bad)
    with pytest.raises(ValueError, match="negative"):
        ciphertext_size(-1)


async def _agen(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


async def test_async_roundtrip() -> None:
    ct = b"".join([c async for c in aencrypt_chunks(KEY, _agen([DATA[:1000], DATA[1000:]]))])
    assert ct[:HEADER_SIZE] != _enc(DATA)[:HEADER_SIZE]  # fresh random prefix
    assert b"".join([p async for p in adecrypt_chunks(KEY, _agen([ct]))]) == DATA
    header, c = _chunks(ct)
    with pytest.raises(StreamTruncatedError):
        [p async for p in adecrypt_chunks(KEY, _agen([header, *c[:-1]]))]


def test_file_helpers(tmp_path: Path) -> None:
    src, enc, out = tmp_path / "in.bin", tmp_path / "in.enc", tmp_path / "out.bin"
    src.write_bytes(DATA)
    info = encrypt_file(KEY, src, enc)
    assert info.plaintext_size == len(DATA)
    assert info.ciphertext_size == enc.stat().st_size
    assert info.plaintext_sha256 == hashlib.sha256(DATA).hexdigest()
    assert info.ciphertext_sha256 == hashlib.sha256(enc.read_bytes()).hexdigest()
    assert decrypt_file(KEY, enc, out) == info
    assert out.read_bytes() == DATA
    enc.write_bytes(enc.read_bytes()[:-SEALED])
    out.unlink()
    with pytest.raises(StreamError):
        decrypt_file(KEY, enc, out)
    assert not out.exists()
    assert not (tmp_path / "out.bin.part").exists()
