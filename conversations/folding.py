"""Vietnamese text folded for comparison: lower case, without diacritics (ư → u, đ → d).

One pure function shared by the option reader (handlers/options.py), the name check
(conversations/validators.py) and small talk (conversations/small_talk.py), so all forget the
same marks. (The FAQ matcher's own `faq_match.fold` gives the same result on Vietnamese text.)
"""

from __future__ import annotations

import unicodedata


def strip_marks(text: str) -> str:
    """Lower case without Vietnamese diacritics (đ included); every other character kept."""
    text = unicodedata.normalize("NFD", text.lower()).replace("đ", "d")
    return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
