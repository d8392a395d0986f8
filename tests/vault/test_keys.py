"""Tests for the key file and the local key provider."""

from __future__ import annotations

import base64
import json
import os
import stat
import threading
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest

from vault.envelope import new_data_key
from vault.errors import DecryptionError, InvalidValue, KeyProviderError, RetiredKeyError
from vault.keys import (
    KeyProvider,
    LocalKeyFileProvider,
    add_key_version,
    init_key_file,
    retire_key_version,
)

CTX = b"citizen-1"


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "tellonce.keys.json"
    init_key_file(path)
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _rewrite(path: Path, doc: Any) -> None:
    path.write_text(json.dumps(doc))
    path.chmod(0o600)


def test_provider_satisfies_protocol(key_path: Path) -> None:
    provider: KeyProvider = LocalKeyFileProvider(key_path)
    assert provider.current_version == 1


def test_init_creates_private_file_and_folder(tmp_path: Path) -> None:
    path = tmp_path / "new" / "nested" / "keys.json"
    init_key_file(path)
    assert _mode(path) == 0o600
    doc = json.loads(path.read_text())
    assert doc["format"] == 1
    assert doc["current"] == 1
    assert [v["version"] for v in doc["versions"]] == [1]
    assert len(base64.b64decode(doc["root_secret"])) == 32
    assert [p.name for p in path.parent.iterdir()] == ["keys.json"]  # no temp files left


def test_init_refuses_to_overwrite(key_path: Path) -> None:
    before = key_path.read_bytes()
    with pytest.raises(KeyProviderError, match="already a key file"):
        init_key_file(key_path)
    assert key_path.read_bytes() == before


def test_group_readable_file_refused(key_path: Path) -> None:
    key_path.chmod(0o644)
    with pytest.raises(KeyProviderError) as info:
        LocalKeyFileProvider(key_path)
    assert info.value.message == (
        f"The key file {key_path} can be read by other users. Run `chmod 600 {key_path}`."
    )


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602])
def test_any_group_or_other_access_refused(key_path: Path, mode: int) -> None:
    key_path.chmod(mode)
    with pytest.raises(KeyProviderError, match="chmod 600"):
        LocalKeyFileProvider(key_path)


def test_missing_file_message(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    with pytest.raises(KeyProviderError) as info:
        LocalKeyFileProvider(path)
    assert info.value.message == f"No key file at {path}. Run `tellonce keys init` to make one."


def test_corrupt_json_message(key_path: Path) -> None:
    key_path.write_text("{not json")
    with pytest.raises(KeyProviderError) as info:
        LocalKeyFileProvider(key_path)
    assert info.value.message == f"The key file {key_path} is not valid JSON."


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: [], "JSON object"),
        (lambda d: {**d, "format": 2}, "'format'"),
        (lambda d: {**d, "root_secret": "!!"}, "'root_secret'"),
        (lambda d: {**d, "versions": []}, "'versions'"),
        (lambda d: {**d, "current": 9}, "'current'"),
        (lambda d: {**d, "current": "1"}, "'current'"),
        (lambda d: {**d, "versions": [{**d["versions"][0], "key": "c2hvcnQ="}]}, "key of"),
        (lambda d: {**d, "versions": [{**d["versions"][0], "version": 0}]}, "'version'"),
        (lambda d: {**d, "versions": [{**d["versions"][0], "created_at": "x"}]}, "created_at"),
        (lambda d: {**d, "versions": [{**d["versions"][0], "retired": "no"}]}, "'retired'"),
        (lambda d: {**d, "versions": d["versions"] * 2}, "once"),
    ],
)
def test_wrong_shape_message(key_path: Path, change: Any, fragment: str) -> None:
    doc = json.loads(key_path.read_text())
    secret = doc["versions"][0]["key"]
    _rewrite(key_path, change(doc))
    with pytest.raises(KeyProviderError) as info:
        LocalKeyFileProvider(key_path)
    assert "is not in the expected shape" in info.value.message
    assert fragment in info.value.message
    assert secret not in info.value.message


def test_wrap_unwrap_round_trip(key_path: Path) -> None:
    provider = LocalKeyFileProvider(key_path)
    dek = new_data_key()
    blob = provider.wrap(dek, CTX)
    assert dek not in blob
    assert blob[0] == 0x01
    assert int.from_bytes(blob[1:5], "big") == 1
    assert len(blob) == 1 + 4 + 12 + 32 + 16
    assert provider.unwrap(blob, CTX) == dek
    assert provider.version_of(blob) == 1


def test_wrap_refuses_wrong_size_key(key_path: Path) -> None:
    with pytest.raises(InvalidValue):
        LocalKeyFileProvider(key_path).wrap(b"short", CTX)


def test_wrong_context_refused(key_path: Path) -> None:
    provider = LocalKeyFileProvider(key_path)
    blob = provider.wrap(new_data_key(), CTX)
    with pytest.raises(DecryptionError):
        provider.unwrap(blob, b"citizen-2")


def test_tampered_and_truncated_wrapped_key_refused(key_path: Path) -> None:
    provider = LocalKeyFileProvider(key_path)
    blob = provider.wrap(new_data_key(), CTX)
    for i in [0, *range(5, len(blob))]:  # every byte except the version field
        tampered = bytearray(blob)
        tampered[i] ^= 0x80
        with pytest.raises(DecryptionError):
            provider.unwrap(bytes(tampered), CTX)
    for length in (0, 4, 16, 32):
        with pytest.raises(DecryptionError):
            provider.unwrap(blob[:length], CTX)


def test_unknown_version_is_provider_error(key_path: Path) -> None:
    provider = LocalKeyFileProvider(key_path)
    blob = bytearray(provider.wrap(new_data_key(), CTX))
    blob[1:5] = (7).to_bytes(4, "big")
    with pytest.raises(KeyProviderError, match="key version 7"):
        provider.unwrap(bytes(blob), CTX)


def test_another_key_file_cannot_unwrap(key_path: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    init_key_file(other)
    blob = LocalKeyFileProvider(key_path).wrap(new_data_key(), CTX)
    with pytest.raises(DecryptionError):
        LocalKeyFileProvider(other).unwrap(blob, CTX)


def test_rotation(key_path: Path) -> None:
    provider = LocalKeyFileProvider(key_path)
    dek1, dek2 = new_data_key(), new_data_key()
    blob1 = provider.wrap(dek1, CTX)
    assert add_key_version(key_path) == 2
    assert _mode(key_path) == 0o600
    assert provider.current_version == 2  # noticed without a reload
    blob2 = provider.wrap(dek2, CTX)
    assert provider.version_of(blob1) == 1
    assert provider.version_of(blob2) == 2
    assert provider.unwrap(blob1, CTX) == dek1
    assert provider.unwrap(blob2, CTX) == dek2
    # Re-wrapping moves a DEK to the new version.
    rewrapped = provider.wrap(provider.unwrap(blob1, CTX), CTX)
    assert provider.version_of(rewrapped) == 2
    versions = provider.versions()
    assert [(v.version, v.retired) for v in versions] == [(1, False), (2, False)]
    assert all(v.created_at.tzinfo == UTC for v in versions)
    assert versions[0].created_at <= versions[1].created_at


def test_retire_old_version(key_path: Path) -> None:
    provider = LocalKeyFileProvider(key_path)
    dek1, dek2 = new_data_key(), new_data_key()
    blob1 = provider.wrap(dek1, CTX)
    add_key_version(key_path)
    provider.reload()
    blob2 = provider.wrap(dek2, CTX)
    retire_key_version(key_path, 1)
    assert _mode(key_path) == 0o600
    provider.reload()
    with pytest.raises(RetiredKeyError) as info:
        provider.unwrap(blob1, CTX)
    assert info.value.message == "This was locked with key version 1, which has been retired."
    assert provider.unwrap(blob2, CTX) == dek2
    assert [(v.version, v.retired) for v in provider.versions()] == [(1, True), (2, False)]
    retire_key_version(key_path, 1)  # retiring twice is harmless


def test_retiring_current_version_refused(key_path: Path) -> None:
    before = key_path.read_bytes()
    with pytest.raises(KeyProviderError, match="current version and cannot be retired"):
        retire_key_version(key_path, 1)
    assert key_path.read_bytes() == before


def test_retiring_unknown_version_refused(key_path: Path) -> None:
    with pytest.raises(KeyProviderError, match="no key version 5"):
        retire_key_version(key_path, 5)


def test_changes_refuse_unsafe_file(key_path: Path) -> None:
    key_path.chmod(0o644)
    with pytest.raises(KeyProviderError, match="chmod 600"):
        add_key_version(key_path)


def test_concurrent_rotations_lose_no_version(key_path: Path) -> None:
    threads = [threading.Thread(target=add_key_version, args=(key_path,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    provider = LocalKeyFileProvider(key_path)
    assert [v.version for v in provider.versions()] == list(range(1, 10))
    assert provider.current_version == 9


def test_derive_secret_stable_and_distinct(key_path: Path) -> None:
    provider = LocalKeyFileProvider(key_path)
    email_key = provider.derive_secret("email-lookup")
    assert len(email_key) == 32
    assert provider.derive_secret("email-lookup") == email_key
    assert provider.derive_secret("ledger-signing") != email_key
    add_key_version(key_path)
    provider.reload()
    assert provider.derive_secret("email-lookup") == email_key
    assert LocalKeyFileProvider(key_path).derive_secret("email-lookup") == email_key


def test_derive_secret_differs_between_key_files(key_path: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    init_key_file(other)
    mine = LocalKeyFileProvider(key_path).derive_secret("x")
    assert LocalKeyFileProvider(other).derive_secret("x") != mine


def test_derive_secret_needs_a_name(key_path: Path) -> None:
    with pytest.raises(InvalidValue):
        LocalKeyFileProvider(key_path).derive_secret("")


def test_check_passes_then_reports_problems(key_path: Path) -> None:
    provider = LocalKeyFileProvider(key_path)
    provider.check()
    key_path.chmod(0o644)
    with pytest.raises(KeyProviderError, match="chmod 600"):
        provider.check()
    os.unlink(key_path)
    with pytest.raises(KeyProviderError, match="No key file"):
        provider.check()


# --- a running provider follows changes another process makes to the key file ----------


def test_running_provider_reads_keys_wrapped_under_a_version_added_elsewhere(
    key_path: Path,
) -> None:
    serving = LocalKeyFileProvider(key_path)  # a worker started before the rotation
    rotating = LocalKeyFileProvider(key_path)  # `tellonce keys rotate` in another process
    dek = new_data_key()
    add_key_version(key_path)
    rewrapped = rotating.wrap(dek, CTX)
    assert rotating.version_of(rewrapped) == 2
    assert serving.unwrap(rewrapped, CTX) == dek


def test_running_provider_wraps_under_the_newest_version(key_path: Path) -> None:
    serving = LocalKeyFileProvider(key_path)
    add_key_version(key_path)
    # A worker that kept wrapping under version 1 would lock new people out once it retires.
    assert serving.version_of(serving.wrap(new_data_key(), CTX)) == 2
    assert serving.current_version == 2


def test_running_provider_refuses_a_version_retired_elsewhere(key_path: Path) -> None:
    serving = LocalKeyFileProvider(key_path)
    old = serving.wrap(new_data_key(), CTX)
    add_key_version(key_path)
    retire_key_version(key_path, 1)
    with pytest.raises(RetiredKeyError):
        serving.unwrap(old, CTX)
    assert [(v.version, v.retired) for v in serving.versions()] == [(1, True), (2, False)]


def test_unchanged_file_is_not_read_again(key_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serving = LocalKeyFileProvider(key_path)
    blob = serving.wrap(new_data_key(), CTX)
    reads: list[Path] = []
    real_reload = serving.reload

    def counted_reload() -> None:
        reads.append(key_path)
        real_reload()

    monkeypatch.setattr(serving, "reload", counted_reload)
    for _ in range(3):
        serving.unwrap(blob, CTX)
    assert reads == []
    add_key_version(key_path)
    serving.unwrap(blob, CTX)
    serving.unwrap(blob, CTX)
    assert reads == [key_path]


def test_replaced_file_that_others_can_read_is_refused(key_path: Path) -> None:
    serving = LocalKeyFileProvider(key_path)
    blob = serving.wrap(new_data_key(), CTX)
    doc = json.loads(key_path.read_text())
    key_path.unlink()
    key_path.write_text(json.dumps(doc))
    key_path.chmod(0o644)
    with pytest.raises(KeyProviderError, match="can be read by other users"):
        serving.unwrap(blob, CTX)
    with pytest.raises(KeyProviderError, match="can be read by other users"):
        serving.wrap(new_data_key(), CTX)


def test_replaced_file_in_the_wrong_shape_is_refused(key_path: Path) -> None:
    serving = LocalKeyFileProvider(key_path)
    blob = serving.wrap(new_data_key(), CTX)
    key_path.unlink()
    _rewrite(key_path, {"format": 1})
    with pytest.raises(KeyProviderError, match="expected shape"):
        serving.unwrap(blob, CTX)


def test_reload_keeps_concurrent_unwraps_working(key_path: Path) -> None:
    serving = LocalKeyFileProvider(key_path)
    blobs = [(serving.wrap(dek, CTX), dek) for dek in (new_data_key() for _ in range(20))]
    failures: list[BaseException] = []
    done = threading.Event()

    def keep_unwrapping() -> None:
        while not done.is_set():
            for blob, dek in blobs:
                try:
                    assert serving.unwrap(blob, CTX) == dek
                except BaseException as error:
                    failures.append(error)
                    return

    readers = [threading.Thread(target=keep_unwrapping) for _ in range(3)]
    for reader in readers:
        reader.start()
    try:
        for _ in range(10):
            add_key_version(key_path)
            blobs.append((serving.wrap(dek := new_data_key(), CTX), dek))
    finally:
        done.set()
        for reader in readers:
            reader.join()
    assert failures == []
    assert serving.current_version == 11
