"""The local key file: its format, reading it safely, and changing it atomically.

The key file is JSON, readable and writable only by its owner (mode 0600):

    {"format": 1, "root_secret": b64, "current": N,
     "versions": [{"version": 1, "key": b64, "created_at": iso, "retired": false}, ...]}

Rotation adds a version and makes it current; retiring a version marks it so that blobs
wrapped under it are refused. Every change writes a new file and renames it over the old
one (a new inode), which is how running providers notice it (see vault.keys).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import secrets
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.errors import KeyProviderError

if sys.platform != "win32":
    import fcntl

KEY_FILE_FORMAT = 1
KEY_BYTES = 32

PathLike = str | os.PathLike[str]
Signature = tuple[int, int, int, int]


@dataclass(frozen=True)
class KeyEntry:
    """One KEK version as the file holds it, key included."""

    version: int
    key: bytes
    created_at: datetime
    retired: bool


@dataclass(frozen=True)
class KeyFile:
    """The parsed key file."""

    root_secret: bytes
    current: int
    entries: tuple[KeyEntry, ...]

    def entry(self, version: int) -> KeyEntry | None:
        """The entry of ``version``, or None."""
        for e in self.entries:
            if e.version == version:
                return e
        return None


# --- reading the key file ------------------------------------------------------------


def missing_message(path: Path) -> str:
    """What to tell the operator when there is no key file at ``path``."""
    return f"No key file at {path}. Run `tellonce keys init` to make one."


def check_private(path: Path, mode: int) -> None:
    """Raise KeyProviderError if a key file with this mode can be read by other users."""
    # POSIX permissions only mean something on POSIX; elsewhere the folder's ACL rules.
    if os.name == "posix" and stat.S_IMODE(mode) & 0o077:
        raise KeyProviderError(
            f"The key file {path} can be read by other users. Run `chmod 600 {path}`."
        )


def file_signature(info: os.stat_result) -> Signature:
    """What tells one version of the key file from the next (see LocalKeyFileProvider)."""
    # Changes replace the file, so the inode alone would do; mtime and size also catch an
    # operator editing it in place.
    return (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)


def read_key_file(path: Path) -> tuple[KeyFile, Signature]:
    """The parsed key file and the signature of the very file read (see file_signature)."""
    try:
        # fstat on the open descriptor checks the very file we read, not whatever the
        # name points at a moment later.
        with open(path, "rb") as fh:
            info = os.fstat(fh.fileno())
            check_private(path, info.st_mode)
            raw = fh.read()
    except FileNotFoundError:
        raise KeyProviderError(missing_message(path)) from None
    except IsADirectoryError:
        raise KeyProviderError(f"The key file {path} is a folder, not a file.") from None
    except PermissionError:
        raise KeyProviderError(f"The key file {path} cannot be read by this user.") from None
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise KeyProviderError(f"The key file {path} is not valid JSON.") from None
    return _parse_key_file(path, doc), file_signature(info)


def _b64_key(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        key = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == KEY_BYTES else None


def _parse_key_file(path: Path, doc: Any) -> KeyFile:
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
    entries: list[KeyEntry] = []
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
        entries.append(KeyEntry(version, key, created_at.astimezone(UTC), retired))
    if len({e.version for e in entries}) != len(entries):
        raise bad("each key version must appear once")
    current_version = doc.get("current")
    if not isinstance(current_version, int) or isinstance(current_version, bool):
        raise bad("'current' must name one of its key versions")
    state = KeyFile(root_secret, current_version, tuple(entries))
    current = state.entry(current_version)
    if current is None:
        raise bad("'current' must name one of its key versions")
    if current.retired:
        raise bad("the current key version is retired")
    return state


# --- changing the key file -------------------------------------------------------------


def _serialise(state: KeyFile) -> bytes:
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


def _new_entry(version: int) -> KeyEntry:
    return KeyEntry(version, AESGCM.generate_key(bit_length=256), datetime.now(UTC), False)


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
    state = KeyFile(os.urandom(KEY_BYTES), 1, (_new_entry(1),))
    _write_atomic(target, _serialise(state), create=True)


def add_key_version(path: PathLike) -> int:
    """Add a new KEK version, make it current and return its number."""
    target = Path(path)
    with _locked(target):
        state, _ = read_key_file(target)
        version = max(e.version for e in state.entries) + 1
        if version >= 2**32:
            raise KeyProviderError(f"The key file {target} has run out of key version numbers.")
        updated = KeyFile(state.root_secret, version, (*state.entries, _new_entry(version)))
        _write_atomic(target, _serialise(updated), create=False)
    return version


def retire_key_version(path: PathLike, version: int) -> None:
    """Retire a KEK version so anything still wrapped under it is refused."""
    target = Path(path)
    with _locked(target):
        state, _ = read_key_file(target)
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
