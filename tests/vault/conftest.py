"""Fixtures shared by the vault tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from vault.keys import init_key_file


@pytest.fixture
def own_key_file(tmp_path: Path) -> Path:
    """A key file of the test's own (version 1), apart from the shared test vault's."""
    path = tmp_path / "rotating-keys" / "keys.json"
    init_key_file(path)
    return path
