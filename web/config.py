"""Settings from the environment, with embedded defaults that need nothing installed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE = Path(os.environ.get("TELLONCE_INSTANCE", PROJECT_ROOT / "instance"))


def from_environment(env: dict[str, str] | None = None) -> dict[str, Any]:
    """Build the app's settings from environment variables (or a given mapping)."""
    env = dict(os.environ if env is None else env)
    explicit_base_url = env.get("BASE_URL")
    base_url = (explicit_base_url or f"http://localhost:{env.get('PORT', '5000')}").rstrip("/")
    # The ledger origin is signed into every checkpoint, so it must not follow the port of a
    # development server (checkpoints would stop verifying); only BASE_URL names it.
    host = (urlsplit(explicit_base_url).netloc if explicit_base_url else "") or "localhost"
    return {
        "DATABASE_URL": env.get("DATABASE_URL", f"sqlite:///{INSTANCE / 'tellonce.db'}"),
        "KEY_FILE": env.get("TELLONCE_KEY_FILE", str(INSTANCE / "keys.json")),
        "MAIL_DIR": env.get("TELLONCE_MAIL_DIR", str(INSTANCE / "mail")),
        "BASE_URL": base_url,
        "LEDGER_ORIGIN": env.get("TELLONCE_LEDGER_ORIGIN", f"{host}/tellonce-ledger"),
        "SECRET_KEY": env.get("SECRET_KEY"),
        # FULL survives power loss; NORMAL only a crash of the app (fine for tests).
        "SQLITE_SYNCHRONOUS": env.get("TELLONCE_SQLITE_SYNCHRONOUS", "FULL"),
        # Where rate-limit counts live: memory (each worker its own) or redis://host:port/db.
        "RATELIMIT_STORAGE_URI": env.get("TELLONCE_RATELIMIT_STORAGE", "memory://"),
        "API_RATE_LIMIT": env.get("TELLONCE_API_RATE_LIMIT", "600/minute"),
        "TRUSTED_PROXIES": env.get("TELLONCE_TRUSTED_PROXIES", "0"),
    }
