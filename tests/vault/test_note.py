"""Tests for vault.note: C2SP signed notes and tlog checkpoints.

External vectors:
- golang.org/x/mod sumdb/note/note_test.go (PeterNeumann / EnochRoot keys and notes);
- two real sum.golang.org checkpoints, verified with the Go checksum database's
  published key (cmd/go/internal/modfetch/key.go); the first is the one in
  github.com/transparency-dev/trillian-tessera internal/parse/parse_test.go;
- the example checkpoint body in C2SP tlog-checkpoint.md.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault.errors import InvalidValue
from vault.merkle import leaf_hash, root_of
from vault.note import (
    MAX_TREE_SIZE,
    Checkpoint,
    checkpoint_body,
    key_hash,
    open_note,
    parse_checkpoint,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
    signer_key_string,
    verifier_key,
)

# --- golang.org/x/mod/sumdb/note/note_test.go ---------------------------------------

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXg"
    "KvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01"
    "oOTGwnWLox33WWd1RvMc+QQ=\n"
)

# --- sum.golang.org -----------------------------------------------------------------

GO_SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
GO_CHECKPOINTS = [
    (
        "go.sum database tree\n31700353\nqINS1GRFhWHwdkUeqLEoP4yEMkTBBzxBkGwGQlVlVcs=\n\n"
        "— sum.golang.org Az3grnmrIUEDFqHzAElIQCPNoRFRAAdFo47fooyWKMHb89k11GJh5zHIfNCOBmwn"
        "/C3YI8oW9/C8DJ87F61QqspBYwM=\n",
        31700353,
    ),
    (
        "go.sum database tree\n65209736\n5+uGFjx6xBZG8ip1+wi77v+grwbhhukIrxEUS8PXvRo=\n\n"
        "— sum.golang.org Az3grnbssgK7ubgFX36gVETtNv0U23qxyAhAMai2QUfeGa3nB/akvkMdlUErfcZz"
        "7l/R3cVtYspg3dxXABkGZZKdsQ8=\n",
        65209736,
    ),
]

C2SP_CHECKPOINT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)


def mangle(key: str) -> list[str]:
    """Every proper substring of key, and key with each character bumped by one."""
    out = [key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1)]
    out.remove(key)
    out += [key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))]
    return out


# --- keys ---------------------------------------------------------------------------


def test_go_keys_parse_and_re_encode() -> None:
    name, private_key = parse_signer_key(PETER_SKEY)
    assert name == "PeterNeumann"
    assert signer_key_string(name, private_key) == PETER_SKEY
    assert verifier_key(name, private_key.public_key()) == PETER_VKEY
    vname, khash, public_key = parse_verifier_key(PETER_VKEY)
    assert (vname, khash.hex()) == ("PeterNeumann", "c74f20a3")
    assert public_key.public_bytes_raw() == private_key.public_key().public_bytes_raw()
    assert key_hash(name, public_key.public_bytes_raw()) == bytes.fromhex("c74f20a3")


def test_go_verifier_key_manglings_are_rejected() -> None:
    for bad in mangle(PETER_VKEY):
        with pytest.raises(InvalidValue):
            parse_verifier_key(bad)
    # From TestNewVerifier: wrong key length and unknown algorithm, hashes adjusted.
    for bad in (
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ):
        with pytest.raises(InvalidValue):
            parse_verifier_key(bad)


def test_go_signer_key_manglings_are_rejected() -> None:
    for bad in mangle(PETER_SKEY):
        with pytest.raises(InvalidValue):
            parse_signer_key(bad)


def test_key_strings_round_trip_for_a_fresh_key() -> None:
    private_key = Ed25519PrivateKey.generate()
    skey = signer_key_string("vault.example/ledger", private_key)
    name, parsed = parse_signer_key(skey)
    assert name == "vault.example/ledger"
    assert parsed.private_bytes_raw() == private_key.private_bytes_raw()
    vkey = verifier_key(name, private_key.public_key())
    assert parse_verifier_key(vkey)[0] == name
    assert vkey.split("+")[1] == key_hash(name, private_key.public_key().public_bytes_raw()).hex()


@pytest.mark.parametrize(
    "name", ["", "a b", "a+b", "a\tb", "a\u00a0b", "a\u3000b", "a\u2028b", "a\x01b"]
)
def test_bad_key_names_are_rejected(name: str) -> None:
    private_key = Ed25519PrivateKey.generate()
    with pytest.raises(InvalidValue):
        verifier_key(name, private_key.public_key())
    with pytest.raises(InvalidValue):
        signer_key_string(name, private_key)
    with pytest.raises(InvalidValue):
        sign_note("hello\n", name, private_key)


# --- signing and opening: Go vectors ------------------------------------------------


def test_go_sign_vector_is_reproduced_exactly() -> None:
    name, private_key = parse_signer_key(PETER_SKEY)
    assert sign_note(TEXT, name, private_key) == TEXT + "\n" + PETER_SIG


def test_go_open_vectors() -> None:
    both = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    # One signature verified, the other from an unknown key ignored, either way round.
    assert open_note(both, PETER_VKEY) == TEXT
    assert open_note(both, ENOCH_VKEY) == TEXT
    assert open_note(TEXT + "\n" + ENOCH_SIG + PETER_SIG, PETER_VKEY) == TEXT
    # Repeated good signatures, and a corrupt one from a key we do not know.
    enoch_abcd = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    messy = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_abcd
    assert open_note(messy, PETER_VKEY) == TEXT


def test_go_open_rejects_unsigned_and_invalid() -> None:
    with pytest.raises(InvalidValue, match="not signed"):
        open_note(TEXT + "\n" + PETER_SIG, ENOCH_VKEY)
    with pytest.raises(InvalidValue, match="not valid"):
        open_note(TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:], PETER_VKEY)
    with pytest.raises(InvalidValue, match="more than 100"):
        open_note(TEXT + "\n" + PETER_SIG * 101, PETER_VKEY)
    assert open_note(TEXT + "\n" + PETER_SIG * 100, PETER_VKEY) == TEXT
    # Same signature under another name, or another key ID: somebody else's key.
    misnamed = PETER_SIG.replace("PeterNeumann", "CarmenSandiego")
    wrong_hash = PETER_SIG.replace("x08g", "xxxx")
    for sig in (misnamed, wrong_hash):
        with pytest.raises(InvalidValue, match="not signed"):
            open_note(TEXT + "\n" + sig, PETER_VKEY)


@pytest.mark.parametrize(
    "note",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        # Go's "\xff" (invalid UTF-8) case; a Python str carries it as a lone surrogate.
        "\udcff" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXg"
        "KvqfqdngotpRZb6KE6RyyBwJnAM=",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + "- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
        "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n",
        TEXT + "\n" + "— PeterNeumann \n",
        TEXT + "\n" + "— PeterNeumann AAAAAA==\n",
        TEXT + "\n" + "— PeterNeumann x08go/ZJ!!\n",
        TEXT + "\r\n" + PETER_SIG,
    ],
)
def test_go_malformed_notes_are_rejected(note: str) -> None:
    with pytest.raises(InvalidValue, match="malformed"):
        open_note(note, PETER_VKEY)


def test_open_rejects_a_bad_verifier_key() -> None:
    with pytest.raises(InvalidValue, match="verifier key"):
        open_note(TEXT + "\n" + PETER_SIG, PETER_VKEY[:-2])


# --- signing and opening: round trips and tampering ---------------------------------


@pytest.fixture(scope="module")
def ledger_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def test_round_trip_with_blank_lines_and_unicode(ledger_key: Ed25519PrivateKey) -> None:
    vkey = verifier_key("tellonce.example/ledger", ledger_key.public_key())
    for text in ("x\n", "\n", "a\n\nb\n", "a\n\n\n", "Grüße — ナ\n"):
        note = sign_note(text, "tellonce.example/ledger", ledger_key)
        assert open_note(note, vkey) == text


def test_tampering_is_detected(ledger_key: Ed25519PrivateKey) -> None:
    name = "tellonce.example/ledger"
    vkey = verifier_key(name, ledger_key.public_key())
    note = sign_note("size 10\n", name, ledger_key)
    with pytest.raises(InvalidValue, match="not valid"):
        open_note(note.replace("size 10", "size 11"), vkey)
    sig64 = note.rsplit(" ", 1)[1].strip()
    raw = bytearray(base64.b64decode(sig64))
    raw[-1] ^= 1
    flipped = note.replace(sig64, base64.b64encode(bytes(raw)).decode())
    with pytest.raises(InvalidValue, match="not valid"):
        open_note(flipped, vkey)
    # A signature of the wrong length under our key ID is invalid, not ignored.
    short = note.replace(sig64, base64.b64encode(bytes(raw[:20])).decode())
    with pytest.raises(InvalidValue, match="not valid"):
        open_note(short, vkey)
    # Same name, different key: its key ID differs, so the note is simply not ours.
    other = Ed25519PrivateKey.generate()
    with pytest.raises(InvalidValue, match="not signed"):
        open_note(sign_note("size 10\n", name, other), vkey)


def test_accepts_many_other_signatures(ledger_key: Ed25519PrivateKey) -> None:
    name = "tellonce.example/ledger"
    text = "witnessed\n"
    note = sign_note(text, name, ledger_key)
    others = "".join(
        sign_note(text, f"witness{i}.example", Ed25519PrivateKey.generate()).split("\n\n")[-1]
        for i in range(16)
    )
    assert open_note(note + others, verifier_key(name, ledger_key.public_key())) == text
    mixed = note.replace("\n\n", "\n\n" + others)
    assert open_note(mixed, verifier_key(name, ledger_key.public_key())) == text


@pytest.mark.parametrize("text", ["", "no newline", "bad\x00byte\n", "tab\there\n", "\ud800\n"])
def test_sign_rejects_bad_text(ledger_key: Ed25519PrivateKey, text: str) -> None:
    with pytest.raises(InvalidValue):
        sign_note(text, "tellonce.example/ledger", ledger_key)


# --- checkpoints --------------------------------------------------------------------


@pytest.mark.parametrize(("note", "size"), GO_CHECKPOINTS)
def test_real_sum_golang_org_checkpoints(note: str, size: int) -> None:
    checkpoint = parse_checkpoint(open_note(note, GO_SUMDB_VKEY))
    assert checkpoint.origin == "go.sum database tree"
    assert checkpoint.size == size
    assert len(checkpoint.root_hash) == 32
    assert checkpoint.extensions == ()
    with pytest.raises(InvalidValue):
        open_note(note.replace(str(size), str(size + 1)), GO_SUMDB_VKEY)


def test_c2sp_example_checkpoint_parses() -> None:
    checkpoint = parse_checkpoint(C2SP_CHECKPOINT)
    assert checkpoint == Checkpoint(
        "example.com/behind-the-sofa",
        20852163,
        base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="),
    )
    assert checkpoint.body() == C2SP_CHECKPOINT


def test_checkpoint_body_format_and_round_trip() -> None:
    root = root_of([leaf_hash(b"a"), leaf_hash(b"b")])
    body = checkpoint_body("tellonce.example/ledger", 2, root)
    assert body == f"tellonce.example/ledger\n2\n{base64.b64encode(root).decode()}\n"
    assert parse_checkpoint(body) == Checkpoint("tellonce.example/ledger", 2, root, ())
    with_ext = checkpoint_body("o", 0, root, ["ext one", "ext two"])
    assert with_ext.endswith("\next one\next two\n")
    parsed = parse_checkpoint(with_ext)
    assert parsed.extensions == ("ext one", "ext two")
    assert parsed.body() == with_ext
    assert parse_checkpoint(checkpoint_body("o", MAX_TREE_SIZE, root)).size == MAX_TREE_SIZE


def test_signed_checkpoint_end_to_end(ledger_key: Ed25519PrivateKey) -> None:
    origin = "tellonce.example/ledger"
    root = root_of([leaf_hash(bytes([i])) for i in range(7)])
    note = sign_note(checkpoint_body(origin, 7, root), origin, ledger_key)
    got = parse_checkpoint(open_note(note, verifier_key(origin, ledger_key.public_key())))
    assert (got.origin, got.size, got.root_hash) == (origin, 7, root)


ROOT64 = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="


@pytest.mark.parametrize(
    "text",
    [
        f"o\n1\n{ROOT64}",  # no final newline
        "o\n1\n",
        "o\n1\n\n",
        f"\n1\n{ROOT64}\n",  # empty origin
        f"o\n01\n{ROOT64}\n",
        f"o\n+1\n{ROOT64}\n",
        f"o\n-1\n{ROOT64}\n",
        f"o\n 1\n{ROOT64}\n",
        f"o\n1 \n{ROOT64}\n",
        f"o\n1_000\n{ROOT64}\n",
        f"o\n\u0661\n{ROOT64}\n",  # an Arabic-Indic digit one
        f"o\n\n{ROOT64}\n",
        f"o\n{MAX_TREE_SIZE + 1}\n{ROOT64}\n",
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n",  # non-canonical padding bits
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n",  # missing padding
        "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=x\n",
        f"o\n1\n{base64.b64encode(bytes(31)).decode()}\n",
        f"o\n1\n{base64.b64encode(bytes(33)).decode()}\n",
        f"o\n1\n{ROOT64}\n\n",  # empty extension line
        f"o\n1\n{ROOT64}\next\n\nmore\n",
        f"o\x00\n1\n{ROOT64}\n",
        f"o\r\n1\n{ROOT64}\n",
    ],
)
def test_parse_checkpoint_is_strict(text: str) -> None:
    with pytest.raises(InvalidValue):
        parse_checkpoint(text)


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        ("", 1, bytes(32), ()),
        ("a\nb", 1, bytes(32), ()),
        ("o", -1, bytes(32), ()),
        ("o", True, bytes(32), ()),
        ("o", MAX_TREE_SIZE + 1, bytes(32), ()),
        ("o", 1, bytes(31), ()),
        ("o", 1, "0" * 32, ()),
        ("o", 1, bytes(32), ("",)),
        ("o", 1, bytes(32), ("two\nlines",)),
        ("o", 1, bytes(32), "ext"),
    ],
)
def test_checkpoint_body_rejects_bad_fields(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidValue):
        checkpoint_body(origin, size, root, extensions)
