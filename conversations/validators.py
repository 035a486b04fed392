"""Validators for typed answers: pure functions, one per `validator:` name of an input step.

Each takes the raw text and today's date and returns `(value, None)` with a normalised,
JSON-able value, or `(None, ErrorMessage)` saying exactly what is wrong. They never raise on
any string (empty, emoji, 200 KB, NUL bytes, right-to-left text): the length is checked first
so huge inputs cost nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from conversations.folding import strip_marks
from conversations.provinces import is_province_code
from conversations.redact import redact_citizen_ids
from conversations.texts import N_


@dataclass(frozen=True)
class ErrorMessage:
    """A msgid and the values for its {placeholders}; the handler translates and formats it."""

    msgid: str
    values: dict[str, Any] = field(default_factory=dict)


Value = str | int
Result = tuple[Value, None] | tuple[None, ErrorMessage]
Validator = Callable[[str, date], Result]

MAX_RAW = 2000  # no validator looks further than this into a text
MIN_YEAR = 1900
MAX_NUMBER = 1_000_000
MAX_TEXT = 500
MAX_ADDRESS = 300

TOO_LONG = N_("That answer is far too long ({count} characters).")
EMPTY = N_("The answer is empty. Please type it.")

CCCD_HINT = N_("Type the 12 digits of the citizen ID card.")
CCCD_NOT_DIGITS = N_("A citizen ID has only digits (0–9).")
CCCD_COUNT = N_("A citizen ID has 12 digits; you sent {count}.")
CCCD_PROVINCE = N_("The first three digits {code} are not a province code.")
CCCD_FUTURE = N_("Digits 4 to 6 give a birth year after this year ({year}).")

PHONE_HINT = N_("Type the phone number, e.g. 0905123456 (a landline: 02363822123).")
PHONE_NOT_DIGITS = N_("A phone number has only digits (0–9), optionally starting with +84.")
PHONE_SHAPE = N_("A Vietnamese mobile number has 10 digits and starts with 03, 05, 07, 08 or 09.")
PHONE_COUNT = N_("A Vietnamese mobile number has 10 digits; you sent {count}.")
PHONE_LANDLINE_COUNT = N_("A landline number (02…) has 10 or 11 digits; you sent {count}.")

DATE_HINT = N_("Type the date as dd/mm/yyyy, e.g. 05/03/2025.")
DATE_FORMAT = N_("Write the date as dd/mm/yyyy, for example 05/03/2025.")
DATE_INVALID = N_("There is no such date: {text}.")
DATE_FUTURE = N_("That date is in the future.")
DATE_TOO_OLD = N_("The year must be {min} or later.")

YEAR_HINT = N_("Type the year with 4 digits, e.g. 1950.")
YEAR_FORMAT = N_("Write the year with 4 digits, for example 1950.")

ADDRESS_HINT = N_("Type the address or a landmark, e.g. Thôn Tà Lang, near the school.")
ADDRESS_NO_WORDS = N_("An address needs at least one letter or number, e.g. Thôn Tà Lang, near the school.")
ADDRESS_LONG = N_("An address has at most {max} characters; you sent {count}.")
YEAR_RANGE = N_("The year must be between {first} and {last}.")

NAME_HINT = N_("Type the full name, e.g. Nguyễn Văn An.")
NAME_SHORT = N_("A name has at least 2 letters.")
NAME_LONG = N_("A name has at most 100 characters; you sent {count}.")
NAME_DIGITS = N_("A name has no digits.")
NAME_CHARS = N_("A name has only letters, spaces, apostrophes, hyphens and dots.")

NUMBER_HINT = N_("Type a whole number, e.g. 3.")
NUMBER_FORMAT = N_("Write a whole number with digits only, for example 3.")
NUMBER_NEGATIVE = N_("The number cannot be negative.")
NUMBER_RANGE = N_("The number must be at most {max}.")

TEXT_HINT = N_("Type your answer.")
TEXT_LONG = N_("That is too long: at most {max} characters; you sent {count}.")
TEXT_CONTROL = N_("The text has invisible control characters. Please type it again.")

_SEPARATORS = re.compile(r"[\s.\-]+")
_PHONE_SEPARATORS = re.compile(r"[\s.\-()]+")
_ASCII_DIGITS = re.compile(r"[0-9]+")
_DATE = re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})", re.ASCII)
_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})", re.ASCII)
# "1960", "năm 1960", "sinh năm 1960", "1960." (also without diacritics, or "year 1960")
_YEAR = re.compile(r"(?:(?:sinh\s+)?n[aă]m\s+|year\s+)?(\d{4})\s*\.?", re.ASCII | re.IGNORECASE)
_NUMBER = re.compile(r"\d+|\d{1,3}(?:[.,\s]\d{3})+", re.ASCII)
_NAME_PUNCT = frozenset(" '’-.")
_MOBILE_SECOND_DIGIT = frozenset("35789")


def _error(msgid: str, **values: Any) -> tuple[None, ErrorMessage]:
    return None, ErrorMessage(msgid, values)


def _clean(raw: object, limit: int = MAX_RAW) -> str | ErrorMessage:
    """The answer stripped, or an error if it is empty or longer than `limit` characters."""
    if not isinstance(raw, str):
        return ErrorMessage(EMPTY)
    if len(raw) > limit:
        return ErrorMessage(TOO_LONG, {"count": len(raw)})
    text = raw.strip()
    return text if text else ErrorMessage(EMPTY)


def validate_cccd(raw: str, today: date) -> Result:
    """A 12-digit citizen ID with a known province code; returns the bare digits."""
    text = _clean(raw, limit=100)
    if isinstance(text, ErrorMessage):
        return None, text
    digits = _SEPARATORS.sub("", text)
    if not _ASCII_DIGITS.fullmatch(digits):
        return _error(CCCD_NOT_DIGITS)
    if len(digits) != 12:
        return _error(CCCD_COUNT, count=len(digits))
    if not is_province_code(digits[:3]):
        return _error(CCCD_PROVINCE, code=digits[:3])
    century = {"0": 1900, "1": 1900, "2": 2000, "3": 2000}.get(digits[3])
    if century is not None and century + int(digits[4:6]) > today.year:
        return _error(CCCD_FUTURE, year=century + int(digits[4:6]))
    return digits, None


def mask_cccd(number: str) -> str:
    """The first four digits, six asterisks, the last two: "048090001234" -> "0480******34"."""
    digits = re.sub(r"\D", "", number)
    if len(digits) != 12:
        return "*" * 12
    return f"{digits[:4]}******{digits[-2:]}"


def hash_cccd(number: str, key: bytes) -> str:
    """A keyed HMAC-SHA256 of the bare digits, hex: finds the same person without the number."""
    digits = re.sub(r"\D", "", number)
    return hmac.new(key, digits.encode("ascii"), hashlib.sha256).hexdigest()


def validate_phone(raw: str, today: date) -> Result:
    """A Vietnamese mobile (10 digits) or landline (02…, 10–11 digits) number, written 0…, 84… or
    +84…; returns it as 0 and the digits."""
    text = _clean(raw, limit=100)
    if isinstance(text, ErrorMessage):
        return None, text
    compact = _PHONE_SEPARATORS.sub("", text)
    plus = compact.startswith("+")
    digits = compact[1:] if plus else compact
    if not _ASCII_DIGITS.fullmatch(digits):
        return _error(PHONE_NOT_DIGITS)
    if digits.startswith("840") and len(digits) == 12:
        local = digits[2:]
    elif digits.startswith("84") and (plus or len(digits) == 11 or digits.startswith("842")):
        local = "0" + digits[2:]
    elif plus:
        return _error(PHONE_SHAPE)
    else:
        local = digits
    if not local.startswith("0"):
        return _error(PHONE_SHAPE)
    if local.startswith("02"):  # a landline: 02 + area code + subscriber number
        if len(local) not in (10, 11):
            return _error(PHONE_LANDLINE_COUNT, count=len(local))
        return local, None
    if len(local) != 10:
        return _error(PHONE_COUNT, count=len(local))
    if local[1] not in _MOBILE_SECOND_DIGIT:
        return _error(PHONE_SHAPE)
    return local, None


def validate_date(raw: str, today: date) -> Result:
    """dd/mm/yyyy or d/m/yyyy (also - or .), or yyyy-mm-dd; a real past date; returns ISO."""
    text = _clean(raw, limit=100)
    if isinstance(text, ErrorMessage):
        return None, text
    text = text.replace(" ", "")
    if match := _DATE.fullmatch(text):
        day, month, year = (int(g) for g in match.groups())
    elif match := _ISO_DATE.fullmatch(text):
        year, month, day = (int(g) for g in match.groups())
    else:
        return _error(DATE_FORMAT)
    try:
        value = date(year, month, day)
    except ValueError:
        return _error(DATE_INVALID, text=text)
    if value > today:
        return _error(DATE_FUTURE)
    if value.year < MIN_YEAR:
        return _error(DATE_TOO_OLD, min=MIN_YEAR)
    return value.isoformat(), None


def validate_year(raw: str, today: date) -> Result:
    """A four-digit year from 1900 to this year ("1960", "năm 1960", "1960."); returns an int."""
    text = _clean(raw, limit=100)
    if isinstance(text, ErrorMessage):
        return None, text
    match = _YEAR.fullmatch(unicodedata.normalize("NFC", text).lower())
    if not match:
        return _error(YEAR_FORMAT)
    year = int(match.group(1))
    if not MIN_YEAR <= year <= today.year:
        return _error(YEAR_RANGE, first=MIN_YEAR, last=today.year)
    return year, None


def validate_name(raw: str, today: date) -> Result:
    """A person's name in any script: letters, spaces, ' - . only; NFC, spaces collapsed."""
    text = _clean(raw, limit=400)
    if isinstance(text, ErrorMessage):
        return None, text
    text = " ".join(unicodedata.normalize("NFC", text).split())
    if any(ch.isdigit() for ch in text):
        return _error(NAME_DIGITS)
    for ch in text:
        if ch not in _NAME_PUNCT and unicodedata.category(ch)[0] not in "LM":
            return _error(NAME_CHARS)
    letters = sum(1 for ch in text if unicodedata.category(ch)[0] == "L")
    if letters < 2:
        return _error(NAME_SHORT)
    if len(text) > 100:
        return _error(NAME_LONG, count=len(text))
    return text, None


# Rows of a keyboard, left to right: five keys in a row of one of them is typing, not a name.
_KEY_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_MASH_RUN = 5
_VOWELS = frozenset("aeiouy")
_VOWELLESS_WORD = 4


def _has_key_run(word: str) -> bool:
    return any(
        word[i:i + _MASH_RUN] in row or word[i:i + _MASH_RUN][::-1] in row
        for row in _KEY_ROWS for i in range(len(word) - _MASH_RUN + 1)
    )


def name_looks_typed_at_random(name: str) -> bool:
    """A valid name that still looks like keyboard mashing ("asdfghjkl qwerty"): five keys in
    sequence along a keyboard row, or a Latin word of four letters or more without a vowel.
    Real names can trip it, so callers ask to confirm instead of refusing."""
    for word in re.split(r"[\s\-.'’]+", strip_marks(name)):
        if not word.isascii() or not word.isalpha():
            continue
        if _has_key_run(word):
            return True
        if len(word) >= _VOWELLESS_WORD and not _VOWELS & set(word):
            return True
    return False


# Digit 4 of a citizen ID: the century of birth and the sex (even: male, odd: female).
_CENTURIES = {"0": 1900, "1": 1900, "2": 2000, "3": 2000, "4": 2100, "5": 2100,
              "6": 2200, "7": 2200, "8": 1800, "9": 1800}


def cccd_birth_year(digits: str) -> int | None:
    """The year of birth a 12-digit citizen ID encodes (digit 4: century, digits 5–6: year)."""
    if len(digits) != 12 or not digits.isascii() or not digits.isdigit():
        return None
    return _CENTURIES[digits[3]] + int(digits[4:6])


def cccd_year_conflict(digits: str, birth_year: int | None) -> int | None:
    """The card's year of birth when it differs from `birth_year` (both known), else None."""
    card_year = cccd_birth_year(digits)
    if birth_year is None or card_year is None or card_year == birth_year:
        return None
    return card_year


def validate_address(raw: str, today: date) -> Result:
    """An address or landmark: free text (as `text`) with at least one letter or digit, at most
    300 characters."""
    value, error = validate_text(raw, today)
    if error is not None:
        return None, error
    assert isinstance(value, str)
    if not any(unicodedata.category(ch)[0] in "LN" for ch in value):
        return _error(ADDRESS_NO_WORDS)
    if len(value) > MAX_ADDRESS:
        return _error(ADDRESS_LONG, max=MAX_ADDRESS, count=len(value))
    return value, None


def validate_number(raw: str, today: date) -> Result:
    """A whole number from 0 to 1,000,000 (thousands may be grouped: 1.000 or 1,000)."""
    text = _clean(raw, limit=100)
    if isinstance(text, ErrorMessage):
        return None, text
    if text.startswith("-") and _NUMBER.fullmatch(text[1:].strip()):
        return _error(NUMBER_NEGATIVE)
    if not _NUMBER.fullmatch(text):
        return _error(NUMBER_FORMAT)
    value = int(re.sub(r"\D", "", text))
    if value > MAX_NUMBER:
        return _error(NUMBER_RANGE, max=MAX_NUMBER)
    return value, None


def validate_text(raw: str, today: date) -> Result:
    """Free text, 1 to 500 characters after trimming, NFC, no control characters; a citizen ID
    number typed in it is masked (conversations/redact.py)."""
    text = _clean(raw)
    if isinstance(text, ErrorMessage):
        return None, text
    text = unicodedata.normalize("NFC", text)
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in text):
        return _error(TEXT_CONTROL)
    if len(text) > MAX_TEXT:
        return _error(TEXT_LONG, max=MAX_TEXT, count=len(text))
    return redact_citizen_ids(text), None


VALIDATORS: dict[str, Validator] = {
    "cccd": validate_cccd,
    "phone": validate_phone,
    "date": validate_date,
    "year": validate_year,
    "name": validate_name,
    "number": validate_number,
    "text": validate_text,
    "address": validate_address,
}

HINTS: dict[str, str] = {
    "cccd": CCCD_HINT,
    "phone": PHONE_HINT,
    "date": DATE_HINT,
    "year": YEAR_HINT,
    "name": NAME_HINT,
    "number": NUMBER_HINT,
    "text": TEXT_HINT,
    "address": ADDRESS_HINT,
}


def validate(kind: str, raw: str, today: date) -> Result:
    """Run the validator called `kind` (a key of VALIDATORS) on a typed answer."""
    return VALIDATORS[kind](raw, today)
