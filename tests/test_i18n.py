"""The catalogs: every text has Vietnamese, placeholders survive translation, nothing is missed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from handlers import i18n
from handlers.i18n import translator
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


@pytest.mark.parametrize(("locale", "value", "written"), [
    ("vi", 21544, "21.544"), ("en", 21544, "21,544"), ("vi", 7, "7"), ("en", -1234, "-1,234"),
    ("vi", 1234567, "1.234.567"),
])
def test_counts_are_written_the_same_when_kept(locale, value, written):
    """A count is written as the locale writes it, the first time and when it comes again."""
    t = translator(locale)
    assert t.number(value) == written and t.number(value) == written
    assert t("{count} x", count=value) == f"{written} x"


def test_kept_counts_stop_growing_at_the_limit(monkeypatch):
    """Past MAX_KEPT_NUMBERS distinct counts, new ones are written but not kept."""
    monkeypatch.setattr(i18n, "MAX_KEPT_NUMBERS", 3)
    t = i18n.Translator("en")
    assert [t.number(n) for n in (1000, 2000, 3000, 4000)] == ["1,000", "2,000", "3,000", "4,000"]
    assert len(t._numbers) == 3 and t.number(4000) == "4,000"
