"""Check Tell Once's public record against your own download, without trusting Tell Once.

    .venv/bin/python scripts/check_my_record.py tell-once.json --url https://tellonce.example

Your download ("Get a copy of everything", then "Download it as a file") holds your ledger
key. This script reads the signed checkpoint and every entry of the public ledger, checks
that the entries are exactly the ones the checkpoint signs, picks out the entries about you
with your key (each names you differently, so only your key can), and checks them against
your download:

- every use of your information the download lists is in the public record, and
- every use the public record holds about you is in your download (nothing hidden from you),
- likewise for your permissions (grants).

It prints what it found and exits 1 if anything does not match. Run it on another machine,
with the public key you were given (``--public-key``), to rely on nothing the server says.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vault import merkle, note
from vault.errors import InvalidValue
from vault.ledger import CitizenLedgerKey, is_about

PAGE = 1000
Get = Callable[[str], str]  # path → response text; raises on a failed request


@dataclass
class RecordCheck:
    """What the public record holds about one person, and anything that does not match."""

    size: int = 0
    mine: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _leaves(get: Get, size: int) -> list[bytes]:
    found: list[bytes] = []
    for start in range(0, size, PAGE):
        page = json.loads(get(f"/ledger/entries?start={start}&end={min(start + PAGE, size)}"))
        found.extend(entry["leaf"].encode("utf-8") for entry in page["entries"])
    return found


def check_record(download: dict[str, Any], get: Get, public_key: str | None = None) -> RecordCheck:
    """Read the signed public record and compare the entries about this person with the file."""
    result = RecordCheck()
    key = CitizenLedgerKey(bytes.fromhex(download["your_ledger_key"]))
    verifier = public_key or get("/ledger/public-key").strip()
    try:
        checkpoint = note.parse_checkpoint(note.open_note(get("/ledger/checkpoint"), verifier))
    except InvalidValue as problem:
        result.problems.append(f"The checkpoint is not signed by that key: {problem.message}")
        return result
    result.size = checkpoint.size
    leaves = _leaves(get, checkpoint.size)
    if merkle.root_of([merkle.leaf_hash(leaf) for leaf in leaves]) != checkpoint.root_hash:
        result.problems.append("The entries are not the ones the signed checkpoint vouches for.")
        return result
    mine = [json.loads(leaf) for leaf in leaves if is_about(key, leaf)]
    result.mine = Counter(str(body["kind"]) for body in mine)
    uses_in_record = {b["access_id"] for b in mine if str(b["kind"]).startswith("access.")}
    uses_in_file = {use["id"] for use in download.get("who_has_seen_it", [])}
    grants_in_record = {b["grant_id"] for b in mine if b["kind"] == "grant.given"}
    grants_in_file = {grant["id"] for grant in download.get("your_sharing", [])}
    for missing in sorted(uses_in_file - uses_in_record):
        result.problems.append(f"Use {missing} is in your download but not in the public record.")
    for hidden in sorted(uses_in_record - uses_in_file):
        result.problems.append(f"Use {hidden} is in the public record but not in your download.")
    for missing in sorted(grants_in_file - grants_in_record):
        result.problems.append(f"Permission {missing} is in your download but not in the record.")
    for hidden in sorted(grants_in_record - grants_in_file):
        result.problems.append(f"Permission {hidden} is in the record but not in your download.")
    return result


def _http_get(base_url: str) -> Get:
    def get(path: str) -> str:
        # Only http(s): urlopen would also read file: and other schemes.
        if not base_url.startswith(("http://", "https://")):
            raise SystemExit("The address must start with http:// or https://")
        url = base_url.rstrip("/") + path
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310  # nosec B310
            return str(answer.read().decode("utf-8"))

    return get


def main(argv: list[str] | None = None) -> int:
    """Run the check and print the result in plain words."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("download", type=Path, help="the tell-once.json file you downloaded")
    parser.add_argument("--url", default="http://127.0.0.1:5000", help="Tell Once's address")
    parser.add_argument("--public-key", help="the ledger's public key, if you were given it")
    args = parser.parse_args(argv)
    download = json.loads(args.download.read_text(encoding="utf-8"))
    result = check_record(download, _http_get(args.url), args.public_key)
    print(
        f"The public record has {result.size} entries; {sum(result.mine.values())} are about you."
    )
    for kind, count in sorted(result.mine.items()):
        print(f"  {kind}: {count}")
    for problem in result.problems:
        print(f"PROBLEM: {problem}")
    print("Everything matches." if result.ok else "Something does not match. Keep this output.")
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
