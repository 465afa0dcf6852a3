"""Typed crypto errors: callers switch on ``code``, never on message text."""

from __future__ import annotations

from typing import Literal

__all__ = [
    "CryptoError",
    "EnvelopeError",
    "EnvelopeErrorCode",
    "KeyFileError",
    "StreamAuthenticationError",
    "StreamError",
    "StreamFormatError",
    "StreamTrailingDataError",
    "StreamTruncatedError",
]

EnvelopeErrorCode = Literal[
    "bad_signature",
    "not_a_recipient",
    "decryption_failed",
    "bad_key_commit",  # v2: the unwrapped content key is not the one the sender committed to
    "unsupported_suite",
    "malformed_envelope",
    "envelope_too_large",  # only when sealing
]


class CryptoError(Exception):
    """Base of every error raised by ``chainchat.crypto``; ``code`` is a stable snake_case id."""

    code: str = "crypto_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class EnvelopeError(CryptoError):
    """Opening (or sealing) a message envelope failed; no plaintext was released."""

    def __init__(self, code: EnvelopeErrorCode, message: str) -> None:
        super().__init__(message, code=code)


class KeyFileError(CryptoError):
    """A stored device key file is malformed or its passphrase is wrong."""

    code = "bad_key_file"


class StreamError(CryptoError):
    """Base of STREAM file encryption errors."""

    code = "stream_error"


class StreamFormatError(StreamError):
    """Not a ChainChat encrypted file (bad magic, version or length)."""

    code = "stream_malformed"


class StreamAuthenticationError(StreamError):
    """A chunk failed authentication: wrong key, corruption, reordering or duplication."""

    code = "stream_authentication_failed"


class StreamTruncatedError(StreamError):
    """The stream ended without its final chunk."""

    code = "stream_truncated"


class StreamTrailingDataError(StreamError):
    """Data follows the final chunk."""

    code = "stream_trailing_data"
