"""The ledger event kinds the consent layer writes, and the columns each vouches for."""

from consent.decision_models import Challenge, Decision
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
GRANT_DELETION_CONFIRMED = register_event_kind(
    "grant.deletion_confirmed", Grant, ("id", "deletion_confirmed_at", "deletion_confirmed_by")
)
# A decision's status and review flag change later (a review supersedes it, a challenge flags
# it), so they stay out of its digest; the review is a new row with a leaf of its own.
_DECISION_COLUMNS = (
    "id",
    "series_id",
    "version",
    "kind",
    "citizen_id",
    "department_id",
    "grant_id",
    "case_reference",
    "automated",
    "algorithm_name",
    "algorithm_version",
    "officer_name",
    "officer_role",
    "reviewer_name",
    "reviewer_role",
    "data_points_used",
    "sealed",
    "recorded_by",
    "created_at",
)
DECISION_RECORDED = register_event_kind(
    "decision.recorded", Decision, _DECISION_COLUMNS, creates_rows=True
)
DECISION_REVIEWED = register_event_kind(
    "decision.reviewed", Decision, _DECISION_COLUMNS, creates_rows=True
)
# A challenge's answer arrives later: the opening leaf vouches for what the person said, the
# answering leaf for the department's reply.
CHALLENGE_OPENED = register_event_kind(
    "challenge.opened",
    Challenge,
    (
        "id",
        "citizen_id",
        "department_id",
        "target",
        "decision_id",
        "data_point_key",
        "data_point_version",
        "sealed_reason",
        "opened_by",
        "opened_at",
        "due_at",
    ),
    creates_rows=True,
)
CHALLENGE_ANSWERED = register_event_kind(
    "challenge.answered",
    Challenge,
    ("id", "status", "answered_at", "answered_by", "sealed_answer", "corrected_version"),
)
