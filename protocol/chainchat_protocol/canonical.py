"""Canonical JSON (RFC 8785, JSON Canonicalization Scheme): the one serialisation that is hashed,
signed or used as associated data anywhere in ChainChat.

Every hash or signature over JSON goes through :func:`canonical_json`, so the Python services, the
SDK and the web client (which implements the same RFC) produce byte-identical input.
"""

from __future__ import annotations

import hashlib
from typing import Any

import rfc8785

__all__ = ["CanonicalJSONError", "canonical_json", "canonical_sha256", "canonical_sha256_hex"]


class CanonicalJSONError(ValueError):
    """Raised for values RFC 8785 cannot represent (NaN, integers beyond 2**53, non-str keys...)."""


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` per RFC 8785: keys sorted (UTF-16 order), no whitespace, UTF-8, ES6
    number formatting.

    Accepts the JSON data model (dict with str keys, list, tuple, str, int, float, bool, None).
    Pydantic models must be dumped first (``model.model_dump(mode="json")``).
    """
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
