"""A department cannot follow a person through the public ledger.

A department knows the ids of its own grants, so it can find their leaves in the public log.
Nothing in those leaves may lead it to the person's other leaves: their permissions for other
services, what those services were given, decisions and challenges there. The person is named
differently in every leaf; only their own ledger key joins the names up.
"""

from __future__ import annotations

import json
import re
from typing import Any

from consent.challenges import open_challenge
from tests.oauth.harness import DepartmentSide, whole_flow
from tests.web.citizen.conftest import Person
from vault import ledger
from vault.citizens import get_citizen, ledger_key
from vault.services import Vault

# Ids (UUIDs), hashes and names: anything long and random enough to join two leaves up.
ID_LIKE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32,}")


def _public_leaves(department: DepartmentSide, size: int) -> list[tuple[bytes, dict[str, Any]]]:
    """Every leaf, read the way anyone (here the department) can: from the public API."""
    found = department.client.get(f"/ledger/entries?start=0&end={size}")
    assert found.status_code == 200, found.get_json()
    return [(e["leaf"].encode(), json.loads(e["leaf"])) for e in found.get_json()["entries"]]


def _ids_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_ids_in(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_ids_in(v) for v in value)) if value else set()
    return set(ID_LIKE.findall(value)) if isinstance(value, str) else set()


def _mentions(leaf: dict[str, Any], grant_id: str) -> bool:
    return grant_id in _ids_in(leaf)


def _decide(side: DepartmentSide, token: str) -> str:
    served = side.fetch(token)
    assert served.status_code == 200, served.get_json()
    used = [{"key": p["key"], "version": p["version"]} for p in served.get_json()["data_points"]]
    body = {
        "case_reference": "HOU-2291",
        "title": "Emergency housing",
        "outcome": "Priority need accepted.",
        "reasons": "No safe place to stay tonight.",
        "automated": False,
        "accountable_officer": {"name": "Priya Shah", "role": "Head of Housing Options"},
        "data_points_used": used,
    }
    headers = {
        "Authorization": f"DPoP {token}",
        "DPoP": side.proof("POST", "/api/v1/decisions", access_token=token),
        "Acting-Officer": "A. Officer",
    }
    made = side.client.post("/api/v1/decisions", json=body, headers=headers)
    assert made.status_code == 201, made.get_json()
    return str(made.get_json()["id"])


def test_a_department_cannot_follow_a_person_through_the_public_ledger(
    db: Any,
    vault: Vault,
    sam: Any,
    person: Person,
    department: DepartmentSide,
    other_department: DepartmentSide,
) -> None:
    # Sam shares with two services. The other one fetches, decides, and Sam challenges it.
    mine = whole_flow(sam, department)
    theirs = whole_flow(sam, other_department)
    decision_id = _decide(other_department, theirs["access_token"])
    with db.tx() as session:
        open_challenge(
            session,
            vault,
            person.actor,
            decision_id=decision_id,
            reason="I moved in May.",
            data_point=("contact.address", 1),
        )
    assert department.fetch(mine["access_token"]).status_code == 200
    with db.tx() as session:
        size = ledger.head_size(session)
        key = ledger_key(vault, get_citizen(session, person.citizen_id))

    leaves = _public_leaves(department, size)
    own = [body for _raw, body in leaves if _mentions(body, mine["grant_id"])]
    assert {leaf["kind"] for leaf in own} == {"grant.given", "access.served"}
    # The test is only worth something if the ledger really holds Sam's other leaves.
    elsewhere = [
        body
        for raw, body in leaves
        if ledger.is_about(key, raw) and not _mentions(body, mine["grant_id"])
    ]
    kinds_elsewhere = {leaf["kind"] for leaf in elsewhere}
    assert {"grant.given", "access.served", "decision.recorded", "challenge.opened"} <= (
        kinds_elsewhere
    )

    # No two leaves name the person alike.
    names = [body["citizen"] for _raw, body in leaves if "citizen" in body]
    assert len(names) == len(set(names)) >= len(own) + len(elsewhere)
    # Nothing id-like in the department's own leaves appears in any of Sam's other leaves.
    shared = set().union(*(_ids_in(leaf) for leaf in own)) & set().union(
        *(_ids_in(leaf) for leaf in elsewhere)
    )
    assert shared == set(), f"these join the department's leaves to Sam's others: {shared}"
    # Sam's key (and only it) picks out every leaf about Sam, the department's own included.
    assert all(
        ledger.is_about(key, raw) for raw, body in leaves if _mentions(body, mine["grant_id"])
    )


def test_another_key_or_a_changed_leaf_is_not_recognised(
    db: Any, vault: Vault, sam: Any, person: Person, department: DepartmentSide
) -> None:
    given = whole_flow(sam, department)
    with db.tx() as session:
        size = ledger.head_size(session)
        key = ledger_key(vault, get_citizen(session, person.citizen_id))
    (raw, body) = next(
        (raw, body)
        for raw, body in _public_leaves(department, size)
        if body.get("ref", {}).get("id") == given["grant_id"]
    )
    assert ledger.is_about(key, raw)
    assert not ledger.is_about(ledger.CitizenLedgerKey(bytes(32)), raw)
    changed = json.dumps({**body, "purpose": "something_else"}, separators=(",", ":")).encode()
    assert not ledger.is_about(key, changed)
    assert not ledger.is_about(key, b"not json")
    assert not ledger.is_about(key, b"[]")
