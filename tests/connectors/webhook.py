"""A department's webhook for tests: a real local HTTP server that records what it is sent.

It answers each POST with the next scripted status (then keeps answering the last one), so a
test can make it fail first and recover later, as a real endpoint would. ``add_department``
registers a department (a bare row, no ledger entry) whose webhook it is.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jws

from connectors.models import Department
from vault.services import Vault


@dataclass(frozen=True)
class Received:
    """One POST the webhook got."""

    token: str
    content_type: str | None
    accept: str | None

    @property
    def jti(self) -> str:
        """The SET's jti, read without checking the signature (tests check it separately)."""
        claims = json.loads(jws.extract_compact(self.token.encode()).payload)
        return str(claims["jti"])


@dataclass
class Webhook:
    """The recording webhook; ``statuses`` are answered in order, the last one from then on."""

    statuses: list[int] = field(default_factory=lambda: [202])
    delay: float = 0.0
    answer_body: dict[str, Any] | None = None
    received: list[Received] = field(default_factory=list)
    in_flight: Counter[str] = field(default_factory=Counter)
    overlapped: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def next_status(self) -> int:
        with self.lock:
            index = min(len(self.received) - 1, len(self.statuses) - 1)
            return self.statuses[index]

    def jtis(self) -> Counter[str]:
        """How many times each message was POSTed."""
        return Counter(item.jti for item in self.received)


def start_webhook(hook: Webhook) -> ThreadingHTTPServer:
    """Serve ``hook`` on a free local port (in a thread); set ``hook.url``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            token = self.rfile.read(length).decode("ascii")
            item = Received(token, self.headers.get("Content-Type"), self.headers.get("Accept"))
            with hook.lock:
                hook.received.append(item)
                hook.in_flight[item.jti] += 1
                if hook.in_flight[item.jti] > 1:
                    hook.overlapped.append(item.jti)
            try:
                if hook.delay:
                    time.sleep(hook.delay)
                status = hook.next_status()
                body = json.dumps(hook.answer_body).encode() if hook.answer_body else b""
                self.send_response(status)
                if status in (301, 302, 307, 308):
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                if body:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            finally:
                with hook.lock:
                    hook.in_flight[item.jti] -= 1

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/tellonce/events"
    return server


def refused_url() -> str:
    """A local URL where nothing listens: connecting to it is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/tellonce/events"


@contextmanager
def running_webhook() -> Iterator[Webhook]:
    """A recording webhook, served for the length of the block."""
    hook = Webhook()
    server = start_webhook(hook)
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()


def add_department(
    db: Any, vault: Vault, department_id: str, webhook_url: str | None, name: str = ""
) -> None:
    """Store a department with this webhook (enough for the outbox; it cannot sign in)."""
    with db.tx() as session:
        session.add(
            Department(
                id=department_id,
                name=name or f"Department {department_id}",
                client_metadata={},
                purposes=[],
                officer={},
                webhook_url=webhook_url,
                created_at=vault.clock(),
            )
        )
