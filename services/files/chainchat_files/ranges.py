"""HTTP conditional and range requests on one representation (RFC 9110 §13, §14)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from chainchat_protocol.errors import ChainChatError, ErrorCode
from chainchat_protocol.files import FilesErrorCode

_RANGE_SPEC = re.compile(r"^(\d*)-(\d*)$")
# a position with more digits is beyond any file (and int() of thousands of digits is refused)
_MAX_POSITION_DIGITS = 18


def _position(digits: str) -> int:
    return int(digits) if len(digits) <= _MAX_POSITION_DIGITS else 10**_MAX_POSITION_DIGITS


class RangeNotSatisfiable(ChainChatError):
    """416: the Range cannot be served; ``Content-Range: bytes */size`` tells the real size."""

    status = 416
    default_code = ErrorCode.RANGE_NOT_SATISFIABLE

    def __init__(self, message: str, size: int, *, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.headers["Content-Range"] = f"bytes */{size}"


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start`` .. ``end`` inclusive of a representation of ``size`` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def is_full(self) -> bool:
        return self.start == 0 and self.end == self.size - 1

    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range to serve, or None for the whole representation.

    A unit other than ``bytes`` and a list of several ranges are ignored (RFC 9110 §14.2 lets a
    server send the full representation instead); a malformed or unsatisfiable ``bytes`` range is
    rejected with 416 rather than guessed at.
    """
    if header is None or not header.strip():
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes":
        return None
    specs = [s.strip() for s in spec.split(",")]
    if len(specs) > 1 and all(_RANGE_SPEC.match(s) for s in specs):
        return None
    match = _RANGE_SPEC.match(specs[0]) if len(specs) == 1 else None
    if match is None or match.group(1) == match.group(2) == "":
        raise RangeNotSatisfiable(
            f"malformed Range header: {header[:80]!r}", size, code=FilesErrorCode.INVALID_RANGE
        )
    first, last = match.group(1), match.group(2)
    if first == "":
        suffix = _position(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable("the requested range is empty", size)
        return ByteRange(max(0, size - suffix), size - 1, size)
    start = _position(first)
    end = size - 1 if last == "" else min(_position(last), size - 1)
    if last != "" and _position(last) < start:
        raise RangeNotSatisfiable(
            f"malformed Range header: {header[:80]!r}", size, code=FilesErrorCode.INVALID_RANGE
        )
    if start >= size:
        raise RangeNotSatisfiable(f"the file has {size} bytes; the range starts at {start}", size)
    return ByteRange(start, end, size)


def _entity_tags(header: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()]


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """``If-None-Match`` uses the weak comparison: ``W/"x"`` matches ``"x"``; ``*`` matches all."""
    if if_none_match is None:
        return False
    tags = _entity_tags(if_none_match)
    return "*" in tags or etag in tags


def if_range_allows(if_range: str | None, etag: str) -> bool:
    """``If-Range`` with our strong ETag: serve the range only if the client has this version.

    A date validator is never a match here (we send no Last-Modified), so the full file is sent.
    """
    if if_range is None:
        return True
    return if_range.strip() == etag
