"""My information: one question, a check page, then save; every change is a version."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.web.citizen.conftest import Person, csrf_of
from vault.records import current_data_points, data_point_history
from vault.services import Vault

ANSWER = re.compile(r'name="answer" value="([^"]*)"')


def _history(db: Any, vault: Vault, person: Person, key: str) -> list[Any]:
    with db.tx() as session:
        return data_point_history(session, vault, person.citizen_id, key)


def _submit(client: Any, key: str, **fields: str) -> Any:
    token = csrf_of(client.get(f"/information/{key}/change").get_data(as_text=True))
    return client.post(f"/information/{key}/change", data={"csrf_token": token, **fields})


def _confirm(client: Any, key: str, check_html: str) -> Any:
    found = ANSWER.search(check_html)
    assert found, "the check page carries the answer"
    answer = found.group(1).replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&")
    return client.post(
        f"/information/{key}/check", data={"csrf_token": csrf_of(check_html), "answer": answer}
    )


def test_correcting_the_address_makes_a_new_version_after_checking(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    form = signed_in.get("/information/contact.address/change").get_data(as_text=True)
    assert 'value="10 High Street"' in form  # the change starts from what is there
    check = _submit(
        signed_in, "contact.address", line_1="Flat 2, 5 Park Road", town="Leeds", postcode="ls2 9jt"
    )
    html = check.get_data(as_text=True)
    assert "Check your answer" in html and "Flat 2, 5 Park Road" in html and "LS2 9JT" in html
    assert len(_history(db, vault, person, "contact.address")) == 1  # not saved yet

    saved = _confirm(signed_in, "contact.address", html)
    assert saved.status_code == 302 and saved.headers["Location"] == "/information"
    newest, oldest = _history(db, vault, person, "contact.address")
    assert newest.version == 2 and newest.value["lines"] == ["Flat 2, 5 Park Road"]
    assert oldest.status == "superseded"
    history = signed_in.get("/information/contact.address/history").get_data(as_text=True)
    assert "Version 2" in history and "Version 1" in history
    assert "10 High Street" in history and "Flat 2, 5 Park Road" in history


def test_get_of_check_page_saves_nothing(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    response = signed_in.get("/information/contact.phone/check")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/information/contact.phone/change")
    assert _history(db, vault, person, "contact.phone") == []


def test_money_is_typed_in_pounds_and_kept_in_pence(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    form = signed_in.get("/information/money.income_monthly/change").get_data(as_text=True)
    assert 'value="1250.50"' in form
    html = _submit(signed_in, "money.income_monthly", value="£1,400.5").get_data(as_text=True)
    assert "£1,400.50 a month" in html
    _confirm(signed_in, "money.income_monthly", html)
    assert _history(db, vault, person, "money.income_monthly")[0].value == 140_050


def test_adding_a_date_of_birth_shows_it_in_words(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    html = _submit(signed_in, "identity.date_of_birth", day="14", month="3", year="1988").get_data(
        as_text=True
    )
    assert "14 March 1988" in html
    _confirm(signed_in, "identity.date_of_birth", html)
    assert _history(db, vault, person, "identity.date_of_birth")[0].value == "1988-03-14"
    assert "14 March 1988" in signed_in.get("/information").get_data(as_text=True)


def test_housing_status_and_lists(signed_in: Any, db: Any, vault: Vault, person: Person) -> None:
    html = _submit(signed_in, "housing.status", value="hostel").get_data(as_text=True)
    assert "I am in a hostel" in html
    _confirm(signed_in, "housing.status", html)
    html = _submit(
        signed_in,
        "money.benefits",
        name_1="Universal Credit",
        other_1="400",
        name_2="PIP",
        other_2="90.10",
    ).get_data(as_text=True)
    assert "Universal Credit: £400.00 a month" in html and "PIP: £90.10 a month" in html
    _confirm(signed_in, "money.benefits", html)
    html = _submit(signed_in, "family.children", name_1="Alex", other_1="21/4/2015").get_data(
        as_text=True
    )
    assert "Alex, born 21 April 2015" in html
    _confirm(signed_in, "family.children", html)
    with db.tx() as session:
        points = {p.key: p.value for p in current_data_points(session, vault, person.citizen_id)}
    assert points["housing.status"] == "hostel"
    assert points["money.benefits"][1] == {"name": "PIP", "amount_pence_monthly": 9010}
    assert points["family.children"] == [{"name": "Alex", "date_of_birth": "2015-04-21"}]


ERROR_CASES = [
    ("contact.phone", {"value": ""}, "Enter your phone number"),
    ("contact.phone", {"value": "12"}, "Your phone number must be a UK number"),
    (
        "money.income_monthly",
        {"value": "lots"},
        "Enter an amount in pounds, like 1250 or 1250.50",
    ),
    (
        "identity.date_of_birth",
        {"day": "31", "month": "2", "year": "1990"},
        "The date must be a real date",
    ),
    (
        "identity.date_of_birth",
        {"day": "1", "month": "1", "year": "2999"},
        "must not be in the future",
    ),
    (
        "identity.date_of_birth",
        {"day": "", "month": "", "year": ""},
        "Enter the date, with a day, month and year",
    ),
    ("housing.status", {}, "Choose where you are staying now"),
    ("contact.address", {"line_1": "1 Road"}, "Enter your town or city"),
    ("contact.address", {"no_fixed_address": "y"}, "Enter the area you stay in"),
    (
        "contact.address",
        {"line_1": "1 Road", "town": "Leeds", "postcode": "NOPE"},
        "must be a real UK postcode",
    ),
    ("money.benefits", {}, "Enter at least one benefit"),
    ("money.benefits", {"name_1": "UC"}, "Enter the amount for benefit 1 in pounds"),
    (
        "family.children",
        {"name_2": "Sam", "other_2": "soon"},
        "Enter the date of birth of child 2",
    ),
]


def test_errors_are_specific_and_nothing_is_saved(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    for key, fields, message in ERROR_CASES:
        html = _submit(signed_in, key, **fields).get_data(as_text=True)
        assert "There is a problem" in html, key
        assert message in html, (key, message)
        assert "govuk-error-message" in html, key
        assert len(_history(db, vault, person, key)) <= 1, key


def test_a_forged_answer_on_the_check_page_is_refused(
    signed_in: Any, db: Any, vault: Vault, person: Person
) -> None:
    token = csrf_of(signed_in.get("/information/contact.phone/change").get_data(as_text=True))
    response = signed_in.post(
        "/information/contact.phone/check", data={"csrf_token": token, "answer": json.dumps("nope")}
    )
    assert response.status_code == 400
    assert _history(db, vault, person, "contact.phone") == []
