"""The authorization matrix: every route by every actor, and the answer each must get.

Three tables, one row per route (method + rule, as ``app.url_map`` names it) and, for a
route that takes an id, one row per owner of the id: ``@a`` (citizen A's thing), ``@b``
(citizen B's), ``@d`` (department D1's token). Every cell is written down; a route that is
not here fails ``test_every_route_is_in_the_table``.

Actors (``matrix_world.py`` builds them):

    anonymous          no cookie, no token
    operator           runs the ``tellonce`` command line and has no web role, so on the
                       web the operator is anonymous (the "out" column)
    citizen_a/b        A and B, signed in                                  (cA, cB)
    worker_a_<scope>   A's helper with only that scope: view, answer_requests,
                       manage_story, challenge                   (wv, wa, ws, wc)
    worker_a_expired   A's helper whose permission ran out (it had every scope)   (wx)
    worker_a_revoked   A's helper whom A removed (it had every scope)             (wr)
    worker_b           B's helper with every scope                                (wB)
    dept_grant_a_housing / dept_grant_a_benefits
                       department D1 with A's grant for each of its two purposes (dh, db)
    dept_grant_a_expired / dept_grant_a_revoked
                       D1 with a live access token whose grant from A ran out or that A
                       stopped                                                (dx, dr)
    dept_grant_b       D1 with B's grant, presenting it on A's things too          (dB)
    dept_client_credentials
                       D1's department-wide token (scope ``challenges``)           (dc)
    other_department   D2, registered, with no grant (its own client credentials)  (o2)

Web pages: a department's software has no browser session, so on web pages every department
actor is "out" too (it sends its DPoP token and proof, which pages ignore). On the API and
the OAuth endpoints every citizen and worker is "web" (their cookies are no credential there).

Codes. The actor gets in:

    ok   200             201  201 Created
    go   a redirect to the next step of the journey (``GO`` below names it)
    400 / 409 / 422      got past every authorization check, then the probe request was
                         refused for its content or state (where a valid one would change
                         what the other cells see; ``SEND`` says what is sent)
    act  introspection says the token is active        rev  the token is now revoked

The actor is refused (nothing personal in the answer, and for an id that is not theirs the
answer is the same, byte for byte, as for an id that does not exist):

    in   redirect to /sign-in                 pe   redirect to /people (no live permission
                                                   to act for that person, or not theirs)
    401  no usable credential                 403  refused whatever the id
    404  indistinguishable from "not found"   exp  400 "this request has ended": the consent
                                                   page was not opened in this browser
    ina  introspection says "active": false   nop  200, and the token still works
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALLOWED = frozenset({"ok", "201", "go", "400", "409", "422", "act", "rev"})
REFUSED = frozenset({"in", "pe", "401", "403", "404", "exp", "ina", "nop"})
STATUS = {"ok": 200, "201": 201, "400": 400, "401": 401, "403": 403, "404": 404}
STATUS |= {"409": 409, "422": 422, "exp": 400, "act": 200, "ina": 200, "rev": 200, "nop": 200}

ACTORS = (
    "anonymous",
    "operator",
    "citizen_a",
    "citizen_b",
    "worker_a_view",
    "worker_a_answer_requests",
    "worker_a_manage_story",
    "worker_a_challenge",
    "worker_a_expired",
    "worker_a_revoked",
    "worker_b",
    "dept_grant_a_housing",
    "dept_grant_a_benefits",
    "dept_grant_a_expired",
    "dept_grant_a_revoked",
    "dept_grant_b",
    "dept_client_credentials",
    "other_department",
)
DEPARTMENTS = ACTORS[11:]
WEB_COLUMNS = {
    "out": ("anonymous", "operator", *DEPARTMENTS),
    "cA": ("citizen_a",),
    "cB": ("citizen_b",),
    "wv": ("worker_a_view",),
    "wa": ("worker_a_answer_requests",),
    "ws": ("worker_a_manage_story",),
    "wc": ("worker_a_challenge",),
    "wx": ("worker_a_expired",),
    "wr": ("worker_a_revoked",),
    "wB": ("worker_b",),
}
API_COLUMNS = {
    "out": ("anonymous", "operator"),
    "web": ACTORS[2:11],
    "dh": ("dept_grant_a_housing",),
    "db": ("dept_grant_a_benefits",),
    "dx": ("dept_grant_a_expired",),
    "dr": ("dept_grant_a_revoked",),
    "dB": ("dept_grant_b",),
    "dc": ("dept_client_credentials",),
    "o2": ("other_department",),
}

# Web pages. A helper acts in the person's vault within their scopes (403 outside them) and
# only while the permission lives (else /people); the person's own pages (delete, download,
# helpers, notifications) refuse every helper. Passkeys belong to the signed-in account, so a
# helper acting for A has none of A's. A consent request can be answered only in the browser
# that opened it. The two "check" pages that only send a plain visit back to their form
# (information, story) and the helper-change check page (before it looks the helper up) just
# redirect: the page they lead to does the checking.
#                                                   out cA  cB  wv  wa  ws  wc  wx  wr  wB
WEB = """
GET  /                                          -   in  ok  ok  ok  403 403 403 pe  pe  ok
GET  /challenges                                -   in  ok  ok  ok  403 403 403 pe  pe  ok
GET  /challenges/<challenge_id>                 @a  in  ok  404 ok  403 403 403 pe  pe  404
GET  /challenges/<challenge_id>                 @b  in  404 ok  404 403 403 403 pe  pe  ok
GET  /challenges/<challenge_id>/sent            @a  in  ok  404 ok  403 403 403 pe  pe  404
GET  /challenges/<challenge_id>/sent            @b  in  404 ok  404 403 403 403 pe  pe  ok
GET  /decisions                                 -   in  ok  ok  ok  403 403 403 pe  pe  ok
GET  /decisions/<decision_id>                   @a  in  ok  404 ok  403 403 403 pe  pe  404
GET  /decisions/<decision_id>                   @b  in  404 ok  404 403 403 403 pe  pe  ok
GET  /decisions/<decision_id>/wrong             @a  in  ok  404 403 403 403 ok  pe  pe  404
GET  /decisions/<decision_id>/wrong             @b  in  404 ok  403 403 403 404 pe  pe  ok
POST /decisions/<decision_id>/wrong             @a  in  ok  404 403 403 403 ok  pe  pe  404
POST /decisions/<decision_id>/wrong             @b  in  404 ok  403 403 403 404 pe  pe  ok
GET  /decisions/<decision_id>/wrong/check       @a  in  go  404 403 403 403 go  pe  pe  404
GET  /decisions/<decision_id>/wrong/check       @b  in  404 go  403 403 403 404 pe  pe  go
POST /decisions/<decision_id>/wrong/check       @a  in  go  404 403 403 403 go  pe  pe  404
POST /decisions/<decision_id>/wrong/check       @b  in  404 go  403 403 403 404 pe  pe  go
GET  /delete                                    -   in  ok  ok  403 403 403 403 pe  pe  403
POST /delete                                    -   in  ok  ok  403 403 403 403 pe  pe  403
GET  /download                                  -   in  ok  ok  403 403 403 403 pe  pe  403
GET  /download/tell-once.json                   -   in  ok  ok  403 403 403 403 pe  pe  403
GET  /help/accept                               -   in  ok  ok  ok  ok  ok  ok  ok  ok  ok
POST /help/accept                               -   in  ok  ok  ok  ok  ok  ok  ok  ok  ok
GET  /helpers                                   -   in  ok  ok  403 403 403 403 pe  pe  403
GET  /helpers/<delegation_id>/change            @a  in  ok  404 403 403 403 403 pe  pe  403
GET  /helpers/<delegation_id>/change            @b  in  404 ok  403 403 403 403 pe  pe  403
POST /helpers/<delegation_id>/change            @a  in  ok  404 403 403 403 403 pe  pe  403
POST /helpers/<delegation_id>/change            @b  in  404 ok  403 403 403 403 pe  pe  403
GET  /helpers/<delegation_id>/change/check      @a  in  go  go  403 403 403 403 pe  pe  403
GET  /helpers/<delegation_id>/change/check      @b  in  go  go  403 403 403 403 pe  pe  403
POST /helpers/<delegation_id>/change/check      @a  in  go  go  403 403 403 403 pe  pe  403
POST /helpers/<delegation_id>/change/check      @b  in  go  go  403 403 403 403 pe  pe  403
GET  /helpers/<delegation_id>/remove            @a  in  ok  404 403 403 403 403 pe  pe  403
GET  /helpers/<delegation_id>/remove            @b  in  404 ok  403 403 403 403 pe  pe  403
POST /helpers/<delegation_id>/remove            @a  in  go  404 403 403 403 403 pe  pe  403
POST /helpers/<delegation_id>/remove            @b  in  404 go  403 403 403 403 pe  pe  403
POST /helpers/codes/<invitation_id>/cancel      @a  in  go  404 403 403 403 403 pe  pe  403
POST /helpers/codes/<invitation_id>/cancel      @b  in  404 go  403 403 403 403 pe  pe  403
GET  /helpers/invite                            -   in  ok  ok  403 403 403 403 pe  pe  403
POST /helpers/invite                            -   in  ok  ok  403 403 403 403 pe  pe  403
GET  /helpers/invite/check                      -   in  go  go  403 403 403 403 pe  pe  403
POST /helpers/invite/check                      -   in  go  go  403 403 403 403 pe  pe  403
POST /helpers/invite/send                       @a  in  ok  404 403 403 403 403 pe  pe  403
POST /helpers/invite/send                       @b  in  404 ok  403 403 403 403 pe  pe  403
GET  /helpers/invite/until                      -   in  go  go  403 403 403 403 pe  pe  403
POST /helpers/invite/until                      -   in  go  go  403 403 403 403 pe  pe  403
GET  /information                               -   in  ok  ok  ok  403 403 403 pe  pe  ok
GET  /information/<key>/change                  -   in  ok  ok  403 403 ok  403 pe  pe  ok
POST /information/<key>/change                  -   in  ok  ok  403 403 ok  403 pe  pe  ok
GET  /information/<key>/check                   -   in  go  go  go  go  go  go  pe  pe  go
POST /information/<key>/check                   -   in  400 400 403 403 400 403 pe  pe  400
GET  /information/<key>/history                 -   in  ok  ok  ok  403 403 403 pe  pe  ok
GET  /notifications                             -   in  ok  ok  403 403 403 403 pe  pe  403
POST /notifications                             -   in  ok  ok  403 403 403 403 pe  pe  403
GET  /oauth/consent/<pushed_id>                 @a  in  ok  exp 403 exp 403 403 pe  pe  exp
GET  /oauth/consent/<pushed_id>                 @b  in  exp ok  403 exp 403 403 pe  pe  exp
POST /oauth/consent/<pushed_id>                 @a  in  ok  exp 403 exp 403 403 pe  pe  exp
POST /oauth/consent/<pushed_id>                 @b  in  exp ok  403 exp 403 403 pe  pe  exp
GET  /passkeys                                  -   in  ok  ok  ok  ok  ok  ok  ok  ok  ok
GET  /passkeys/<passkey_id>/remove              @a  in  ok  404 404 404 404 404 404 404 404
GET  /passkeys/<passkey_id>/remove              @b  in  404 ok  404 404 404 404 404 404 404
POST /passkeys/<passkey_id>/remove              @a  in  go  404 404 404 404 404 404 404 404
POST /passkeys/<passkey_id>/remove              @b  in  404 go  404 404 404 404 404 404 404
POST /passkeys/options                          -   in  ok  ok  ok  ok  ok  ok  ok  ok  ok
POST /passkeys/verify                           -   in  400 400 400 400 400 400 400 400 400
GET  /people                                    -   in  ok  ok  ok  ok  ok  ok  ok  ok  ok
POST /people/<delegation_id>/act                @a  in  pe  pe  go  pe  pe  pe  pe  pe  pe
POST /people/<delegation_id>/act                @b  in  pe  pe  pe  pe  pe  pe  pe  pe  go
POST /people/stop                               -   in  go  go  go  go  go  go  go  go  go
GET  /people/start-account                      -   in  ok  ok  pe  pe  pe  pe  pe  pe  pe
POST /people/start-account                      -   in  ok  ok  pe  pe  pe  pe  pe  pe  pe
GET  /sharing                                   -   in  ok  ok  ok  403 403 403 pe  pe  ok
GET  /sharing/<grant_id>/stop                   @a  in  ok  404 403 ok  403 403 pe  pe  404
GET  /sharing/<grant_id>/stop                   @b  in  404 ok  403 404 403 403 pe  pe  ok
POST /sharing/<grant_id>/stop                   @a  in  go  404 403 go  403 403 pe  pe  404
POST /sharing/<grant_id>/stop                   @b  in  404 go  403 404 403 403 pe  pe  go
GET  /story                                     -   in  ok  ok  ok  403 403 403 pe  pe  ok
GET  /story/<topic>                             -   in  ok  ok  ok  403 403 403 pe  pe  ok
GET  /story/<topic>/check                       -   in  go  go  go  go  go  go  pe  pe  go
POST /story/<topic>/check                       -   in  ok  ok  403 403 ok  403 pe  pe  ok
GET  /story/<topic>/write                       -   in  ok  ok  403 403 ok  403 pe  pe  ok
POST /story/<topic>/write                       -   in  ok  ok  403 403 ok  403 pe  pe  ok
GET  /who-has-seen-it                           -   in  ok  ok  ok  403 403 403 pe  pe  ok
"""

# The department API and the OAuth endpoints. D1's tokens reach D1's decisions, challenges and
# grants whichever person they are about (department-wide, as client credentials do), but a
# token whose grant ended or was stopped is dead (401): only /data answers it, with a refusal
# the person sees (403). /data and /decisions need a person's grant: client credentials get 403.
# The OAuth endpoints want a department's client assertion; cookies and tokens are no substitute.
#                                                   out web dh  db  dx  dr  dB  dc  o2
API = """
GET  /api/v1/data                               -   401 401 ok  ok  403 403 ok  403 403
POST /api/v1/decisions                          -   401 401 422 422 401 401 422 403 403
POST /api/v1/decisions/<decision_id>/reviews    @a  401 401 422 422 401 401 422 422 404
POST /api/v1/decisions/<decision_id>/reviews    @b  401 401 422 422 401 401 422 422 404
GET  /api/v1/challenges                         -   401 401 ok  ok  401 401 ok  ok  ok
POST /api/v1/challenges/<challenge_id>/answer   @a  401 401 422 422 401 401 422 422 404
POST /api/v1/challenges/<challenge_id>/answer   @b  401 401 422 422 401 401 422 422 404
POST /api/v1/grants/<grant_id>/deletion         @a  401 401 409 409 401 401 409 409 404
POST /api/v1/grants/<grant_id>/deletion         @b  401 401 409 409 401 401 409 409 404
POST /oauth/par                                 -   401 401 201 201 201 201 201 201 201
POST /oauth/token                               -   401 401 ok  ok  ok  ok  ok  ok  ok
POST /oauth/revoke                              @d  401 401 rev rev rev rev rev rev nop
POST /oauth/introspect                          @d  401 401 act act act act act act ina
"""

# Pages and documents for everyone: every actor gets the same code.
PUBLIC = """
GET  /.well-known/oauth-authorization-server    ok
GET  /about-the-record                          ok
GET  /api/v1/openapi.json                       ok
GET  /assets/<path:filename>                    ok
GET  /deleted                                   ok
GET  /govuk/govuk-frontend.css                  ok
GET  /govuk/govuk-frontend.min.js               ok
GET  /healthz                                   ok
GET  /jwks.json                                 ok
GET  /language/<code>                           go
GET  /ledger/checkpoint                         ok
GET  /ledger/entries                            ok
GET  /ledger/proof/consistency                  ok
GET  /ledger/proof/inclusion                    ok
GET  /ledger/public-key                         ok
GET  /oauth/authorize                           400
GET  /sign-in                                   ok
POST /sign-in                                   400
GET  /sign-in/check-your-email                  ok
GET  /sign-in/link                              400
POST /sign-in/link                              400
POST /sign-in/passkey/options                   ok
POST /sign-in/passkey/verify                    400
GET  /sign-out                                  go
POST /sign-out                                  go
GET  /static/<path:filename>                    ok
"""

# Where a "go" redirect leads ({name} is the URL argument sent).
GO = {
    "GET /decisions/<decision_id>/wrong/check": "/decisions/{decision_id}/wrong",
    "POST /decisions/<decision_id>/wrong/check": "/decisions/{decision_id}/wrong",
    "GET /helpers/<delegation_id>/change/check": "/helpers/{delegation_id}/change",
    "POST /helpers/<delegation_id>/change/check": "/helpers/{delegation_id}/change",
    "POST /helpers/<delegation_id>/remove": "/helpers",
    "POST /helpers/codes/<invitation_id>/cancel": "/helpers",
    "GET /helpers/invite/check": "/helpers/invite",
    "POST /helpers/invite/check": "/helpers/invite",
    "GET /helpers/invite/until": "/helpers/invite",
    "POST /helpers/invite/until": "/helpers/invite",
    "GET /information/<key>/check": "/information/{key}/change",
    "POST /passkeys/<passkey_id>/remove": "/passkeys",
    "POST /people/<delegation_id>/act": "/",
    "POST /people/stop": "/people",
    "POST /sharing/<grant_id>/stop": "/sharing",
    "GET /story/<topic>/check": "/story/{topic}/write",
    "GET /language/<code>": "/",
    "GET /sign-out": "/sign-in",
    "POST /sign-out": "/sign-in",
}


@dataclass(frozen=True)
class Send:
    """What a route is sent: the same for every actor, who adds only their credentials.

    ``args`` maps a URL argument to a thing in the world: ``"decision"`` is A's decision on an
    ``@a`` row and B's on a ``@b`` row; ``"=value"`` is that literal value. ``target`` names a
    form field that carries the row's id instead of the URL. ``form`` is a form POST (a
    browser's CSRF token is added); ``client_auth`` adds a department's client assertion
    (``dpop``: and a DPoP proof, for endpoints that bind what they issue to the key).
    ``restores`` says the allowed cell changes something the world puts back afterwards.
    """

    args: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] | None = None
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    client_auth: bool = False
    dpop: bool = False
    restores: bool = False


API_HEADERS = {"Acting-Officer": "A. Officer", "Case-Reference": "HOU-2291"}
PAR_FORM = {
    "response_type": "code",
    "redirect_uri": "https://housing.anytown.example/callback",
    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    "code_challenge_method": "S256",
    "state": "matrix",
    "authorization_details": (
        '[{"type": "tellonce_data", "purpose": "emergency_housing",'
        ' "data_points": ["identity.name"], "case_reference": "HOU-2291",'
        ' "duration_days": 30, "data_life_days": 90, "max_fetches": 10}]'
    ),
}
# Probes: valid to the schema, so authorization is what decides, then refused by a rule that
# is checked only once the thing is found to be the caller's (nothing changes).
NOT_THIS_CASE = {  # the grant's case is HOU-2291: 422 once the grant is found to be theirs
    "case_reference": "NOT-THIS-CASE",
    "title": "Probe",
    "outcome": "Probe",
    "reasons": "Probe",
    "automated": False,
    "accountable_officer": {"name": "P. Robe", "role": "Tester"},
    "data_points_used": [],
}
OWN_REVIEW = {  # the automated decision's own accountable officer may not review it: 422
    "kind": "upheld",
    "reviewer": {"name": "Priya Shah", "role": "Head of Housing Options"},
    "reasons": "Probe",
}
NO_VALUE = {"outcome": "corrected", "reasons": "Probe"}  # a correction needs the value: 422

DECISION = {"decision_id": "decision"}
POINT = {"key": "contact.address", "version": "1"}

SEND: dict[str, Send] = {
    # Web pages. POSTs send only the CSRF token unless said: an incomplete form is shown again.
    "GET /challenges/<challenge_id>": Send(args={"challenge_id": "challenge"}),
    "GET /challenges/<challenge_id>/sent": Send(args={"challenge_id": "challenge"}),
    "GET /decisions/<decision_id>": Send(args={"decision_id": "decision"}),
    # "This is wrong" beside one data point version the decision used.
    "GET /decisions/<decision_id>/wrong": Send(args=DECISION, query=POINT),
    "POST /decisions/<decision_id>/wrong": Send(args=DECISION, query=POINT, form={}),
    # No draft in this browser: the check page sends people back to the question.
    "GET /decisions/<decision_id>/wrong/check": Send(args=DECISION, query=POINT),
    "POST /decisions/<decision_id>/wrong/check": Send(args=DECISION, query=POINT, form={}),
    "POST /delete": Send(form={}),  # without the "I understand" tick
    "POST /help/accept": Send(form={"code": "ABCD-EFGH-JKLM"}),  # a code nobody was given
    "GET /helpers/<delegation_id>/change": Send(args={"delegation_id": "delegation"}),
    "POST /helpers/<delegation_id>/change": Send(args={"delegation_id": "delegation"}, form={}),
    "GET /helpers/<delegation_id>/change/check": Send(args={"delegation_id": "delegation"}),
    "POST /helpers/<delegation_id>/change/check": Send(
        args={"delegation_id": "delegation"}, form={}
    ),
    "GET /helpers/<delegation_id>/remove": Send(args={"delegation_id": "delegation"}),
    "POST /helpers/<delegation_id>/remove": Send(
        args={"delegation_id": "delegation"}, form={}, restores=True
    ),
    "POST /helpers/codes/<invitation_id>/cancel": Send(
        args={"invitation_id": "invitation"}, form={}, restores=True
    ),
    "POST /helpers/invite": Send(form={}),
    "POST /helpers/invite/check": Send(form={}),
    # The person's real code, with no email address to send it to: the code page again.
    "POST /helpers/invite/send": Send(form={}, target="code"),
    "POST /helpers/invite/until": Send(form={}),
    "GET /information/<key>/change": Send(args={"key": "=identity.name"}),
    "POST /information/<key>/change": Send(args={"key": "=identity.name"}, form={}),
    "GET /information/<key>/check": Send(args={"key": "=identity.name"}),
    "POST /information/<key>/check": Send(args={"key": "=identity.name"}, form={}),  # no answer
    "GET /information/<key>/history": Send(args={"key": "=identity.name"}),
    "POST /notifications": Send(form={}),
    "GET /oauth/consent/<pushed_id>": Send(args={"pushed_id": "pushed"}),
    "POST /oauth/consent/<pushed_id>": Send(args={"pushed_id": "pushed"}, form={}),  # no button
    "GET /passkeys/<passkey_id>/remove": Send(args={"passkey_id": "passkey"}),
    "POST /passkeys/<passkey_id>/remove": Send(
        args={"passkey_id": "passkey"}, form={}, restores=True
    ),
    "POST /passkeys/options": Send(form={}),
    "POST /passkeys/verify": Send(form={}),
    "POST /people/<delegation_id>/act": Send(args={"delegation_id": "delegation"}, form={}),
    "POST /people/stop": Send(form={}),
    "POST /people/start-account": Send(form={}),
    "GET /sharing/<grant_id>/stop": Send(args={"grant_id": "grant"}),
    # A permission that is already stopped: stopping it again changes nothing.
    "POST /sharing/<grant_id>/stop": Send(args={"grant_id": "stopped_grant"}, form={}),
    "GET /story/<topic>": Send(args={"topic": "=housing"}),
    "GET /story/<topic>/check": Send(args={"topic": "=housing"}),
    "POST /story/<topic>/check": Send(args={"topic": "=housing"}, form={}),
    "GET /story/<topic>/write": Send(args={"topic": "=housing"}),
    "POST /story/<topic>/write": Send(args={"topic": "=housing"}, form={}),
    # The department API: the same headers and body from everyone.
    "GET /api/v1/data": Send(headers=API_HEADERS),
    "POST /api/v1/decisions": Send(headers=API_HEADERS, json=NOT_THIS_CASE),
    "POST /api/v1/decisions/<decision_id>/reviews": Send(
        args={"decision_id": "decision"}, headers=API_HEADERS, json=OWN_REVIEW
    ),
    "GET /api/v1/challenges": Send(headers=API_HEADERS),
    "POST /api/v1/challenges/<challenge_id>/answer": Send(
        args={"challenge_id": "challenge"}, headers=API_HEADERS, json=NO_VALUE
    ),
    # A's live permission: confirming its deletion is a conflict (it has not ended).
    "POST /api/v1/grants/<grant_id>/deletion": Send(
        args={"grant_id": "grant"}, headers=API_HEADERS
    ),
    "POST /oauth/par": Send(form=PAR_FORM, client_auth=True, dpop=True),
    "POST /oauth/token": Send(
        form={"grant_type": "client_credentials", "scope": "challenges"},
        client_auth=True,
        dpop=True,
    ),
    # D1's spare department-wide token (``@d``).
    "POST /oauth/revoke": Send(form={}, target="token", client_auth=True, restores=True),
    "POST /oauth/introspect": Send(form={}, target="token", client_auth=True),
    # Public pages.
    "GET /assets/<path:filename>": Send(args={"filename": "=images/favicon.svg"}),
    "GET /static/<path:filename>": Send(args={"filename": "=app.css"}),
    "GET /language/<code>": Send(args={"code": "=en"}),
    "GET /ledger/entries": Send(query={"start": "0", "end": "1"}),
    "GET /ledger/proof/inclusion": Send(query={"index": "0", "tree_size": "2"}),
    "GET /ledger/proof/consistency": Send(query={"from": "1", "to": "2"}),
    "POST /sign-in": Send(form={}),  # no email address
    "POST /sign-in/link": Send(form={}),  # no token
    "POST /sign-in/passkey/options": Send(form={}),
    "POST /sign-in/passkey/verify": Send(form={}),
    "POST /sign-out": Send(form={}),
}

# Canaries: distinct words in A's and B's data, in four kinds.
#   name    identity.name            story   the "housing" story (normal)
#   secret  the "health" story, marked "ask me each time": only the person ever sees it
#   told    what passed between the person and D1: the challenge's words, the decision
# An actor may see only these kinds; refused answers may hold only the CHROME kinds (the
# "You are acting for <name>" banner a helper with "view" sees on every page).
_A_HELPER = frozenset({"a.name", "a.story", "a.told"})
_D1 = frozenset({"a.told", "b.told"})  # D1's own challenges and decisions, department-wide
MAY_SEE: dict[str, frozenset[str]] = {
    "anonymous": frozenset(),
    "operator": frozenset(),
    "citizen_a": frozenset({"a.name", "a.story", "a.secret", "a.told"}),
    "citizen_b": frozenset({"b.name", "b.story", "b.secret", "b.told"}),
    "worker_a_view": _A_HELPER,
    "worker_a_answer_requests": _A_HELPER,
    "worker_a_manage_story": _A_HELPER,
    "worker_a_challenge": _A_HELPER,
    "worker_a_expired": frozenset(),  # their help has ended: nothing of A's any more
    "worker_a_revoked": frozenset(),
    "worker_b": frozenset({"b.name", "b.story", "b.told"}),
    "dept_grant_a_housing": _D1 | {"a.name", "a.story"},
    "dept_grant_a_benefits": _D1 | {"a.name"},
    "dept_grant_a_expired": _D1,  # an ended grant's token never yields the person's data
    "dept_grant_a_revoked": _D1,
    "dept_grant_b": _D1 | {"b.name", "b.story"},
    "dept_client_credentials": _D1,
    "other_department": frozenset(),
}
CHROME = {name: frozenset[str]() for name in ACTORS}
CHROME |= {"worker_a_view": frozenset({"a.name"}), "worker_b": frozenset({"b.name"})}

# Who holds a row's thing: for them an id is not "another's" (everyone else's answer must
# equal the answer for a random id). D1 holds its decisions, challenges, grants and tokens
# whichever person they are about; a person's helpers (even ended ones) are on their side.
DEPARTMENT_THINGS = ("/api/", "/oauth/revoke", "/oauth/introspect")
D1_ACTORS = frozenset(DEPARTMENTS) - {"other_department"}
SIDE = {
    "citizen_a": "a",
    "worker_a_view": "a",
    "worker_a_answer_requests": "a",
    "worker_a_manage_story": "a",
    "worker_a_challenge": "a",
    "worker_a_expired": "a",
    "worker_a_revoked": "a",
    "citizen_b": "b",
    "worker_b": "b",
}


def holds(actor: str, rule: str, target: str) -> bool:
    """Whether the row's thing (``@a``, ``@b``, ``@d``) is the actor's own to ask about."""
    if rule.startswith(DEPARTMENT_THINGS):
        return actor in D1_ACTORS
    return SIDE.get(actor) == target.lstrip("@")


@dataclass(frozen=True)
class Cell:
    """One route (with the owner of its id, if any) for one actor, and the expected code."""

    method: str
    rule: str
    target: str  # "", "@a", "@b" or "@d"
    actor: str
    code: str

    @property
    def route(self) -> str:
        return f"{self.method} {self.rule}"

    @property
    def allowed(self) -> bool:
        return self.code in ALLOWED

    def __str__(self) -> str:
        return f"{self.route}{' ' + self.target if self.target else ''} as {self.actor}"


def _rows(text: str, columns: dict[str, tuple[str, ...]] | None) -> list[Cell]:
    cells = []
    for line in text.strip().splitlines():
        method, rule, *rest = line.split()
        if columns is None:  # the public table: one code for every actor
            (code,) = rest
            cells += [Cell(method, rule, "", actor, code) for actor in ACTORS]
            continue
        target, *codes = rest
        assert len(codes) == len(columns), f"{line!r}: {len(codes)} codes, {len(columns)} columns"
        for code, actors in zip(codes, columns.values(), strict=True):
            cells += [Cell(method, rule, target.strip("-"), actor, code) for actor in actors]
    return cells


def cells() -> list[Cell]:
    """Every cell of the three tables, checked for codes and actors that are not known."""
    found = _rows(WEB, WEB_COLUMNS) + _rows(API, API_COLUMNS) + _rows(PUBLIC, None)
    for cell in found:
        assert cell.code in ALLOWED | REFUSED, f"{cell}: unknown code {cell.code!r}"
        assert cell.code != "go" or cell.route in GO, f"{cell}: say where 'go' leads in GO"
    return found


def routes() -> set[str]:
    """Every ``METHOD rule`` the tables cover."""
    return {cell.route for cell in cells()}
