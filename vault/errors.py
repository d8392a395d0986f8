"""Domain errors raised by the vault layer.

Every error carries a plain-English message that is safe to show a person: it never
contains a personal value.
"""


class VaultError(Exception):
    """Base class for every error the vault raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(VaultError):
    """The thing asked for does not exist (or is not yours to see)."""


class InvalidValue(VaultError):
    """A value failed its check; the message names the field and the problem."""


class UnknownKey(InvalidValue):
    """A data point key that is not in the catalogue."""


class KeyProviderError(VaultError):
    """The key file or key service is missing, unsafe or cannot be used."""


class DecryptionError(VaultError):
    """A ciphertext could not be opened: wrong key, wrong place, or tampered."""


class RetiredKeyError(DecryptionError):
    """A ciphertext was sealed under a key version that has been retired."""


class CitizenErased(VaultError):
    """The citizen's data key has been destroyed, so nothing of theirs can be read."""


class LedgerError(VaultError):
    """The tamper-evident log could not be written or does not verify."""


class StorageError(VaultError):
    """The database cannot be reached or refused the write."""
