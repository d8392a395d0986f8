"""The department register: add, look up, list and disable the services that may ask for data.

Registering and disabling are leaves in the public ledger, in the same transaction as the
change, so anyone can see who was allowed to ask people for what, and who answers for it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError
from sqlalchemy import select
from sqlmodel import Session, col

from connectors.department_schema import (
    CLIENT_ID,
    CLIENT_SECRET_BASIC,
    check_url,
    load_key_set,
    load_metadata,
)
from connectors.errors import ConnectorError, InvalidMetadata
from connectors.events import DEPARTMENT_DISABLED, DEPARTMENT_REGISTERED
from connectors.models import Department
from vault import ledger
from vault.errors import NotFound
from vault.services import Vault

CLIENT_METADATA_FIELDS = (
    "client_name",
    "redirect_uris",
    "token_endpoint_auth_method",
    "grant_types",
    "jwks",
    "jwks_uri",
)
KEY_FETCH_TIMEOUT_SECONDS = 5
KEY_CACHE_SECONDS = 300
MAX_KEY_SET_BYTES = 64 * 1024

# Fetched key sets, by URI: (monotonic time fetched, key set). Per process, as the brief
# allows; a department that rotates keys waits at most KEY_CACHE_SECONDS.
_key_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_key_cache_lock = threading.Lock()
_monotonic = time.monotonic  # a seam for tests of the cache's lifetime
# Ids we generate (url-safe) and ids operators choose both fit this; anything else is not shown.
_SHOWABLE_ID = re.compile(r"^[A-Za-z0-9_-]{3,64}$")


@dataclass(frozen=True)
class Registered:
    """A department just registered, and its client secret (only for client_secret_basic).

    The secret is shown once: only its SHA-256 is kept.
    """

    department: Department
    client_secret: str | None


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _shown_id(client_id: object) -> str:
    """The client id, if it is safe to repeat in a message (it may come from a request)."""
    text = str(client_id)
    return f"'{text}'" if _SHOWABLE_ID.match(text) else "given"


def _choose_client_id(session: Session, client_id: str | None) -> str:
    if client_id is None:
        while True:  # 96 random bits: a clash is as good as impossible, but never reuse one
            candidate = "dept_" + secrets.token_urlsafe(12)
            if session.get(Department, candidate) is None:
                return candidate
    if not isinstance(client_id, str) or not CLIENT_ID.match(client_id):
        raise InvalidMetadata(
            "The client id must be 3 to 64 characters: lower-case letters, digits, - or _."
        )
    if session.get(Department, client_id) is not None:
        raise InvalidMetadata(f"The client id '{client_id}' is already taken by a department.")
    return client_id


def register_department(
    session: Session, vault: Vault, metadata: Mapping[str, Any], *, client_id: str | None = None
) -> Registered:
    """Check a registration file's content, store the department and log it in the ledger."""
    loaded = load_metadata(metadata)
    department_id = _choose_client_id(session, client_id)
    client_secret = None
    if loaded["token_endpoint_auth_method"] == CLIENT_SECRET_BASIC:
        client_secret = secrets.token_urlsafe(32)
    tellonce = loaded["tellonce"]
    now = vault.clock()
    department = Department(
        id=department_id,
        name=loaded["client_name"],
        client_metadata={
            name: loaded[name] for name in CLIENT_METADATA_FIELDS if loaded[name] is not None
        },
        secret_hash=_hash_secret(client_secret) if client_secret else None,
        purposes=tellonce["purposes"],
        officer=tellonce["accountable_officer"],
        webhook_url=tellonce["webhook_url"],
        created_at=now,
    )
    session.add(department)
    ledger.append(
        session,
        vault,
        [
            ledger.LedgerEvent(
                DEPARTMENT_REGISTERED.name,
                department,
                now,
                details={
                    "department_id": department.id,
                    "name": department.name,
                    "auth_method": loaded["token_endpoint_auth_method"],
                    "purposes": [
                        {
                            "code": item["code"],
                            "data_points": item["data_points"],
                            "story_topics": item["story_topics"],
                        }
                        for item in department.purposes
                    ],
                    # The role answers publicly; the officer's name and email stay in the row
                    # (vouched for by its digest), out of a log that can never forget them.
                    "accountable_role": department.officer["role"],
                },
            )
        ],
    )
    return Registered(department, client_secret)


def get_department(session: Session, client_id: str) -> Department:
    """Fetch a department by client id (disabled ones too), or raise NotFound."""
    department = session.get(Department, client_id) if isinstance(client_id, str) else None
    if department is None:
        raise NotFound(f"There is no department with the client id {_shown_id(client_id)}.")
    return department


def active_department(session: Session, client_id: str) -> Department | None:
    """The department if it exists and is not disabled, else None."""
    department = session.get(Department, client_id) if isinstance(client_id, str) else None
    if department is None or department.disabled_at is not None:
        return None
    return department


def list_departments(session: Session) -> list[Department]:
    """Every department, oldest first (disabled ones too)."""
    statement = select(Department).order_by(col(Department.created_at), col(Department.id))
    return list(session.execute(statement).scalars())


def disable_department(session: Session, vault: Vault, client_id: str) -> Department:
    """Stop a department from asking for or fetching data, and log it; once only."""
    department = get_department(session, client_id)
    if department.disabled_at is not None:
        raise ConnectorError(
            f"The department {_shown_id(client_id)} is already disabled.", status=409
        )
    now = vault.clock()
    department.disabled_at = now
    session.add(department)
    ledger.append(
        session,
        vault,
        [
            ledger.LedgerEvent(
                DEPARTMENT_DISABLED.name, department, now, details={"department_id": department.id}
            )
        ],
    )
    return department


def check_client_secret(department: Department, secret: str) -> bool:
    """Say whether ``secret`` is this department's client secret (in constant time)."""
    if department.secret_hash is None or not isinstance(secret, str):
        return False
    return hmac.compare_digest(_hash_secret(secret), department.secret_hash)


def auth_method(department: Department) -> str:
    """How the department authenticates at the token endpoint."""
    return str(department.client_metadata["token_endpoint_auth_method"])


def _refuse_redirects() -> urllib.request.OpenerDirector:
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        # A redirect could lead to plain http or an internal address: keys come from the
        # registered URI or not at all.
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(NoRedirect)


def _fetch_key_set(uri: str) -> dict[str, Any]:
    unreachable = "We could not fetch the department's public keys from its jwks_uri"
    try:
        check_url(uri)
    except ValidationError:
        raise ConnectorError(
            f"{unreachable}: it is not an https URL.", error="invalid_client", status=401
        ) from None
    request = urllib.request.Request(uri, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with _refuse_redirects().open(request, timeout=KEY_FETCH_TIMEOUT_SECONDS) as response:
            body = response.read(MAX_KEY_SET_BYTES + 1)
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the open response
        raise ConnectorError(
            f"{unreachable}: it answered with HTTP status {exc.code}.",
            error="invalid_client",
            status=401,
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError):
        raise ConnectorError(
            f"{unreachable}: it could not be reached.", error="invalid_client", status=401
        ) from None
    if len(body) > MAX_KEY_SET_BYTES:
        raise ConnectorError(
            f"{unreachable}: the answer is too large.", error="invalid_client", status=401
        )
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ConnectorError(
            f"{unreachable}: the answer is not JSON.", error="invalid_client", status=401
        ) from None
    try:
        return load_key_set(document, "jwks_uri")
    except InvalidMetadata as exc:
        raise ConnectorError(
            f"{unreachable}: {exc.message}", error="invalid_client", status=401
        ) from None


def public_key_set(department: Department) -> dict[str, Any]:
    """The department's JWK Set: registered inline, or fetched from its jwks_uri (cached)."""
    metadata = department.client_metadata
    if "jwks" in metadata:
        return _copy(metadata["jwks"])
    uri = metadata.get("jwks_uri")
    if not isinstance(uri, str):
        raise ConnectorError(
            "This department signs in with a client secret, so it has no public keys.",
            error="invalid_client",
            status=401,
        )
    with _key_cache_lock:
        cached = _key_cache.get(uri)
    if cached is not None and _monotonic() - cached[0] < KEY_CACHE_SECONDS:
        return _copy(cached[1])
    # Fetched outside the lock: one slow department must not hold up every other one.
    key_set = _fetch_key_set(uri)
    with _key_cache_lock:
        _key_cache[uri] = (_monotonic(), key_set)
    return _copy(key_set)


def _copy(key_set: dict[str, Any]) -> dict[str, Any]:
    # Callers get their own copy, so nothing they do can change the cached keys.
    return {"keys": [dict(jwk) for jwk in key_set["keys"]]}


def forget_fetched_keys() -> None:
    """Empty the in-process cache of fetched key sets (the next use fetches afresh)."""
    with _key_cache_lock:
        _key_cache.clear()


def purpose(department: Department, code: str) -> dict[str, Any] | None:
    """The registered purpose with this code, or None."""
    for item in department.purposes:
        if item["code"] == code:
            return dict(item)
    return None


def describe(department: Department) -> dict[str, Any]:
    """Everything registered about a department, shaped like its file; never the secret hash."""
    return {
        "client_id": department.id,
        "status": "disabled" if department.disabled_at is not None else "active",
        "created_at": department.created_at.isoformat(),
        "disabled_at": department.disabled_at.isoformat() if department.disabled_at else None,
        **department.client_metadata,
        "tellonce": {
            "purposes": department.purposes,
            "accountable_officer": department.officer,
            "webhook_url": department.webhook_url,
        },
    }
