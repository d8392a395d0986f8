"""A department's fetch in two steps, so the writer lock is held only for the writes.

``plan_fetch`` reads and opens what a fetch would serve, outside any write transaction.
``serve_planned`` then, inside the write transaction, counts the fetch with one guarded
UPDATE that matches only if everything the plan relied on is unchanged: the grant is still
active with the same fetch count (so an "ask me each time" part is still served on its first
use only), the person is not erased, and every served data point and story section still has
the version and status the plan read. If anything changed, nothing is written and the caller
falls back to ``consent.access.fetch_for_department``, which decides afresh under the lock and
records a refusal with its reason. Either way a department gets nothing the grant does not
allow at the moment the access is recorded.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Update, and_, bindparam, func, or_, select
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col

from consent.access import (
    Served,
    check_officer,
    choose_items,
    count_fetch,
    guarded_count,
    record_access,
)
from consent.grants import grant_status
from consent.models import Grant
from vault.citizens import get_citizen, hold_citizen
from vault.models import Citizen, DataPoint, StorySection
from vault.records import DataPointView, StoryView, current_data_points, open_story_sections
from vault.services import Vault


@dataclass(frozen=True)
class FetchPlan:
    """What a fetch would serve, as read without the writer lock (objects detached)."""

    grant: Grant
    citizen: Citizen
    data_points: list[DataPointView]
    story: list[StoryView]
    withheld: list[str]
    fetch_count: int  # as read: serving needs the grant's count to be exactly this still


def plan_fetch(
    session: Session,
    vault: Vault,
    grant_id: str,
    department_id: str,
    *,
    acting_officer: str,
    case_reference: str,
) -> FetchPlan | None:
    """Read what a fetch would serve now; None when it would not simply be served."""
    check_officer(acting_officer, case_reference)
    grant = session.get(Grant, grant_id)
    if grant is None or grant.department_id != department_id:
        return None
    now = vault.clock()
    if case_reference.strip() != grant.case_reference:
        return None
    citizen = get_citizen(session, grant.citizen_id)
    if citizen.status == "erased" or grant_status(grant, now) != "active":
        return None
    if grant.fetch_count >= grant.max_fetches:
        return None
    keys, sections, withheld = choose_items(session, grant, now)
    points = current_data_points(session, vault, grant.citizen_id, keys)
    story = open_story_sections(vault, citizen, sections)
    return FetchPlan(grant, citizen, points, story, withheld, grant.fetch_count)


def _still_listed(table: Any, statuses: tuple[str, ...]) -> ColumnElement[bool]:
    """True when the rows given for each status (parameters) all still have that status.

    The ids and their count come as parameters named after the table (``data_point_0_ids``
    …, ``data_point_n``).
    """
    name = table.__tablename__
    still = (
        select(func.count())
        .select_from(table)
        .where(
            or_(
                *(
                    and_(
                        col(table.id).in_(bindparam(f"{name}_{i}_ids", expanding=True)),
                        col(table.status) == status,
                    )
                    for i, status in enumerate(statuses)
                )
            )
        )
        .scalar_subquery()
    )
    return still == bindparam(f"{name}_n")


@functools.cache
def _guarded(point_statuses: tuple[str, ...], story: bool) -> Update:
    """The guarded count for plans of one shape, built once."""
    checks = []
    if point_statuses:
        checks.append(_still_listed(DataPoint, point_statuses))
    if story:
        checks.append(_still_listed(StorySection, ("current",)))
    return guarded_count(*checks)


def _listed(table: Any, wanted: dict[str, list[str]]) -> dict[str, Any]:
    """The values for ``_still_listed(table, …)``: each status's row ids, and their count."""
    name = table.__tablename__
    params: dict[str, Any] = {f"{name}_{i}_ids": wanted[s] for i, s in enumerate(sorted(wanted))}
    params[f"{name}_n"] = sum(len(ids) for ids in wanted.values())
    return params


def _unchanged(plan: FetchPlan) -> tuple[Update, dict[str, Any]]:
    """The guarded count for this plan, and its values: the rows it serves must be as read."""
    # Rows are never edited in place: a new version, a change of status (contested) or of
    # sensitivity shows as a status change on the row the plan read.
    points: dict[str, list[str]] = {}
    for point in plan.data_points:
        points.setdefault(point.status, []).append(point.row_id)
    params = _listed(DataPoint, points)
    if plan.story:
        params |= _listed(StorySection, {"current": [s.row_id for s in plan.story]})
    return _guarded(tuple(sorted(points)), bool(plan.story)), params


def serve_planned(
    session: Session,
    vault: Vault,
    plan: FetchPlan,
    *,
    acting_officer: str,
    case_reference: str,
) -> Served | None:
    """Count and record the planned fetch if nothing it relied on changed; else None."""
    now = vault.clock()
    grant = plan.grant
    if hold_citizen(session, plan.citizen.id).status == "erased":
        return None
    statement, params = _unchanged(plan)
    counted = count_fetch(session, grant.id, plan.fetch_count, now, statement, params)
    if counted is None:
        return None
    set_committed_value(grant, "fetch_count", counted)
    event, leaf = record_access(
        session,
        vault,
        grant,
        acting_officer=acting_officer,
        case_reference=case_reference,
        points=plan.data_points,
        story=plan.story,
        reason=None,
        now=now,
        citizen=plan.citizen,
    )
    return Served(grant, plan.data_points, plan.story, event, leaf, plan.withheld)
