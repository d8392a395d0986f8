"""scripts/check_my_record.py: a person checks the public record against their own download."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from scripts.check_my_record import check_record, main
from tests.oauth.harness import DepartmentSide, whole_flow
from vault.services import Vault


def _getter(client: Any) -> Any:
    def get(path: str) -> str:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.get_data(as_text=True))
        return str(answer.get_data(as_text=True))

    return get


@pytest.fixture
def shared(sam: Any, department: DepartmentSide) -> dict[str, Any]:
    """Sam shares with housing, housing looks twice; returns Sam's download."""
    tokens = whole_flow(sam, department)
    for _ in range(2):
        assert department.fetch(tokens["access_token"]).status_code == 200
    download = sam.get("/download/tell-once.json")
    assert download.status_code == 200
    return dict(json.loads(download.get_data(as_text=True)))


def test_the_record_and_the_download_agree(
    app: Any, shared: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    found = check_record(shared, _getter(app.test_client()))
    assert found.ok, found.problems
    assert found.mine["access.served"] == 2
    assert found.mine["grant.given"] == 1
    assert found.mine["citizen.created"] == 1
    assert len(shared["your_ledger_key"]) == 64


def test_a_use_hidden_from_the_person_is_found(app: Any, db: Any, shared: dict[str, Any]) -> None:
    # The operator deletes one use from the database (so the person's pages no longer show it)
    # but cannot take it out of the signed public record.
    hidden = shared["who_has_seen_it"][0]["id"]
    with db.engine.begin() as connection:
        connection.execute(text("DELETE FROM access_event WHERE id = :id"), {"id": hidden})
    fresh_download = {**shared, "who_has_seen_it": shared["who_has_seen_it"][1:]}
    found = check_record(fresh_download, _getter(app.test_client()))
    assert found.problems == [f"Use {hidden} is in the public record but not in your download."]


def test_a_use_missing_from_the_record_is_found(app: Any, shared: dict[str, Any]) -> None:
    made_up = {"id": "00000000-0000-4000-8000-000000000000"}
    claimed = {**shared, "who_has_seen_it": [*shared["who_has_seen_it"], made_up]}
    found = check_record(claimed, _getter(app.test_client()))
    assert found.problems == [
        f"Use {made_up['id']} is in your download but not in the public record."
    ]


def test_a_changed_entry_or_a_wrong_key_is_found(
    app: Any, db: Any, vault: Vault, shared: dict[str, Any]
) -> None:
    get = _getter(app.test_client())
    other_key = "other+abcd1234+" + "A" * 44
    found = check_record(shared, get, public_key=other_key)
    assert not found.ok and found.problems[0].startswith("The checkpoint is not signed by that key")
    with db.engine.begin() as connection:
        connection.execute(
            text("UPDATE ledger_entry SET leaf = :leaf WHERE idx = 0"), {"leaf": b'{"v":2}'}
        )
    found = check_record(shared, get)
    assert found.problems == ["The entries are not the ones the signed checkpoint vouches for."]


def test_someone_elses_key_finds_nothing_of_theirs(app: Any, shared: dict[str, Any]) -> None:
    stranger = {**shared, "your_ledger_key": "11" * 32}
    found = check_record(stranger, _getter(app.test_client()))
    assert sum(found.mine.values()) == 0
    assert len(found.problems) == 3  # two uses and one permission it cannot find


def test_the_command_prints_plain_words(
    app: Any,
    shared: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import scripts.check_my_record as script

    monkeypatch.setattr(script, "_http_get", lambda _url: _getter(app.test_client()))
    path = tmp_path / "tell-once.json"
    path.write_text(json.dumps(shared), encoding="utf-8")
    assert main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "are about you." in out and "access.served: 2" in out and "Everything matches." in out
