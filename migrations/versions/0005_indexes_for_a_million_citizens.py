"""indexes for a million citizens: ordered reads for verify and the history page

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 05:45:00.000000

Each new index replaces one whose columns are its prefix, so every query the old one served
it serves too, and each append still updates the same number of indexes:

- ledger_entry (kind) -> (kind, idx): ``ledger verify`` reads each kind's entries in log
  order; with idx in the index they stream in that order instead of being sorted.
- ledger_entry (row_table, row_id) -> (row_table, row_id, kind): verify's "every row was
  announced" and "no entry is replayed" checks become index-only scans in key order.
- access_event (citizen_id, at) -> (citizen_id, at, id): "who has seen my information" pages
  by (at, id), newest first; the index gives that exact order, so a page reads only its rows.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_entry_kind_idx", ["kind", "idx"], unique=False)
        batch_op.create_index(
            "ix_ledger_entry_row_kind", ["row_table", "row_id", "kind"], unique=False
        )
        batch_op.drop_index("ix_ledger_entry_kind")
        batch_op.drop_index("ix_ledger_entry_row")
    with op.batch_alter_table("access_event", schema=None) as batch_op:
        batch_op.create_index(
            "ix_access_event_citizen_at_id", ["citizen_id", "at", "id"], unique=False
        )
        batch_op.drop_index("ix_access_event_citizen_at")


def downgrade() -> None:
    with op.batch_alter_table("access_event", schema=None) as batch_op:
        batch_op.create_index("ix_access_event_citizen_at", ["citizen_id", "at"], unique=False)
        batch_op.drop_index("ix_access_event_citizen_at_id")
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_entry_row", ["row_table", "row_id"], unique=False)
        batch_op.create_index("ix_ledger_entry_kind", ["kind"], unique=False)
        batch_op.drop_index("ix_ledger_entry_row_kind")
        batch_op.drop_index("ix_ledger_entry_kind_idx")
