"""Domain errors raised by the consent layer, each with a plain-English message."""

from vault.errors import VaultError


class ConsentError(VaultError):
    """Base class for every error the consent layer raises on purpose."""


class NotAllowed(ConsentError):
    """The person or service asking may not do this."""


class GrantNotUsable(ConsentError):
    """The grant has ended, been stopped, or used up its fetches."""
