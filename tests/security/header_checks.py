"""What every answer must carry, and what no page may hold, for the header sweep.

``header_problems`` lists what is missing or weak in one response's headers;
``inline_problems`` lists the markup a strict Content-Security-Policy would block (inline
scripts without the nonce, event-handler attributes, style attributes and blocks,
``javascript:`` links, things loaded from elsewhere).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

BASE_URL = "https://tellonce.example"
NONCE = re.compile(r"'nonce-([A-Za-z0-9_\-]+)'")
# Our static files: the only answers that may be cached.
CACHEABLE = ("/static/", "/assets/", "/govuk/")
EXPECTED = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
}
# Sources that would let something other than our own files run, style or frame us.
WEAK = {"*", "http:", "https:", "'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'"}


def directives(policy: str) -> dict[str, str]:
    """A Content-Security-Policy as ``{directive: its sources}``."""
    found = {}
    for part in policy.split(";"):
        name, _, sources = part.strip().partition(" ")
        if name:
            found[name] = sources.strip()
    return found


def header_problems(path: str, response: Any) -> list[str]:
    """What the headers of the answer to ``path`` lack (an empty list when all is well)."""
    headers = response.headers
    problems = [
        f"{name}: {headers.get(name)!r}"
        for name, value in EXPECTED.items()
        if headers.get(name) != value
    ]
    if "camera=()" not in headers.get("Permissions-Policy", ""):
        problems.append(f"Permissions-Policy: {headers.get('Permissions-Policy')!r}")
    if not path.startswith(CACHEABLE) and headers.get("Cache-Control") != "no-store":
        problems.append(f"Cache-Control: {headers.get('Cache-Control')!r}")
    policy = headers.get("Content-Security-Policy", "")
    rules = directives(policy)
    for name, sources in rules.items():
        for source in sources.split():
            if source in WEAK or (source == "data:" and name != "img-src"):
                problems.append(f"{name} allows {source}")
    for name, sources in {"frame-ancestors": "'none'", "base-uri": "'none'"}.items():
        if rules.get(name) != sources:
            problems.append(f"{name} is {rules.get(name)!r}")
    if response.mimetype == "text/html":
        script = rules.get("script-src", "").split()
        if script[:1] != ["'self'"] or len(script) != 2 or not NONCE.fullmatch(script[1]):
            problems.append(f"script-src is {rules.get('script-src')!r}")
        if rules.get("style-src") != "'self'" or rules.get("object-src") != "'none'":
            problems.append("style-src or object-src is not strict")
        if not rules.get("form-action", "").startswith("'self'"):
            problems.append(f"form-action is {rules.get('form-action')!r}")
    elif rules.get("default-src") != "'none'":
        problems.append(f"not a page, yet default-src is {rules.get('default-src')!r}")
    return problems


def _ours(url: str | None) -> bool:
    """A URL on our own origin (a path, or the full base URL); an empty one is this page."""
    if not url:
        return True
    return (url.startswith("/") and not url.startswith("//")) or url.startswith(BASE_URL + "/")


class _InlineFinder(HTMLParser):
    def __init__(self, nonce: str | None, form_targets: list[str]) -> None:
        super().__init__(convert_charrefs=True)
        self.nonce = nonce
        self.form_targets = form_targets
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…> (an inline event handler)")
            if name == "style":
                self.problems.append(f"<{tag} style=…> (blocked by style-src 'self')")
            if (value or "").strip().lower().startswith("javascript:"):
                self.problems.append(f"<{tag} {name}=javascript:…>")
        if tag == "script":
            if "src" in named and not _ours(named["src"]):
                self.problems.append(f"a script from elsewhere: {named['src']}")
            elif "src" not in named and (not self.nonce or named.get("nonce") != self.nonce):
                self.problems.append("an inline <script> without this answer's nonce")
        elif tag == "style":
            self.problems.append("a <style> block (blocked by style-src 'self')")
        elif tag in ("iframe", "object", "embed", "base", "frame"):
            self.problems.append(f"a <{tag}> element")
        elif (
            tag == "link"
            and "stylesheet" in (named.get("rel") or "")
            and not _ours(named.get("href"))
        ):
            self.problems.append(f"a stylesheet from elsewhere: {named.get('href')}")
        elif tag == "img" and not (_ours(named.get("src")) or named["src"].startswith("data:")):
            self.problems.append(f"an image from elsewhere: {named.get('src')}")
        elif tag == "form" and not _ours(named.get("action")):
            action = named.get("action") or ""
            if not any(action.startswith(target + "/") for target in self.form_targets):
                self.problems.append(f"a form sent elsewhere: {action}")


def inline_problems(response: Any) -> list[str]:
    """What in this page a strict policy would block (the page is HTML)."""
    rules = directives(response.headers.get("Content-Security-Policy", ""))
    nonce = NONCE.search(rules.get("script-src", ""))
    finder = _InlineFinder(nonce.group(1) if nonce else None, rules["form-action"].split()[1:])
    finder.feed(response.get_data(as_text=True))
    return finder.problems
