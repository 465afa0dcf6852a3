"""Canonical JSON (RFC 8785, JSON Canonicalization Scheme): the one serialisation that is hashed,
signed or used as associated data anywhere in ChainChat.

Every hash or signature over JSON goes through :func:`canonical_json`, so the Python services, the
SDK and the web client (which implements the same RFC) produce byte-identical input.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import rfc8785

__all__ = ["CanonicalJSONError", "canonical_json", "canonical_sha256", "canonical_sha256_hex"]


class CanonicalJSONError(ValueError):
    """Raised for values RFC 8785 cannot represent (NaN, integers beyond 2**53, non-str keys...)."""


_MAX_SAFE_INT = 2**53 - 1
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_FAST = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False)


def _fast_path_applies(obj: Any) -> bool:
    """True when the C ``json`` encoder already yields RFC 8785 bytes for ``obj``.

    That holds for objects without floats (ES6 number formatting differs from Python's), without
    integers beyond 2**53 (not exactly representable), and whose keys
    have no characters beyond the BMP (only there does UTF-16 key order differ from code-point
    order). Escaping is the same: ``\\"``, ``\\\\``, ``\\b \\f \\n \\r \\t`` and ``\\u00xx`` for
    the other control characters; nothing else is escaped.
    """
    stack = [obj]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue  # lone surrogates make the UTF-8 encoding fail: see canonical_json
        if kind is dict:
            for key, value in item.items():
                if type(key) is not str or (not key.isascii() and _ASTRAL.search(key)):
                    return False
                stack.append(value)
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind is int:
            if not -_MAX_SAFE_INT <= item <= _MAX_SAFE_INT:
                return False
        else:
            return False
    return True


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` per RFC 8785: keys sorted (UTF-16 order), no whitespace, UTF-8, ES6
    number formatting.

    Accepts the JSON data model (dict with str keys, list, tuple, str, int, float, bool, None).
    Pydantic models must be dumped first (``model.model_dump(mode="json")``). Common shapes
    (strings, safe integers, booleans, null) take the C encoder; anything else the reference
    ``rfc8785`` implementation — a property test checks both give the same bytes.
    """
    if _fast_path_applies(obj):
        try:
            return _FAST.encode(obj).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: the reference implementation rejects it with a clear error
    try:
        return rfc8785.dumps(obj)
    except rfc8785.CanonicalizationError as exc:
        raise CanonicalJSONError(str(exc)) from exc
    except (TypeError, ValueError) as exc:
        raise CanonicalJSONError(str(exc)) from exc


def canonical_sha256(obj: Any) -> bytes:
    """SHA-256 of :func:`canonical_json` of ``obj`` (32 bytes)."""
    return hashlib.sha256(canonical_json(obj)).digest()


def canonical_sha256_hex(obj: Any) -> str:
    """Lowercase hex SHA-256 of :func:`canonical_json` of ``obj``."""
    return canonical_sha256(obj).hex()
