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

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col

from consent.access import Served, check_officer, choose_items, count_fetch, record_access
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


def _rows_unchanged(table: Any, wanted: dict[str, list[str]]) -> ColumnElement[bool]:
    """True when every row id in ``wanted`` still has the status it is listed under."""
    ids = [row_id for row_ids in wanted.values() for row_id in row_ids]
    still = (
        select(func.count())
        .select_from(table)
        .where(
            or_(
                *(
                    and_(col(table.id).in_(row_ids), col(table.status) == status)
                    for status, row_ids in sorted(wanted.items())
                )
            )
        )
        .scalar_subquery()
    )
    return still == len(ids)


def _unchanged(plan: FetchPlan) -> list[ColumnElement[bool]]:
    # Rows are never edited in place: a new version, a change of status (contested) or of
    # sensitivity shows as a status change on the row the plan read.
    checks: list[ColumnElement[bool]] = []
    points: dict[str, list[str]] = {}
    for point in plan.data_points:
        points.setdefault(point.status, []).append(point.row_id)
    if points:
        checks.append(_rows_unchanged(DataPoint, points))
    if plan.story:
        checks.append(_rows_unchanged(StorySection, {"current": [s.row_id for s in plan.story]}))
    return checks


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
    counted = count_fetch(session, grant.id, plan.fetch_count, now, *_unchanged(plan))
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
