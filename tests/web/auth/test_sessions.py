"""Sessions: idle and absolute timeouts, sign-out on the server, a new id at sign-in."""

from __future__ import annotations

from typing import Any

from tests.web.auth.conftest import Auth


def _signed_in(auth: Auth) -> bool:
    response = auth.client.get("/")
    return response.status_code == 200


def test_idle_for_30_minutes_signs_you_out(auth: Auth, clock: Any) -> None:
    auth.sign_up_or_in("sam@example.org")
    clock.advance(minutes=29)
    assert _signed_in(auth), "29 minutes idle is fine"
    clock.advance(minutes=29)
    assert _signed_in(auth), "each visit restarts the idle time"
    clock.advance(minutes=31)
    response = auth.client.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/sign-in"


def test_the_absolute_limit_applies_while_active(auth: Auth, clock: Any) -> None:
    auth.sign_up_or_in("sam@example.org")
    for _ in range(47):
        clock.advance(minutes=15)
        assert _signed_in(auth)
    clock.advance(minutes=14)  # 11 h 59 min
    assert _signed_in(auth)
    clock.advance(minutes=2)  # 12 h 1 min, last visit 2 minutes ago
    assert not _signed_in(auth)


def test_sign_out_ends_the_session_on_the_server(auth: Auth) -> None:
    auth.sign_up_or_in("sam@example.org")
    old = auth.cookie()
    assert old is not None
    signed_out = auth.client.get("/sign-out")
    assert signed_out.status_code == 302
    assert auth.cookie() is None
    # Someone who copied the cookie before sign-out cannot use it.
    assert "You have signed out." in auth.client.get("/sign-in").get_data(as_text=True)
    auth.client.set_cookie("tellonce", old)
    assert not _signed_in(auth)


def test_signing_in_gives_a_new_session_id_and_ends_the_old_one(auth: Auth) -> None:
    auth.sign_up_or_in("sam@example.org")
    first = auth.cookie()
    auth.sign_up_or_in("sam@example.org")  # signing in again while signed in
    second = auth.cookie()
    assert first and second and first != second
    assert _signed_in(auth)
    auth.client.set_cookie("tellonce", first)
    assert not _signed_in(auth), "the cookie from before sign-in no longer works"


def test_a_planted_cookie_is_not_kept_at_sign_in(auth: Auth) -> None:
    # Session fixation: a cookie set before sign-in must not become the signed-in session.
    auth.client.set_cookie("tellonce", "planted-by-someone-else")
    auth.sign_up_or_in("sam@example.org")
    assert auth.cookie() not in (None, "planted-by-someone-else")
    assert _signed_in(auth)


def test_session_cookie_flags(auth: Auth) -> None:
    auth.ask("sam@example.org")
    response = auth.use(auth.token_of(auth.last_link()))
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("tellonce="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
