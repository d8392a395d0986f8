"""The ``tellonce`` operator command line."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from flask import Flask
from tqdm import tqdm

from vault import keys as keyfile
from vault import ledger
from vault.db import check_database, read_scope, session_scope
from vault.errors import VaultError
from vault.keyops import BATCH, PACE, count_to_rewrap, key_versions_in_use, rewrap_all
from vault.migrate import upgrade
from vault.verify import verify_ledger
from web.cli_departments import department
from web.cli_ledger_checks import LEDGER_CHECK_COMMANDS
from web.cli_outbox import outbox
from web.config import from_environment
from web.state import Services, services


def _fail_plainly(function: Callable[..., Any]) -> Callable[..., Any]:
    """Show domain errors as one plain line and a non-zero exit, never a stack trace."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except VaultError as exc:
            raise click.ClickException(exc.message) from None

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


def _app() -> Flask:
    from web import create_app

    return create_app()


@contextmanager
def _services() -> Iterator[Services]:
    app = _app()
    state = services(app)
    try:
        # Say plainly that the database is not there, before any command starts changing
        # things (a rotation would otherwise add a key version and then fail).
        check_database(state.engine)
        with app.app_context():
            yield state
    finally:
        # Close pooled connections now: a command run in-process (tests, scripts) must not
        # leave them open for the garbage collector.
        state.engine.dispose()


@click.group()
def main() -> None:
    """Tell Once: operate the vault, its keys and its ledger."""


main.add_command(department)
main.add_command(outbox)


@main.group()
def db() -> None:
    """The database."""


@db.command("upgrade")
@_fail_plainly
def db_upgrade() -> None:
    """Create or update the database tables."""
    with _services() as state:
        upgrade(state.engine)
    click.echo("The database is up to date.")


# `tellonce keys rotate` works at this much lower processor priority (see _at_low_priority).
NICENESS = 10
T = TypeVar("T")


@main.group()
def keys() -> None:
    """Key-encryption keys: make, rotate, retire, and see which are in use."""


@keys.command("init")
@_fail_plainly
def keys_init() -> None:
    """Make a new key file (mode 0600). Refuses to overwrite one."""
    path = from_environment()["KEY_FILE"]
    keyfile.init_key_file(path)
    click.echo(f"Made a new key file at {path}. Keep it safe and out of backups of the database.")


@keys.command("rotate")
@click.option(
    "--pace",
    type=click.FloatRange(min=0),
    default=PACE,
    show_default=True,
    help="After each batch, rest this many times as long as it took (0: no rests).",
)
@click.option(
    "--batch", type=click.IntRange(min=1), default=BATCH, show_default=True, help="Keys per batch."
)
@click.option(
    "--nice",
    "niceness",
    type=click.IntRange(0, 19),
    default=NICENESS,
    show_default=True,
    help="Work at this much lower processor priority (Linux; 0: unchanged).",
)
@_fail_plainly
def keys_rotate(pace: float, batch: int, niceness: int) -> None:
    """Add a new key version and re-wrap every data key under it, while the service runs."""
    version, changed = _at_low_priority(niceness, lambda: _rotate(batch, pace))
    click.echo(f"Key version {version} is now current; re-wrapped {changed} data keys.")


def _rotate(batch: int, pace: float) -> tuple[int, int]:
    path = from_environment()["KEY_FILE"]
    with _services() as state:
        version = keyfile.add_key_version(path)
        state.vault.keys.reload()  # type: ignore[attr-defined]
        with read_scope(state.engine) as session:
            total = count_to_rewrap(session, state.vault)
        with tqdm(total=total, unit="key", desc="Re-wrapping", file=sys.stderr) as bar:
            changed = rewrap_all(state.engine, state.vault, bar.update, batch=batch, pace=pace)
    return version, changed


def _at_low_priority(niceness: int, work: Callable[[], T]) -> T:
    """Run ``work`` in a thread of its own at ``niceness`` lower priority; return its result.

    The service's workers share the processors with a rotation; at a lower priority the
    rotation (making the app, re-wrapping) gets only what they leave. On Linux a thread's
    nice value is its own, so the process (a test, a script calling the command in-process)
    keeps its priority; elsewhere the work runs at the usual priority.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            if niceness and sys.platform == "linux":
                me = threading.get_native_id()
                os.setpriority(os.PRIO_PROCESS, me, os.getpriority(os.PRIO_PROCESS, me) + niceness)
            outcome["result"] = work()
        except BaseException as exc:  # handed to the caller's thread, which raises it
            outcome["error"] = exc

    # A daemon, so Ctrl-C ends the command at once (a rotation stopped half way is safe:
    # every key is under one live version or the other; run it again to finish).
    thread = threading.Thread(target=run, name="rotate", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    result: T = outcome["result"]
    return result


@keys.command("retire")
@click.argument("version", type=int)
@_fail_plainly
def keys_retire(version: int) -> None:
    """Retire an old key version (after rotating): anything still under it is refused."""
    with _services() as state, session_scope(state.engine) as session:
        in_use = key_versions_in_use(session)
    still = sum(counts.get(version, 0) for counts in in_use.values())
    if still:
        raise click.ClickException(
            f"{still} data keys still use version {version}. Run `tellonce keys rotate` first."
        )
    keyfile.retire_key_version(from_environment()["KEY_FILE"], version)
    click.echo(f"Key version {version} is retired.")


@keys.command("status")
@_fail_plainly
def keys_status() -> None:
    """Show each key version and how many data keys use it."""
    with _services() as state, session_scope(state.engine) as session:
        in_use = key_versions_in_use(session)
        provider = state.vault.keys
        for info in provider.versions():
            flags = []
            if info.version == provider.current_version:
                flags.append("current")
            if info.retired:
                flags.append("retired")
            click.echo(
                f"version {info.version}  made {info.created_at:%Y-%m-%d %H:%M}  "
                f"citizens {in_use['citizens'].get(info.version, 0)}  "
                f"accounts {in_use['accounts'].get(info.version, 0)}  {' '.join(flags)}"
            )


@main.group("ledger")
def ledger_group() -> None:
    """The tamper-evident ledger."""


for _command in LEDGER_CHECK_COMMANDS:  # save-checkpoint, check-checkpoint
    ledger_group.add_command(_command)


@ledger_group.command("verify")
@click.option("--no-rows", is_flag=True, help="Check the log and checkpoints only.")
@_fail_plainly
def ledger_verify(no_rows: bool) -> None:
    """Recompute every leaf, the tree and the rows; check every signed checkpoint."""
    with _services() as state, session_scope(state.engine) as session:
        total = ledger.head_size(session)
        with tqdm(total=total, unit="entry", desc="Verifying", file=sys.stderr) as bar:
            report = verify_ledger(session, state.vault, progress=bar.update, rows=not no_rows)
    if report.ok:
        click.echo(
            f"The ledger verifies: {report.size} entries, {report.checkpoints} signed "
            f"checkpoints, {report.rows_checked} rows checked."
        )
        return
    for problem in report.problems:
        click.echo(f"PROBLEM: {problem}", err=True)
    raise SystemExit(1)


@ledger_group.command("checkpoint")
@_fail_plainly
def ledger_checkpoint() -> None:
    """Sign a checkpoint of the ledger as it is now, and print it."""
    with _services() as state, session_scope(state.engine) as session:
        made = ledger.make_checkpoint(session, state.vault)
    if made is None:
        raise click.ClickException("The ledger is empty, so there is nothing to sign.")
    click.echo(made.note, nl=False)


@main.group()
def demo() -> None:
    """Demo data."""


@demo.command("seed")
@_fail_plainly
def demo_seed() -> None:
    """Add the demo citizen (sam@example.org), helper and department if missing."""
    from flask import current_app

    from web.demo import demo_department_file, seed_demo

    with _services() as state, session_scope(state.engine) as session:
        department_file = demo_department_file(current_app.config["KEY_FILE"])
        made = seed_demo(session, state.vault, department_file, say=click.echo)
    click.echo("Added the demo data." if made else "The demo data is already there.")


@main.group()
def citizen() -> None:
    """People's accounts."""


@citizen.command("invite")
@click.option("--email", required=True, help="The person's email address.")
@click.option("--print-link", is_flag=True, help="Also print the link (when there is no mail).")
@_fail_plainly
def citizen_invite(email: str, print_link: bool) -> None:
    """Start an account for someone: email them a link to finish signing up."""
    from flask import current_app

    from web.workers import send_signup_invite

    # Links are built as the web pages build them, from BASE_URL (in a request context).
    with _services(), current_app.test_request_context(base_url=current_app.config["BASE_URL"]):
        link = send_signup_invite(email)
    click.echo("We sent a link to finish signing up.")
    if print_link:
        click.echo(link)


@main.command()
@click.option("--host", default="localhost", show_default=True)
@click.option("--port", default=5000, show_default=True, envvar="PORT", type=int)
@_fail_plainly
def serve(host: str, port: int) -> None:
    """Serve the app (development server; use gunicorn in production)."""
    app = _app()
    app.run(host=host, port=port, threaded=True, use_reloader=False)


@main.command("export")
@click.argument("citizen_id")
@_fail_plainly
def export_command(citizen_id: str) -> None:
    """Print everything held about one citizen, as JSON (for a subject access request)."""
    from vault.lifecycle import export_citizen

    with _services() as state, session_scope(state.engine) as session:
        data = export_citizen(session, state.vault, citizen_id)
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))
