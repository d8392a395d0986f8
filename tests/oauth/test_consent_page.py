"""The consent page as the person, or their support worker, meets it."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from sqlmodel import select

from consent.events import GRANT_GIVEN
from consent.models import Delegation, Grant
from tests.oauth.harness import (
    HOUSING_DETAILS,
    DepartmentSide,
    answer,
    open_consent,
    redirect_params,
)
from tests.web.citizen.conftest import CANARY, Person
from vault.models import LedgerEntry

Worker = Callable[..., Any]


def grants_of(db: Any, person: Person) -> list[Grant]:
    with db.tx() as session:
        return list(session.exec(select(Grant).where(Grant.citizen_id == person.citizen_id)))


def pushed_uri(side: DepartmentSide, details: Any = None) -> str:
    pushed = side.par(details)
    assert pushed.status_code == 201, pushed.get_json()
    return str(pushed.get_json()["request_uri"])


# --- A support worker answering for the person --------------------------------------------------


def test_a_worker_allowed_to_answer_can_say_yes_and_the_record_says_so(
    department: DepartmentSide, make_worker: Worker, db: Any, person: Person
) -> None:
    worker = make_worker("view", "answer_requests")
    page = open_consent(worker, department, pushed_uri(department))
    assert page.status_code == 200
    # Named, and rendered at once: the banner's own lookup no longer waits on the page's lock.
    assert f"You are answering for {CANARY}." in html.unescape(page.get_data(as_text=True))

    code = redirect_params(answer(worker, page, "share"))["code"]
    tokens = department.token(code)
    assert tokens.status_code == 200, tokens.get_json()

    (grant,) = grants_of(db, person)
    assert grant.delegation_id is not None
    with db.tx() as session:
        delegation = session.get(Delegation, grant.delegation_id)
        assert delegation is not None
        worker_account = delegation.worker_account_id
        entry = session.exec(
            select(LedgerEntry).where(
                LedgerEntry.kind == GRANT_GIVEN.name, LedgerEntry.row_id == grant.id
            )
        ).one()
    assert delegation.citizen_id == person.citizen_id
    assert grant.given_by == f"worker:{worker_account}"
    assert grant.given_by != f"citizen:{person.account_id}"
    assert '"by":"worker"' in entry.leaf.decode("utf-8")


def test_a_worker_allowed_to_answer_can_say_no(
    department: DepartmentSide, make_worker: Worker, db: Any, person: Person
) -> None:
    worker = make_worker("answer_requests")
    page = open_consent(worker, department, pushed_uri(department))
    assert redirect_params(answer(worker, page, "decline"))["error"] == "access_denied"
    assert grants_of(db, person) == []


def test_a_worker_not_allowed_to_answer_is_refused(
    department: DepartmentSide, make_worker: Worker, db: Any, person: Person, app: Any
) -> None:
    worker = make_worker("view")
    opened = worker.get(
        "/oauth/authorize",
        query_string={"client_id": department.client_id, "request_uri": pushed_uri(department)},
    )
    consent_path = opened.headers["Location"]
    page = worker.get(consent_path)
    assert page.status_code == 403
    assert "Traceback" not in page.get_data(as_text=True)
    # Without CSRF in the way, pressing Share must be refused for lack of scope.
    app.config["WTF_CSRF_ENABLED"] = False
    pressed = worker.post(consent_path, data={"share": "yes"})
    assert pressed.status_code == 403
    assert "Location" not in pressed.headers
    assert grants_of(db, person) == []


# --- What the page shows, and what the grant then holds -----------------------------------------


def test_special_category_items_are_marked_private(department: DepartmentSide, sam: Any) -> None:
    details = {**HOUSING_DETAILS, "data_points": ["contact.address", "health.conditions"]}
    details["optional"] = []
    page = open_consent(sam, department, pushed_uri(department, details))
    text = html.unescape(page.get_data(as_text=True))
    assert "Your health conditions" in text
    assert "private" in text
    assert "The law protects them more." in text


def test_a_request_for_ordinary_facts_has_no_private_marks(
    department: DepartmentSide, sam: Any
) -> None:
    page = open_consent(sam, department, pushed_uri(department))
    assert "The law protects them more." not in page.get_data(as_text=True)


def test_optional_items_start_ticked_and_can_be_unticked(
    department: DepartmentSide, sam: Any, db: Any, person: Person
) -> None:
    page = open_consent(sam, department, pushed_uri(department))
    text = page.get_data(as_text=True)
    assert 'value="money.income_monthly" checked' in text
    code = redirect_params(answer(sam, page, "share", keep=[]))["code"]
    tokens = department.token(code).get_json()
    (granted,) = tokens["authorization_details"]
    assert granted["data_points"] == ["identity.name", "contact.address"]
    (grant,) = grants_of(db, person)
    assert "money.income_monthly" not in grant.data_points


def test_required_items_cannot_be_unticked(
    department: DepartmentSide, sam: Any, db: Any, person: Person
) -> None:
    page = open_consent(sam, department, pushed_uri(department))
    text = page.get_data(as_text=True)
    assert 'value="contact.address"' not in text  # no box to untick
    answer(sam, page, "share", keep=["contact.address"])  # a box that was never offered
    assert grants_of(db, person) == []


def test_saying_no_gives_nothing(
    department: DepartmentSide, sam: Any, db: Any, person: Person
) -> None:
    page = open_consent(sam, department, pushed_uri(department))
    params = redirect_params(answer(sam, page, "decline"))
    assert params["error"] == "access_denied"
    assert grants_of(db, person) == []


def test_unticking_everything_asks_again_instead_of_sharing_nothing(
    department: DepartmentSide, sam: Any, db: Any, person: Person
) -> None:
    details = {
        **HOUSING_DETAILS,
        "data_points": ["money.income_monthly"],
        "optional": ["money.income_monthly"],
        "story_topics": [],
    }
    page = open_consent(sam, department, pushed_uri(department, details))
    again = answer(sam, page, "share", keep=[])
    assert again.status_code == 400
    assert again.mimetype == "text/html"
    assert "There is nothing left to share." in html.unescape(again.get_data(as_text=True))
    assert grants_of(db, person) == []
    # Nothing was decided, so the person can still answer.
    assert redirect_params(answer(sam, page, "decline"))["error"] == "access_denied"
