"""Pairwise subjects: stable per department, different between departments and people."""

from __future__ import annotations

import base64

import pytest

from connectors.subjects import pairwise_subject
from vault.services import Vault

HOUSING = "dept-housing"
BENEFITS = "dept-benefits"
SAM = "6f1c7e9a-0000-4000-8000-000000000001"
ALEX = "6f1c7e9a-0000-4000-8000-000000000002"


def test_the_same_department_always_sees_the_same_subject(vault: Vault) -> None:
    assert pairwise_subject(vault, HOUSING, SAM) == pairwise_subject(vault, HOUSING, SAM)


def test_two_departments_see_different_subjects_for_one_person(vault: Vault) -> None:
    assert pairwise_subject(vault, HOUSING, SAM) != pairwise_subject(vault, BENEFITS, SAM)


def test_two_people_have_different_subjects_at_one_department(vault: Vault) -> None:
    assert pairwise_subject(vault, HOUSING, SAM) != pairwise_subject(vault, HOUSING, ALEX)


def test_the_subject_does_not_reveal_the_citizen_id(vault: Vault) -> None:
    subject = pairwise_subject(vault, HOUSING, SAM)
    assert SAM not in subject
    assert SAM.replace("-", "") not in subject


def test_the_subject_is_base64url_without_padding(vault: Vault) -> None:
    subject = pairwise_subject(vault, HOUSING, SAM)
    assert "=" not in subject
    assert len(base64.urlsafe_b64decode(subject + "=")) == 32  # a whole SHA-256


def test_moving_characters_across_the_boundary_gives_another_subject(vault: Vault) -> None:
    # "ab" + "c" and "a" + "bc" must not collide.
    assert pairwise_subject(vault, "ab", "c") != pairwise_subject(vault, "a", "bc")


@pytest.mark.parametrize(("department", "citizen"), [("a\x00b", "c"), ("a", "b\x00c")])
def test_ids_with_a_nul_are_refused(vault: Vault, department: str, citizen: str) -> None:
    with pytest.raises(ValueError, match="NUL"):
        pairwise_subject(vault, department, citizen)
