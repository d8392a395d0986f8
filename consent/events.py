"""The ledger event kinds the consent layer writes, and the columns each vouches for."""

from consent.models import AccessEvent, Delegation, Grant
from vault.rows import register_event_kind

GRANT_GIVEN = register_event_kind(
    "grant.given",
    Grant,
    (
        "id",
        "citizen_id",
        "department_id",
        "purpose_code",
        "purpose_text",
        "data_points",
        "story_topics",
        "explicit_topics",
        "case_reference",
        "starts_at",
        "ends_at",
        "data_life_days",
        "max_fetches",
        "given_by",
        "delegation_id",
        "created_at",
    ),
    creates_rows=True,
)
GRANT_REVOKED = register_event_kind("grant.revoked", Grant, ("id", "revoked_at", "revoked_by"))
GRANT_EXPIRED = register_event_kind("grant.expired", Grant, ("id", "expired_at"))
DELEGATION_GIVEN = register_event_kind(
    "delegation.given",
    Delegation,
    ("id", "citizen_id", "worker_account_id", "scopes", "created_by", "created_at", "ends_at"),
    creates_rows=True,
)
DELEGATION_REVOKED = register_event_kind(
    "delegation.revoked", Delegation, ("id", "revoked_at", "revoked_by")
)
_ACCESS_COLUMNS = (
    "id",
    "citizen_id",
    "grant_id",
    "department_id",
    "acting_officer",
    "case_reference",
    "data_points",
    "story",
    "result",
    "reason",
    "at",
)
ACCESS_SERVED = register_event_kind(
    "access.served", AccessEvent, _ACCESS_COLUMNS, creates_rows=True
)
ACCESS_REFUSED = register_event_kind(
    "access.refused", AccessEvent, _ACCESS_COLUMNS, creates_rows=True
)
