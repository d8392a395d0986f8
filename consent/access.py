"""Serving a department what its grant covers, and recording every access, served or refused.

The served values, the fetch count, the access event and its ledger leaf all change in one
transaction: if the leaf cannot be written, nothing is counted and nothing is returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Update, bindparam, insert, select, tuple_, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col

from consent.errors import GrantNotUsable
from consent.events import ACCESS_REFUSED, ACCESS_SERVED
from consent.grants import STORY_PREFIX, active_grant_clause, grant_status, may_serve
from consent.models import AccessEvent, Grant
from vault import ledger
from vault.citizens import get_citizen, hold_citizen, ledger_key
from vault.errors import InvalidValue, NotFound
from vault.models import Citizen, StorySection
from vault.records import DataPointView, StoryView, current_data_points, open_story_sections
from vault.services import Vault

MAX_OFFICER = 200
_ACCESS_TABLE = AccessEvent.__table__  # type: ignore[attr-defined]  # SQLModel does not type it
_COLUMNS = tuple(_ACCESS_TABLE.columns)
MAX_ATTEMPTS = 3  # the second already holds the grant row, so it cannot lose a race again


@dataclass(frozen=True)
class Served:
    """What one fetch returned, and the access event that recorded it."""

    grant: Grant
    data_points: list[DataPointView]
    story: list[StoryView]
    event: AccessEvent
    leaf: ledger.LeafReceipt
    withheld: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Refused:
    """A fetch that was refused, with its reason and the access event that recorded it."""

    reason: str
    event: AccessEvent
    leaf: ledger.LeafReceipt


def check_officer(acting_officer: str, case_reference: str) -> None:
    """Refuse a blank or overlong officer name or case reference."""
    if not acting_officer.strip() or len(acting_officer) > MAX_OFFICER:
        raise InvalidValue("Name the officer asking, in 1 to 200 characters.")
    if not case_reference.strip() or len(case_reference) > 64:
        raise InvalidValue("Give the case reference, in 1 to 64 characters.")


def record_access(
    session: Session,
    vault: Vault,
    grant: Grant,
    *,
    acting_officer: str,
    case_reference: str,
    points: list[DataPointView],
    story: list[StoryView],
    reason: str | None,
    now: datetime,
    citizen: Citizen | None = None,
) -> tuple[AccessEvent, ledger.LeafReceipt]:
    """Write the access event and its ledger leaf in the caller's transaction."""
    event = AccessEvent(
        citizen_id=grant.citizen_id,
        grant_id=grant.id,
        department_id=grant.department_id,
        acting_officer=acting_officer.strip(),
        case_reference=case_reference.strip(),
        data_points=[{"key": p.key, "version": p.version} for p in points],
        story=[{"topic": s.topic, "version": s.version} for s in story],
        result="refused" if reason else "served",
        reason=reason,
        at=now,
    )
    # A Core insert of the row as built: the ORM's flush of one new object cost more than the
    # insert itself, and nothing later in the request changes the event.
    session.execute(insert(_ACCESS_TABLE), {c.name: getattr(event, c.name) for c in _COLUMNS})
    citizen = citizen or get_citizen(session, grant.citizen_id)
    key = None if citizen.status == "erased" else ledger_key(vault, citizen)
    (leaf,) = ledger.append(
        session,
        vault,
        [
            ledger.LedgerEvent(
                (ACCESS_REFUSED if reason else ACCESS_SERVED).name,
                event,
                now,
                citizen_key=key,
                details={
                    "access_id": event.id,
                    "grant_id": grant.id,
                    "department_id": grant.department_id,
                    "data_points": event.data_points,
                    "story": event.story,
                },
            )
        ],
    )
    return event, leaf


def _why_unusable(grant: Grant, now: datetime) -> str | None:
    """Why the grant can serve nothing now (stopped, ended, not started, used up), or None."""
    if grant_status(grant, now) != "active" or grant.fetch_count >= grant.max_fetches:
        return may_serve(grant, "", now).reason
    return None


# Built once: every fetch runs it (building it cost more than running it).
_COUNT_FETCH = (
    update(Grant)
    .where(
        col(Grant.id) == bindparam("grant_id"),
        col(Grant.fetch_count) == bindparam("count_read"),
        *active_grant_clause(bindparam("now")),
    )
    .values(fetch_count=col(Grant.fetch_count) + 1)
    .returning(col(Grant.fetch_count))
    .execution_options(synchronize_session=False)
)


def guarded_count(*still_true: ColumnElement[bool]) -> Update:
    """The fetch-counting UPDATE with extra conditions, for ``count_fetch``.

    Build it once per shape from conditions made of bound parameters, and give their values
    to ``count_fetch``: building a statement costs more than running it.
    """
    return _COUNT_FETCH.where(*still_true)


def count_fetch(
    session: Session,
    grant_id: str,
    count_read: int,
    now: datetime,
    statement: Update = _COUNT_FETCH,
    params: Mapping[str, Any] | None = None,
) -> int | None:
    """Count one fetch if the grant is still exactly as read; the new count, else None.

    As read means: active now (on PostgreSQL a revocation committed since the read is seen
    here, as this UPDATE waits for it), with the same count (so an "ask me each time" part
    goes on its first use only), and whatever else a ``statement`` from ``guarded_count``
    adds (its values in ``params``). RETURNING gives the count written, without reading the
    grant again.
    """
    values = {**(params or {}), "grant_id": grant_id, "count_read": count_read, "now": now}
    counted: int | None = session.execute(statement, values).scalar_one_or_none()
    return counted


# Built once: every fetch runs it.
_CURRENT_SECTIONS = select(StorySection).where(
    col(StorySection.citizen_id) == bindparam("citizen_id"),
    col(StorySection.status) == "current",
    col(StorySection.topic).in_(bindparam("topics", expanding=True)),
)


def choose_items(
    session: Session, grant: Grant, now: datetime
) -> tuple[list[str], list[StorySection], list[str]]:
    """The data point keys and current story sections the grant may serve now, and the topics
    withheld (each decided by ``may_serve``, the one place that rule lives)."""
    allowed_keys = [k for k in grant.data_points if may_serve(grant, k, now).allowed]
    sections = (
        session.execute(
            _CURRENT_SECTIONS, {"citizen_id": grant.citizen_id, "topics": list(grant.story_topics)}
        )
        .scalars()
        .all()
        if grant.story_topics
        else []
    )
    allowed_sections = [
        section
        for section in sections
        if may_serve(
            grant, STORY_PREFIX + section.topic, now, sensitivity=section.sensitivity
        ).allowed
    ]
    allowed_topics = {section.topic for section in allowed_sections}
    withheld = [STORY_PREFIX + t for t in grant.story_topics if t not in allowed_topics]
    return allowed_keys, allowed_sections, withheld


def fetch_for_department(
    session: Session,
    vault: Vault,
    grant_id: str,
    department_id: str,
    *,
    acting_officer: str,
    case_reference: str,
) -> Served | Refused:
    """Serve exactly what the grant covers right now, and record the access either way.

    A grant that is not this department's is reported as not found (revealing nothing).
    The caller must commit a ``Refused`` too: the refusal is part of the record.
    """
    check_officer(acting_officer, case_reference)
    grant = session.get(Grant, grant_id)
    if grant is None or grant.department_id != department_id:
        raise NotFound("We could not find that permission.")
    now = vault.clock()

    def refuse(reason: str) -> Refused:
        event, leaf = record_access(
            session,
            vault,
            grant,
            acting_officer=acting_officer,
            case_reference=case_reference,
            points=[],
            story=[],
            reason=reason,
            now=now,
        )
        return Refused(reason, event, leaf)

    if case_reference.strip() != grant.case_reference:
        return refuse("The case reference does not match this permission.")
    # One load of the person serves the whole fetch (the session would forget an object
    # nobody holds, and load it again at each use); held, so an erasure cannot slip in.
    citizen = hold_citizen(session, grant.citizen_id)
    if citizen.status == "erased":
        return refuse("The person has deleted their account.")
    problem = _why_unusable(grant, now)
    if problem is not None:
        return refuse(problem)

    for _attempt in range(MAX_ATTEMPTS):
        allowed_keys, allowed_sections, withheld = choose_items(session, grant, now)
        counted = count_fetch(session, grant.id, grant.fetch_count, now)
        if counted is not None:
            break
        # Another request changed the grant meanwhile: read it again, this time holding its
        # row (PostgreSQL; SQLite writers already take turns), and decide afresh.
        session.refresh(grant, with_for_update=True)
        problem = _why_unusable(grant, now)
        if problem is not None:
            return refuse(problem)
    else:
        return refuse("Too many requests used this permission at once. Try again.")
    set_committed_value(grant, "fetch_count", counted)
    points = current_data_points(session, vault, grant.citizen_id, allowed_keys)
    story = open_story_sections(vault, citizen, allowed_sections)
    event, leaf = record_access(
        session,
        vault,
        grant,
        acting_officer=acting_officer,
        case_reference=case_reference,
        points=points,
        story=story,
        reason=None,
        now=now,
        citizen=citizen,
    )
    return Served(grant, points, story, event, leaf, withheld)


def served_versions(session: Session, grant_id: str) -> set[tuple[str, int]]:
    """Every (key, version) ever served under a grant: what a decision may cite."""
    rows = session.execute(
        select(col(AccessEvent.data_points)).where(
            col(AccessEvent.grant_id) == grant_id, col(AccessEvent.result) == "served"
        )
    ).scalars()
    return {(item["key"], int(item["version"])) for batch in rows for item in batch}


def access_events_for_citizen(
    session: Session,
    citizen_id: str,
    *,
    department_id: str | None = None,
    limit: int = 50,
    before: tuple[datetime, str] | None = None,
) -> list[AccessEvent]:
    """A citizen's access events, newest first, a page at a time (keyset paging)."""
    statement = select(AccessEvent).where(col(AccessEvent.citizen_id) == citizen_id)
    if department_id is not None:
        statement = statement.where(col(AccessEvent.department_id) == department_id)
    if before is not None:
        # A row comparison, so the (citizen_id, at, id) index seeks straight to the page.
        statement = statement.where(
            tuple_(col(AccessEvent.at), col(AccessEvent.id)) < tuple_(*before)
        )
    statement = statement.order_by(col(AccessEvent.at).desc(), col(AccessEvent.id).desc()).limit(
        limit
    )
    return list(session.execute(statement).scalars())


def require_usable(grant: Grant, now: datetime) -> None:
    """Raise GrantNotUsable with the reason if the grant cannot serve anything now."""
    decision = may_serve(grant, "", now)
    if not decision.allowed and grant_status(grant, now) != "active":
        raise GrantNotUsable(decision.reason)


def describe(value: Any) -> str:
    """A short safe description of a served item for logs: never the value itself."""
    return type(value).__name__
