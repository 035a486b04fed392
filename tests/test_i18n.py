"""The catalogs: every text has Vietnamese, placeholders survive translation, nothing is missed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.catalogs import catalog, extracted

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"\{(\w*)\}")


def _translated(message) -> bool:
    """Every form of the message has a text (a counted text has one per plural form)."""
    if message is None:
        return False
    forms = message.string if isinstance(message.string, tuple) else (message.string,)
    return all(forms)


def test_every_message_in_the_code_has_a_vietnamese_translation(tmp_path):
    """Extracting texts from the code finds none without a Vietnamese translation (resident
    versions and plural forms included)."""
    vi = catalog("vi")
    missing = [m.id for m in extracted(tmp_path) if m.id and not _translated(vi.get(m.id, context=m.context))]
    assert missing == [], f"no Vietnamese for: {missing[:10]}"


def test_every_message_in_the_code_is_in_the_english_catalog(tmp_path):
    """The English catalog knows every msgid (run `make locales` after adding texts)."""
    en = catalog("en")
    missing = [m.id for m in extracted(tmp_path) if m.id and en.get(m.id, context=m.context) is None]
    assert missing == []


def _placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


@pytest.mark.parametrize("locale", ["vi", "en"])
def test_placeholders_survive_translation(locale):
    """A translation keeps exactly the {placeholders} of its source text (each plural form those
    of the plural text, the count {n} aside)."""
    wrong = []
    for m in catalog(locale):
        if not m.id or not m.string:
            continue
        if isinstance(m.id, tuple):
            expected = set(PLACEHOLDER.findall(m.id[1])) - {"n"}
            wrong += [m.id for form in m.string
                      if form and set(PLACEHOLDER.findall(form)) - {"n"} != expected]
        elif _placeholders(m.id) != _placeholders(m.string):
            wrong.append(m.id)
    assert wrong == []
