"""Translations from the Babel catalogs in locales/ (msgids are English source texts).

Compiled .mo files are used when present and current; otherwise the .po file is read
directly, so a fresh checkout still speaks Vietnamese before `make` compiled anything.

Registers: residents (mostly elderly) are addressed politely ("ông/bà", "bà con"), volunteers
and leaders as "bạn". A text both see has, besides its plain entry, an entry with the message
context "resident" (listed in handlers/resident_texts.py); a resident's translator uses it when
it is translated, else the plain one. Counted texts go through `t.plural(singular, plural, n)`
(Babel's ngettext: vi has one form, en two).
"""

from __future__ import annotations

import gettext as _gettext
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
LOCALES = ("vi", "en")
DEFAULT_LOCALE = "vi"
LANGUAGE_NAMES = {"vi": "Tiếng Việt", "en": "English"}
RESIDENT = "resident"  # the message context of the texts in the residents' polite register
REGISTERS = (None, RESIDENT)


def hinted_locale(hint: str | None) -> str | None:
    """The supported locale a client's language setting names (Telegram's language_code), or
    None. Kept as a new user's language, so that notices sent to them later by somebody else's
    update (a visit taken, a request to a volunteer) come in it too."""
    if not hint:
        return None
    short = hint.replace("_", "-").split("-")[0].lower()
    return short if short in LOCALES else None


def pick_locale(*candidates: str | None) -> str:
    """The first supported locale among the candidates (e.g. stored choice, Telegram hint)."""
    for candidate in candidates:
        found = hinted_locale(candidate)
        if found is not None:
            return found
    return DEFAULT_LOCALE


@cache
def _catalog(locale: str) -> _gettext.NullTranslations:
    po = LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"
    mo = po.with_suffix(".mo")
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fh:
            return _gettext.GNUTranslations(fh)
    if not po.exists():
        return _gettext.NullTranslations()
    import io

    with po.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


# Keys of a text's values that are counts ("{count} households", "{rows} records") or limits ("at
# most {max} characters"): written with the locale's grouping when given as integers. (Years are
# never passed under these keys: "between {first} and {last}".)
COUNT_KEYS = frozenset({"n", "count", "rows", "total", "households", "assigned", "capacity", "active",
                        "imported", "updated", "unchanged", "rejected", "max"})
# Counts written once per translator and kept (Babel's format_decimal costs about 40 µs a call,
# and a flow step writes two or three); past this many distinct counts they are not kept.
MAX_KEPT_NUMBERS = 20_000


class Translator:
    """Translates and formats texts for one locale and register: `t("Hello, {name}!", name="An")`,
    `t.plural("{n} volunteer", "{n} volunteers", n)`."""

    def __init__(self, locale: str, register: str | None = None) -> None:
        self.locale = pick_locale(locale)
        self.register = register
        self._catalog = _catalog(self.locale)
        self._numbers: dict[int, str] = {}

    def __call__(self, msgid: str, /, **values: Any) -> str:
        text = self._gettext(msgid) if msgid else msgid
        return text.format(**self._counts(values)) if values else text

    def number(self, value: int) -> str:
        """A count as this locale writes it: "21.544" in Vietnamese, "21,544" in English."""
        text = self._numbers.get(value)
        if text is None:
            text = format_decimal(value, locale=self.locale)
            if len(self._numbers) < MAX_KEPT_NUMBERS:
                self._numbers[value] = text
        return text

    def _counts(self, values: dict[str, Any]) -> dict[str, Any]:
        """Counts passed as integers, written the same everywhere (ids and years are not counts:
        only the COUNT_KEYS are grouped)."""
        return {k: self.number(v) if k in COUNT_KEYS and type(v) is int else v for k, v in values.items()}

    def plural(self, singular: str, plural: str, n: int, /, **values: Any) -> str:
        """The form of the text for the count `n` (`{n}` in the text is the count)."""
        untranslated = singular if n == 1 else plural
        text = untranslated
        if self.register is not None:
            text = self._catalog.npgettext(self.register, singular, plural, n)
        if text == untranslated:
            text = self._catalog.ngettext(singular, plural, n)
        return text.format(n=self.number(n), **self._counts(values))

    def _gettext(self, msgid: str) -> str:
        if self.register is not None:
            text = self._catalog.pgettext(self.register, msgid)
            if text != msgid:  # the register has its own translation of this text
                return text
        return self._catalog.gettext(msgid)


def translator(locale: str | None, register: str | None = None) -> Translator:
    """The translator for a locale; `register` RESIDENT for texts a resident reads."""
    found = _translators.get((locale, register)) if locale is not None else None  # most calls
    return found if found is not None else _translators[(pick_locale(locale), register)]


def _all_translators() -> dict[tuple[str, str | None], Translator]:
    return {(code, register): Translator(code, register) for code in LOCALES for register in REGISTERS}


_translators = _all_translators()


def N_(msgid: str) -> str:
    """Marks a text for extraction where it is translated later (button labels in tables)."""
    return msgid


def reload_catalogs() -> None:
    """Forget loaded catalogs (tests that rewrite them)."""
    _catalog.cache_clear()
    _translators.update(_all_translators())
