"""Sealing citizens' values under their data key (DEK) with AES-256-GCM.

A sealed blob is:

    offset  size  field
    0       1     format tag, 0x01
    1       12    random nonce, fresh for every seal
    13      n+16  AES-256-GCM ciphertext, tag last

The associated data binds a blob to where it belongs (citizen, record kind, record id,
version), so a blob copied to another row, citizen, kind or version does not open.
Random 96-bit nonces are safe here because one DEK seals only one citizen's values, far
below the 2**32 seals per key at which random nonces start to risk a repeat.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.errors import DecryptionError, InvalidValue

SEAL_FORMAT = 0x01
AAD_FORMAT = 0x01
KEY_BYTES = 32
NONCE_BYTES = 12
_TAG_BYTES = 16
_MIN_SEALED = 1 + NONCE_BYTES + _TAG_BYTES
_FIELD_LEN = struct.Struct(">I")
_VERSION = struct.Struct(">Q")
_OPEN_FAILED = "This record could not be unlocked: it does not belong here or has been changed."


def new_data_key() -> bytes:
    """Return a fresh random 256-bit data key."""
    return AESGCM.generate_key(bit_length=256)


def associated_data(citizen_id: str, record_kind: str, record_id: str, version: int) -> bytes:
    """Encode where a value belongs, unambiguously, for use as AES-GCM associated data."""
    # Each text field is length-prefixed, so ("a", "bc") and ("ab", "c") cannot collide.
    parts = [bytes([AAD_FORMAT])]
    for field in (citizen_id, record_kind, record_id):
        if not isinstance(field, str):
            raise InvalidValue("Associated data fields must be text.")
        encoded = field.encode("utf-8")
        parts.append(_FIELD_LEN.pack(len(encoded)))
        parts.append(encoded)
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version < 2**64:
        raise InvalidValue("A record version must be a whole number, 0 or more.")
    parts.append(_VERSION.pack(version))
    return b"".join(parts)


def _cipher(dek: bytes) -> AESGCM:
    # Built per call rather than cached: it costs under a microsecond, and a process-wide
    # cache would keep erased citizens' keys alive in memory, defeating crypto-shredding.
    if not isinstance(dek, bytes) or len(dek) != KEY_BYTES:
        raise InvalidValue(f"A data key must be {KEY_BYTES} bytes long.")
    return AESGCM(dek)


def seal(dek: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt `plaintext` under `dek`, bound to `aad`, with a fresh random nonce."""
    cipher = _cipher(dek)
    nonce = os.urandom(NONCE_BYTES)
    return bytes([SEAL_FORMAT]) + nonce + cipher.encrypt(nonce, plaintext, aad)


def open_sealed(dek: bytes, blob: bytes, aad: bytes) -> bytes:
    """Decrypt a sealed blob; raise DecryptionError if it is malformed, moved or changed."""
    cipher = _cipher(dek)
    if len(blob) < _MIN_SEALED or blob[0] != SEAL_FORMAT:
        raise DecryptionError(_OPEN_FAILED)
    nonce = blob[1 : 1 + NONCE_BYTES]
    try:
        return cipher.decrypt(nonce, blob[1 + NONCE_BYTES :], aad)
    except InvalidTag:
        raise DecryptionError(_OPEN_FAILED) from None


def seal_text(dek: bytes, text: str, aad: bytes) -> bytes:
    """Seal a string as UTF-8."""
    return seal(dek, text.encode("utf-8"), aad)


def open_text(dek: bytes, blob: bytes, aad: bytes) -> str:
    """Open a blob sealed by `seal_text`."""
    try:
        return open_sealed(dek, blob, aad).decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionError(_OPEN_FAILED) from None


def canonical_json(value: object) -> str:
    """Encode a value as canonical JSON: sorted keys, compact, non-ASCII kept as is."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError, RecursionError):
        # json's own messages can quote the value; this one cannot.
        raise InvalidValue("This value cannot be stored as JSON.") from None


def seal_json(dek: bytes, value: object, aad: bytes) -> bytes:
    """Seal a JSON-serialisable value in canonical JSON."""
    return seal_text(dek, canonical_json(value), aad)


def open_json(dek: bytes, blob: bytes, aad: bytes) -> Any:
    """Open a blob sealed by `seal_json` and return the decoded value."""
    text = open_text(dek, blob, aad)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise DecryptionError(_OPEN_FAILED) from None
