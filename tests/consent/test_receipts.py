"""Consent receipts: signed, checkable by anyone with our public keys, tied to the ledger,
and holding ids and codes only, never the person's information.

The signature and key id are checked with joserfc and hashlib directly, not through
consent.receipts, so a mistake there cannot hide itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import KeySet

from consent import receipts
from consent.delegations import give_delegation
from consent.errors import ConsentError
from consent.grants import give_grant, revoke_grant_with_receipt
from tests.consent.factories import CASE, DEPARTMENT, Person, ask, entries
from vault import ledger, merkle
from vault.accounts import create_account
from vault.citizens import create_citizen, get_citizen, ledger_key
from vault.keys import LocalKeyFileProvider, init_key_file
from vault.records import record_data_point, record_story_section
from vault.services import Vault

CANARY = "Zebediah Quillfeather"
BAD = "This receipt was not signed by us, or it has been changed."


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_payload(token: str) -> dict[str, Any]:
    """The payload as anyone holding the token can read it, without checking anything."""
    body = json.loads(unb64url(token.split(".")[1]))
    assert isinstance(body, dict)
    return body


def verify_with_published_keys(vault: Vault, token: str) -> tuple[dict[str, Any], bytes]:
    """Check the token the way a department would, using only /jwks.json."""
    keys = KeySet.import_key_set(receipts.public_jwks(vault))  # type: ignore[arg-type]
    signed = jws.deserialize_compact(token, keys, algorithms=["ES256"])
    return dict(signed.headers()), signed.payload


def test_giving_a_grant_returns_a_receipt_anyone_can_check(db, vault, person):
    with db.tx() as session:
        given = give_grant(session, vault, person.me, ask())
    headers, payload = verify_with_published_keys(vault, given.receipt)
    assert headers == {
        "alg": "ES256",
        "typ": "consent-receipt+jwt",
        "kid": receipts.public_jwks(vault)["keys"][0]["kid"],
    }
    assert json.loads(payload) == receipts.read_receipt(vault, given.receipt)


def test_the_published_key_is_public_only_and_its_id_is_the_rfc7638_thumbprint(vault):
    (jwk,) = receipts.public_jwks(vault)["keys"]
    assert "d" not in jwk
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
    members = json.dumps(
        {name: jwk[name] for name in ("crv", "kty", "x", "y")}, separators=(",", ":")
    )
    assert jwk["kid"] == b64url(hashlib.sha256(members.encode()).digest())
    assert receipts.server_signing_jwk(vault).is_private


def test_the_signing_key_is_derived_from_the_key_file_and_stable(vault, key_file, tmp_path):
    again = Vault(keys=LocalKeyFileProvider(key_file), clock=vault.clock)
    assert receipts.public_jwks(again) == receipts.public_jwks(vault)
    other_file = tmp_path / "other-keys.json"
    init_key_file(other_file)
    other = Vault(keys=LocalKeyFileProvider(other_file), clock=vault.clock)
    assert receipts.public_jwks(other) != receipts.public_jwks(vault)


def test_the_receipt_speaks_dpv_and_iso_27560(db, vault, clock, person):
    with db.tx() as session:
        given = give_grant(
            session,
            vault,
            person.me,
            ask(
                data_points=["contact.phone", "housing.status"],
                story_topics=["housing", "health"],
                explicit_topics=["health"],
                data_life_days=90,
                max_fetches=10,
            ),
        )
        key = ledger_key(vault, get_citizen(session, person.citizen_id))
    payload = receipts.read_receipt(vault, given.receipt)
    grant = given.grant
    assert payload["@type"] == "dpv:ConsentReceipt"
    assert payload["dct:conformsTo"] == "https://w3id.org/dpv/schema/dpv-27560#receipt"
    assert payload["dct:identifier"] == payload["jti"]
    assert payload["iss"] == payload["dct:publisher"] == vault.ledger_origin
    assert payload["iat"] == int(clock().timestamp())
    assert payload["@context"]["dpv"] == "https://w3id.org/dpv#"
    record = payload["dpv:hasRecordOfActivity"]
    assert record["@type"] == "dpv:ConsentRecord"
    assert record["dct:identifier"] == grant.id
    assert record["dct:conformsTo"] == "https://w3id.org/dpv/schema/dpv-27560#record"
    # The person is named as in the grant's own leaf, a name no other leaf of theirs shares.
    name = json.loads(given.leaf.leaf)["citizen"]
    assert ledger.is_about(key, given.leaf.leaf)
    assert record["dpv:hasDataSubject"] == {"@type": "dpv:DataSubject", "dct:identifier": name}
    assert record["dpv:hasDataController"]["dct:identifier"] == DEPARTMENT
    process = record["dpv:hasProcess"]
    assert process["dpv:hasPurpose"] == {
        "@type": "dpv:Purpose",
        "dct:identifier": "emergency_housing",
        "dct:description": "To find you somewhere safe to stay tonight.",
    }
    assert process["dpv:hasPersonalData"] == [
        "contact.phone",
        "housing.status",
        "story:housing",
        "story:health",
    ]
    assert process["dpv:hasLegalBasis"] == [
        "dpv:ExpressedConsent",
        "dpv:ExplicitlyExpressedConsent",
    ]
    assert process["dpv:hasRecipient"]["dct:identifier"] == DEPARTMENT
    assert process["dpv:hasStorageCondition"]["dpv:hasDuration"]["rdf:value"] == "P90D"
    assert process["tellonce:caseReference"] == CASE
    assert process["tellonce:explicitTopics"] == ["health"]
    status = record["dpv:hasConsentStatus"]
    assert status["@type"] == "dpv:ConsentGiven"
    assert status["dpv:isIndicatedAtTime"] == clock().isoformat()
    assert status["dpv:isIndicatedBy"] == "dpv:DataSubject"
    assert status["dct:valid"] == f"{clock().isoformat()}/{(clock() + timedelta(30)).isoformat()}"
    assert {d["@type"]: d["rdf:value"] for d in status["dpv:hasDuration"]} == {
        "dpv:UntilTimeDuration": grant.ends_at.isoformat(),
        "dpv:FixedOccurrencesDuration": 10,
    }


def test_the_receipt_points_at_its_ledger_leaf_and_the_leaf_is_provably_in_the_log(
    db, vault, person
):
    with db.tx() as session:
        given = give_grant(session, vault, person.me, ask())
        give_grant(session, vault, person.me, ask(purpose_code="later_one"))  # the log grows
    found = receipts.read_receipt(vault, given.receipt)["tellonce:ledger"]
    with db.tx() as session:
        (entry,) = [e for e in entries(session, "grant.given") if e.idx == found["index"]]
        size = ledger.head_size(session)
        proof = ledger.inclusion_proof(session, found["index"], size)
        root = ledger.root_at(session, size)
    leaf_hash = base64.b64decode(found["leafHash"])
    assert (entry.row_id, found["kind"], found["origin"]) == (
        given.grant.id,
        "grant.given",
        vault.ledger_origin,
    )
    assert leaf_hash == bytes(entry.leaf_hash) == merkle.leaf_hash(bytes(entry.leaf))
    assert merkle.verify_inclusion(leaf_hash, found["index"], size, proof, root)


def test_stopping_a_grant_gives_a_withdrawn_receipt_for_the_revoked_leaf(db, vault, clock, person):
    with db.tx() as session:
        grant = give_grant(session, vault, person.me, ask()).grant
    clock.advance(days=3)
    with db.tx() as session:
        stopped = revoke_grant_with_receipt(session, vault, person.me, grant.id, issuer="me.test")
    assert stopped is not None
    leaf, token = stopped
    payload = receipts.read_receipt(vault, token)
    status = payload["dpv:hasRecordOfActivity"]["dpv:hasConsentStatus"]
    assert status["@type"] == "dpv:ConsentWithdrawn"
    assert status["dpv:isIndicatedAtTime"] == clock().isoformat()
    assert payload["iss"] == "me.test"
    assert payload["tellonce:ledger"]["index"] == leaf.index
    assert payload["tellonce:ledger"]["kind"] == "grant.revoked"
    with db.tx() as session:
        (entry,) = entries(session, "grant.revoked")
    assert base64.b64decode(payload["tellonce:ledger"]["leafHash"]) == bytes(entry.leaf_hash)


def test_a_helpers_yes_names_the_helper_and_their_delegation(db, vault, person, worker_account):
    with db.tx() as session:
        end = vault.clock() + timedelta(days=30)
        delegation = give_delegation(
            session, vault, person.me, worker_account, ["answer_requests"], end
        )
        given = give_grant(session, vault, person.helped_by(worker_account), ask())
    status = receipts.read_receipt(vault, given.receipt)["dpv:hasRecordOfActivity"][
        "dpv:hasConsentStatus"
    ]
    assert status["dpv:isIndicatedBy"] == {
        "@type": "dpv:Entity",
        "dct:identifier": f"worker:{worker_account}",
        "tellonce:delegation": delegation.id,
    }


def test_no_personal_value_ever_goes_into_a_receipt(db, vault):
    with db.tx() as session:
        citizen = create_citizen(session, vault)
        account = create_account(
            session, vault, "zebediah.quillfeather@example.com", citizen_id=citizen.id
        )
        for key, value in (
            ("identity.name", CANARY),
            ("contact.email", "zebediah.quillfeather@example.com"),
            ("support.needs", f"Call {CANARY} after noon."),
        ):
            record_data_point(session, vault, citizen.id, key, value, recorded_by="self")
        record_story_section(
            session, vault, citizen.id, "housing", f"My name is {CANARY}.", recorded_by="self"
        )
    person = Person(citizen.id, account.id)
    with db.tx() as session:
        given = give_grant(
            session,
            vault,
            person.me,
            ask(data_points=["identity.name", "contact.email", "support.needs"]),
        )
    with db.tx() as session:
        stopped = revoke_grant_with_receipt(session, vault, person.me, given.grant.id)
    assert stopped is not None
    for token in (given.receipt, stopped[1]):
        text = json.dumps(raw_payload(token)) + token
        for secret in ("Zebediah", "Quillfeather", "zebediah", citizen.id):
            assert secret not in text


@pytest.fixture
def token(db: Any, vault: Vault, person: Person) -> str:
    with db.tx() as session:
        return give_grant(session, vault, person.me, ask()).receipt


def tamper_payload(token: str) -> str:
    header, _, signature = token.split(".")
    body = raw_payload(token)
    body["dpv:hasRecordOfActivity"]["dpv:hasProcess"]["dpv:hasPersonalData"].append(
        "money.income_monthly"
    )
    changed = b64url(json.dumps(body).encode())
    return f"{header}.{changed}.{signature}"


def flip_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(unb64url(signature))
    raw[5] ^= 0x01
    return f"{header}.{payload}.{b64url(bytes(raw))}"


def resign(vault: Vault, token: str, **header: str) -> str:
    key = receipts.server_signing_jwk(vault)
    fields = {"alg": "ES256", "kid": key.kid, "typ": "consent-receipt+jwt", **header}
    return jws.serialize_compact(fields, unb64url(token.split(".")[1]), key, algorithms=["ES256"])


def signed_by_someone_else(token: str, tmp_path: Any) -> str:
    path = tmp_path / "forger-keys.json"
    init_key_file(path)
    forger = receipts.server_signing_jwk(Vault(keys=LocalKeyFileProvider(path)))
    header = {"alg": "ES256", "kid": forger.kid, "typ": "consent-receipt+jwt"}
    return jws.serialize_compact(header, unb64url(token.split(".")[1]), forger, ["ES256"])


def unsigned(token: str) -> str:
    header = b64url(b'{"alg":"none","typ":"consent-receipt+jwt"}')
    return f"{header}.{token.split('.')[1]}."


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda vault, token, tmp: tamper_payload(token), id="changed-payload"),
        pytest.param(lambda vault, token, tmp: flip_signature(token), id="changed-signature"),
        pytest.param(lambda vault, token, tmp: token[:-12], id="cut-short"),
        pytest.param(lambda vault, token, tmp: unsigned(token), id="alg-none"),
        pytest.param(
            lambda vault, token, tmp: signed_by_someone_else(token, tmp), id="another-key"
        ),
        pytest.param(
            lambda vault, token, tmp: resign(vault, token, typ="secevent+jwt"),
            id="our-key-but-not-a-receipt",
        ),
        pytest.param(lambda vault, token, tmp: "not a receipt", id="garbage"),
        pytest.param(lambda vault, token, tmp: "", id="empty"),
        pytest.param(lambda vault, token, tmp: "é.é.é", id="non-ascii"),
    ],
)
def test_a_forged_or_changed_receipt_is_refused_plainly(vault, token, tmp_path, forge):
    with pytest.raises(ConsentError) as raised:
        receipts.read_receipt(vault, forge(vault, token, tmp_path))
    assert raised.value.message == BAD


def test_an_untouched_receipt_re_signed_with_our_own_key_still_reads(vault, token):
    # The control for the forgeries above: the same helper with nothing changed passes.
    assert receipts.read_receipt(vault, resign(vault, token)) == raw_payload(token)


def test_a_receipt_is_only_made_from_its_own_ledger_leaf(db, vault, person):
    with db.tx() as session:
        first = give_grant(session, vault, person.me, ask())
        second = give_grant(session, vault, person.me, ask(purpose_code="other_purpose"))
    with pytest.raises(ConsentError, match="could not be made"):
        receipts.issue_receipt(vault, first.grant, second.leaf, "given", "test")
    with pytest.raises(ConsentError, match="could not be made"):
        receipts.issue_receipt(vault, first.grant, first.leaf, "withdrawn", "test")
