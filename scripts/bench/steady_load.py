"""A steady load on GET /api/v1/data: fetches at a fixed arrival rate, and their figures.

Request n is due at start + n / rate, whoever of the sender threads is free sends it, and its
latency counts from when it was due, so a stall shows up in full instead of delaying the next
requests (no coordinated omission). Each request carries a fresh DPoP proof. Used by
rotation_under_load.py.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import data_api
from data_api import PATH, Scenario

from consent.grants import MAX_FETCHES
from tests.connectors.dpop_client import make_proof

SENDERS = 24  # threads sending; more than the rate ever needs at once, so none waits on them
FRESH_TOKENS_EVERY = 180  # seconds; access tokens live five minutes


@dataclass
class Sample:
    """One fetch: when it was due (seconds from the start), how long until answered, status."""

    due: float
    latency_ms: float
    status: int  # 0: no answer (connection error)
    body: str = ""  # the start of the answer, kept for failures only


@dataclass
class SteadyLoad:
    """Fetches at a fixed arrival rate from a pool of sender threads until stopped."""

    scenario: Scenario
    base_url: str
    rate: float
    tokens: list[str]
    samples: list[Sample] = field(default_factory=list)
    started: float = 0.0  # monotonic time request 0 was due
    until: float = float("inf")  # no request is due at or after this (monotonic)
    _next: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopped: threading.Event = field(default_factory=threading.Event)

    def run(self, started: float) -> list[threading.Thread]:
        """Start the senders; request n is due at ``started + n / rate``."""
        self.started = started
        threads = [threading.Thread(target=self._send_loop, daemon=True) for _ in range(SENDERS)]
        threads.append(threading.Thread(target=self._fresh_tokens, daemon=True))
        for thread in threads:
            thread.start()
        return threads

    def stop(self) -> None:
        """Send nothing due from now on."""
        self.until = time.monotonic()
        self._stopped.set()

    def _fresh_tokens(self) -> None:
        # New grants and tokens before the old tokens expire, for runs over five minutes.
        while not self._stopped.wait(FRESH_TOKENS_EVERY):
            self.tokens = data_api.mint_tokens(self.scenario, len(self.tokens) * MAX_FETCHES)

    def _take(self) -> int:
        with self._lock:
            n = self._next
            self._next += 1
            return n

    def _send_loop(self) -> None:
        host, port = self.base_url.removeprefix("http://").split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        url = self.base_url + PATH
        while True:
            n = self._take()
            due = self.started + n / self.rate
            if due >= self.until:  # requests already due are still sent, however late
                break
            token = self.tokens[n % len(self.tokens)]
            proof = make_proof(self.scenario.dpop_key, "GET", url, access_token=token)
            time.sleep(max(0.0, due - time.monotonic()))
            headers = {
                "Authorization": f"DPoP {token}",
                "DPoP": proof,
                "Case-Reference": data_api.CASE,
                "Acting-Officer": data_api.OFFICER,
            }
            try:
                connection.request("GET", PATH, headers=headers)
                answer = connection.getresponse()
                body = answer.read()
                status = answer.status
            except (OSError, http.client.HTTPException) as error:
                connection.close()  # reconnects on the next request
                status, body = 0, repr(error).encode()
            latency = (time.monotonic() - due) * 1000
            kept = "" if status == 200 else body[:300].decode(errors="replace")
            self.samples.append(Sample(due - self.started, latency, status, kept))
        connection.close()


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of ``values`` (0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def figures(chosen: list[Sample]) -> dict[str, Any]:
    """Count, errors and latency percentiles of these fetches."""
    latencies = [s.latency_ms for s in chosen]
    return {
        "count": len(chosen),
        "errors": sum(1 for s in chosen if s.status != 200),
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies, default=0.0),
    }


def timeline(samples: list[Sample]) -> str:
    """The p99 (ms) of each 10-second window of due times, to see when a stall happened."""
    windows: dict[int, list[float]] = {}
    for sample in samples:
        windows.setdefault(int(sample.due // 10), []).append(sample.latency_ms)
    return " ".join(f"{percentile(windows[w], 0.99):.0f}" for w in sorted(windows))


def show(label: str, found: dict[str, Any]) -> None:
    """Print one line of figures."""
    print(
        f"  {label:<7}{found['count']:>7,} fetches  p50 {found['p50']:7.1f} ms  "
        f"p99 {found['p99']:7.1f} ms  max {found['max']:7.1f} ms  {found['errors']} errors"
    )
