"""The vault's collaborators, bundled so domain functions can take them as one value."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from vault.clock import Clock, system_clock
from vault.keys import KeyProvider


@dataclass
class Vault:
    """Keys, the clock and the ledger's name: what every vault function needs besides a session."""

    keys: KeyProvider
    clock: Clock = field(default=system_clock)
    ledger_origin: str = "localhost/tellonce-ledger"
    # How stale the newest signed checkpoint may get before an append signs a fresh one.
    checkpoint_interval: timedelta = timedelta(seconds=1)

    @cached_property
    def checkpoint_key(self) -> Ed25519PrivateKey:
        """The Ed25519 key that signs ledger checkpoints (derived from the key provider)."""
        return Ed25519PrivateKey.from_private_bytes(
            self.keys.derive_secret("ledger-checkpoint-signing-key")
        )

    def secret(self, name: str) -> bytes:
        """A stable 32-byte server secret for one purpose (HMAC keys and the like)."""
        return self.keys.derive_secret(name)
