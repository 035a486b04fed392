"""Citizen ID numbers typed into free text are masked before anything is stored, logged,
exported or sent on.

Residents ask "so cccd cua toi la 048 090 001 234 bi sai ten"; volunteers type reasons and
notes; a reply may echo what was typed. GoCua keeps no full citizen ID anywhere (only the mask
and a keyed hash, from the fields made for it). What is masked, exactly:

- A *number* is a run of digit groups: any Unicode decimal digits (ASCII, full-width "０４８",
  Arabic-Indic …), the groups joined by separators: any whitespace, invisible characters
  (zero-width spaces and joiners, direction marks, soft hyphens, combining marks) and at most
  MAX_VISIBLE of `.` `,` `_` `/` `\\` `·` `'` `*` `+` `~` `−` or any dash (Unicode Pd: -, ‐, –, —
  …), full-width forms included. Letters and other characters end a number.
- In a number, from left to right: a date dd/mm/yyyy (or with dots or dashes) is kept; else
  consecutive groups with 12 digits in all (a căn cước / CCCD, however grouped:
  "048 090 001 2 13", "04809 0001208", "048—090—001—216") are masked; else a phone number
  starting there (10 digits starting with 0, or 11 starting with 84) is kept; else
  consecutive groups with 9 digits in all (the old CMND) are masked.
- A masked ID keeps its first three and last two digits, in ASCII, without its separators:
  "048*******34", "201****67".
- Kept whole: a number of over 12 digits in one group ("1048090001234" is not an ID), and an
  amount grouped in thousands and followed by a currency ("500.000.000 đồng"). Dates ("from
  01/07/2025-31/12/2025"), times ("10:30": a colon ends a number), phone numbers and numbers
  under 9 digits are left alone.

So no ID typed in free text can be read back from what GoCua keeps: at most its first three
and last two digits, whatever separates its digits (tests/test_redact.py checks it with
generated separators, groupings and digit scripts, for an ID set off from other numbers by a
letter, a colon or nothing but the text's ends; an ID joined to other digits by separators
alone is read with them as one number, and what is masked then depends on how they add up).
The price is the odd false positive: a phone number followed by two more digits
("0905123456, 12") or nine single digits in a row are masked too.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass

ID_LENGTHS = (12, 9)  # căn cước / CCCD, then the old CMND
PHONE_LENGTHS = {10: "0", 11: "84"}  # digits -> prefix
KEPT_HEAD, KEPT_TAIL = 3, 2
MAX_VISIBLE = 2  # visible separator characters between two groups of one number
_VISIBLE_SEPARATORS = frozenset(".,_/\\·'’*+~−")
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Mn", "Mc", "Me", "Zs", "Zl", "Zp"})
_DIGITS = re.compile(r"\d+")  # Unicode decimal digits (category Nd), as str.isdecimal
_DATE = re.compile(r"(\d{1,2})([/.\-])(\d{1,2})\2(\d{4})")
_CURRENCY = re.compile(r"\s?(?:đồng|đ|dong|vnđ|vnd|₫)(?![^\W\d_])", re.IGNORECASE)


@dataclass(frozen=True)
class _Group:
    start: int  # index in the text of the first digit
    end: int  # index after the last digit
    digits: str  # ASCII digits


def _invisible(ch: str) -> bool:
    return ch.isspace() or unicodedata.category(ch) in _INVISIBLE_CATEGORIES


def _visible_separator(ch: str) -> bool:
    return (unicodedata.category(ch) == "Pd"
            or ch in _VISIBLE_SEPARATORS or unicodedata.normalize("NFKC", ch) in _VISIBLE_SEPARATORS)


def _joins(gap: str) -> bool:
    """Whether `gap` (between two digit groups) keeps them in one number."""
    visible = 0
    for ch in gap:
        if _invisible(ch):
            continue
        if not _visible_separator(ch):
            return False
        visible += 1
    return visible <= MAX_VISIBLE


def _numbers(text: str) -> list[list[_Group]]:
    """The numbers in `text`, each as its digit groups."""
    numbers: list[list[_Group]] = []
    for found in _DIGITS.finditer(text):
        start, end = found.span()
        digits = found[0] if found[0].isascii() else "".join(str(unicodedata.decimal(ch)) for ch in found[0])
        group = _Group(start, end, digits)
        if numbers and _joins(text[numbers[-1][-1].end:start]):
            numbers[-1].append(group)
        else:
            numbers.append([group])
    return numbers


def _date_at(text: str, groups: list[_Group], i: int) -> bool:
    """Whether groups i, i+1, i+2 are a date dd/mm/yyyy (or with dots or dashes)."""
    if i + 2 >= len(groups):
        return False
    found = _DATE.fullmatch(text[groups[i].start:groups[i + 2].end])
    return found is not None and (1 <= int(found[1]) <= 31 and 1 <= int(found[3]) <= 12
                                  and 1900 <= int(found[4]) <= 2099)


def _amount(text: str, groups: list[_Group]) -> bool:
    """Thousands ("500.000.000") followed by a currency."""
    if not 1 <= len(groups[0].digits) <= 3 or any(len(g.digits) != 3 for g in groups[1:]):
        return False
    gaps = {text[a.end:b.start] for a, b in itertools.pairwise(groups)}
    return len(gaps) == 1 and gaps <= {".", ","} and bool(_CURRENCY.match(text, groups[-1].end))


def _ends_at(groups: list[_Group], i: int, length: int, prefix: str = "") -> int | None:
    """The index of the group where groups[i:] reach exactly `length` digits (starting with
    `prefix`), or None."""
    total = 0
    for j in range(i, len(groups)):
        total += len(groups[j].digits)
        if total >= length:
            head = "".join(g.digits for g in groups[i:j + 1])
            return j if total == length and head.startswith(prefix) else None
    return None


def _id_spans(text: str, groups: list[_Group]) -> list[tuple[int, int]]:
    """(first, last) group indices of each ID in one number."""
    if sum(len(g.digits) for g in groups) < min(ID_LENGTHS) or _amount(text, groups):
        return []
    spans, i = [], 0
    while i < len(groups):
        if _date_at(text, groups, i):
            i += 3
            continue
        end = _ends_at(groups, i, ID_LENGTHS[0])
        if end is None:
            phone = next((j for length, prefix in PHONE_LENGTHS.items()
                          if (j := _ends_at(groups, i, length, prefix)) is not None), None)
            if phone is not None:
                i = phone + 1
                continue
            end = _ends_at(groups, i, ID_LENGTHS[1])
        if end is None:
            i += 1
            continue
        spans.append((i, end))
        i = end + 1
    return spans


def mask_digits(digits: str) -> str:
    """"048090001234" -> "048*******34"."""
    return digits[:KEPT_HEAD] + "*" * (len(digits) - KEPT_HEAD - KEPT_TAIL) + digits[-KEPT_TAIL:]


def redact_citizen_ids(text: str) -> str:
    """`text` with every citizen-ID-like number masked (first three, last two digits kept)."""
    if sum(len(run) for run in _DIGITS.findall(text)) < min(ID_LENGTHS):
        return text
    pieces, done = [], 0
    for groups in _numbers(text):
        for first, last in _id_spans(text, groups):
            start, end = groups[first].start, groups[last].end
            pieces += [text[done:start], mask_digits("".join(g.digits for g in groups[first:last + 1]))]
            done = end
    return "".join(pieces) + text[done:] if pieces else text
