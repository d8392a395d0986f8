"""Helpers for the sign-in tests: read CSRF tokens, ask for links, follow them."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from web.mail import read_outbox

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
DATA_CSRF = re.compile(r'data-csrf="([^"]+)"')
LINK = re.compile(r"https?://\S+/sign-in/link\?token=\S+")


def csrf_token(client: Any, path: str) -> str:
    """The CSRF token from a page's form."""
    html = client.get(path).get_data(as_text=True)
    found = CSRF.search(html) or DATA_CSRF.search(html)
    assert found, f"no CSRF token on {path}"
    return found.group(1)


class Auth:
    """Drive the email-link journey through the test client."""

    def __init__(self, app: Any, client: Any) -> None:
        self.app = app
        self.client = client

    def outbox(self) -> list[Any]:
        return read_outbox(self.app.config["MAIL_DIR"])

    def ask(self, email: str) -> Any:
        """Ask for a link on the sign-in page; return the response (not followed)."""
        token = csrf_token(self.client, "/sign-in")
        return self.client.post("/sign-in", data={"email": email, "csrf_token": token})

    def last_link(self) -> str:
        """The link in the newest email."""
        body = self.outbox()[-1].get_content()
        found = LINK.search(body)
        assert found, "no link in the email"
        return found.group(0)

    def token_of(self, link: str) -> str:
        return parse_qs(urlsplit(link).query)["token"][0]

    def use(self, token: str) -> Any:
        """Open the link's page and press its button; return the POST's response."""
        page = self.client.get(f"/sign-in/link?token={token}")
        found = CSRF.search(page.get_data(as_text=True))
        csrf = found.group(1) if found else csrf_token(self.client, "/sign-in")
        return self.client.post("/sign-in/link", data={"token": token, "csrf_token": csrf})

    def sign_up_or_in(self, email: str) -> Any:
        """The whole journey: ask, read the email, use the link."""
        self.ask(email)
        return self.use(self.token_of(self.last_link()))

    def cookie(self) -> str | None:
        found = self.client.get_cookie("tellonce")
        return found.value if found is not None else None


@pytest.fixture
def auth(app: Any, client: Any) -> Auth:
    return Auth(app, client)
