"""Errors are plain words: a page for people, JSON for programs, never a stack trace."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def strict_client(app: Any) -> Any:
    app.config["WTF_CSRF_ENABLED"] = True
    return app.test_client()


def test_a_missing_page_is_a_plain_page(client: Any) -> None:
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    body = response.get_data(as_text=True)
    assert "Page not found" in body
    assert "Traceback" not in body


def test_a_program_gets_json(client: Any) -> None:
    response = client.get("/ledger/proof/inclusion?index=x&tree_size=1")
    assert response.status_code == 400
    assert set(response.get_json()) == {"error", "message"}


def test_a_form_sent_without_its_token_gets_a_page_not_json(strict_client: Any) -> None:
    response = strict_client.post("/language/cy")
    assert response.status_code in (400, 405)
    assert response.mimetype == "text/html"
    assert "Traceback" not in response.get_data(as_text=True)


def test_an_unexpected_error_is_a_plain_page(app: Any) -> None:
    @app.get("/boom-for-test")
    def boom() -> str:
        raise RuntimeError("secret detail that must not show")

    response = app.test_client().get("/boom-for-test")
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert "secret detail" not in body
    assert "Sorry, something went wrong" in body
