"""The ledger event kinds the connectors layer writes, and the columns each vouches for."""

from connectors.models import Department
from vault.rows import register_event_kind

# Registering a department is public: anyone can see who may ask people for what, and who is
# answerable for it. The secret hash is vouched for too, so a swapped secret is caught.
DEPARTMENT_REGISTERED = register_event_kind(
    "department.registered",
    Department,
    (
        "id",
        "name",
        "client_metadata",
        "secret_hash",
        "purposes",
        "officer",
        "webhook_url",
        "created_at",
    ),
    creates_rows=True,
)
DEPARTMENT_DISABLED = register_event_kind("department.disabled", Department, ("id", "disabled_at"))
