"""Fill a database with real citizens, facts, grants, fetches and their ledger, fast.

    .venv/bin/python scripts/scale/generate.py --citizens 1000000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/tellonce_scale_big

Per citizen: one vault (wrapped data key, sealed ledger key), 5 fact versions, 1 grant and
10 fetches under it (9 served, 1 refused): at a million citizens that is 5,000,000 data point
versions, 1,000,000 grants, 10,000,000 access events and 17,000,000 ledger leaves, with the
Merkle tree's stored hashes, a signed checkpoint after every block and the ledger head, so
``tellonce ledger verify`` passes on the result (see scripts/scale/rows.py for what is real).

PostgreSQL: the database is created if missing (``--fresh`` drops and re-creates it first,
only for names starting ``tellonce_scale_``), migrated, loaded with COPY from worker processes
with indexes dropped, then indexed, checked and analysed. SQLite (used by the test): one
process, batched inserts. The key file (made if missing) is needed to read the data back:
by default ``instance/scale/<database name>.keys.json``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from tqdm import tqdm  # noqa: E402

import consent.events  # noqa: E402, F401  (declare every event kind, as the app does)
import vault.events  # noqa: E402, F401
from scripts.scale import sinks  # noqa: E402
from scripts.scale.rows import COLUMNS, LEAVES_PER_CITIZEN, LOAD_ORDER, make_block, start_time  # noqa: E402  # noqa: E402
from vault import merkle, note  # noqa: E402
from vault.db import make_engine  # noqa: E402
from vault.keys import LocalKeyFileProvider, init_key_file  # noqa: E402
from vault.migrate import upgrade  # noqa: E402
from vault.models import LedgerHead  # noqa: E402
from vault.services import Vault  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/tellonce_scale_small"
DEFAULT_ORIGIN = "scale.tellonce/ledger"
OWN_PREFIX = "tellonce_scale_"
NODE_COLUMNS = ("level", "idx", "hash")


@dataclass(frozen=True)
class Plan:
    """What to generate, and where."""

    url: str
    citizens: int
    key_file: Path
    origin: str = DEFAULT_ORIGIN
    workers: int = 2
    block: int = 1000
    start: datetime | None = None


def default_key_file(url: str) -> Path:
    """Where a generated database's key file lives unless told otherwise."""
    name = Path(make_url(url).database or "scale").stem
    return ROOT / "instance" / "scale" / f"{name}.keys.json"


def _is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name() == "postgresql"


def prepare_database(url: str, *, fresh: bool) -> None:
    """Create (or with ``fresh`` re-create) the database, migrate it, and check it is empty."""
    parsed = make_url(url)
    if _is_postgres(url):
        name = parsed.database or ""
        admin = create_engine(
            parsed.set(drivername="postgresql+psycopg", database="postgres"),
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if exists and fresh:
                if not name.startswith(OWN_PREFIX):
                    raise SystemExit(f"Refusing to drop {name}: only {OWN_PREFIX}* databases.")
                connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
                exists = None
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    elif fresh and parsed.database:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
    engine = make_engine(url, synchronous="OFF")
    upgrade(engine)
    with engine.connect() as connection:
        size = connection.execute(text("SELECT size FROM ledger_head WHERE id = 1")).scalar()
        citizens = connection.execute(text("SELECT count(*) FROM citizen")).scalar()
    engine.dispose()
    if size or citizens:
        raise SystemExit("The database already holds a ledger or citizens; use --fresh.")


# --- worker processes: build a block of rows and COPY it -----------------------------------

_worker: dict[str, Any] = {}


def _init_worker(url: str, key_file: str, start: datetime) -> None:
    _worker["keys"] = LocalKeyFileProvider(key_file)
    _worker["start"] = start
    _worker["sink"] = sinks.PostgresSink(url)


def _load_block(task: tuple[int, int]) -> tuple[bytes, datetime | None]:
    first, count = task
    block = make_block(_worker["keys"], _worker["start"], first, count)
    sink = _worker["sink"]
    for table in LOAD_ORDER:
        sink.write(table, COLUMNS[table], block.rows[table])
    sink.commit()
    return b"".join(block.leaf_hashes), block.last_at


def _tasks(plan: Plan) -> list[tuple[int, int]]:
    return [(n, min(plan.block, plan.citizens - n)) for n in range(0, plan.citizens, plan.block)]


def _blocks(plan: Plan, start: datetime, main_sink: Any) -> Iterator[tuple[bytes, Any, int]]:
    """Each block's leaf hashes (in log order), last leaf time and citizen count, in order."""
    tasks = _tasks(plan)
    if not _is_postgres(plan.url) or plan.workers <= 1:
        keys = LocalKeyFileProvider(plan.key_file)
        for first, count in tasks:
            block = make_block(keys, start, first, count)
            for table in LOAD_ORDER:
                main_sink.write(table, COLUMNS[table], block.rows[table])
            yield b"".join(block.leaf_hashes), block.last_at, count
        return
    context = multiprocessing.get_context("fork")
    with context.Pool(plan.workers, _init_worker, (plan.url, str(plan.key_file), start)) as pool:
        for (hashes, last_at), (_first, count) in zip(
            pool.imap(_load_block, tasks), tasks, strict=True
        ):
            yield hashes, last_at, count


def generate(plan: Plan, *, progress: bool = True, say: Any = print) -> dict[str, float]:
    """Load the planned citizens into an empty migrated database; return timings."""
    if not plan.key_file.exists():
        plan.key_file.parent.mkdir(parents=True, exist_ok=True)
        init_key_file(plan.key_file)
    vault_ = Vault(keys=LocalKeyFileProvider(plan.key_file), ledger_origin=plan.origin)
    start = plan.start or start_time()
    postgres = _is_postgres(plan.url)
    timings: dict[str, float] = {}
    began = time.perf_counter()
    engine = make_engine(plan.url, synchronous="OFF")
    main_sink: Any = sinks.PostgresSink(plan.url) if postgres else sinks.SqliteSink(engine)
    tree = merkle.TreeBuilder()
    checkpoints: list[dict[str, Any]] = []
    last_at = start
    bar = tqdm(total=plan.citizens, unit="citizen", disable=not progress, smoothing=0.05)
    loading = sinks.without_indexes(plan.url, say) if postgres else _nothing()
    with loading:
        for hashes, block_last, count in _blocks(plan, start, main_sink):
            nodes = []
            for offset in range(0, len(hashes), 32):
                for level, index, node in tree.append(hashes[offset : offset + 32]):
                    if level > 0:
                        nodes.append({"level": level, "idx": index, "hash": node})
            main_sink.write("ledger_node", NODE_COLUMNS, nodes)
            last_at = block_last or last_at
            checkpoints.append(_checkpoint(vault_, tree, last_at))
            main_sink.commit()
            bar.update(count)
        bar.close()
        main_sink.write(
            "ledger_checkpoint", ("size", "root_hash", "note", "created_at"), checkpoints
        )
        main_sink.commit()
        main_sink.close()
        timings["load_s"] = time.perf_counter() - began
        say(f"loaded in {timings['load_s']:.0f} s; building indexes" if postgres else "loaded")
    timings["index_s"] = time.perf_counter() - began - timings["load_s"]
    with engine.begin() as connection:
        connection.execute(
            update(LedgerHead)
            .where(LedgerHead.id == 1)  # type: ignore[arg-type]
            .values(size=tree.size, frontier=b"".join(tree.frontier), checkpointed_at=last_at)
        )
    engine.dispose()
    if tree.size != plan.citizens * LEAVES_PER_CITIZEN:
        raise SystemExit(f"The log has {tree.size} leaves; expected more. Something is wrong.")
    timings["total_s"] = time.perf_counter() - began
    return timings


def _checkpoint(vault_: Vault, tree: merkle.TreeBuilder, at: datetime) -> dict[str, Any]:
    # Exactly what vault.ledger signs: the C2SP checkpoint body as a signed note.
    root = tree.root()
    body = note.checkpoint_body(vault_.ledger_origin, tree.size, root)
    signed = note.sign_note(body, vault_.ledger_origin, vault_.checkpoint_key)
    return {"size": tree.size, "root_hash": root, "note": signed, "created_at": at}


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, generate, and print how long it took."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--citizens", type=int, default=10_000)
    parser.add_argument("--key-file", type=Path, default=None)
    parser.add_argument("--origin", default=DEFAULT_ORIGIN)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--block", type=int, default=1000, help="citizens per transaction")
    parser.add_argument("--fresh", action="store_true", help="drop and re-create it first")
    args = parser.parse_args(argv)
    if args.citizens < 1:
        parser.error("--citizens must be at least 1")
    key_file = args.key_file or default_key_file(args.database_url)
    prepare_database(args.database_url, fresh=args.fresh)
    plan = Plan(args.database_url, args.citizens, key_file, args.origin, args.workers, args.block)
    timings = generate(plan)
    print(
        f"{args.citizens:,} citizens, {args.citizens * LEAVES_PER_CITIZEN:,} ledger leaves: "
        f"load {timings['load_s']:.0f} s, indexes {timings['index_s']:.0f} s, "
        f"total {timings['total_s']:.0f} s. Key file: {key_file}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
