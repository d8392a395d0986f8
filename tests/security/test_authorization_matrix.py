"""Every route, for every actor, gets exactly the answer written in ``matrix.py``.

Each cell also proves two things about what the answer holds: no canary of a person the
actor may not see (and none at all in a refusal, beyond the helper's own "acting for"
banner), and, for an id that is not the actor's, nothing that tells it from an id that does
not exist: the answer is the same, byte for byte, as for a random id.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.security import matrix
from tests.security.matrix import GO, SEND, STATUS, Cell, Send
from tests.security.matrix_world import CANARIES, World

CELLS = matrix.cells()
_ARGUMENT = re.compile(r"<(?:\w+:)?(\w+)>")
_CSRF = re.compile(r'(name="csrf_token"[^>]*value=")[^"]+')
_NONCE = re.compile(r'nonce(=|-)"?[A-Za-z0-9_\-]+')
REDIRECTS = (301, 302, 303, 307)


def test_every_route_is_in_the_table(key_file: Path) -> None:
    from vault.keys import LocalKeyFileProvider
    from web import create_app

    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": "sqlite://",
            "KEY_PROVIDER": LocalKeyFileProvider(key_file),
        }
    )
    served = {
        f"{method} {rule.rule}"
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    missing = sorted(served - matrix.routes())
    assert not missing, (
        "These routes are not in the authorization matrix. Add each to tests/security/matrix.py "
        "(WEB, API or PUBLIC) with the answer every actor must get, and to SEND if it takes "
        f"an id or a body: {missing}"
    )
    gone = sorted(matrix.routes() - served)
    assert not gone, f"tests/security/matrix.py lists routes the app no longer has: {gone}"


def test_every_actor_has_an_answer_on_every_row() -> None:
    rows: dict[tuple[str, str], list[str]] = {}
    for cell in CELLS:
        rows.setdefault((cell.route, cell.target), []).append(cell.actor)
    for row, actors in rows.items():
        assert sorted(actors) == sorted(matrix.ACTORS), row
    assert len(matrix.ACTORS) == len(set(matrix.ACTORS)) == 18


def _text(response: Any) -> str:
    location = response.headers.get("Location", "")
    return location + "\n" + response.get_data().decode("utf-8", "replace")


def _shown(response: Any) -> str:
    return f"{response.status_code} {response.headers.get('Location', '')} {_text(response)[:400]}"


def check_answer(world: World, cell: Cell, response: Any) -> None:
    """The status (and where a redirect leads) is the one the table says."""
    if cell.code in ("go", "in", "pe"):
        assert response.status_code in REDIRECTS, f"{cell}: {_shown(response)}"
        args = {name: world.value(cell.route, cell.target, name) for name in _names(cell.rule)}
        want = {"in": "/sign-in", "pe": "/people"}.get(cell.code) or GO[cell.route].format(**args)
        assert urlsplit(response.headers["Location"]).path == want, f"{cell}: {_shown(response)}"
        return
    assert response.status_code == STATUS[cell.code], f"{cell}: {_shown(response)}"
    if cell.code in ("act", "ina"):
        assert response.get_json()["active"] is (cell.code == "act"), f"{cell}: {_shown(response)}"
    if cell.code in ("rev", "nop"):
        revoked = world.token_revoked(world.things["d"]["token"])
        assert revoked is (cell.code == "rev"), f"{cell}: the token's revoked is {revoked}"


def _names(rule: str) -> list[str]:
    return _ARGUMENT.findall(rule)


def check_no_leak(cell: Cell, response: Any) -> None:
    """No canary the actor may not see; in a refusal, none but their own banner's."""
    text = _text(response)
    seen = {kind for kind, word in CANARIES.items() if word in text}
    may = matrix.MAY_SEE[cell.actor] if cell.allowed else matrix.CHROME[cell.actor]
    assert seen <= may, f"{cell} ({cell.code}): the answer shows {sorted(seen - may)}"


def _fingerprint(response: Any, value: str) -> tuple[int, str, str]:
    body = response.get_data().decode("utf-8", "replace")
    body = _NONCE.sub("nonce=", _CSRF.sub(r"\1", body))
    location = response.headers.get("Location", "")
    return response.status_code, location.replace(value, "<id>"), body.replace(value, "<id>")


def check_same_as_nothing(world: World, cell: Cell, response: Any) -> None:
    """Another's real id gets the answer a random id gets: nothing says it exists."""
    spec = SEND.get(cell.route, Send())
    name = spec.target or next(n for n in _names(cell.rule) if not spec.args[n].startswith("="))
    real = world.value(cell.route, cell.target, name)
    random = world.random_value(cell.route)
    other = world.send(cell.route, cell.target, cell.actor, swap=random)
    try:
        assert _fingerprint(response, real) == _fingerprint(other, random), (
            f"{cell}: the answer for another's real id differs from the answer for a random id"
        )
    finally:
        other.close()


@pytest.mark.parametrize("cell", CELLS, ids=str)
def test_cell(matrix_world: World, cell: Cell) -> None:
    world = matrix_world
    response = world.send(cell.route, cell.target, cell.actor)
    try:
        check_answer(world, cell, response)
        check_no_leak(cell, response)
        if cell.target and not matrix.holds(cell.actor, cell.rule, cell.target):
            check_same_as_nothing(world, cell, response)
    finally:
        response.close()  # files are streamed: close them
        world.put_back(cell.actor, restore=SEND.get(cell.route, Send()).restores)
