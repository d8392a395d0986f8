"""After a department has looked, the person's own pages name it as it registered itself."""

from __future__ import annotations

import html
from typing import Any

import pytest

from tests.oauth.harness import whole_flow


@pytest.mark.parametrize("path", ["/", "/sharing", "/who-has-seen-it"])
def test_pages_name_the_department_not_its_id(department: Any, sam: Any, path: str) -> None:
    tokens = whole_flow(sam, department)
    assert department.fetch(tokens["access_token"]).status_code == 200
    page = sam.get(path)
    assert page.status_code == 200
    text = html.unescape(page.get_data(as_text=True))
    assert "Anytown Council housing" in text
    # The id may be a form value (the "who" filter), never words on the page.
    assert department.client_id not in text.replace(f'value="{department.client_id}"', "")
