"""Numbered options for channels without buttons: map "2" or a label back to the payload.

What was last offered in a chat is kept on the conversation, so an answer is checked against
it on the server, whichever worker or channel session receives it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from handlers.types import Reply

# Channels that render buttons as numbered lines ("[1] Label" / "1. Label").
NUMBERED_CHANNELS = frozenset({"console", "zalo"})
_NUMBER = re.compile(r"^\s*\[?(\d{1,3})[\].)]?\s*$")
_LEADING_NUMBER = re.compile(r"^\s*\[?\d{1,3}[\].)]?\s+")


def fold(text: str) -> str:
    """Lower case without Vietnamese diacritics (đ included), spaces collapsed."""
    text = unicodedata.normalize("NFD", text.lower()).replace("đ", "d")
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return " ".join(text.split())


def offered_from(replies: list[Reply]) -> list[list[str]] | None:
    """The options the user sees last in this chat, or None if these replies offer none."""
    for reply in reversed(replies):
        if reply.to is None and reply.buttons:
            return [[b.label, b.payload] for b in reply.buttons]
    return None


class OptionMatch:
    """Result of reading a typed answer against the offered options."""

    def __init__(self, payload: str | None = None, out_of_range: bool = False) -> None:
        self.payload = payload
        self.out_of_range = out_of_range


def match_offered(text: str, offered: list[Any], *, numbered: bool) -> OptionMatch:
    if not text or len(text) > 200:
        return OptionMatch()
    number = _NUMBER.match(text) if numbered else None
    if number:
        index = int(number.group(1))
        if 1 <= index <= len(offered):
            return OptionMatch(payload=offered[index - 1][1])
        return OptionMatch(out_of_range=True)
    wanted = fold(_LEADING_NUMBER.sub("", text) if numbered else text)
    for label, payload in offered:
        if fold(label) == wanted:
            return OptionMatch(payload=payload)
    return OptionMatch()
