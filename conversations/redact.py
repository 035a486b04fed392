"""Citizen ID numbers typed into free text are masked before anything is stored.

Residents ask "so cccd cua toi la 048090001234 bi sai ten"; volunteers type reasons and notes.
GoCua keeps no full citizen ID anywhere (only the mask and a keyed hash, from the fields made
for it), so a 12-digit number (căn cước / CCCD, also written in groups: "048 090 001 234") or
a 9-digit one (the old CMND) in free text keeps its first three and last two digits:
"048*******34". Phone numbers (10 digits) and shorter numbers are left alone.
"""

from __future__ import annotations

import re

_GROUPED_12 = r"\d{3}[ .\-]\d{3}[ .\-]\d{3}[ .\-]\d{3}|\d{4}[ .\-]\d{4}[ .\-]\d{4}"
_ID_NUMBER = re.compile(rf"(?<![\d.,\-])(?:\d{{12}}|\d{{9}}|{_GROUPED_12})(?![\d]|[.,\-]\d)")


def _mask(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return digits[:3] + "*" * (len(digits) - 5) + digits[-2:]


def redact_citizen_ids(text: str) -> str:
    """`text` with every citizen-ID-like number masked (first three, last two digits kept)."""
    return _ID_NUMBER.sub(_mask, text)
