"""Back up, wipe, restore, check: what scripts/check_restore runs, on SQLite and PostgreSQL.

    scripts/check_restore                                   # SQLite, in a temporary folder
    scripts/check_restore --postgres postgresql://postgres@127.0.0.1:5432/postgres

On a small database with real data (the demo seed, a few more people with facts, a story,
grants, served and refused accesses, a revoked grant) it runs the real scripts/backup and
scripts/restore and checks that:

1. a restore of the newest backup into the wiped database passes (``ledger verify`` and the
   last published checkpoint), every table has the same number of rows as before, and every
   person's current facts and story decrypt to the same values;
2. a restore of an OLDER backup, taken before the last published checkpoint, fails: its
   ledger verifies on its own, but the checkpoint shows entries it lost.

PostgreSQL work happens in a database of its own (``tellonce_ops_<pid>``), dropped at the end.
Exit status 0 when every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine, make_url

from consent import actors
from consent.access import fetch_for_department
from consent.grants import GrantRequest, give_grant, revoke_grant
from vault import ledger
from vault.accounts import create_account
from vault.citizens import create_citizen
from vault.db import make_engine, session_scope
from vault.keys import LocalKeyFileProvider, init_key_file
from vault.migrate import upgrade
from vault.records import (
    current_data_points,
    current_story,
    record_data_point,
    record_story_section,
)
from vault.services import Vault
from web.demo import DEMO_DEPARTMENT_ID, seed_demo

SCRIPTS = Path(__file__).resolve().parent
ORIGIN = "check-restore.invalid/tellonce-ledger"
OFFICER = "Officer 7, Housing Options"
Say = Callable[[str], None]


def _request(case: str) -> GrantRequest:
    return GrantRequest(
        department_id=DEMO_DEPARTMENT_ID,
        purpose_code="emergency_housing",
        purpose_text="To find you somewhere safe to stay.",
        data_points=("contact.phone", "housing.status"),
        case_reference=case,
        duration_days=30,
        data_life_days=90,
        max_fetches=10,
        story_topics=("housing",),
    )


def add_people(engine: Engine, vault: Vault, first: int, count: int) -> None:
    """People who tell a few facts and a story, share them, and are fetched twice each."""
    for n in range(first, first + count):
        with session_scope(engine) as session:
            citizen = create_citizen(session, vault)
            account = create_account(
                session, vault, f"person{n}@example.org", citizen_id=citizen.id
            )
            by = f"citizen:{account.id}"
            record_data_point(
                session, vault, citizen.id, "contact.phone", f"+4477009{n:05d}", recorded_by=by
            )
            record_data_point(
                session, vault, citizen.id, "housing.status", "staying_with_friends", recorded_by=by
            )
            record_story_section(
                session, vault, citizen.id, "housing", f"Person {n}: I need a room.", recorded_by=by
            )
            me = actors.citizen(account.id, citizen.id)
            grant = give_grant(session, vault, me, _request(f"HOU-{n}")).grant
        for _ in range(2):
            with session_scope(engine) as session:
                fetch_for_department(
                    session,
                    vault,
                    grant.id,
                    DEMO_DEPARTMENT_ID,
                    acting_officer=OFFICER,
                    case_reference=f"HOU-{n}",
                )
        if n % 2:  # every other person says stop; the next fetch is refused (and recorded)
            with session_scope(engine) as session:
                revoke_grant(session, vault, me, grant.id)
            with session_scope(engine) as session:
                fetch_for_department(
                    session,
                    vault,
                    grant.id,
                    DEMO_DEPARTMENT_ID,
                    acting_officer=OFFICER,
                    case_reference=f"HOU-{n}",
                )


def snapshot(engine: Engine, vault: Vault) -> dict[str, Any]:
    """Row counts per table, and every person's current facts and story, decrypted."""
    with engine.connect() as connection:
        tables = sorted(inspect(connection).get_table_names())
        # Table names come from the database's own catalogue, quoted as identifiers.
        quote = connection.dialect.identifier_preparer.quote
        counts = {
            t: connection.execute(text(f"SELECT count(*) FROM {quote(t)}")).scalar()  # noqa: S608  # nosec B608
            for t in tables
        }
    values: dict[str, Any] = {}
    with session_scope(engine) as session:
        ids = session.execute(text("SELECT id FROM citizen ORDER BY id")).scalars().all()
        for citizen_id in ids:
            facts = [
                (p.key, p.version, p.value) for p in current_data_points(session, vault, citizen_id)
            ]
            story = [
                (s.topic, s.version, s.text) for s in current_story(session, vault, citizen_id)
            ]
            values[citizen_id] = json.loads(json.dumps({"facts": facts, "story": story}))
        size = ledger.head_size(session)
    return {"counts": counts, "values": values, "ledger_size": size}


def _run(
    script: str, args: list[str], env: dict[str, str], say: Say
) -> subprocess.CompletedProcess[str]:
    say(f"$ scripts/{script} {' '.join(args)}")
    # Our own scripts, with paths as arguments and no shell.
    return subprocess.run(  # nosec B603
        [str(SCRIPTS / script), *args], env=env, capture_output=True, text=True, check=False
    )


class Place:
    """Where the checked database lives: an SQLite file, or a PostgreSQL database of our own."""

    def __init__(self, work: Path, postgres_admin_url: str | None) -> None:
        self.admin = None
        if postgres_admin_url is None:
            self.url = f"sqlite:///{work / 'tellonce.db'}"
            return
        name = f"tellonce_ops_{os.getpid()}"
        admin = make_url(postgres_admin_url).set(drivername="postgresql")
        self.admin = admin.render_as_string(hide_password=False)
        self.name = name
        self.url = admin.set(drivername="postgresql+psycopg", database=name).render_as_string(
            hide_password=False
        )

    def _admin_sql(self, statement: str) -> None:
        assert self.admin is not None
        with psycopg.connect(self.admin, autocommit=True) as connection:
            connection.execute(sql.SQL(statement).format(sql.Identifier(self.name)))

    def create(self) -> None:
        """Make the database, empty."""
        if self.admin is not None:
            self._admin_sql("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            self._admin_sql("CREATE DATABASE {}")

    def wipe(self) -> None:
        """Lose the database completely, as a disk failure would, and make an empty one."""
        if self.admin is None:
            path = Path(make_url(self.url).database or "")
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
            return
        self.create()

    def drop(self) -> None:
        """Drop our PostgreSQL database (SQLite's folder goes with the temporary folder)."""
        if self.admin is not None:
            self._admin_sql("DROP DATABASE IF EXISTS {} WITH (FORCE)")


def _tables_never_analyzed(engine: Engine) -> list[str]:
    """PostgreSQL tables the restore left without planner statistics (none on SQLite)."""
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect() as connection:
        bare = connection.exec_driver_sql(
            "SELECT relname FROM pg_stat_user_tables "
            "WHERE last_analyze IS NULL AND last_autoanalyze IS NULL ORDER BY relname"
        ).scalars()
        return [f"The restore left table {name} without statistics." for name in bare]


def check_restore(work: Path, postgres_admin_url: str | None = None, say: Say = print) -> list[str]:
    """Back up, wipe, restore and check one database; return the problems found (none: all good)."""
    problems: list[str] = []
    key_file = work / "keys.json"
    init_key_file(key_file)
    place = Place(work, postgres_admin_url)
    env = {
        **os.environ,
        "DATABASE_URL": place.url,
        "TELLONCE_KEY_FILE": str(key_file),
        "TELLONCE_LEDGER_ORIGIN": ORIGIN,
        "TELLONCE_INSTANCE": str(work),
    }
    vault = Vault(keys=LocalKeyFileProvider(key_file), ledger_origin=ORIGIN)
    place.create()
    try:
        engine = make_engine(place.url, synchronous="NORMAL")
        upgrade(engine)
        with session_scope(engine) as session:
            seed_demo(session, vault, work / "demo-department.json")
        add_people(engine, vault, 1, 3)
        older, newer, published = (
            work / "older.backup",
            work / "newer.backup",
            work / "published-checkpoint.txt",
        )
        made = _run("backup", [str(older)], env, say)
        if made.returncode != 0:
            return [f"scripts/backup failed: {made.stderr.strip()}"]
        add_people(engine, vault, 4, 2)
        with session_scope(engine) as session:
            checkpoint = ledger.make_checkpoint(session, vault)
        assert checkpoint is not None
        published.write_text(checkpoint.note, encoding="utf-8")
        say(f"Published a checkpoint for {checkpoint.size} entries to {published.name}.")
        made = _run("backup", [str(newer)], env, say)
        if made.returncode != 0:
            return [f"scripts/backup failed: {made.stderr.strip()}"]
        before = snapshot(engine, vault)
        engine.dispose()

        place.wipe()
        say("Wiped the database.")
        restored = _run("restore", ["--checkpoint", str(published), str(newer)], env, say)
        if restored.returncode != 0:
            problems.append(f"Restoring the newest backup failed: {restored.stderr.strip()}")
        for expected in ("The ledger verifies", "The ledger is consistent with the checkpoint"):
            if expected not in restored.stdout:
                problems.append(f"The restore did not say {expected!r}.")
        engine = make_engine(place.url, synchronous="NORMAL")
        after = snapshot(engine, vault)
        problems += _tables_never_analyzed(engine)
        engine.dispose()
        for table, count in before["counts"].items():
            if after["counts"].get(table) != count:
                problems.append(
                    f"Table {table}: {count} rows before, {after['counts'].get(table)} after."
                )
        if after["values"] != before["values"]:
            problems.append("The decrypted facts and stories after the restore differ from before.")
        rows = sum(before["counts"].values())
        values = sum(len(v["facts"]) + len(v["story"]) for v in before["values"].values())
        say(
            f"Restored: {len(before['counts'])} tables, {rows} rows, "
            f"{before['ledger_size']} ledger entries, {values} values of "
            f"{len(before['values'])} people decrypt as before."
        )

        stale = _run("restore", ["--force", "--checkpoint", str(published), str(older)], env, say)
        if stale.returncode == 0:
            problems.append("Restoring a backup older than the published checkpoint passed.")
        if "The ledger verifies" not in stale.stdout:
            problems.append("The older backup's ledger did not verify on its own.")
        if "entries are missing" not in stale.stderr:
            problems.append(f"The older backup was not reported as behind: {stale.stderr.strip()}")
        else:
            reason = next(
                line for line in stale.stderr.splitlines() if "entries are missing" in line
            )
            say(f"The older backup was refused: {reason}")
    finally:
        place.drop()
    return problems


def main(argv: list[str] | None = None) -> int:
    """Run the check on SQLite, and on PostgreSQL when given a server address."""
    parser = argparse.ArgumentParser(
        prog="scripts/check_restore", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--postgres", metavar="URL", help="A PostgreSQL server (any database on it)."
    )
    parser.add_argument("--no-sqlite", action="store_true", help="Check PostgreSQL only.")
    args = parser.parse_args(argv)
    runs = ([] if args.no_sqlite else [None]) + ([args.postgres] if args.postgres else [])
    failed = False
    for admin_url in runs:
        name = "SQLite" if admin_url is None else "PostgreSQL"
        print(f"== {name}")
        with tempfile.TemporaryDirectory(prefix="tellonce-check-restore-") as folder:
            problems = check_restore(Path(folder), admin_url)
        for problem in problems:
            print(f"PROBLEM: {problem}", file=sys.stderr)
        print(f"== {name}: {'FAILED' if problems else 'back up, wipe, restore, verify: all good'}")
        failed = failed or bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
