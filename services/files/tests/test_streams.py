"""The upload meter (size limit, digest) and the verified download stream."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from chainchat_files.streams import ContentIntegrityError, FileTooLarge, UploadMeter, verified_content


async def _source(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def _collect(stream: AsyncIterator[bytes], into: list[bytes]) -> None:
    async for chunk in stream:
        into.append(chunk)


async def test_meter_counts_hashes_and_allows_exactly_the_limit() -> None:
    meter = UploadMeter(_source(b"ab", b"", b"cde"), limit=5)
    got = [chunk async for chunk in meter]
    assert got == [b"ab", b"cde"]
    assert (meter.size, meter.finished) == (5, True)
    assert meter.hexdigest() == hashlib.sha256(b"abcde").hexdigest()


async def test_meter_stops_one_byte_over_the_limit() -> None:
    meter = UploadMeter(_source(b"abc", b"def"), limit=5)
    assert await meter.__anext__() == b"abc"
    with pytest.raises(FileTooLarge) as info:
        await meter.__anext__()
    assert (info.value.http_status, info.value.code) == (413, "file_too_large")


async def test_meter_drain_is_bounded() -> None:
    meter = UploadMeter(_source(b"a" * 10, b"b" * 10, b"c" * 10), limit=100)
    assert await meter.__anext__() == b"a" * 10
    assert await meter.drain(budget=15) is False
    rest = UploadMeter(_source(b"x", b"y"), limit=100)
    assert await rest.drain(budget=15) is True


async def test_verified_content_passes_good_bytes() -> None:
    data = [b"one", b"two", b"three"]
    digest = hashlib.sha256(b"".join(data)).hexdigest()
    got: list[bytes] = []
    await _collect(verified_content(_source(*data), expected_size=11, expected_sha256=digest, label="f"), got)
    assert got == data


async def test_verified_content_withholds_the_last_chunk_on_a_digest_mismatch() -> None:
    got: list[bytes] = []
    stream = verified_content(_source(b"one", b"two"), expected_size=6, expected_sha256="0" * 64, label="f")
    with pytest.raises(ContentIntegrityError, match="differs"):
        await _collect(stream, got)
    assert got == [b"one"]


@pytest.mark.parametrize(
    ("chunks", "kind"), [((b"abc",), "IPFS returned 3 of 6"), ((b"abcdefg",), "more than")]
)
async def test_verified_content_checks_the_size(chunks: tuple[bytes, ...], kind: str) -> None:
    with pytest.raises(ContentIntegrityError, match=kind):
        await _collect(
            verified_content(_source(*chunks), expected_size=6, expected_sha256=None, label="f"), []
        )


async def test_verified_content_of_an_empty_file() -> None:
    empty = hashlib.sha256(b"").hexdigest()
    got: list[bytes] = []
    await _collect(verified_content(_source(), expected_size=0, expected_sha256=empty, label="f"), got)
    assert got == []
