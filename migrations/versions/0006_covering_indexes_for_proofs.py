"""covering indexes for proofs: PostgreSQL answers a proof from indexes alone

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 07:15:00.000000

An inclusion or consistency proof reads a few dozen hashes by primary key: leaf hashes from
ledger_entry (idx) and subtree hashes from ledger_node (level, idx). On a log of millions of
entries most of those rows are outside the buffer cache, and each look-up read a page of the
index and then a page of the table. With the hash INCLUDEd in an index, PostgreSQL reads the
index only (an index-only scan), half the pages. SQLite has no INCLUDE; its proofs read the
same rows through the primary key as before, so the indexes are made on PostgreSQL only.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.create_index(
        "ix_ledger_node_hash", "ledger_node", ["level", "idx"], postgresql_include=["hash"]
    )
    op.create_index(
        "ix_ledger_entry_leaf_hash", "ledger_entry", ["idx"], postgresql_include=["leaf_hash"]
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_ledger_entry_leaf_hash", table_name="ledger_entry")
    op.drop_index("ix_ledger_node_hash", table_name="ledger_node")
