"""Back up and restore Tell Once's database: what scripts/backup and scripts/restore run.

    scripts/backup FILE                                  # DATABASE_URL's database, to FILE
    scripts/restore [--force] [--checkpoint SAVED] FILE  # FILE into DATABASE_URL's database

SQLite: SQLite's online backup API copies a consistent snapshot while the service runs (a
plain file copy of a database in WAL mode can miss or tear recent transactions); the copy
is checked with ``PRAGMA integrity_check`` and is one self-contained file.
PostgreSQL: ``pg_dump --format=custom`` inside a snapshot the script also reads the ledger
size from, and ``pg_restore --single-transaction`` into an empty database.

A restore ends with ``tellonce db upgrade``, ``tellonce ledger verify`` and, given the last
checkpoint the operator saved, ``tellonce ledger check-checkpoint``: any failure exits 1.
The key file is never in a backup; both scripts say so.

This file is the command line. The backup side is in scripts/ops_make_backup.py, the restore
side in scripts/ops_restore.py, and what both use in scripts/ops_common.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

# Run as a file (scripts/backup), only scripts/ is on the path: add the project, so the
# sides import as scripts.ops_* here and in the tests alike.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scripts.ops_common import Refused, Target, parse_target  # noqa: E402
from scripts.ops_make_backup import KEY_FILE_REMINDER, backup  # noqa: E402
from scripts.ops_restore import RESTORE_REMINDER, load, restore  # noqa: E402

# The names other code and the tests reach through this entry point.
__all__ = ["Refused", "Target", "app_settings", "backup", "load", "main", "parse_target", "restore"]


def app_settings() -> dict[str, Any]:
    """The app's own settings (web/config.py), read without importing the whole app.

    ``import web.config`` would run ``web/__init__.py`` (Flask and every blueprint): a second
    or more for a backup that needs two settings. web/config.py imports only the standard
    library, so it is loaded on its own.
    """
    path = ROOT / "web" / "config.py"
    spec = importlib.util.spec_from_file_location("tellonce_settings", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    settings: dict[str, Any] = module.from_environment()
    return settings


def main(argv: list[str] | None = None) -> int:
    """Parse the command line of scripts/backup or scripts/restore and run it."""
    settings = app_settings()
    parser = argparse.ArgumentParser(prog="scripts/backup | scripts/restore")
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("backup", help="Back up the database to FILE.")
    make.add_argument("file", type=Path)
    make.add_argument("--force", action="store_true", help="Replace FILE if it is there.")
    put = commands.add_parser("restore", help="Restore FILE into the database.")
    put.add_argument("file", type=Path)
    put.add_argument("--force", action="store_true", help="Replace a database that holds data.")
    put.add_argument("--checkpoint", type=Path, help="The last checkpoint you saved or published.")
    for sub in (make, put):
        sub.add_argument(
            "--database-url", default=settings["DATABASE_URL"], help="Default: DATABASE_URL."
        )
    args = parser.parse_args(argv)
    reminder = (KEY_FILE_REMINDER if args.command == "backup" else RESTORE_REMINDER).format(
        key_file=settings["KEY_FILE"]
    )
    try:
        target = parse_target(args.database_url)
        if args.command == "backup":
            size = backup(target, args.file, force=args.force)
            print(f"Backed up {target.shown} ({size} ledger entries) to {args.file}.")
        else:
            restore(
                target,
                args.file,
                key_file=Path(settings["KEY_FILE"]),
                force=args.force,
                checkpoint=args.checkpoint,
            )
            print("\nThe restore is complete and checked.")
    except Refused as refused:
        print(f"Error: {refused}", file=sys.stderr)
        return 1
    print(reminder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
