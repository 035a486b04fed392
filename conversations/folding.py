"""Vietnamese text folded for comparison: lower case, without diacritics (ư → u, đ → d).

One pure function shared by the option reader (handlers/options.py), the name check
(conversations/validators.py) and small talk (conversations/small_talk.py), so all forget the
same marks. (The FAQ matcher's own `faq_match.fold` gives the same result on Vietnamese text.)
"""

from __future__ import annotations

import functools
import re
import unicodedata


def strip_marks(text: str) -> str:
    """Lower case without Vietnamese diacritics (đ included); every other character kept."""
    if text.isascii():  # numbers, phones, codes: nothing to strip (a household list's most cells)
        return text.lower()
    return _strip_marks(text)


@functools.lru_cache(maxsize=1 << 16)
def _strip_marks(text: str) -> str:
    """The same for text with marks; names and villages repeat, in a list of 100,000 households too."""
    text = unicodedata.normalize("NFD", text.lower()).replace("đ", "d")
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


_DIGITS = re.compile(r"(\d+)")


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """A sort key that orders names as people read them: "Tổ dân phố 2" before "Tổ dân phố 10",
    letters compared without marks or case (then with them, so the order is total)."""
    folded = strip_marks(text)
    parts = tuple((1, int(p)) if p.isdigit() else (0, p) for p in _DIGITS.split(folded) if p)
    return (*parts, (0, text))
