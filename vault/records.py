"""A citizen's data points and story sections: record, correct, and read them.

Nothing is updated in place: a correction is a new version, the old one is kept and marked
superseded. Every version is sealed under the citizen's data key, bound to its row and
version, and announced in the ledger in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlmodel import Session, col

from vault import catalogue, envelope, ledger
from vault.citizens import data_key, get_citizen, ledger_key
from vault.errors import InvalidValue, NotFound
from vault.events import DATA_POINT_RECORDED, STORY_SECTION_RECORDED
from vault.models import Citizen, DataPoint, StorySection
from vault.services import Vault

DATA_POINT_KIND = "data_point"
STORY_KIND = "story_section"


@dataclass(frozen=True)
class DataPointView:
    """One version of one fact, opened for someone allowed to see it."""

    key: str
    label: str
    value: Any
    version: int
    source: str
    recorded_by: str
    recorded_at: datetime
    status: str
    special_category: bool
    row_id: str  # the data_point row this version is stored in


@dataclass(frozen=True)
class StoryView:
    """One version of one topic of the story, opened."""

    topic: str
    label: str
    text: str
    version: int
    sensitivity: str
    recorded_by: str
    recorded_at: datetime
    status: str
    row_id: str  # the story_section row this version is stored in


def _check_source(source: str) -> str:
    kind, _, who = source.partition(":")
    if source == "self" or (kind in ("department", "worker") and who):
        return source
    raise InvalidValue("Source must be 'self', 'department:<id>' or 'worker:<id>'.")


def _next_version(session: Session, column: Any, citizen_id: str, name_col: Any, name: str) -> int:
    latest = session.execute(
        select(func.max(column)).where(name_col == name, column.table.c.citizen_id == citizen_id)
    ).scalar()
    return int(latest or 0) + 1


def record_data_point(
    session: Session,
    vault: Vault,
    citizen_id: str,
    key: str,
    value: Any,
    *,
    recorded_by: str,
    source: str = "self",
) -> DataPointView:
    """Store a new version of a fact (the first one, or a correction) and log it."""
    clean = catalogue.validate_value(key, value)
    source = _check_source(source)
    citizen = get_citizen(session, citizen_id)
    dek = data_key(vault, citizen)
    version = _next_version(session, col(DataPoint.version), citizen_id, col(DataPoint.key), key)
    point = DataPoint(
        citizen_id=citizen_id,
        key=key,
        version=version,
        ciphertext=b"",
        source=source,
        recorded_by=recorded_by,
        recorded_at=vault.clock(),
    )
    point.ciphertext = envelope.seal_json(
        dek, clean, envelope.associated_data(citizen_id, DATA_POINT_KIND, point.id, version)
    )
    session.execute(
        update(DataPoint)
        .where(col(DataPoint.citizen_id) == citizen_id, col(DataPoint.key) == key)
        .values(status="superseded")
    )
    session.add(point)
    ledger.append(
        session,
        vault,
        [
            ledger.LedgerEvent(
                DATA_POINT_RECORDED.name,
                point,
                point.recorded_at,
                citizen_key=ledger_key(vault, citizen),
                details={"key": key, "version": version, "source": source},
            )
        ],
    )
    return _open_point(dek, point)


def _open_point(dek: bytes, point: DataPoint) -> DataPointView:
    entry = catalogue.entry(point.key)
    value = envelope.open_json(
        dek,
        point.ciphertext,
        envelope.associated_data(point.citizen_id, DATA_POINT_KIND, point.id, point.version),
    )
    return DataPointView(
        key=point.key,
        label=entry.label,
        value=value,
        version=point.version,
        source=point.source,
        recorded_by=point.recorded_by,
        recorded_at=point.recorded_at,
        status=point.status,
        special_category=entry.special_category,
        row_id=point.id,
    )


# Built once: every API fetch runs one of them.
_CURRENT_POINTS = select(DataPoint).where(
    col(DataPoint.citizen_id) == bindparam("citizen_id"), col(DataPoint.status) != "superseded"
)
_CURRENT_POINTS_OF = _CURRENT_POINTS.where(
    col(DataPoint.key).in_(bindparam("keys", expanding=True))
)


def current_data_points(
    session: Session, vault: Vault, citizen_id: str, keys: Sequence[str] | None = None
) -> list[DataPointView]:
    """The latest version of each fact (optionally only some keys), in catalogue order."""
    citizen = get_citizen(session, citizen_id)
    dek = data_key(vault, citizen)
    if keys is None:
        points = session.execute(_CURRENT_POINTS, {"citizen_id": citizen_id}).scalars().all()
    else:
        points = (
            session.execute(_CURRENT_POINTS_OF, {"citizen_id": citizen_id, "keys": list(keys)})
            .scalars()
            .all()
        )
    order = {key: i for i, key in enumerate(catalogue.CATALOGUE)}
    return [_open_point(dek, p) for p in sorted(points, key=lambda p: order.get(p.key, 999))]


def data_point_history(
    session: Session, vault: Vault, citizen_id: str, key: str
) -> list[DataPointView]:
    """Every version of one fact, newest first."""
    catalogue.entry(key)
    citizen = get_citizen(session, citizen_id)
    dek = data_key(vault, citizen)
    points = session.execute(
        select(DataPoint)
        .where(col(DataPoint.citizen_id) == citizen_id, col(DataPoint.key) == key)
        .order_by(col(DataPoint.version).desc())
    ).scalars()
    return [_open_point(dek, p) for p in points]


def get_data_point(
    session: Session, vault: Vault, citizen_id: str, key: str, version: int
) -> DataPointView:
    """One exact version of one fact."""
    citizen = get_citizen(session, citizen_id)
    point = session.execute(
        select(DataPoint).where(
            col(DataPoint.citizen_id) == citizen_id,
            col(DataPoint.key) == key,
            col(DataPoint.version) == version,
        )
    ).scalar_one_or_none()
    if point is None:
        raise NotFound("We could not find that piece of information.")
    return _open_point(data_key(vault, citizen), point)


def record_story_section(
    session: Session,
    vault: Vault,
    citizen_id: str,
    topic: str,
    text: str,
    *,
    recorded_by: str,
    sensitivity: str = "normal",
) -> StoryView:
    """Store a new version of one topic of the story and log it."""
    topic = catalogue.validate_topic(topic)
    clean = catalogue.validate_story_text(text)
    sensitivity = catalogue.validate_sensitivity(sensitivity)
    citizen = get_citizen(session, citizen_id)
    dek = data_key(vault, citizen)
    version = _next_version(
        session, col(StorySection.version), citizen_id, col(StorySection.topic), topic
    )
    section = StorySection(
        citizen_id=citizen_id,
        topic=topic,
        version=version,
        ciphertext=b"",
        sensitivity=sensitivity,
        recorded_by=recorded_by,
        recorded_at=vault.clock(),
    )
    section.ciphertext = envelope.seal_text(
        dek, clean, envelope.associated_data(citizen_id, STORY_KIND, section.id, version)
    )
    session.execute(
        update(StorySection)
        .where(col(StorySection.citizen_id) == citizen_id, col(StorySection.topic) == topic)
        .values(status="superseded")
    )
    session.add(section)
    ledger.append(
        session,
        vault,
        [
            ledger.LedgerEvent(
                STORY_SECTION_RECORDED.name,
                section,
                section.recorded_at,
                citizen_key=ledger_key(vault, citizen),
                details={"topic": topic, "version": version, "sensitivity": sensitivity},
            )
        ],
    )
    return _open_section(dek, section)


def _open_section(dek: bytes, section: StorySection) -> StoryView:
    text = envelope.open_text(
        dek,
        section.ciphertext,
        envelope.associated_data(section.citizen_id, STORY_KIND, section.id, section.version),
    )
    return StoryView(
        topic=section.topic,
        label=catalogue.STORY_TOPICS[section.topic][0],
        text=text,
        version=section.version,
        sensitivity=section.sensitivity,
        recorded_by=section.recorded_by,
        recorded_at=section.recorded_at,
        status=section.status,
        row_id=section.id,
    )


def current_story(
    session: Session, vault: Vault, citizen_id: str, topics: Sequence[str] | None = None
) -> list[StoryView]:
    """The latest version of each story topic (optionally only some), in topic order."""
    citizen = get_citizen(session, citizen_id)
    dek = data_key(vault, citizen)
    statement = select(StorySection).where(
        col(StorySection.citizen_id) == citizen_id, col(StorySection.status) == "current"
    )
    if topics is not None:
        statement = statement.where(col(StorySection.topic).in_(list(topics)))
    return _open_in_order(dek, session.execute(statement).scalars().all())


def open_story_sections(
    vault: Vault, citizen: Citizen, sections: Sequence[StorySection]
) -> list[StoryView]:
    """Open story sections already loaded for this citizen, in topic order."""
    if any(section.citizen_id != citizen.id for section in sections):
        raise InvalidValue("Those story sections are not all this person's.")
    return _open_in_order(data_key(vault, citizen), sections) if sections else []


def _open_in_order(dek: bytes, sections: Sequence[StorySection]) -> list[StoryView]:
    order = {topic: i for i, topic in enumerate(catalogue.STORY_TOPICS)}
    return [_open_section(dek, s) for s in sorted(sections, key=lambda s: order[s.topic])]


def story_history(session: Session, vault: Vault, citizen_id: str, topic: str) -> list[StoryView]:
    """Every version of one story topic, newest first."""
    topic = catalogue.validate_topic(topic)
    citizen = get_citizen(session, citizen_id)
    dek = data_key(vault, citizen)
    sections = session.execute(
        select(StorySection)
        .where(col(StorySection.citizen_id) == citizen_id, col(StorySection.topic) == topic)
        .order_by(col(StorySection.version).desc())
    ).scalars()
    return [_open_section(dek, s) for s in sections]


def citizen_exists(session: Session, citizen_id: str) -> bool:
    """Say whether a citizen with this id exists (erased or not)."""
    return session.get(Citizen, citizen_id) is not None
