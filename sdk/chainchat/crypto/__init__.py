"""ChainChat client-side cryptography: device keys, message envelopes, file streams, safety numbers.

Everything here runs on the user's device; servers only ever see the outputs.
"""

from chainchat.crypto.envelope import (
    OpenedEnvelope,
    SealRandomness,
    open_envelope,
    open_envelope_detailed,
    seal_envelope,
)
from chainchat.crypto.errors import (
    CryptoError,
    EnvelopeError,
    KeyFileError,
    StreamAuthenticationError,
    StreamError,
    StreamFormatError,
    StreamTrailingDataError,
    StreamTruncatedError,
)
from chainchat.crypto.keys import (
    DeviceKeys,
    PublicDeviceKey,
    export_device_keys,
    import_device_keys,
    verify_signature,
)
from chainchat.crypto.safety import format_safety_number, safety_fingerprint, safety_number
from chainchat.crypto.stream import (
    StreamInfo,
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

__all__ = [
    "CryptoError",
    "DeviceKeys",
    "EnvelopeError",
    "KeyFileError",
    "OpenedEnvelope",
    "PublicDeviceKey",
    "SealRandomness",
    "StreamAuthenticationError",
    "StreamError",
    "StreamFormatError",
    "StreamInfo",
    "StreamTrailingDataError",
    "StreamTruncatedError",
    "adecrypt_chunks",
    "aencrypt_chunks",
    "ciphertext_size",
    "decrypt_chunks",
    "decrypt_file",
    "encrypt_chunks",
    "encrypt_file",
    "export_device_keys",
    "format_safety_number",
    "generate_file_key",
    "import_device_keys",
    "open_envelope",
    "open_envelope_detailed",
    "plaintext_size",
    "safety_fingerprint",
    "safety_number",
    "seal_envelope",
    "verify_signature",
]
