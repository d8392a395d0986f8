"""Every page a citizen reads is plain English: reading age about 9, no jargon.

The Flesch-Kincaid grade is worked out from textstat's word and sentence counts with
syllables from pyphen's en_US dictionary. (textstat's own English syllable count needs NLTK's
cmudict, which it would download from the internet at run time; our machines have none.)
Grade 6 is a reading age of 11 to 12; US grade 4 matches about 9 to 10.
"""

from __future__ import annotations

import re
from typing import Any

import pyphen
import textstat
from playwright.sync_api import Browser

from tests.e2e.conftest import DESKTOP, LiveServer, World, page_paths, visit_pages

BANNED = ("third party", "implementation", "data controller", "processing")
MOST_AVERAGE = 6.0
MOST_ANY_PAGE = 8.0
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_HYPHENATOR = pyphen.Pyphen(lang="en_US")


def as_sentences(text: str) -> str:
    """Each line on screen (a heading, a button, a list item) is read as a sentence of its own."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(line if line[-1] in ".!?:" else f"{line}." for line in lines)


def syllables(word: str) -> int:
    """Syllables in a word: one more than the places pyphen would hyphenate it."""
    return len(_HYPHENATOR.positions(word)) + 1


def grade(text: str) -> float:
    """The Flesch-Kincaid grade of some visible text."""
    prose = as_sentences(text)
    words = _WORD.findall(prose.lower())
    if not words:
        return 0.0
    sentences = max(1, textstat.sentence_count(prose))
    per_sentence = len(words) / sentences
    per_word = sum(syllables(word) for word in words) / len(words)
    return round(0.39 * per_sentence + 11.8 * per_word - 15.59, 1)


def test_grade_tells_plain_from_hard_text() -> None:
    plain = "Tell us where you live now. We keep it safe. You can change it at any time."
    hard = (
        "Notwithstanding the aforementioned considerations, organisational accountability "
        "necessitates comprehensive documentation of administrative determinations."
    )
    assert grade(plain) < 4
    assert grade(hard) > 12


def test_every_citizen_page_is_easy_to_read(
    browser: Browser, live_server: LiveServer, world: World, signed_in_page: Any
) -> None:
    paths, _ = page_paths(live_server.app, world.values)
    grades: dict[str, float] = {}
    jargon: list[str] = []
    for signed_in in (False, True):
        context = browser.new_context(base_url=live_server.url, **DESKTOP)
        try:
            if signed_in:
                signed_in_page(world.sam.account_id, context).close()
            for _path, status, page in visit_pages(context, paths):
                if status >= 500:
                    continue  # reported by the accessibility test
                where = page.url.removeprefix(live_server.url)
                label = f"{where} ({'signed in' if signed_in else 'signed out'})"
                text = page.inner_text("main")
                grades[label] = grade(text)
                lowered = " ".join(text.lower().split())
                jargon += [f"{label}: {word!r}" for word in BANNED if word in lowered]
        finally:
            context.close()

    average = sum(grades.values()) / len(grades)
    print("\nReading grade (Flesch-Kincaid) of each page:")
    for label, value in sorted(grades.items(), key=lambda item: -item[1]):
        print(f"  {value:5.1f}  {label}")
    print(f"  {average:5.1f}  average of {len(grades)} pages")

    assert len(grades) >= 3, "Hardly any pages were read: is the URL map empty?"
    assert not jargon, "Words citizens should never read:\n" + "\n".join(jargon)
    too_hard = {label: value for label, value in grades.items() if value > MOST_ANY_PAGE}
    assert not too_hard, f"Pages above grade {MOST_ANY_PAGE}: {too_hard}"
    assert average <= MOST_AVERAGE, f"The average grade is {average:.1f}, above {MOST_AVERAGE}"
