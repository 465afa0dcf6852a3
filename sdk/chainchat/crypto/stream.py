"""File encryption: the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015) over
AES-256-GCM, in bounded memory for any file size (SPEC §5).

File format, version 1::

    header  = "CCST" (4 bytes) || 0x01 (version) || prefix (7 random bytes)        12 bytes
    chunk_i = AES-256-GCM(key, nonce_i, plaintext_i, aad=header)  = ct_i || tag_i (16 bytes)
    nonce_i = prefix (7) || uint32_be(i) (4) || last (1: 0x00, or 0x01 on the final chunk)
    file    = header || chunk_0 || ... || chunk_{n-1}

Every plaintext chunk is exactly 64 KiB except the final one, which holds 0..64 KiB; an empty file
is one empty final chunk, so ``n >= 1`` always. The counter and the last-chunk flag in the nonce
make reordering, duplication, truncation at a chunk boundary and appended chunks fail
authentication; using the header as AAD binds the format version. A file key must encrypt one file
only (a fresh random prefix is still drawn per file).

Decryption releases a chunk's plaintext only after it authenticated, but a truncated stream is only
detected at its end: consumers must treat output as provisional until the iterator finishes
(:func:`decrypt_file` writes to a temporary file and renames it only on success).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from chainchat.crypto.errors import (
    StreamAuthenticationError,
    StreamFormatError,
    StreamTrailingDataError,
    StreamTruncatedError,
)

__all__ = [
    "CHUNK_SIZE",
    "HEADER_SIZE",
    "StreamInfo",
    "adecrypt_chunks",
    "aencrypt_chunks",
    "ciphertext_size",
    "decrypt_chunks",
    "decrypt_file",
    "encrypt_chunks",
    "encrypt_file",
    "generate_file_key",
    "plaintext_size",
]

MAGIC = b"CCST"
VERSION = 1
PREFIX_SIZE = 7
HEADER_SIZE = len(MAGIC) + 1 + PREFIX_SIZE
CHUNK_SIZE = 64 * 1024
TAG_SIZE = 16
SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE
MAX_CHUNKS = 2**32
_IO_BLOCK = 1024 * 1024
StrPath = str | os.PathLike[str]


def generate_file_key() -> bytes:
    """A fresh random 32-byte file key."""
    return os.urandom(32)


def ciphertext_size(plaintext_size: int) -> int:
    """Exact size of the encrypted file for a plaintext of ``plaintext_size`` bytes."""
    if plaintext_size < 0:
        raise ValueError("negative size")
    chunks = max(1, -(-plaintext_size // CHUNK_SIZE))
    return HEADER_SIZE + plaintext_size + TAG_SIZE * chunks


def plaintext_size(ciphertext_size: int) -> int:
    """Inverse of :func:`ciphertext_size`; :class:`StreamFormatError` for impossible sizes."""
    body = ciphertext_size - HEADER_SIZE
    full, rest = divmod(body, SEALED_CHUNK_SIZE)
    if body <= 0 or 0 < rest < TAG_SIZE:
        raise StreamFormatError("impossible encrypted file size")
    return full * CHUNK_SIZE + (rest - TAG_SIZE if rest else 0)


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter >= MAX_CHUNKS:
        raise StreamFormatError("file too large for STREAM (2**32 chunks)")
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class _Encryptor:
    """Push-style encryptor shared by the sync and async APIs."""

    def __init__(self, key: bytes, prefix: bytes | None) -> None:
        prefix = os.urandom(PREFIX_SIZE) if prefix is None else prefix
        if len(key) != 32 or len(prefix) != PREFIX_SIZE:
            raise ValueError("STREAM needs a 32-byte key and a 7-byte prefix")
        self._aead = AESGCM(key)
        self._prefix = prefix
        self.header = MAGIC + bytes([VERSION]) + prefix
        self._buf = bytearray()
        self._counter = 0

    def _seal(self, data: bytes, last: bool) -> bytes:
        sealed = self._aead.encrypt(_nonce(self._prefix, self._counter, last), data, self.header)
        self._counter += 1
        return sealed

    def feed(self, data: bytes) -> list[bytes]:
        """Buffer ``data``; return the chunks now known not to be the last one."""
        self._buf += data
        out, off = [], 0
        # Strictly more than one chunk buffered: only then is the first one certainly not final.
        while len(self._buf) - off > CHUNK_SIZE:
            out.append(self._seal(bytes(self._buf[off : off + CHUNK_SIZE]), last=False))
            off += CHUNK_SIZE
        del self._buf[:off]
        return out

    def finish(self) -> bytes:
        """Seal the final (possibly empty) chunk."""
        return self._seal(bytes(self._buf), last=True)


class _Decryptor:
    """Push-style decryptor shared by the sync and async APIs."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("STREAM needs a 32-byte key")
        self._aead = AESGCM(key)
        self._header: bytes | None = None
        self._buf = bytearray()
        self._counter = 0

    def _open(self, sealed: bytes, last: bool) -> bytes | None:
        assert self._header is not None
        nonce = _nonce(self._header[len(MAGIC) + 1 :], self._counter, last)
        try:
            return self._aead.decrypt(nonce, sealed, self._header)
        except InvalidTag:
            return None

    def _take_header(self) -> None:
        if self._header is None and len(self._buf) >= HEADER_SIZE:
            header = bytes(self._buf[:HEADER_SIZE])
            if header[: len(MAGIC)] != MAGIC or header[len(MAGIC)] != VERSION:
                raise StreamFormatError("not a ChainChat encrypted file (v1)")
            self._header = header
            del self._buf[:HEADER_SIZE]

    def feed(self, data: bytes) -> list[bytes]:
        """Buffer ``data``; return the plaintext of every complete non-final chunk."""
        self._buf += data
        self._take_header()
        if self._header is None:
            return []
        out, off = [], 0
        while len(self._buf) - off > SEALED_CHUNK_SIZE:
            sealed = bytes(self._buf[off : off + SEALED_CHUNK_SIZE])
            plain = self._open(sealed, last=False)
            if plain is None:
                # Diagnose only; nothing from a failed chunk is released.
                if self._open(sealed, last=True) is not None:
                    raise StreamTrailingDataError(f"data follows the final chunk {self._counter}")
                raise StreamAuthenticationError(f"chunk {self._counter} failed authentication")
            out.append(plain)
            self._counter += 1
            off += SEALED_CHUNK_SIZE
        del self._buf[:off]
        return out

    def finish(self) -> bytes:
        """Authenticate the final chunk and return its plaintext."""
        if self._header is None:
            raise StreamFormatError("stream shorter than its header")
        sealed = bytes(self._buf)
        if len(sealed) < TAG_SIZE:
            if not sealed:
                raise StreamTruncatedError("stream ended before its final chunk")
            raise StreamFormatError("dangling bytes shorter than a tag")
        plain = self._open(sealed, last=True)
        if plain is None:
            if self._open(sealed, last=False) is not None:
                raise StreamTruncatedError("stream ended before its final chunk")
            raise StreamAuthenticationError(f"chunk {self._counter} failed authentication")
        return plain


def encrypt_chunks(key: bytes, chunks: Iterable[bytes], *, prefix: bytes | None = None) -> Iterator[bytes]:
    """Encrypt an iterable of plaintext pieces (any sizes); yield the header then sealed chunks.

    ``prefix`` is random unless given (only test vectors should pass it).
    """
    enc = _Encryptor(key, prefix)
    yield enc.header
    for data in chunks:
        yield from enc.feed(data)
    yield enc.finish()


def decrypt_chunks(key: bytes, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decrypt an iterable of ciphertext pieces (any sizes); yield authenticated plaintext chunks.

    Raises a :class:`~chainchat.crypto.errors.StreamError` subclass on any tampering.
    """
    dec = _Decryptor(key)
    for data in chunks:
        yield from dec.feed(data)
    yield dec.finish()


async def aencrypt_chunks(
    key: bytes, chunks: AsyncIterable[bytes], *, prefix: bytes | None = None
) -> AsyncIterator[bytes]:
    """Async-iterator version of :func:`encrypt_chunks`."""
    enc = _Encryptor(key, prefix)
    yield enc.header
    async for data in chunks:
        for sealed in enc.feed(data):
            yield sealed
    yield enc.finish()


async def adecrypt_chunks(key: bytes, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Async-iterator version of :func:`decrypt_chunks`."""
    dec = _Decryptor(key)
    async for data in chunks:
        for plain in dec.feed(data):
            yield plain
    yield dec.finish()


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """Sizes and SHA-256 digests (hex) of both sides of an encrypted file."""

    plaintext_size: int
    ciphertext_size: int
    plaintext_sha256: str
    ciphertext_sha256: str


def _read_blocks(path: Path, digest: hashlib._Hash) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(_IO_BLOCK):
            digest.update(block)
            yield block


def _drain(pipeline: Iterator[bytes], dst: Path) -> tuple[int, str]:
    """Write ``pipeline`` to ``dst`` through a temporary file renamed only on success."""
    digest, size = hashlib.sha256(), 0
    tmp = dst.with_name(dst.name + ".part")
    try:
        with tmp.open("wb") as out:
            for piece in pipeline:
                out.write(piece)
                digest.update(piece)
                size += len(piece)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return size, digest.hexdigest()


def encrypt_file(key: bytes, src: StrPath, dst: StrPath) -> StreamInfo:
    """Encrypt file ``src`` to ``dst`` in constant memory."""
    s, src_digest = Path(src), hashlib.sha256()
    size, digest = _drain(encrypt_chunks(key, _read_blocks(s, src_digest)), Path(dst))
    return StreamInfo(s.stat().st_size, size, src_digest.hexdigest(), digest)


def decrypt_file(key: bytes, src: StrPath, dst: StrPath) -> StreamInfo:
    """Decrypt file ``src`` to ``dst`` in constant memory; ``dst`` appears only if the whole file
    authenticated."""
    s, src_digest = Path(src), hashlib.sha256()
    size, digest = _drain(decrypt_chunks(key, _read_blocks(s, src_digest)), Path(dst))
    return StreamInfo(size, s.stat().st_size, digest, src_digest.hexdigest())
