"""The layer rule: web -> connectors -> consent -> vault, never backwards; only web imports
Flask; nothing but web itself, scripts and tests imports web.

Every .py file is read with ``ast``, so imports inside functions, ``if TYPE_CHECKING`` blocks,
relative imports and ``importlib.import_module("...")`` with a literal name all count.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("vault", "consent", "connectors", "web")
FLASK = "flask"  # flask itself and its extensions (flask_smorest, flask_wtf, flask_babel...)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "vault": ("consent", "connectors", "web", FLASK),
    "consent": ("connectors", "web", FLASK),
    "connectors": ("web", FLASK),
    "web": (),
}
# Folders that may import anything: they sit outside the layers.
FREE = ("scripts", "tests")
SKIP_DIRS = {".venv", "venv", "node_modules", ".git", "instance", "build", "dist", "__pycache__"}


def _top(module: str) -> str:
    """The top-level name a module import lands in, folding flask_* into flask."""
    top = module.split(".", 1)[0]
    return FLASK if top == FLASK or top.startswith(FLASK + "_") else top


def _package_of(relative: Path) -> list[str]:
    """The package a file's relative imports start from (its folder, as module parts)."""
    return list(relative.parent.parts)


def imported_modules(source: str, relative: Path) -> Iterator[tuple[int, str]]:
    """Every module a source file imports, with its line: absolute names, relative ones
    resolved against the file's own package."""
    tree = ast.parse(source, filename=str(relative))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                package = _package_of(relative)
                if node.level - 1 > len(package):
                    yield node.lineno, "<relative import above the project>"
                    continue
                parts = package[: len(package) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            if node.module is None:
                # `from . import x` or `from .. import web`: each name may be a module.
                for alias in node.names:
                    yield node.lineno, f"{base}.{alias.name}" if base else alias.name
            else:
                yield node.lineno, base
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            name = node.args[0].value if isinstance(node.args[0], ast.Constant) else None
            if isinstance(name, str) and not name.startswith("."):
                yield node.lineno, name


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def violations(source: str, relative: Path) -> list[str]:
    """What this file imports that its folder may not, as 'file:line imports x (rule)'."""
    owner = relative.parts[0] if len(relative.parts) > 1 else ""
    found = []
    for line, module in imported_modules(source, relative):
        target = _top(module)
        if owner in FREE:
            continue
        if target in FORBIDDEN.get(owner, ()):
            rule = (
                "only web imports Flask" if target == FLASK else f"{owner} may not import {target}"
            )
            found.append(f"{relative.as_posix()}:{line} imports {module} ({rule})")
        elif target == "web" and owner != "web":
            found.append(
                f"{relative.as_posix()}:{line} imports {module} (nothing outside web imports web)"
            )
    return found


def _python_files() -> Iterator[Path]:
    for folder, subfolders, files in os.walk(ROOT):
        # Prune in place, so the walk never descends into the virtualenv or node_modules.
        subfolders[:] = sorted(d for d in subfolders if d not in SKIP_DIRS)
        for name in sorted(files):
            if name.endswith(".py"):
                yield (Path(folder) / name).relative_to(ROOT)


def test_every_layer_exists() -> None:
    # If a package moved, the walk below would pass by checking nothing.
    files = list(_python_files())
    for layer in LAYERS:
        assert any(f.parts[0] == layer for f in files), f"no Python files under {layer}/"
    assert sum(1 for f in files if f.parts[0] == "vault") >= 10


def test_no_import_goes_against_the_layers() -> None:
    problems = []
    for relative in _python_files():
        problems += violations((ROOT / relative).read_text(encoding="utf-8"), relative)
    assert not problems, "Imports against the layer rule:\n" + "\n".join(problems)


def test_the_walk_sees_real_imports() -> None:
    source = (ROOT / "web" / "__init__.py").read_text(encoding="utf-8")
    modules = {m for _line, m in imported_modules(source, Path("web/__init__.py"))}
    assert {"flask", "vault.db", "web.config"} <= modules


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        (
            "vault/records.py",
            "import os\nfrom consent.grants import give_grant\n",
            "vault/records.py:2 imports consent.grants (vault may not import consent)",
        ),
        (
            "vault/records.py",
            "def late():\n    import web.state\n",
            "vault/records.py:2 imports web.state (vault may not import web)",
        ),
        (
            "vault/deep/inner.py",
            "from ...connectors import broker\n",
            "vault/deep/inner.py:1 imports connectors (vault may not import connectors)",
        ),
        (
            "vault/records.py",
            "from .. import web\n",
            "vault/records.py:1 imports web (vault may not import web)",
        ),
        (
            "consent/grants.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from flask import g\n",
            "consent/grants.py:3 imports flask (only web imports Flask)",
        ),
        (
            "consent/grants.py",
            "import connectors.outbox as o\n",
            "consent/grants.py:1 imports connectors.outbox (consent may not import connectors)",
        ),
        (
            "connectors/broker.py",
            "import flask_smorest\n",
            "connectors/broker.py:1 imports flask_smorest (only web imports Flask)",
        ),
        (
            "connectors/broker.py",
            "import importlib\nm = importlib.import_module('web.health')\n",
            "connectors/broker.py:2 imports web.health (connectors may not import web)",
        ),
        (
            "migrations/env.py",
            "from web.config import from_environment\n",
            "migrations/env.py:1 imports web.config (nothing outside web imports web)",
        ),
    ],
)
def test_the_checker_catches_a_bad_import(path: str, source: str, expected: str) -> None:
    assert violations(source, Path(path)) == [expected]


@pytest.mark.parametrize(
    ("path", "source"),
    [
        (
            "vault/records.py",
            "import sqlalchemy\nfrom vault import ledger\nfrom . import envelope\n",
        ),
        ("consent/grants.py", "from vault.records import current_data_points\n"),
        ("connectors/broker.py", "import consent.access\nimport vault.db\n"),
        ("web/health.py", "from flask import Blueprint\nimport connectors\n"),
        ("scripts/seed.py", "from web import create_app\n"),
        ("tests/web/test_x.py", "from web.cli import main\nimport flask\n"),
        ("vault/x.py", "import webbrowser\nimport flasky\n"),  # names that only look alike
    ],
)
def test_the_checker_allows_the_right_way(path: str, source: str) -> None:
    assert violations(source, Path(path)) == []
