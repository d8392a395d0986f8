"""Show stored values plainly: dates in words, money in pounds, addresses on lines."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from flask_babel import format_date, format_datetime
from flask_babel import gettext as _

from vault import catalogue
from web.citizen_base import bp, department_name

PENCE = "amount_pence_monthly"


def day(value: date | datetime | str) -> str:
    """A date as people write it: 14 March 1988."""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    return format_date(value, "d MMMM yyyy")


def moment(value: datetime) -> str:
    """A date and time, like 14 March 2026, 9:05 AM (UTC)."""
    return format_datetime(value, "d MMMM yyyy, h:mm a")


def pounds(pence: int) -> str:
    """Money in pounds from pence: £1,250.00."""
    return f"£{pence // 100:,}.{pence % 100:02d}"


def _address(value: Mapping[str, Any]) -> list[str]:
    if value.get("no_fixed_address"):
        return [_("No fixed address"), _("Area: %(area)s", area=value["area"])]
    return [*value["lines"], value["town"], value["postcode"]]


def value_lines(key: str, value: Any) -> list[str]:
    """A stored value as one or more lines of plain text."""
    if key == "identity.date_of_birth":
        return [day(value)]
    if key == "identity.ni_number":
        return [f"{value[:2]} {value[2:4]} {value[4:6]} {value[6:8]} {value[8:]}"]
    if key == "contact.address":
        return _address(value)
    if key == "housing.status":
        return [_(catalogue.HOUSING_STATUSES.get(value, value))]
    if key == "money.income_monthly":
        return [_("%(amount)s a month", amount=pounds(value))]
    if key == "money.benefits":
        return [
            _(
                "%(name)s: %(amount)s a month",
                name=b["name"],
                amount=pounds(b["amount_pence_monthly"]),
            )
            for b in value
        ] or [_("None")]
    if key == "family.children":
        return [
            _("%(name)s, born %(day)s", name=c["name"], day=day(c["date_of_birth"])) for c in value
        ] or [_("None")]
    return str(value).splitlines() or [""]


def where_from(source: str) -> str:
    """Where a value came from, in plain words."""
    kind, _sep, who = source.partition(":")
    if kind == "department":
        return department_name(who)
    if kind == "worker":
        return _("Your helper")
    return _("You")


@bp.app_template_filter("day")
def _day_filter(value: date | datetime | str) -> str:
    return day(value)


@bp.app_template_filter("moment")
def _moment_filter(value: datetime) -> str:
    return moment(value)


@bp.app_template_filter("where_from")
def _where_filter(source: str) -> str:
    return where_from(source)


@bp.app_template_global()
def shown_value(key: str, value: Any) -> list[str]:
    """Templates show values through the same formatter as everything else."""
    return value_lines(key, value)


def item_label(key: str) -> str:
    """The plain label of a data point key or a ``story:<topic>`` item."""
    if key.startswith("story:"):
        topic = key.removeprefix("story:")
        label = catalogue.STORY_TOPICS.get(topic, (topic, ""))[0]
        return _("Your story: %(topic)s", topic=_(label))
    found = catalogue.CATALOGUE.get(key)
    return _(found.label) if found else key


@bp.app_template_global()
def label_of(key: str) -> str:
    """The plain label of a catalogue key, for templates."""
    return item_label(key)
