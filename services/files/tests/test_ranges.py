"""Range, If-None-Match and If-Range rules (RFC 9110) on one representation."""

from __future__ import annotations

import pytest

from chainchat_files.ranges import ByteRange, RangeNotSatisfiable, etag_matches, if_range_allows, parse_range

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("bytes=0-0", ByteRange(0, 0, SIZE)),
        ("bytes=0-499", ByteRange(0, 499, SIZE)),
        ("bytes=500-", ByteRange(500, 999, SIZE)),
        ("bytes=-1", ByteRange(999, 999, SIZE)),
        ("bytes=-2000", ByteRange(0, 999, SIZE)),
        ("bytes=990-5000", ByteRange(990, 999, SIZE)),
        (" Bytes = 1-2 ".replace(" = ", "="), ByteRange(1, 2, SIZE)),
        ("items=0-5", None),  # unknown unit: ignored
        ("bytes=0-1,4-5", None),  # several ranges: the whole file instead
        ("bytes=10-" + "9" * 5000, ByteRange(10, 999, SIZE)),  # a last position past any file
        ("bytes=-" + "9" * 5000, ByteRange(0, 999, SIZE)),
    ],
)
def test_parse_range(header: str | None, expected: ByteRange | None) -> None:
    assert parse_range(header, SIZE) == expected


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("bytes=1000-", "range_not_satisfiable"),
        ("bytes=5000-6000", "range_not_satisfiable"),
        ("bytes=-0", "range_not_satisfiable"),
        ("bytes=" + "5" * 5000 + "-", "range_not_satisfiable"),
        ("bytes=" + "5" * 5000 + "-" + "6" * 5000, "range_not_satisfiable"),
        ("bytes=" + "7" * 5000 + "-1", "invalid_range"),
        ("bytes=x-1", "invalid_range"),
        ("bytes=5-1", "invalid_range"),
        ("bytes=-", "invalid_range"),
        ("bytes=", "invalid_range"),
        ("bytes=1-2,x", "invalid_range"),
    ],
)
def test_unsatisfiable_or_malformed_ranges(header: str, code: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as info:
        parse_range(header, SIZE)
    assert info.value.code == code
    assert info.value.http_status == 416
    assert info.value.headers["Content-Range"] == f"bytes */{SIZE}"


def test_any_range_of_an_empty_file_is_unsatisfiable() -> None:
    for header in ("bytes=0-", "bytes=-1", "bytes=0-0"):
        with pytest.raises(RangeNotSatisfiable):
            parse_range(header, 0)


def test_byte_range_helpers() -> None:
    whole, part = ByteRange(0, 999, SIZE), ByteRange(10, 19, SIZE)
    assert (whole.is_full, part.is_full) == (True, False)
    assert part.length == 10
    assert part.content_range() == "bytes 10-19/1000"


def test_etag_matching() -> None:
    etag = '"abc"'
    assert etag_matches('"abc"', etag)
    assert etag_matches('W/"abc"', etag)
    assert etag_matches('"x", "abc"', etag)
    assert etag_matches("*", etag)
    assert not etag_matches('"abd"', etag)
    assert not etag_matches(None, etag)
    assert if_range_allows(None, etag)
    assert if_range_allows('"abc"', etag)
    assert not if_range_allows('W/"abc"', etag)  # If-Range needs a strong match
    assert not if_range_allows("Wed, 21 Oct 2015 07:28:00 GMT", etag)
