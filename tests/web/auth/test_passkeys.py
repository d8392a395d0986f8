"""Passkeys: add one while signed in, sign in with it, refuse copies and forgeries."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from tests.web.auth.conftest import Auth, csrf_token
from tests.web.auth.softauthn import SoftPasskey
from vault.signin_models import Passkey
from web.state import unit_of_work

FAILED = "We could not check that passkey. Try again, or sign in with an email link."


def _passkey(auth: Auth) -> SoftPasskey:
    # The app's BASE_URL is the origin passkeys are made for (localhost:5000 in tests).
    return SoftPasskey(origin=auth.app.config["BASE_URL"])


def _headers(auth: Auth, path: str = "/sign-in") -> dict[str, str]:
    return {"X-CSRFToken": csrf_token(auth.client, path)}


def _add(auth: Auth, passkey: SoftPasskey) -> Any:
    headers = _headers(auth, "/passkeys")
    options = auth.client.post("/passkeys/options", json={}, headers=headers)
    assert options.status_code == 200
    return auth.client.post(
        "/passkeys/verify", json=passkey.create(options.get_json()), headers=headers
    )


def _sign_in(auth: Auth, passkey: SoftPasskey, **kwargs: Any) -> Any:
    headers = _headers(auth)
    options = auth.client.post("/sign-in/passkey/options", json={}, headers=headers)
    assert options.status_code == 200
    return auth.client.post(
        "/sign-in/passkey/verify", json=passkey.get(options.get_json(), **kwargs), headers=headers
    )


def _stored(app: Any) -> list[Passkey]:
    with app.app_context(), unit_of_work() as (session, _vault):
        return list(session.exec(select(Passkey)).all())


def test_add_a_passkey_then_sign_in_with_it(app: Any, auth: Auth, clock: Any) -> None:
    auth.sign_up_or_in("sam@example.org")
    passkey = _passkey(auth)
    added = _add(auth, passkey)
    assert added.status_code == 200, added.get_json()
    assert added.get_json()["redirect"] == "/passkeys"
    page = auth.client.get("/passkeys").get_data(as_text=True)
    assert "Your passkey is added" in page and "Passkey 1" in page and "Not used yet" in page

    auth.client.get("/sign-out")
    before = auth.cookie()
    clock.advance(minutes=5)
    signed_in = _sign_in(auth, passkey)
    assert signed_in.status_code == 200, signed_in.get_json()
    assert signed_in.get_json()["redirect"] == "/"
    assert auth.cookie() not in (None, before)
    assert auth.client.get("/").status_code == 200
    [stored] = _stored(app)
    assert stored.sign_count == 1 and stored.last_used_at == clock.now
    assert "Last used on" in auth.client.get("/passkeys").get_data(as_text=True)


def test_a_copied_passkey_whose_counter_goes_back_is_refused(auth: Auth) -> None:
    auth.sign_up_or_in("sam@example.org")
    passkey = _passkey(auth)
    _add(auth, passkey)
    auth.client.get("/sign-out")
    assert _sign_in(auth, passkey).status_code == 200
    auth.client.get("/sign-out")
    passkey.sign_count = 0  # a clone that starts again from its copied counter
    refused = _sign_in(auth, passkey)
    assert refused.status_code == 400
    assert refused.get_json()["message"] == FAILED
    assert auth.client.get("/").status_code == 302


def test_a_passkey_nobody_added_is_refused(auth: Auth) -> None:
    stranger = _passkey(auth)
    stranger.user_handle = b"someone"
    refused = _sign_in(auth, stranger)
    assert refused.status_code == 400 and refused.get_json()["message"] == FAILED
    assert auth.cookie() is None


def test_a_passkey_for_another_site_is_refused(auth: Auth) -> None:
    auth.sign_up_or_in("sam@example.org")
    passkey = _passkey(auth)
    _add(auth, passkey)
    auth.client.get("/sign-out")
    passkey.origin = "http://evil.example"
    assert _sign_in(auth, passkey).status_code == 400
    passkey.origin, passkey.rp_id = auth.app.config["BASE_URL"], "evil.example"
    assert _sign_in(auth, passkey).status_code == 400


def test_an_answer_to_someone_elses_challenge_is_refused(auth: Auth) -> None:
    auth.sign_up_or_in("sam@example.org")
    passkey = _passkey(auth)
    _add(auth, passkey)
    auth.client.get("/sign-out")
    headers = _headers(auth)
    auth.client.post("/sign-in/passkey/options", json={}, headers=headers)
    forged = passkey.get({"challenge": "bm90LXRoZS1jaGFsbGVuZ2U"})
    refused = auth.client.post("/sign-in/passkey/verify", json=forged, headers=headers)
    assert refused.status_code == 400
    # Without the options step there is no challenge cookie at all.
    auth.client.delete_cookie("tellonce_webauthn")
    assert (
        auth.client.post("/sign-in/passkey/verify", json=forged, headers=headers).status_code == 400
    )


def test_broken_requests_get_a_plain_answer(auth: Auth) -> None:
    headers = _headers(auth)
    auth.client.post("/sign-in/passkey/options", json={}, headers=headers)
    for body in ({}, {"id": "x", "rawId": "!!", "response": 3}, [1, 2]):
        refused = auth.client.post("/sign-in/passkey/verify", json=body, headers=headers)
        assert refused.status_code == 400 and refused.get_json()["message"] == FAILED


def test_passkey_calls_need_the_csrf_header(auth: Auth) -> None:
    refused = auth.client.post("/sign-in/passkey/options", json={})
    assert refused.status_code == 400
    assert "timed out" in refused.get_json()["message"]


def test_adding_a_passkey_needs_you_signed_in(auth: Auth) -> None:
    headers = _headers(auth)
    assert auth.client.post("/passkeys/options", json={}, headers=headers).status_code == 302
    assert auth.client.get("/passkeys").status_code == 302


def test_remove_a_passkey_after_confirming(app: Any, auth: Auth) -> None:
    auth.sign_up_or_in("sam@example.org")
    passkey = _passkey(auth)
    _add(auth, passkey)
    [stored] = _stored(app)
    confirm = auth.client.get(f"/passkeys/{stored.id}/remove")
    assert confirm.status_code == 200 and "Remove Passkey 1?" in confirm.get_data(as_text=True)
    assert len(_stored(app)) == 1, "asking does not remove it"
    token = csrf_token(auth.client, f"/passkeys/{stored.id}/remove")
    removed = auth.client.post(f"/passkeys/{stored.id}/remove", data={"csrf_token": token})
    assert removed.status_code == 303 and _stored(app) == []
    auth.client.get("/sign-out")
    assert _sign_in(auth, passkey).status_code == 400, "a removed passkey no longer works"


def test_you_cannot_remove_someone_elses_passkey(app: Any, auth: Auth) -> None:
    auth.sign_up_or_in("sam@example.org")
    _add(auth, _passkey(auth))
    [theirs] = _stored(app)
    auth.client.get("/sign-out")
    auth.sign_up_or_in("other@example.org")
    token = csrf_token(auth.client, "/passkeys")
    assert auth.client.get(f"/passkeys/{theirs.id}/remove").status_code == 404
    refused = auth.client.post(f"/passkeys/{theirs.id}/remove", data={"csrf_token": token})
    assert refused.status_code == 404 and len(_stored(app)) == 1


def test_the_same_passkey_cannot_be_added_twice(auth: Auth) -> None:
    auth.sign_up_or_in("sam@example.org")
    passkey = _passkey(auth)
    assert _add(auth, passkey).status_code == 200
    again = _add(auth, passkey)
    assert again.status_code == 400
