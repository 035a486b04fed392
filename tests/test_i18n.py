"""The catalogs: every text has Vietnamese, placeholders survive translation, nothing is missed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from handlers.i18n import LOCALES_DIR

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"\{(\w*)\}")


def _catalog(locale: str):
    with (LOCALES_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=locale)


def _extract(tmp_path: Path):
    out = tmp_path / "fresh.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg",
         "--no-location", "-k", "N_", "-k", "_", "-k", "t", "-k", "plural:1,2", "-o", str(out),
         "bot", "handlers", "conversations", "db"],
        cwd=ROOT, check=True, capture_output=True,
    )
    with out.open("rb") as fh:
        return read_po(fh)


def _translated(message) -> bool:
    """Every form of the message has a text (a counted text has one per plural form)."""
    if message is None:
        return False
    forms = message.string if isinstance(message.string, tuple) else (message.string,)
    return all(forms)


def test_every_message_in_the_code_has_a_vietnamese_translation(tmp_path):
    """Extracting texts from the code finds none without a Vietnamese translation (resident
    versions and plural forms included)."""
    vi = _catalog("vi")
    missing = [m.id for m in _extract(tmp_path) if m.id and not _translated(vi.get(m.id, context=m.context))]
    assert missing == [], f"no Vietnamese for: {missing[:10]}"


def test_every_message_in_the_code_is_in_the_english_catalog(tmp_path):
    """The English catalog knows every msgid (run `make locales` after adding texts)."""
    en = _catalog("en")
    missing = [m.id for m in _extract(tmp_path) if m.id and en.get(m.id, context=m.context) is None]
    assert missing == []


def _placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_placeholders_survive_translation(locale):
    """A translation keeps exactly the {placeholders} of its source text (each plural form those
    of the plural text, the count {n} aside)."""
    wrong = []
    for m in _catalog(locale):
        if not m.id or not m.string:
            continue
        if isinstance(m.id, tuple):
            expected = set(PLACEHOLDER.findall(m.id[1])) - {"n"}
            wrong += [m.id for form in m.string
                      if form and set(PLACEHOLDER.findall(form)) - {"n"} != expected]
        elif _placeholders(m.id) != _placeholders(m.string):
            wrong.append(m.id)
    assert wrong == []
