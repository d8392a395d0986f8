"""``tellonce ledger save-checkpoint`` and ``check-checkpoint``: keep a signed checkpoint apart
from the database, and later prove a database (a restored one, or the live service) still
holds every entry it signed.

A restored backup that is older than the last checkpoint the operator published passes
``ledger verify`` (it is a consistent, shorter ledger), so only a checkpoint kept elsewhere
can show that entries were lost. The check is the one any outside witness makes: the saved
checkpoint's signature, then an RFC 9162 consistency proof from its size to the database's.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from base64 import b64decode
from dataclasses import dataclass
from pathlib import Path

import click

from vault import ledger, merkle, note
from vault.db import session_scope
from vault.errors import InvalidValue


@dataclass(frozen=True)
class LedgerNow:
    """What the ledger holds now: its size, the root hash of that size, and a consistency
    proof from an older size to it (empty when the sizes are equal)."""

    size: int
    root_hash: bytes
    proof: list[bytes]


def _read_saved(path: Path, verifier: str) -> note.Checkpoint:
    """Open the saved note, check its signature and parse the checkpoint in it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise click.ClickException(f"There is no checkpoint file at {path}.") from None
    except (OSError, UnicodeDecodeError):
        raise click.ClickException(f"The checkpoint file {path} cannot be read.") from None
    try:
        return note.parse_checkpoint(note.open_note(text, verifier))
    except InvalidValue as problem:
        raise click.ClickException(
            f"The checkpoint in {path} is not one this ledger signed: {problem.message} "
            "Check TELLONCE_KEY_FILE and TELLONCE_LEDGER_ORIGIN (or BASE_URL) are the service's."
        ) from None


def _from_database(path: Path, public_key: str | None) -> tuple[note.Checkpoint, LedgerNow]:
    """The saved checkpoint, and the ledger as the database holds it (no proof if shorter)."""
    from web.cli import _services

    with _services() as state, session_scope(state.engine) as session:
        saved = _read_saved(path, public_key or ledger.verifier_key(state.vault))
        size = ledger.head_size(session)
        if size < saved.size:
            return saved, LedgerNow(size, b"", [])
        proof = ledger.consistency_proof(session, saved.size, size) if saved.size < size else []
        return saved, LedgerNow(size, ledger.root_at(session, size), proof)


def _get(base_url: str, path: str) -> str:
    """GET one path of the service's public ledger API, as text."""
    url = base_url.rstrip("/") + path
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise click.ClickException("Give the service's address as http:// or https://.")
    try:
        # Only http(s) reaches here (checked above); urlopen would also read file: URLs.
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310  # nosec B310
            return str(answer.read().decode("utf-8"))
    except OSError as exc:
        raise click.ClickException(f"Could not read {url}: {exc}") from None


def _from_service(base_url: str, verifier: str, saved_size: int) -> LedgerNow:
    """The ledger as the running service publishes it: its signed checkpoint and a proof."""
    try:
        current = note.parse_checkpoint(
            note.open_note(_get(base_url, "/ledger/checkpoint"), verifier)
        )
    except InvalidValue as problem:
        raise click.ClickException(
            f"The service's checkpoint is not signed by the same key: {problem.message}"
        ) from None
    if current.size <= saved_size:
        return LedgerNow(current.size, current.root_hash, [])
    answer = _get(base_url, f"/ledger/proof/consistency?from={saved_size}&to={current.size}")
    try:
        proof = [b64decode(h, validate=True) for h in json.loads(answer)["consistency_path"]]
    except (ValueError, KeyError, TypeError):
        raise click.ClickException("The service's consistency proof is not readable.") from None
    return LedgerNow(current.size, current.root_hash, proof)


@click.command("save-checkpoint")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def save_checkpoint(path: Path) -> None:
    """Sign a checkpoint of the ledger now and write it to PATH (keep it off this server)."""
    from web.cli import _fail_plainly, _services

    @_fail_plainly
    def run() -> ledger.Checkpoint | None:
        with _services() as state, session_scope(state.engine) as session:
            return ledger.make_checkpoint(session, state.vault)

    made = run()
    if made is None:
        raise click.ClickException("The ledger is empty, so there is nothing to sign.")
    # Written beside the target and renamed, so a crash never leaves half a checkpoint.
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(made.note, encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        raise click.ClickException(f"Could not write {path}: {exc.strerror}.") from None
    click.echo(f"Saved the checkpoint for {made.size} entries to {path}.")


@click.command("check-checkpoint")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--url",
    default=None,
    help="Check the running service at this address (its public ledger API), not the database.",
)
@click.option(
    "--public-key",
    default=None,
    help="The ledger's verifier key (as /ledger/public-key shows it), if not this key file's.",
)
def check_checkpoint(path: Path, url: str | None, public_key: str | None) -> None:
    """Check the ledger still holds every entry the checkpoint saved in PATH signed."""
    from web.cli import _fail_plainly

    @_fail_plainly
    def run() -> tuple[note.Checkpoint, LedgerNow]:
        if url is None:
            return _from_database(path, public_key)
        verifier = public_key or _get(url, "/ledger/public-key").strip()
        saved = _read_saved(path, verifier)
        return saved, _from_service(url, verifier, saved.size)

    saved, now = run()
    where = url or "The database"
    if now.size < saved.size:
        raise click.ClickException(
            f"{where} holds {now.size} ledger entries, but the checkpoint in {path} was signed "
            f"for {saved.size}: {saved.size - now.size} entries are missing. It is older than "
            "that checkpoint (restored from an older backup?), or entries were removed."
        )
    if not merkle.verify_consistency(
        saved.size, now.size, saved.root_hash, now.root_hash, now.proof
    ):
        raise click.ClickException(
            f"{where} does not hold the entries the checkpoint in {path} signed: the first "
            f"{saved.size} entries were changed, removed or reordered since it was signed."
        )
    click.echo(
        f"The ledger is consistent with the checkpoint in {path}: its {saved.size} entries "
        f"are unchanged, and {now.size - saved.size} were added since."
    )


LEDGER_CHECK_COMMANDS = (save_checkpoint, check_checkpoint)
