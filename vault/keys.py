"""Key-encryption keys (KEKs): the key provider interface and a local key file provider.

Each citizen's data key (DEK) is stored only wrapped by a KEK. A wrapped key is a blob:

    offset  size  field
    0       1     format tag, 0x01
    1       4     KEK version, unsigned big-endian
    5       12    random nonce
    17      n+16  AES-256-GCM(KEK, DEK, associated data = context), tag last

The version is in the clear so the right KEK can be picked without trying them all; the
context (for example the citizen id) binds a wrapped key to its owner, so it cannot be
moved to someone else.

The key file's `root_secret` never encrypts anything itself; named secrets (HMAC keys and
seeds) are derived from it with HKDF-SHA256, so they survive KEK rotation. Rotation adds a
version and makes it current; the caller then re-wraps every DEK and may retire the old
version, after which blobs wrapped under it are refused. A running provider notices when
the file has been replaced (a stat per wrap or unwrap) and re-reads it, so services pick up
a rotation or a retirement without a restart. A KMS-backed provider (for example HashiCorp
Vault transit) only needs to satisfy `KeyProvider`.

The key file itself (its format, reading and changing it) is vault.keyfile; the functions
that change it are re-exported here.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.errors import DecryptionError, InvalidValue, KeyProviderError, RetiredKeyError
from vault.keyfile import (
    KEY_BYTES,
    KeyFile,
    PathLike,
    add_key_version,
    check_private,
    file_signature,
    init_key_file,
    missing_message,
    read_key_file,
    retire_key_version,
)

__all__ = [
    "KEY_BYTES",
    "KeyProvider",
    "KeyVersion",
    "LocalKeyFileProvider",
    "add_key_version",
    "init_key_file",
    "retire_key_version",
]

WRAP_FORMAT = 0x01
NONCE_BYTES = 12
_HEADER = struct.Struct(">BI")
_TAG_BYTES = 16
# HKDF salt is fixed and public: it only separates Tell Once's derivations from any other
# use of the same root secret.
_DERIVE_SALT = b"tellonce/derive_secret/v1"
_HEALTH_CONTEXT = b"tellonce/health-check"
_UNWRAP_FAILED = "This data key could not be unlocked: it does not belong here or has been changed."


@dataclass(frozen=True)
class KeyVersion:
    """One KEK version as a provider reports it (never the key itself)."""

    version: int
    created_at: datetime
    retired: bool


class KeyProvider(Protocol):
    """Something that holds KEKs and a root secret and never hands the KEKs out."""

    @property
    def current_version(self) -> int:
        """The KEK version new wraps use."""

    def wrap(self, dek: bytes, context: bytes) -> bytes:
        """Wrap a data key under the current KEK version, bound to `context`."""

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        """Unwrap a data key wrapped under any live KEK version with the same context."""

    def version_of(self, blob: bytes) -> int:
        """Return the KEK version a wrapped key was wrapped under."""

    def versions(self) -> list[KeyVersion]:
        """List every KEK version, oldest first."""

    def derive_secret(self, name: str) -> bytes:
        """Return a stable 32-byte secret for `name`, derived from the root secret."""

    def check(self) -> None:
        """Raise KeyProviderError with a plain message if the provider cannot be used."""


def _parse_header(blob: bytes) -> int:
    if len(blob) < _HEADER.size + NONCE_BYTES + _TAG_BYTES:
        raise DecryptionError(_UNWRAP_FAILED)
    tag, version = _HEADER.unpack_from(blob)
    if tag != WRAP_FORMAT:
        raise DecryptionError(_UNWRAP_FAILED)
    return int(version)


class LocalKeyFileProvider:
    """A KeyProvider over a JSON key file on local disk, readable only by its owner."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        self._loaded = read_key_file(self.path)

    @property
    def _state(self) -> KeyFile:
        return self._loaded[0]

    def reload(self) -> None:
        """Re-read the key file, for example after `tellonce keys rotate`."""
        # One attribute assignment swaps the whole state, so concurrent wraps see either
        # the old file or the new one, never a mix; no lock is needed.
        self._loaded = read_key_file(self.path)

    def _fresh(self) -> KeyFile:
        # `tellonce keys rotate` and `keys retire` run in another process and replace the
        # file (a new inode, see _write_atomic) while this one keeps serving. A stat costs a
        # microsecond, so every wrap and unwrap checks: new keys go under the newest version
        # at once, keys re-wrapped under it can be read, and a retirement takes effect
        # without a restart. The re-read checks the permissions and shape again and raises
        # if they are wrong, so a changed file is never half-trusted.
        try:
            seen = file_signature(os.stat(self.path))
        except OSError:
            seen = None  # gone or unreadable: keep serving; check() reports it
        if seen is not None and seen != self._loaded[1]:
            self.reload()
        return self._state

    @property
    def current_version(self) -> int:
        """The KEK version new wraps use."""
        return self._fresh().current

    def wrap(self, dek: bytes, context: bytes) -> bytes:
        """Wrap a data key under the current KEK version, bound to `context`."""
        if len(dek) != KEY_BYTES:
            raise InvalidValue(f"A data key must be {KEY_BYTES} bytes long.")
        state = self._fresh()
        entry = state.entry(state.current)
        if entry is None or entry.retired:  # read_key_file refuses this; belt and braces
            raise KeyProviderError("The key file has no usable current key version.")
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(entry.key).encrypt(nonce, dek, context)
        return _HEADER.pack(WRAP_FORMAT, entry.version) + nonce + sealed

    def unwrap(self, blob: bytes, context: bytes) -> bytes:
        """Unwrap a data key wrapped under any live KEK version with the same context."""
        version = _parse_header(blob)
        entry = self._fresh().entry(version)
        if entry is None:
            raise KeyProviderError(
                f"This was locked with key version {version}, which this key file does not have."
            )
        if entry.retired:
            raise RetiredKeyError(
                f"This was locked with key version {version}, which has been retired."
            )
        start = _HEADER.size
        nonce = blob[start : start + NONCE_BYTES]
        try:
            dek = AESGCM(entry.key).decrypt(nonce, blob[start + NONCE_BYTES :], context)
        except InvalidTag:
            raise DecryptionError(_UNWRAP_FAILED) from None
        if len(dek) != KEY_BYTES:
            raise DecryptionError(_UNWRAP_FAILED)
        return dek

    def version_of(self, blob: bytes) -> int:
        """Return the KEK version a wrapped key was wrapped under."""
        return _parse_header(blob)

    def versions(self) -> list[KeyVersion]:
        """List every KEK version, oldest first."""
        return [
            KeyVersion(e.version, e.created_at, e.retired)
            for e in sorted(self._fresh().entries, key=lambda e: e.version)
        ]

    def derive_secret(self, name: str) -> bytes:
        """Return a stable 32-byte secret for `name`, derived from the root secret."""
        if not name:
            raise InvalidValue("A derived secret needs a name.")
        hkdf = HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_BYTES,
            salt=_DERIVE_SALT,
            info=name.encode("utf-8"),
        )
        return hkdf.derive(self._state.root_secret)

    def check(self) -> None:
        """Raise KeyProviderError with a plain message if the provider cannot be used."""
        # The key file must still be there and private: a deleted or loosened file means
        # the next restart will fail, which an operator wants to hear about now.
        try:
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            raise KeyProviderError(missing_message(self.path)) from None
        except OSError:
            raise KeyProviderError(f"The key file {self.path} cannot be read.") from None
        check_private(self.path, mode)
        probe = os.urandom(KEY_BYTES)
        try:
            ok = self.unwrap(self.wrap(probe, _HEALTH_CONTEXT), _HEALTH_CONTEXT) == probe
        except (DecryptionError, InvalidValue):
            ok = False
        if not ok:
            raise KeyProviderError("The current key version cannot wrap and unwrap a key.")
