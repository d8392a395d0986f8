"""C2SP signed notes (c2sp.org/signed-note) and tlog checkpoints (c2sp.org/tlog-checkpoint).

Only Ed25519 keys (signature type 0x01) are supported, in the key string formats of
golang.org/x/mod/sumdb/note, so keys and notes interoperate with Go tooling:

    verifier key:  <name>+<8 hex key ID>+base64(0x01 || 32-byte public key)
    signer key:    PRIVATE+KEY+<name>+<8 hex key ID>+base64(0x01 || 32-byte seed)
    signature:     — <name> base64(4-byte key ID || 64-byte Ed25519 signature)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from vault.errors import InvalidValue

ALG_ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # em dash, space
# The spec asks verifiers to cap signatures (and accept at least 16); Go caps at 100.
MAX_SIGNATURES = 100
# Go's tlog parses sizes as int64; staying inside it keeps checkpoints portable.
MAX_TREE_SIZE = 2**63 - 1

_HASH_RE = re.compile(r"[0-9a-fA-F]{8}")
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_ED25519_SIG_SIZE = 64


def _has_control(text: str) -> bool:
    """Tell whether text holds a character the note format forbids (controls but newline)."""
    return any(c < " " and c != "\n" for c in text)


def _is_valid_utf8(text: str) -> bool:
    """Tell whether text can be encoded as UTF-8 (lone surrogates cannot)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_valid_name(name: str) -> bool:
    """Key names are non-empty, with no Unicode spaces, plus signs or control characters."""
    return (
        bool(name)
        and "+" not in name
        and not any(c.isspace() for c in name)
        and not _has_control(name)
        and _is_valid_utf8(name)
    )


def _b64decode(value: str) -> bytes | None:
    """Decode standard padded base64 strictly, or answer None."""
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


def _b64(data: bytes) -> str:
    """Encode as standard padded base64 text."""
    return base64.b64encode(data).decode("ascii")


def key_hash(name: str, public_key_bytes: bytes) -> bytes:
    """Return the 4-byte key ID: SHA-256(name || "\\n" || 0x01 || public key)[:4]."""
    data = name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_key_bytes
    return hashlib.sha256(data).digest()[:4]


def _check_name(name: str) -> None:
    """Raise InvalidValue unless name can be used as a key name."""
    if not isinstance(name, str) or not _is_valid_name(name):
        raise InvalidValue(
            "A key name must be non-empty and contain no spaces, plus signs or control characters."
        )


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """Encode a public key as a verifier key string: name+keyhash+base64(0x01||key)."""
    _check_name(name)
    raw = public_key.public_bytes_raw()
    return f"{name}+{key_hash(name, raw).hex()}+{_b64(bytes([ALG_ED25519]) + raw)}"


def signer_key_string(name: str, private_key: Ed25519PrivateKey) -> str:
    """Encode a private key as PRIVATE+KEY+name+keyhash+base64(0x01||seed), Go's format."""
    _check_name(name)
    seed = private_key.private_bytes_raw()
    khash = key_hash(name, private_key.public_key().public_bytes_raw())
    return f"PRIVATE+KEY+{name}+{khash.hex()}+{_b64(bytes([ALG_ED25519]) + seed)}"


def _parse_key_fields(name: str, hash16: str, key64: str, what: str) -> tuple[bytes, bytes]:
    """Check the shared name/hash/key fields; return (key ID, 32 raw key bytes)."""
    key = _b64decode(key64)
    if (
        not _is_valid_name(name)
        # A strict pattern: int(x, 16) would also take "0x", "_" and spaces.
        or not _HASH_RE.fullmatch(hash16)
        or key is None
        or len(key) != 33
    ):
        raise InvalidValue(f"The {what} is malformed.")
    if key[0] != ALG_ED25519:
        raise InvalidValue(f"The {what} uses an unknown signature algorithm.")
    return bytes.fromhex(hash16), key[1:]


def parse_verifier_key(vkey: str) -> tuple[str, bytes, Ed25519PublicKey]:
    """Decode a verifier key string into (name, 4-byte key ID, public key)."""
    parts = vkey.split("+", 2) if isinstance(vkey, str) else []
    if len(parts) != 3:
        raise InvalidValue("The verifier key is malformed.")
    name, hash16, key64 = parts
    khash, raw = _parse_key_fields(name, hash16, key64, "verifier key")
    if khash != key_hash(name, raw):
        raise InvalidValue("The verifier key's hash does not match its name and key.")
    try:
        public_key = Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise InvalidValue("The verifier key is malformed.") from exc
    return name, khash, public_key


def parse_signer_key(skey: str) -> tuple[str, Ed25519PrivateKey]:
    """Decode a PRIVATE+KEY+... signer key string into (name, private key)."""
    parts = skey.split("+", 4) if isinstance(skey, str) else []
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise InvalidValue("The signer key is malformed.")
    _, _, name, hash16, key64 = parts
    khash, seed = _parse_key_fields(name, hash16, key64, "signer key")
    private_key = Ed25519PrivateKey.from_private_bytes(seed)
    # The key ID names the public key, so it can only be checked after deriving it.
    if khash != key_hash(name, private_key.public_key().public_bytes_raw()):
        raise InvalidValue("The signer key's hash does not match its name and key.")
    return name, private_key


def _check_text(text: str) -> None:
    """Raise InvalidValue unless text may be the text of a signed note."""
    if not isinstance(text, str) or not text.endswith("\n"):
        raise InvalidValue("The note text must end with a newline.")
    if _has_control(text) or not _is_valid_utf8(text):
        raise InvalidValue(
            "The note text must be valid UTF-8 with no control characters but newlines."
        )


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """Sign text with an Ed25519 key and return the signed note."""
    _check_text(text)
    _check_name(name)
    khash = key_hash(name, private_key.public_key().public_bytes_raw())
    signature = private_key.sign(text.encode("utf-8"))
    return f"{text}\n{SIGNATURE_PREFIX}{name} {_b64(khash + signature)}\n"


def open_note(note: str, verifier: str) -> str:
    """Check the note's signature by the verifier key and return the signed text."""
    name, khash, public_key = parse_verifier_key(verifier)
    if not isinstance(note, str) or _has_control(note) or not _is_valid_utf8(note):
        raise InvalidValue(
            "The signed note is malformed: it must be UTF-8 text with no control characters."
        )
    # The text ends at the last blank line: the text itself may hold blank lines,
    # signature lines never do.
    split = note.rfind("\n\n")
    if split < 0:
        raise InvalidValue("The signed note is malformed: it has no signature block.")
    text, block = note[: split + 1], note[split + 2 :]
    if not block or not block.endswith("\n"):
        raise InvalidValue("The signed note is malformed: its signatures must end in a newline.")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise InvalidValue(f"The signed note has more than {MAX_SIGNATURES} signatures.")
    message = text.encode("utf-8")
    verified = False
    for line in lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise InvalidValue("The signed note is malformed: a signature line is not valid.")
        sig_name, _, sig64 = line[len(SIGNATURE_PREFIX) :].partition(" ")
        raw = _b64decode(sig64)
        if raw is None or not sig64 or not _is_valid_name(sig_name) or len(raw) < 5:
            raise InvalidValue("The signed note is malformed: a signature line is not valid.")
        # Only the (name, key ID) pair identifies a key; a match on just one of them
        # is somebody else's key and, per the spec, is ignored.
        if sig_name != name or raw[:4] != khash:
            continue
        signature = raw[4:]
        try:
            if len(signature) != _ED25519_SIG_SIZE:
                raise InvalidSignature
            public_key.verify(signature, message)
        except InvalidSignature as exc:
            raise InvalidValue(f"The note's signature by {name} is not valid.") from exc
        verified = True
    if not verified:
        raise InvalidValue(f"The note is not signed by the key {name}+{khash.hex()}.")
    return text


@dataclass(frozen=True)
class Checkpoint:
    """A transparency log checkpoint: the log's origin, tree size and root hash."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        """Return this checkpoint's note text."""
        return checkpoint_body(self.origin, self.size, self.root_hash, self.extensions)


def _check_line(value: str, what: str) -> None:
    """Raise InvalidValue unless value can be one non-empty line of a checkpoint."""
    if (
        not isinstance(value, str)
        or not value
        or "\n" in value
        or _has_control(value)
        or not _is_valid_utf8(value)
    ):
        raise InvalidValue(f"The checkpoint {what} must be one non-empty line of text.")


def checkpoint_body(
    origin: str, size: int, root_hash: bytes, extensions: Sequence[str] = ()
) -> str:
    """Return the checkpoint note text: origin, size, base64 root, then extension lines."""
    _check_line(origin, "origin")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_TREE_SIZE:
        raise InvalidValue(f"The checkpoint size must be a whole number from 0 to {MAX_TREE_SIZE}.")
    if not isinstance(root_hash, bytes) or len(root_hash) != 32:
        raise InvalidValue("The checkpoint root hash must be 32 bytes.")
    if isinstance(extensions, str):
        # A lone string would otherwise be taken one character per line.
        raise InvalidValue("The checkpoint extensions must be a list of lines.")
    for line in extensions:
        _check_line(line, "extension line")
    lines = [origin, str(size), _b64(root_hash), *extensions]
    return "\n".join(lines) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse checkpoint note text strictly into a Checkpoint."""
    if not isinstance(text, str) or not text.endswith("\n"):
        raise InvalidValue("The checkpoint must end with a newline.")
    if _has_control(text) or not _is_valid_utf8(text):
        raise InvalidValue("The checkpoint must be UTF-8 text with no control characters.")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise InvalidValue("The checkpoint must have an origin, a size and a root hash line.")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise InvalidValue("The checkpoint origin must not be empty.")
    if not _SIZE_RE.fullmatch(size_text):
        raise InvalidValue("The checkpoint size must be a decimal number with no leading zeros.")
    size = int(size_text)
    if size > MAX_TREE_SIZE:
        raise InvalidValue(f"The checkpoint size is larger than {MAX_TREE_SIZE}.")
    root_hash = _b64decode(root_text)
    # Only the canonical encoding is accepted, so one checkpoint has one spelling.
    if root_hash is None or len(root_hash) != 32 or _b64(root_hash) != root_text:
        raise InvalidValue("The checkpoint root hash must be the base64 of 32 bytes.")
    if any(not line for line in extensions):
        raise InvalidValue("The checkpoint extension lines must not be empty.")
    return Checkpoint(origin, size, root_hash, tuple(extensions))
