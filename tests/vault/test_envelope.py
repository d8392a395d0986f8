"""Tests for sealing values under a citizen's data key."""

from __future__ import annotations

import pytest

from vault.envelope import (
    NONCE_BYTES,
    associated_data,
    canonical_json,
    new_data_key,
    open_json,
    open_sealed,
    open_text,
    seal,
    seal_json,
    seal_text,
)
from vault.errors import DecryptionError, InvalidValue

AAD = associated_data("citizen-1", "address", "rec-1", 1)


def test_round_trip_bytes() -> None:
    dek = new_data_key()
    assert len(dek) == 32
    assert open_sealed(dek, seal(dek, b"hello", AAD), AAD) == b"hello"


def test_round_trip_empty_plaintext() -> None:
    dek = new_data_key()
    assert open_sealed(dek, seal(dek, b"", AAD), AAD) == b""


def test_data_keys_differ() -> None:
    assert new_data_key() != new_data_key()


@pytest.mark.parametrize(
    "moved",
    [
        associated_data("citizen-1", "address", "rec-2", 1),  # another row
        associated_data("citizen-2", "address", "rec-1", 1),  # another citizen
        associated_data("citizen-1", "phone", "rec-1", 1),  # another record kind
        associated_data("citizen-1", "address", "rec-1", 2),  # another version
    ],
    ids=["record-id", "citizen", "record-kind", "version"],
)
def test_moved_ciphertext_fails(moved: bytes) -> None:
    dek = new_data_key()
    blob = seal(dek, b"12 High Street", AAD)
    with pytest.raises(DecryptionError) as info:
        open_sealed(dek, blob, moved)
    assert "12 High Street" not in str(info.value)


def test_wrong_key_fails() -> None:
    blob = seal(new_data_key(), b"secret", AAD)
    with pytest.raises(DecryptionError):
        open_sealed(new_data_key(), blob, AAD)


def test_every_flipped_byte_fails() -> None:
    dek = new_data_key()
    blob = seal(dek, b"a value", AAD)
    for i in range(len(blob)):
        tampered = bytearray(blob)
        tampered[i] ^= 0x01
        with pytest.raises(DecryptionError):
            open_sealed(dek, bytes(tampered), AAD)


@pytest.mark.parametrize("length", [0, 1, 5, 13, 28, 29, 35])
def test_truncated_blob_fails_cleanly(length: int) -> None:
    dek = new_data_key()
    blob = seal(dek, b"a value", AAD)
    assert len(blob) > length
    with pytest.raises(DecryptionError) as info:
        open_sealed(dek, blob[:length], AAD)
    assert info.value.message == (
        "This record could not be unlocked: it does not belong here or has been changed."
    )


def test_no_repeated_nonce_in_100k_seals() -> None:
    dek = new_data_key()
    count = 100_000
    nonces = {seal(dek, b"x", AAD)[1 : 1 + NONCE_BYTES] for _ in range(count)}
    assert len(nonces) == count


def test_canary_never_in_sealed_bytes() -> None:
    dek = new_data_key()
    canary = "CANARY-7f3a9c-Ørjan-Ñúñez"
    for blob in (
        seal_text(dek, canary, AAD),
        seal_json(dek, {"name": canary}, AAD),
        seal(dek, canary.encode("utf-8") * 50, AAD),
    ):
        assert canary.encode("utf-8") not in blob
        assert canary.encode("utf-8")[:8] not in blob


def test_associated_data_is_unambiguous() -> None:
    assert associated_data("a", "bc", "d", 1) != associated_data("ab", "c", "d", 1)
    assert associated_data("a", "b", "cd", 1) != associated_data("a", "bc", "d", 1)
    assert associated_data("", "ab", "c", 1) != associated_data("a", "b", "c", 1)
    assert associated_data("a", "b", "c", 1) == associated_data("a", "b", "c", 1)
    assert associated_data("a", "b", "c", 1) != associated_data("a", "b", "c", 256)


@pytest.mark.parametrize("version", [-1, 2**64, True])
def test_associated_data_rejects_bad_version(version: int) -> None:
    with pytest.raises(InvalidValue):
        associated_data("a", "b", "c", version)


def test_text_round_trip_unicode() -> None:
    dek = new_data_key()
    text = "Zoë O'Brien, 東京"
    assert open_text(dek, seal_text(dek, text, AAD), AAD) == text


def test_open_text_refuses_non_utf8() -> None:
    dek = new_data_key()
    with pytest.raises(DecryptionError):
        open_text(dek, seal(dek, b"\xff\xfe", AAD), AAD)


def test_json_round_trip() -> None:
    dek = new_data_key()
    value = {"b": [1, 2.5, None, True], "a": "Zoë", "c": {"z": 1, "y": 2}}
    assert open_json(dek, seal_json(dek, value, AAD), AAD) == value


def test_canonical_json() -> None:
    assert canonical_json({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_seal_json_refuses_unserialisable_without_quoting_it() -> None:
    dek = new_data_key()
    with pytest.raises(InvalidValue) as info:
        seal_json(dek, {"when": {"secret-set"}}, AAD)
    assert "secret-set" not in str(info.value)
    with pytest.raises(InvalidValue):
        seal_json(dek, float("nan"), AAD)


def test_open_json_refuses_non_json() -> None:
    dek = new_data_key()
    with pytest.raises(DecryptionError):
        open_json(dek, seal_text(dek, "not json", AAD), AAD)


@pytest.mark.parametrize("dek", [b"", b"short", b"x" * 16, b"x" * 33])
def test_bad_data_key_length_refused(dek: bytes) -> None:
    with pytest.raises(InvalidValue):
        seal(dek, b"x", AAD)
    with pytest.raises(InvalidValue):
        open_sealed(dek, b"\x01" + b"\x00" * 40, AAD)
