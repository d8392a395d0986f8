"""``GET /api/v1/data``: what a department's token may fetch now, recorded either way.

The answer is built here as plain values; the web layer only turns it into JSON. A refusal
is returned, not raised, because it must be committed: the person sees refused looks too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from connectors.resource import ApiCaller
from connectors.subjects import pairwise_subject
from consent.access import Served, fetch_for_department
from consent.planned_fetch import FetchPlan, plan_fetch, serve_planned
from vault.services import Vault


@dataclass(frozen=True)
class ApiAnswer:
    """An HTTP status and a JSON body, decided by the domain."""

    status: int
    body: dict[str, Any]


def _receipt(served: Any) -> dict[str, Any]:
    return {
        "access_id": served.event.id,
        "ledger_index": served.leaf.index,
        "leaf_hash": served.leaf.leaf_hash_b64,
    }


def plan_data(
    session: Session,
    vault: Vault,
    caller: ApiCaller,
    *,
    acting_officer: str,
    case_reference: str,
) -> FetchPlan | None:
    """Read, without the writer lock, what ``fetch_data`` would most likely serve."""
    if caller.grant_id is None:
        return None
    return plan_fetch(
        session,
        vault,
        caller.grant_id,
        caller.department_id,
        acting_officer=acting_officer,
        case_reference=case_reference,
    )


def fetch_data(
    session: Session,
    vault: Vault,
    caller: ApiCaller,
    *,
    acting_officer: str,
    case_reference: str,
    plan: FetchPlan | None = None,
) -> ApiAnswer:
    """Serve what the caller's grant covers (or refuse, with the reason), and record it.

    With a ``plan`` read earlier, the plan is served if nothing it relied on has changed;
    otherwise (or with no plan) the fetch is decided afresh in this transaction.
    """
    if caller.grant_id is None:
        return ApiAnswer(
            403,
            {
                "error": "insufficient_scope",
                "message": "This token is not for a person's information. Use a token from "
                "the person's permission.",
            },
        )
    planned = (
        serve_planned(
            session, vault, plan, acting_officer=acting_officer, case_reference=case_reference
        )
        if plan is not None and plan.grant.id == caller.grant_id
        else None
    )
    result = planned or fetch_for_department(
        session,
        vault,
        caller.grant_id,
        caller.department_id,
        acting_officer=acting_officer,
        case_reference=case_reference,
    )
    if not isinstance(result, Served):
        return ApiAnswer(
            403,
            {"error": "grant_not_usable", "message": result.reason, "receipt": _receipt(result)},
        )
    grant = result.grant
    return ApiAnswer(
        200,
        {
            "grant_id": grant.id,
            "subject": pairwise_subject(vault, grant.department_id, grant.citizen_id),
            "case_reference": grant.case_reference,
            "data_points": [
                {
                    "key": p.key,
                    "label": p.label,
                    "value": p.value,
                    "version": p.version,
                    "source": p.source,
                    "recorded_at": p.recorded_at,
                    "contested": p.status == "contested",
                }
                for p in result.data_points
            ],
            "story": [
                {"topic": s.topic, "text": s.text, "version": s.version} for s in result.story
            ],
            "withheld": list(result.withheld),
            "fetches_left": max(0, grant.max_fetches - grant.fetch_count),
            "ends_at": grant.ends_at,
            "receipt": _receipt(result),
        },
    )
