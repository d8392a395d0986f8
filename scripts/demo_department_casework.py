"""Anytown Council's casework with Tell Once: decisions, reviews, and people's challenges.

``CaseworkClient`` adds to the OAuth client what the case page's buttons need: recording a
decision under Sam's permission (``POST /api/v1/decisions``) and, with a department-wide
token (client credentials, scope ``challenges``, DPoP-bound like every token), listing and
answering challenges and recording reviews. The ``*_from_form`` functions turn the case
page's forms into the JSON bodies Tell Once's API takes (docs/departments.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from joserfc.jwk import ECKey, Key

from scripts.demo_department_client import (
    CASE_REFERENCE,
    EXPIRY_MARGIN_SECONDS,
    DepartmentSettings,
    TellOnceClient,
    TellOnceProblem,
    Tokens,
    Visit,
)


class CaseworkClient(TellOnceClient):
    """The OAuth client, plus decisions, reviews and challenges."""

    def __init__(
        self, issuer: str, settings: DepartmentSettings, *, now: Callable[[], float] = time.time
    ) -> None:
        super().__init__(issuer, settings, now=now)
        # Department-wide: one DPoP key and one client-credentials token for every page.
        self._department_key: Key = ECKey.generate_key("P-256")
        self._department_tokens: Tokens | None = None
        self._lock = threading.Lock()

    def department_token(self, *, renew: bool = False) -> str:
        """Our department-wide access token (client credentials, scope challenges)."""
        with self._lock:
            held = self._department_tokens
            if held and not renew and self.now() < held.expires_at - EXPIRY_MARGIN_SECONDS:
                return held.access_token
            endpoint = self.metadata()["token_endpoint"]
            form = {"grant_type": "client_credentials", "scope": "challenges"}
            proof = self.dpop_proof(self._department_key, "POST", endpoint)
            status, answer = self._call(
                "POST", endpoint, form={**form, **self._client_auth()}, headers={"DPoP": proof}
            )
            if status != 200 or str(answer.get("token_type", "")).lower() != "dpop":
                raise self._refused("a token for our department", answer)
            expires_at = self.now() + int(answer.get("expires_in", 0))
            self._department_tokens = Tokens(answer["access_token"], None, expires_at, "", [])
            return self._department_tokens.access_token

    def _as_department(self, method: str, path: str, **kw: Any) -> tuple[int, dict[str, Any]]:
        """A call with our department-wide token, asking for a new one once if it is refused."""
        key = self._department_key
        status, answer = self._api(method, path, self.department_token(), key, **kw)
        if status == 401 and answer.get("error") == "invalid_token":
            status, answer = self._api(method, path, self.department_token(renew=True), key, **kw)
        return status, answer

    def record_decision(self, visit: Visit, decision: Mapping[str, Any]) -> dict[str, Any]:
        """POST /api/v1/decisions under Sam's permission; keep and return Tell Once's answer."""
        status, answer = self._as_permitted(visit, "POST", "/api/v1/decisions", body=decision)
        if status != 201:
            raise self._refused("our decision", answer)
        shown = {**answer, "title": decision["title"], "outcome": decision["outcome"]}
        visit.decisions.append(shown)
        return shown

    def review_decision(
        self, visit: Visit, decision_id: str, review: Mapping[str, Any]
    ) -> dict[str, Any]:
        """POST a named person's review; its new version takes the old one's place on the case."""
        path = f"/api/v1/decisions/{quote(decision_id, safe='')}/reviews"
        status, answer = self._as_department("POST", path, body=review)
        if status != 201:
            raise self._refused("our review", answer)
        for index, kept in enumerate(visit.decisions):
            if kept["series_id"] == answer["series_id"]:
                outcome = review.get("outcome") or kept["outcome"]
                visit.decisions[index] = {**kept, **answer, "outcome": outcome}
                return visit.decisions[index]
        return dict(answer)

    def challenges(self) -> list[dict[str, Any]]:
        """Every challenge to our department, answered or not (GET /api/v1/challenges)."""
        status, answer = self._as_department("GET", "/api/v1/challenges", query="?status=all")
        if status != 200:
            raise self._refused("to list the challenges", answer)
        return list(answer.get("challenges", []))

    def answer_challenge(self, challenge_id: str, reply: Mapping[str, Any]) -> dict[str, Any]:
        """POST our answer to a challenge: corrected (with the right value), upheld or changed."""
        path = f"/api/v1/challenges/{quote(challenge_id, safe='')}/answer"
        status, answer = self._as_department("POST", path, body=reply)
        if status != 200:
            raise self._refused("our answer", answer)
        return answer

    def fetch_jwks(self) -> dict[str, Any]:
        """Tell Once's public keys, from the jwks_uri in its metadata (asked afresh each time)."""
        status, answer = self._call("GET", self.metadata()["jwks_uri"])
        if status != 200 or not isinstance(answer.get("keys"), list):
            raise TellOnceProblem(f"{self.issuer} did not give its public keys.")
        return answer


# --- The case page's forms, as the API wants them -------------------------------------------


def _text(fields: Mapping[str, str], name: str) -> str:
    # Blank stays blank: Tell Once names the field that must not be, in its own words.
    return str(fields.get(name, "")).strip()


def decision_from_form(fields: Mapping[str, str], used: Sequence[str]) -> dict[str, Any]:
    """The body of POST /api/v1/decisions from the "Record a decision" form.

    ``used`` holds the ticked data points as ``key@version``, as fetched.
    """
    automated = fields.get("automated") == "yes"
    points = []
    for item in used:
        key, _, version = item.rpartition("@")
        if key and version.isdigit():
            points.append({"key": key, "version": int(version)})
    algorithm = {
        "name": _text(fields, "algorithm_name"),
        "version": _text(fields, "algorithm_version"),
    }
    return {
        "case_reference": CASE_REFERENCE,
        "title": _text(fields, "title"),
        "outcome": _text(fields, "outcome"),
        "reasons": _text(fields, "reasons"),
        "automated": automated,
        "algorithm": algorithm if automated else None,
        "accountable_officer": {
            "name": _text(fields, "officer_name"),
            "role": _text(fields, "officer_role"),
        },
        "data_points_used": points,
    }


def parse_value(key: str, text: str) -> Any:
    """A value typed by a caseworker, as Tell Once's catalogue has it.

    An address is written on one line, parts split by commas, the town and postcode last;
    money in pounds. Anything else is sent as typed, and Tell Once says if it is wrong.
    """
    text = text.strip()
    if key == "contact.address":
        parts = [part.strip() for part in text.split(",") if part.strip()]
        if len(parts) >= 3:
            return {"lines": parts[:-2], "town": parts[-2], "postcode": parts[-1]}
        return text
    if key.startswith("money."):
        try:
            pounds = Decimal(text.replace("£", "").replace(",", ""))
        except InvalidOperation:
            return text
        return int(pounds * 100)
    return text


def answer_from_form(fields: Mapping[str, str]) -> dict[str, Any]:
    """The body of POST /api/v1/challenges/{id}/answer from a challenge's answer form."""
    outcome = _text(fields, "outcome")
    reply: dict[str, Any] = {"outcome": outcome, "reasons": _text(fields, "reasons")}
    if outcome == "corrected":
        reply["value"] = parse_value(_text(fields, "key"), _text(fields, "value"))
    return reply


def review_from_form(fields: Mapping[str, str]) -> dict[str, Any]:
    """The body of POST /api/v1/decisions/{id}/reviews from the "Review the decision" form."""
    review: dict[str, Any] = {
        "kind": _text(fields, "kind"),
        "reviewer": {
            "name": _text(fields, "reviewer_name"),
            "role": _text(fields, "reviewer_role"),
        },
        "reasons": _text(fields, "reasons"),
    }
    outcome = _text(fields, "outcome")
    if outcome:  # an upheld decision keeps its outcome, so the form may leave it empty
        review["outcome"] = outcome
    return review
