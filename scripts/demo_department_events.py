"""Notices from Tell Once: Security Event Tokens POSTed to our webhook (RFC 8417, RFC 8935).

Tell Once signs each notice with a key it publishes at its ``jwks_uri``. We check the
signature, the type (``secevent+jwt``), the issuer (the Tell Once we use) and the audience
(our client id); then we keep it and answer 202. Tell Once delivers at least once, so a
notice may come twice after a network fault: the second copy (same ``jti``) is accepted
and dropped. Kept in memory, like everything in this demo.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from scripts.demo_department_client import TellOnceProblem

SET_MEDIA_TYPE = "application/secevent+jwt"
SET_TYP = "secevent+jwt"
EVENT_PREFIX = "https://tellonce.example/secevent/"
ALGORITHMS = ["ES256"]
# A token naming a key we do not have makes us ask Tell Once for its keys again (it may have
# a new one), but not more often than this: forged tokens must not make us hammer it.
KEY_REFRESH_SECONDS = 60.0


class EventRejected(Exception):
    """A notice we do not accept; ``err`` is the RFC 8935 error code we answer with."""

    def __init__(self, err: str, description: str) -> None:
        super().__init__(description)
        self.err = err
        self.description = description


class KeysUnavailable(Exception):
    """We could not get Tell Once's public keys, so we cannot check anything yet."""


@dataclass(frozen=True)
class Notice:
    """One verified notice: its event (``data_point_contested`` ...), ids, and times."""

    jti: str
    event: str
    details: dict[str, Any]
    subject: str | None
    happened_at: float
    received_at: float
    token: str


def _moment(value: object) -> float | None:
    """A NumericDate claim (seconds since 1970), if it is one."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


class Inbox:
    """Verifies, de-duplicates and keeps the notices Tell Once sends us."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        fetch_keys: Callable[[], dict[str, Any]],
        *,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.fetch_keys = fetch_keys
        self.now = now
        self._keys: KeySet | None = None
        self._keys_fetched_at = 0.0
        self._notices: dict[str, Notice] = {}
        self._lock = threading.Lock()

    def receive(self, token: str) -> bool:
        """Check and keep one notice; True if it is new, False if we already had it.

        Raises EventRejected (answer 400) or KeysUnavailable (answer 503, so it is retried).
        """
        claims = self._verify(token)
        ((uri, details),) = claims["events"].items()
        subject = claims.get("sub_id")
        notice = Notice(
            jti=claims["jti"],
            event=uri.removeprefix(EVENT_PREFIX),
            details=details if isinstance(details, dict) else {},
            subject=str(subject["id"]) if isinstance(subject, dict) and "id" in subject else None,
            happened_at=_moment(claims.get("toe")) or _moment(claims.get("iat")) or self.now(),
            received_at=self.now(),
            token=token,
        )
        with self._lock:
            if notice.jti in self._notices:
                return False
            self._notices[notice.jti] = notice
            return True

    def notices(self, subject: str | None = None) -> list[Notice]:
        """The notices kept, newest first; only those about ``subject`` when one is given."""
        with self._lock:
            kept = list(self._notices.values())
        if subject is not None:
            kept = [notice for notice in kept if notice.subject == subject]
        return sorted(kept, key=lambda notice: (notice.happened_at, notice.received_at))[::-1]

    def _key_set(self, *, refresh: bool = False) -> KeySet:
        with self._lock:
            stale = self.now() - self._keys_fetched_at >= KEY_REFRESH_SECONDS
            if self._keys is None or (refresh and stale):
                try:
                    self._keys = KeySet.import_key_set(self.fetch_keys())  # type: ignore[arg-type]
                except (TellOnceProblem, JoseError, ValueError, TypeError, KeyError):
                    raise KeysUnavailable("We could not get Tell Once's public keys.") from None
                self._keys_fetched_at = self.now()
            return self._keys

    def _signed(self, token: str) -> tuple[dict[str, Any], Any]:
        try:
            try:
                signed = jws.deserialize_compact(token, self._key_set(), algorithms=ALGORITHMS)
            except InvalidKeyIdError:
                keys = self._key_set(refresh=True)
                signed = jws.deserialize_compact(token, keys, algorithms=ALGORITHMS)
            return signed.headers(), json.loads(signed.payload)
        except (JoseError, ValueError, TypeError):
            raise EventRejected(
                "invalid_key", "This is not signed with Tell Once's key, or it was changed."
            ) from None

    def _verify(self, token: str) -> dict[str, Any]:
        headers, claims = self._signed(token)
        typ = headers.get("typ")
        if not isinstance(typ, str) or typ.lower() not in (SET_TYP, SET_MEDIA_TYPE):
            raise EventRejected("invalid_request", "This is not a security event token.")
        if not isinstance(claims, dict):
            raise EventRejected("invalid_request", "This security event token has no claims.")
        if claims.get("iss") != self.issuer:
            raise EventRejected("invalid_issuer", "This did not come from the Tell Once we use.")
        audience = claims.get("aud")
        if audience != self.audience and not (
            isinstance(audience, list) and self.audience in audience
        ):
            raise EventRejected("invalid_audience", "This is meant for someone else.")
        events = claims.get("events")
        if not isinstance(claims.get("jti"), str) or not isinstance(events, dict):
            raise EventRejected("invalid_request", "This has no jti or no events.")
        if len(events) != 1:
            raise EventRejected("invalid_request", "Tell Once sends one event in each token.")
        return claims
