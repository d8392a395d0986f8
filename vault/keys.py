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

The local key file is JSON, readable and writable only by its owner (mode 0600):

    {"format": 1, "root_secret": b64, "current": N,
     "versions": [{"version": 1, "key": b64, "created_at": iso, "retired": false}, ...]}

`root_secret` never encrypts anything itself; named secrets (HMAC keys and seeds) are
derived from it with HKDF-SHA256, so they survive KEK rotation. Rotation adds a version and
makes it current; the caller then re-wraps every DEK and may retire the old version, after
which blobs wrapped under it are refused. A running provider notices when the file has
been replaced (a stat per wrap or unwrap) and re-reads it, so services pick up a rotation or
a retirement without a restart. A KMS-backed provider (for example HashiCorp
Vault transit) only needs to satisfy `KeyProvider`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
import stat
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vault.errors import DecryptionError, InvalidValue, KeyProviderError, RetiredKeyError

if sys.platform != "win32":
    import fcntl

WRAP_FORMAT = 0x01
KEY_FILE_FORMAT = 1
KEY_BYTES = 32
NONCE_BYTES = 12
_HEADER = struct.Struct(">BI")
_TAG_BYTES = 16
# HKDF salt is fixed and public: it only separates Tell Once's derivations from any other
# use of the same root secret.
_DERIVE_SALT = b"tellonce/derive_secret/v1"
_HEALTH_CONTEXT = b"tellonce/health-check"
_UNWRAP_FAILED = "This data key could not be unlocked: it does not belong here or has been changed."

PathLike = str | os.PathLike[str]


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


@dataclass(frozen=True)
class _Entry:
    version: int
    key: bytes
    created_at: datetime
    retired: bool


@dataclass(frozen=True)
class _KeyFile:
    root_secret: bytes
    current: int
    entries: tuple[_Entry, ...]

    def entry(self, version: int) -> _Entry | None:
        for e in self.entries:
            if e.version == version:
                return e
        return None


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
        self._loaded = _read_key_file(self.path)

    @property
    def _state(self) -> _KeyFile:
        return self._loaded[0]

    def reload(self) -> None:
        """Re-read the key file, for example after `tellonce keys rotate`."""
        # One attribute assignment swaps the whole state, so concurrent wraps see either
        # the old file or the new one, never a mix; no lock is needed.
        self._loaded = _read_key_file(self.path)

    def _fresh(self) -> _KeyFile:
        # `tellonce keys rotate` and `keys retire` run in another process and replace the
        # file (a new inode, see _write_atomic) while this one keeps serving. A stat costs a
        # microsecond, so every wrap and unwrap checks: new keys go under the newest version
        # at once, keys re-wrapped under it can be read, and a retirement takes effect
        # without a restart. The re-read checks the permissions and shape again and raises
        # if they are wrong, so a changed file is never half-trusted.
        try:
            seen = _signature(os.stat(self.path))
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
        if entry is None or entry.retired:  # _read_key_file refuses this; belt and braces
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
            raise KeyProviderError(_missing_message(self.path)) from None
        except OSError:
            raise KeyProviderError(f"The key file {self.path} cannot be read.") from None
        _check_private(self.path, mode)
        probe = os.urandom(KEY_BYTES)
        try:
            ok = self.unwrap(self.wrap(probe, _HEALTH_CONTEXT), _HEALTH_CONTEXT) == probe
        except (DecryptionError, InvalidValue):
            ok = False
        if not ok:
            raise KeyProviderError("The current key version cannot wrap and unwrap a key.")


# --- reading the key file ------------------------------------------------------------


def _missing_message(path: Path) -> str:
    return f"No key file at {path}. Run `tellonce keys init` to make one."


def _check_private(path: Path, mode: int) -> None:
    # POSIX permissions only mean something on POSIX; elsewhere the folder's ACL rules.
    if os.name == "posix" and stat.S_IMODE(mode) & 0o077:
        raise KeyProviderError(
            f"The key file {path} can be read by other users. Run `chmod 600 {path}`."
        )


def _signature(info: os.stat_result) -> tuple[int, int, int, int]:
    # Changes replace the file, so the inode alone would do; mtime and size also catch an
    # operator editing it in place.
    return (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)


def _read_key_file(path: Path) -> tuple[_KeyFile, tuple[int, int, int, int]]:
    """The parsed key file and the signature of the very file read (see _signature)."""
    try:
        # fstat on the open descriptor checks the very file we read, not whatever the
        # name points at a moment later.
        with open(path, "rb") as fh:
            info = os.fstat(fh.fileno())
            _check_private(path, info.st_mode)
            raw = fh.read()
    except FileNotFoundError:
        raise KeyProviderError(_missing_message(path)) from None
    except IsADirectoryError:
        raise KeyProviderError(f"The key file {path} is a folder, not a file.") from None
    except PermissionError:
        raise KeyProviderError(f"The key file {path} cannot be read by this user.") from None
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KeyProviderError(f"The key file {path} is not valid JSON.") from None
    return _parse_key_file(path, doc), _signature(info)


def _b64_key(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == KEY_BYTES else None


def _parse_key_file(path: Path, doc: Any) -> _KeyFile:
    # Messages name the field, never its value: values here are secrets.
    def bad(problem: str) -> KeyProviderError:
        return KeyProviderError(f"The key file {path} is not in the expected shape: {problem}.")

    if not isinstance(doc, dict):
        raise bad("it must be a JSON object")
    if doc.get("format") != KEY_FILE_FORMAT:
        raise bad(f"'format' must be {KEY_FILE_FORMAT}")
    root_secret = _b64_key(doc.get("root_secret"))
    if root_secret is None:
        raise bad(f"'root_secret' must be {KEY_BYTES} bytes in base64")
    raw_versions = doc.get("versions")
    if not isinstance(raw_versions, list) or not raw_versions:
        raise bad("'versions' must be a non-empty list")
    entries: list[_Entry] = []
    for item in raw_versions:
        if not isinstance(item, dict):
            raise bad("each entry in 'versions' must be an object")
        version = item.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or not 0 < version < 2**32:
            raise bad("each 'version' must be a whole number from 1 to 4294967295")
        key = _b64_key(item.get("key"))
        if key is None:
            raise bad(f"the key of version {version} must be {KEY_BYTES} bytes in base64")
        try:
            created_at = datetime.fromisoformat(item["created_at"])
        except (KeyError, TypeError, ValueError):
            raise bad(f"'created_at' of version {version} must be an ISO date and time") from None
        if created_at.tzinfo is None:
            raise bad(f"'created_at' of version {version} must include a time zone")
        retired = item.get("retired", False)
        if not isinstance(retired, bool):
            raise bad(f"'retired' of version {version} must be true or false")
        entries.append(_Entry(version, key, created_at.astimezone(UTC), retired))
    if len({e.version for e in entries}) != len(entries):
        raise bad("each key version must appear once")
    current_version = doc.get("current")
    if not isinstance(current_version, int) or isinstance(current_version, bool):
        raise bad("'current' must name one of its key versions")
    state = _KeyFile(root_secret, current_version, tuple(entries))
    current = state.entry(current_version)
    if current is None:
        raise bad("'current' must name one of its key versions")
    if current.retired:
        raise bad("the current key version is retired")
    return state


# --- changing the key file -------------------------------------------------------------


def _serialise(state: _KeyFile) -> bytes:
    doc = {
        "format": KEY_FILE_FORMAT,
        "root_secret": base64.b64encode(state.root_secret).decode("ascii"),
        "current": state.current,
        "versions": [
            {
                "version": e.version,
                "key": base64.b64encode(e.key).decode("ascii"),
                "created_at": e.created_at.isoformat(),
                "retired": e.retired,
            }
            for e in sorted(state.entries, key=lambda e: e.version)
        ],
    }
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def _new_entry(version: int) -> _Entry:
    return _Entry(version, AESGCM.generate_key(bit_length=256), datetime.now(UTC), False)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; without it a crash can lose the new key version.
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes, *, create: bool) -> None:
    folder = path.parent
    tmp = folder / f".{path.name}.{secrets.token_hex(8)}.tmp"
    # Created 0600 from the first byte, so the key never sits in a readable file.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if create:
            # link() fails if the name exists, so two inits cannot both win.
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise KeyProviderError(
                    f"There is already a key file at {path}; it was not replaced."
                ) from None
        else:
            os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_dir(folder)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two rotations at once could each add a version and one would be lost with every DEK
    # wrapped under it, so changes to one key file take turns. os.replace swaps the key
    # file's inode, hence a separate lock file.
    if sys.platform == "win32":
        yield
        return
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def init_key_file(path: PathLike) -> None:
    """Create a new key file with a root secret and KEK version 1; never overwrite one."""
    target = Path(path)
    if target.exists():
        raise KeyProviderError(f"There is already a key file at {target}; it was not replaced.")
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    state = _KeyFile(os.urandom(KEY_BYTES), 1, (_new_entry(1),))
    _write_atomic(target, _serialise(state), create=True)


def add_key_version(path: PathLike) -> int:
    """Add a new KEK version, make it current and return its number."""
    target = Path(path)
    with _locked(target):
        state, _ = _read_key_file(target)
        version = max(e.version for e in state.entries) + 1
        if version >= 2**32:
            raise KeyProviderError(f"The key file {target} has run out of key version numbers.")
        updated = _KeyFile(state.root_secret, version, (*state.entries, _new_entry(version)))
        _write_atomic(target, _serialise(updated), create=False)
    return version


def retire_key_version(path: PathLike, version: int) -> None:
    """Retire a KEK version so anything still wrapped under it is refused."""
    target = Path(path)
    with _locked(target):
        state, _ = _read_key_file(target)
        entry = state.entry(version)
        if entry is None:
            raise KeyProviderError(f"The key file {target} has no key version {version}.")
        if version == state.current:
            raise KeyProviderError(
                f"Key version {version} is the current version and cannot be retired. "
                "Run `tellonce keys rotate` first."
            )
        if entry.retired:
            return
        entries = tuple(replace(e, retired=True) if e is entry else e for e in state.entries)
        _write_atomic(target, _serialise(replace(state, entries=entries)), create=False)
