"""A person who helps someone else can still delete their own account."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from consent.actors import active_delegation
from consent.delegations import give_delegation
from tests.consent.factories import Person
from vault.accounts import find_account
from vault.lifecycle import erase_citizen
from vault.services import Vault


def test_a_helper_who_is_also_a_citizen_can_delete_their_account(
    db: Any, vault: Vault, make_person: Callable[[], Person]
) -> None:
    helped, helper = make_person(), make_person()
    with db.tx() as session:
        give_delegation(
            session, vault, helped.me, helper.account_id, ["view"], vault.clock() + timedelta(30)
        )
    with db.tx() as session:
        erase_citizen(session, vault, helper.citizen_id)
    with db.tx() as session:
        # Nobody can sign in as the helper any more, and the person they helped is untouched.
        assert find_account(session, vault, "person2@example.com") is None
        assert find_account(session, vault, "person1@example.com") is not None
        assert active_delegation(session, helped.citizen_id, helper.account_id, vault.clock())
    assert (
        db.scalar("SELECT length(email_sealed) FROM account WHERE id = :a", a=helper.account_id)
        == 0
    )
