"""The ledger event kinds the vault itself writes, and the columns each vouches for."""

from vault.models import Citizen, DataPoint, StorySection
from vault.rows import register_event_kind

# A citizen's id never appears in a public leaf: these leaves name them only by their HMAC.
CITIZEN_CREATED = register_event_kind(
    "citizen.created", Citizen, ("id", "created_at"), creates_rows=True, id_in_leaf=False
)
CITIZEN_ERASED = register_event_kind(
    "citizen.erased", Citizen, ("id", "status", "erased_at"), id_in_leaf=False
)
DATA_POINT_RECORDED = register_event_kind(
    "data_point.recorded",
    DataPoint,
    ("id", "citizen_id", "key", "version", "ciphertext", "source", "recorded_by", "recorded_at"),
    creates_rows=True,
)
STORY_SECTION_RECORDED = register_event_kind(
    "story_section.recorded",
    StorySection,
    (
        "id",
        "citizen_id",
        "topic",
        "version",
        "ciphertext",
        "sensitivity",
        "recorded_by",
        "recorded_at",
    ),
    creates_rows=True,
)
