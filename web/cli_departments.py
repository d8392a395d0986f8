"""``tellonce department``: register, list, show and disable the departments that may ask."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import click

from connectors import departments
from vault.db import session_scope
from web.state import Services


def _plainly(function: Callable[..., Any]) -> Callable[..., Any]:
    """``web.cli._fail_plainly``, looked up when the command runs.

    ``web.cli`` imports this module to add the group, so importing it back here at load time
    would be circular.
    """

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from web.cli import _fail_plainly

        return _fail_plainly(function)(*args, **kwargs)

    return wrapper


def _services() -> AbstractContextManager[Services]:
    """``web.cli._services`` (the app's engine and vault), looked up when the command runs."""
    from web.cli import _services as services

    return services()


def _read_registration(path: str) -> Any:
    """The registration file's JSON, or one plain line saying why it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise click.ClickException(f"There is no file at {path}.") from None
    except (OSError, UnicodeDecodeError):
        raise click.ClickException(f"The file {path} could not be read as UTF-8 text.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # exc.msg says what was expected; it never quotes the file's content.
        raise click.ClickException(
            f"The file {path} is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}."
        ) from None


@click.group("department")
def department() -> None:
    """Departments: the services that may ask people for their information."""


@department.command("add")
@click.argument("file", metavar="FILE.json")
@click.option("--client-id", default=None, help="Use this client id instead of a random one.")
@_plainly
def department_add(file: str, client_id: str | None) -> None:
    """Register a department from FILE.json; print its client id and any secret."""
    metadata = _read_registration(file)
    with _services() as state, session_scope(state.engine) as session:
        registered = departments.register_department(
            session, state.vault, metadata, client_id=client_id
        )
        answer = {"client_id": registered.department.id}
    if registered.client_secret is not None:
        answer["client_secret"] = registered.client_secret
        click.echo(
            "Give the client secret to the department now: it is shown only this once.",
            err=True,
        )
    click.echo(json.dumps(answer, indent=2))


@department.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object a line.")
@_plainly
def department_list(as_json: bool) -> None:
    """List departments: client id, name, how it signs in, and status."""
    with _services() as state, session_scope(state.engine) as session:
        rows = [
            {
                "client_id": item.id,
                "name": item.name,
                "auth_method": departments.auth_method(item),
                "status": "disabled" if item.disabled_at is not None else "active",
            }
            for item in departments.list_departments(session)
        ]
    if as_json:
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False))
        return
    if not rows:
        click.echo("No departments are registered yet.")
        return
    headings = {
        "client_id": "CLIENT ID",
        "name": "NAME",
        "auth_method": "SIGNS IN WITH",
        "status": "STATUS",
    }
    widths = {key: max(len(str(r[key])) for r in [headings, *rows]) for key in headings}
    for row in [headings, *rows]:
        click.echo("  ".join(str(row[key]).ljust(widths[key]) for key in headings).rstrip())


@department.command("show")
@click.argument("client_id")
@_plainly
def department_show(client_id: str) -> None:
    """Print one department's registration as JSON (never its secret)."""
    with _services() as state, session_scope(state.engine) as session:
        described = departments.describe(departments.get_department(session, client_id))
    click.echo(json.dumps(described, indent=2, ensure_ascii=False))


@department.command("disable")
@click.argument("client_id")
@_plainly
def department_disable(client_id: str) -> None:
    """Disable a department: it can no longer ask for or fetch anything."""
    with _services() as state, session_scope(state.engine) as session:
        disabled = departments.disable_department(session, state.vault, client_id)
        name = disabled.name
    click.echo(
        f"Disabled {client_id} ({name}): it can no longer ask for or fetch anyone's information."
    )
