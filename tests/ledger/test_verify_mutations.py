"""Tamper with a 10,000-entry ledger in every way we can think of; `verify_ledger` must report
every one, and pass the untouched log.

The log is built once per database (see ``conftest.py``). Each Hypothesis example tampers
inside a transaction, runs ``verify_ledger`` on what that transaction sees, and rolls back,
so every example starts from the same clean log on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, delete, insert, select, update

from tests.ledger import tamper
from tests.ledger.biglog import ORIGIN, SIZE, BigLog
from tests.ledger.tamper import CHECKPOINT, ENTRY, HEAD, NODE, TABLES
from vault.verify import VerifyReport

EXAMPLES = 25
FAST = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def each(argument: str, values: Iterable[Any], **others: Any) -> Callable[[Any], Any]:
    """Always try every variant once, on top of the random examples."""

    def decorate(test: Any) -> Any:
        for value in values:
            test = example(**{argument: value}, **others)(test)
        return test

    return decorate


def _assert_caught(report: VerifyReport, what: str) -> None:
    assert not report.ok, f"verify_ledger missed: {what}"
    assert all(isinstance(p, str) and p for p in report.problems)


# ----------------------------------------------------------------------- the clean log


def test_the_untouched_log_verifies(big_log: BigLog) -> None:
    report = big_log.check(lambda connection: None, rows=True)
    assert report.ok, report.problems
    assert (report.size, report.rows_checked) == (SIZE, SIZE)
    assert report.checkpoints == len(big_log.checkpoints) >= 6
    assert big_log.rows["grant"] and big_log.rows["access_event"]


def test_changes_the_ledger_allows_still_verify(big_log: BigLog) -> None:
    """Status columns change legitimately and are vouched for by later events, not digests."""
    point = TABLES["data_point"]

    def mark(connection: Connection) -> None:
        connection.execute(update(point).values(status="contested"))

    assert big_log.check(mark, rows=True).ok


# ----------------------------------------------------------------------- rows

ROW_EDITS: dict[str, tuple[str, str]] = {
    "fact ciphertext": ("data_point", "ciphertext"),
    "fact recorded_by": ("data_point", "recorded_by"),
    "fact source": ("data_point", "source"),
    "fact key": ("data_point", "key"),
    "fact version": ("data_point", "version"),
    "fact recorded_at": ("data_point", "recorded_at"),
    "citizen created_at": ("citizen", "created_at"),
    "grant purpose": ("grant", "purpose_text"),
    "grant widened": ("grant", "data_points"),
    "grant fetch limit": ("grant", "max_fetches"),
    "grant end": ("grant", "ends_at"),
    "access officer": ("access_event", "acting_officer"),
    "access versions served": ("access_event", "data_points"),
    "access result": ("access_event", "result"),
    "story ciphertext": ("story_section", "ciphertext"),
    "story sensitivity": ("story_section", "sensitivity"),
}


# Each column once, explicitly, then a few more at random (the row check is the slow one).
@settings(FAST, max_examples=10)
@given(
    edit=st.sampled_from(sorted(ROW_EDITS)),
    which=st.integers(0, 10**6),
    position=st.integers(0, 10**6),
    step=st.integers(0, 10**6),
)
@each("edit", sorted(ROW_EDITS), which=3, position=5, step=7)
def test_an_edited_row_is_caught(
    big_log: BigLog, edit: str, which: int, position: int, step: int
) -> None:
    table_name, column = ROW_EDITS[edit]
    table = TABLES[table_name]
    if table_name == "access_event" and column == "data_points":
        ids = [i for i in big_log.rows[table_name] if i in big_log.served_ids]
    else:
        ids = big_log.rows[table_name]
    row_id = ids[which % len(ids)]

    def mutate(connection: Connection) -> None:
        old = connection.execute(select(table.c[column]).where(table.c.id == row_id)).scalar()
        new = tamper.edit_value(old, column, position, step)
        assert new != old
        connection.execute(update(table).where(table.c.id == row_id).values({column: new}))

    report = big_log.check(mutate, rows=True)
    _assert_caught(report, f"{edit} of {row_id}")
    entry = big_log.entry_of_row[row_id]
    assert f"The {table_name} row behind entry {entry} has been changed." in report.problems


@settings(FAST, max_examples=4)
@given(
    table_name=st.sampled_from(["data_point", "grant", "access_event", "story_section"]),
    which=st.integers(0, 10**6),
    add=st.booleans(),
)
@each("table_name", ["data_point", "grant", "access_event", "story_section"], which=1, add=True)
@each("table_name", ["data_point", "grant", "access_event", "story_section"], which=1, add=False)
def test_a_removed_or_smuggled_row_is_caught(
    big_log: BigLog, table_name: str, which: int, add: bool
) -> None:
    table = TABLES[table_name]
    ids = big_log.rows[table_name]
    row_id = ids[which % len(ids)]

    def mutate(connection: Connection) -> None:
        if add:  # a copy of a real row under a new id, with no ledger entry of its own
            row = dict(connection.execute(select(table).where(table.c.id == row_id)).one()._mapping)
            row["id"] = "00000000-0000-4000-8000-" + f"{which:012d}"
            if "version" in row:
                row["version"] += 10_000
            connection.execute(insert(table).values(**row))
        else:
            if table_name == "grant":
                access = TABLES["access_event"]  # they point at the grant
                connection.execute(delete(access).where(access.c.grant_id == row_id))
            connection.execute(delete(table).where(table.c.id == row_id))

    report = big_log.check(mutate, rows=True)
    _assert_caught(report, f"{'added' if add else 'removed'} {table_name} row")


# ----------------------------------------------------------------------- entries and tree

ENTRY_EDITS = ["leaf", "leaf hash", "leaf and hash", "leaf and tree", "row id", "kind"]


@FAST
@given(
    how=st.sampled_from(ENTRY_EDITS),
    index=st.integers(0, SIZE - 1),
    position=st.integers(0, 10**6),
    mask=st.integers(1, 255),
)
@each("how", ENTRY_EDITS, index=4321, position=100, mask=1)
def test_an_edited_entry_is_caught(
    big_log: BigLog, how: str, index: int, position: int, mask: int
) -> None:
    def mutate(connection: Connection) -> None:
        entry = tamper.entry_of(connection, index)
        leaf = tamper.flip_byte(bytes(entry["leaf"]), position, mask)
        if how == "leaf":
            tamper.set_entry(connection, index, leaf=leaf)
        elif how == "leaf hash":
            hashed = tamper.flip_byte(bytes(entry["leaf_hash"]), position, mask)
            tamper.set_entry(connection, index, leaf_hash=hashed)
        elif how == "leaf and hash":
            tamper.set_entry(connection, index, leaf=leaf, leaf_hash=tamper.merkle.leaf_hash(leaf))
        elif how == "leaf and tree":
            tamper.set_entry(connection, index, leaf=leaf)
            tamper.rebuild_tree(connection)
        elif how == "row id":  # point the entry at another row of the same table
            others = big_log.rows[entry["row_table"]]
            other = others[(others.index(entry["row_id"]) + 1 + position) % len(others)]
            if other == entry["row_id"]:
                other = "00000000-0000-4000-8000-000000000000"
            tamper.set_entry(connection, index, row_id=other)
        else:  # claim it is another kind of event
            kind = "citizen.erased" if entry["kind"] != "citizen.erased" else "grant.revoked"
            tamper.set_entry(connection, index, kind=kind)

    # The entry's row id and kind are not part of the leaf: only the row check sees them.
    report = big_log.check(mutate, rows=how in ("row id", "kind"))
    _assert_caught(report, f"{how} at {index}")
    if how in ("leaf", "leaf hash"):
        assert report.problems[0] == (
            f"Entry {index} has been changed: its hash does not match its content."
        )


@FAST
@given(
    first=st.integers(0, SIZE - 1),
    gap=st.integers(1, SIZE - 1),
    rebuild=st.booleans(),
)
@example(first=0, gap=1, rebuild=True)
@example(first=SIZE - 2, gap=1, rebuild=False)
def test_reordered_entries_are_caught(big_log: BigLog, first: int, gap: int, rebuild: bool) -> None:
    second = (first + gap) % SIZE
    columns = ["leaf", "leaf_hash", "kind", "row_table", "row_id"]

    def mutate(connection: Connection) -> None:
        a, b = tamper.entry_of(connection, first), tamper.entry_of(connection, second)
        tamper.set_entry(connection, first, **{c: b[c] for c in columns})
        tamper.set_entry(connection, second, **{c: a[c] for c in columns})
        if rebuild:
            tamper.rebuild_tree(connection)

    _assert_caught(
        big_log.check(mutate, rows=False), f"swap {first} and {second} (rebuilt: {rebuild})"
    )


DELETES = ["delete", "delete and renumber", "delete, renumber and rebuild"]


# Renumbering thousands of entries makes these examples the slowest: fewer of them.
@settings(FAST, max_examples=20)
@given(
    index=st.integers(0, SIZE - 1),
    how=st.sampled_from(DELETES),
)
@each("how", DELETES, index=0)
def test_a_removed_entry_is_caught(big_log: BigLog, index: int, how: str) -> None:
    def mutate(connection: Connection) -> None:
        connection.execute(delete(ENTRY).where(ENTRY.c.idx == index))
        if how != "delete":
            tamper.shift_entries(connection, index + 1, -1)
        if how.endswith("rebuild"):
            tamper.rebuild_tree(connection)

    report = big_log.check(mutate, rows=False)
    _assert_caught(report, f"{how} at {index}")
    if how == "delete" and index < SIZE - 1:
        assert report.problems[0] == f"Entry {index} is missing."


# Renumbering thousands of entries makes these examples the slowest: fewer of them.
@settings(FAST, max_examples=20)
@given(
    index=st.integers(0, SIZE),
    copy_of=st.integers(0, SIZE - 1),
    rebuild=st.booleans(),
)
@example(index=0, copy_of=5, rebuild=True)
@example(index=SIZE, copy_of=0, rebuild=False)
@example(index=SIZE - 1, copy_of=SIZE - 1, rebuild=True)
def test_an_inserted_entry_is_caught(
    big_log: BigLog, index: int, copy_of: int, rebuild: bool
) -> None:
    # Appending at the very end and re-signing nothing is what a legitimate write does, so
    # an insert the tree was rebuilt around must land inside what a checkpoint covers.
    if rebuild:
        index = min(index, SIZE - 1)
        if index == copy_of == SIZE - 1:  # that is one more copy of the last entry, appended
            copy_of = 0

    def mutate(connection: Connection) -> None:
        forged = tamper.entry_of(connection, copy_of)  # a replay of a real event
        tamper.shift_entries(connection, index, 1)
        forged["idx"] = index
        connection.execute(insert(ENTRY).values(**forged))
        if rebuild:
            tamper.rebuild_tree(connection)

    _assert_caught(
        big_log.check(mutate, rows=False), f"copy of {copy_of} at {index} (rebuilt: {rebuild})"
    )


@FAST
@given(copy_of=st.integers(0, SIZE - 1))
@example(copy_of=0)
@example(copy_of=SIZE - 1)
def test_a_replayed_entry_appended_at_the_end_is_caught_by_the_rows(
    big_log: BigLog, copy_of: int
) -> None:
    # No checkpoint covers the end yet, so only the row check can see that the same row is
    # announced twice.
    def mutate(connection: Connection) -> None:
        forged = tamper.entry_of(connection, copy_of)
        forged["idx"] = SIZE
        connection.execute(insert(ENTRY).values(**forged))
        tamper.rebuild_tree(connection)

    report = big_log.check(mutate, rows=True)
    _assert_caught(report, f"copy of {copy_of} appended and rebuilt")
    assert any("replay" in problem or "changed" in problem for problem in report.problems)


@FAST
@given(keep=st.integers(1, SIZE - 1), rebuild=st.booleans())
@example(keep=1, rebuild=True)
@example(keep=SIZE - 1, rebuild=False)
def test_a_truncated_log_is_caught(big_log: BigLog, keep: int, rebuild: bool) -> None:
    def mutate(connection: Connection) -> None:
        connection.execute(delete(ENTRY).where(ENTRY.c.idx >= keep))
        if rebuild:
            tamper.rebuild_tree(connection)
            assert tamper.head_size(connection) == keep

    _assert_caught(big_log.check(mutate, rows=False), f"kept {keep} (rebuilt: {rebuild})")


TREE_EDITS = ["node hash", "node removed", "head frontier", "head size"]


@settings(FAST, max_examples=15)
@given(
    how=st.sampled_from(TREE_EDITS),
    which=st.integers(0, 10**6),
    position=st.integers(0, 10**6),
    mask=st.integers(1, 255),
)
@each("how", TREE_EDITS, which=0, position=0, mask=1)
def test_edited_tree_hashes_or_head_are_caught(
    big_log: BigLog, how: str, which: int, position: int, mask: int
) -> None:
    """The stored subtree hashes serve proofs, and the head seeds the next append."""

    def mutate(connection: Connection) -> None:
        nodes = connection.execute(select(NODE.c.level, NODE.c.idx, NODE.c.hash)).all()
        level, index, node = nodes[which % len(nodes)]
        where = (NODE.c.level == level) & (NODE.c.idx == index)
        if how == "node hash":
            connection.execute(
                update(NODE).where(where).values(hash=tamper.flip_byte(bytes(node), position, mask))
            )
        elif how == "node removed":
            connection.execute(delete(NODE).where(where))
        elif how == "head frontier":
            frontier = connection.execute(select(HEAD.c.frontier)).scalar_one()
            connection.execute(
                update(HEAD).values(frontier=tamper.flip_byte(bytes(frontier), position, mask))
            )
        else:
            connection.execute(update(HEAD).values(size=HEAD.c.size - 1 - position % 50))

    _assert_caught(big_log.check(mutate, rows=False), f"{how} ({which})")


# ----------------------------------------------------------------------- checkpoints

FORKS = [
    "root column",
    "note text",
    "re-signed by another key",
    "moved to another size",
    "forged by another key",
    "signed fork with another root",
    "signed for more entries than exist",
    "signed for another log",
]


@FAST
@given(
    how=st.sampled_from(FORKS),
    which=st.integers(0, 10**6),
    size=st.integers(1, SIZE),
    position=st.integers(0, 10**6),
    step=st.integers(1, 255),
)
@each("how", FORKS, which=0, size=SIZE, position=0, step=1)
def test_a_forked_or_forged_checkpoint_is_caught(
    big_log: BigLog, how: str, which: int, size: int, position: int, step: int
) -> None:
    vault = big_log.vault
    real = big_log.checkpoints[which % len(big_log.checkpoints)]
    # The first size from ``size`` on (wrapping round) with no checkpoint yet: there are only
    # a handful among 10,000.
    sizes = [*range(size, SIZE + 1), *range(1, size)]
    free = next(s for s in sizes if s not in big_log.checkpoints)
    other_root = tamper.flip_byte(big_log.root, position, step)

    def mutate(connection: Connection) -> None:
        row = connection.execute(select(CHECKPOINT).where(CHECKPOINT.c.size == real)).one()
        root, text_ = bytes(row.root_hash), row.note

        def add(at: int, note_text: str, root_hash: bytes) -> None:
            connection.execute(
                insert(CHECKPOINT).values(
                    size=at, root_hash=root_hash, note=note_text, created_at=row.created_at
                )
            )

        def replace(**values: Any) -> None:
            connection.execute(update(CHECKPOINT).where(CHECKPOINT.c.size == real).values(**values))

        if how == "root column":
            replace(root_hash=tamper.flip_byte(root, position, step))
        elif how == "note text":
            replace(note=tamper.flip_char(text_, position, step))
        elif how == "re-signed by another key":
            replace(note=tamper.signed_checkpoint(ORIGIN, real, root, tamper.OTHER_KEY))
        elif how == "moved to another size":
            replace(size=free)
        elif how == "forged by another key":
            forged = tamper.signed_checkpoint(ORIGIN, free, other_root, tamper.OTHER_KEY)
            add(free, forged, other_root)
        elif how == "signed fork with another root":
            add(
                free,
                tamper.signed_checkpoint(ORIGIN, free, other_root, vault.checkpoint_key),
                other_root,
            )
        elif how == "signed for more entries than exist":
            bigger = SIZE + 1 + position % 1000
            add(
                bigger,
                tamper.signed_checkpoint(ORIGIN, bigger, other_root, vault.checkpoint_key),
                other_root,
            )
        else:
            body = tamper.note.checkpoint_body("evil.example/ledger", real, root)
            replace(note=tamper.note.sign_note(body, ORIGIN, vault.checkpoint_key))

    _assert_caught(big_log.check(mutate, rows=False), f"{how} at {real} / {free}")
