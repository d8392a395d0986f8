"""Pairwise subject identifiers: each department sees a different, stable id for the same person.

Two departments comparing notes cannot join their records on the subject, and the subject
says nothing about the citizen's id in the vault.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from vault.services import Vault


def pairwise_subject(vault: Vault, department_id: str, citizen_id: str) -> str:
    """The person's subject id for one department: HMAC-SHA256, base64url without padding."""
    # The NUL separator keeps (department, citizen) pairs apart only while the department
    # id holds no NUL itself: then the first NUL always marks where it ends.
    if "\x00" in department_id or "\x00" in citizen_id:
        raise ValueError("A department or citizen id must not contain a NUL character.")
    message = department_id.encode() + b"\x00" + citizen_id.encode()
    digest = hmac.new(vault.secret("pairwise-subject"), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
