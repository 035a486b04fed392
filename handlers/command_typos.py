"""The command someone meant when they mistyped one: "/hlep" → /help, "/targets" → /target."""

from __future__ import annotations

from collections.abc import Iterable

from rapidfuzz.distance import OSA

# Edits allowed between what was typed and a command name (the slash not counted): one for
# short names, two from five letters on; a transposed pair ("hlep") is one edit.
_SHORT = 4


def closest_command(typed: str, commands: Iterable[str]) -> str | None:
    """The one command within reach of `typed` (a lower-case "/name"); None when none is, or
    when two are equally close (a guess between two would be a coin toss)."""
    word = typed.lstrip("/")
    if not word:
        return None
    limit = 1 if len(word) <= _SHORT else 2
    scored = sorted((OSA.distance(word, name.lstrip("/")), name) for name in commands)
    scored = [(d, name) for d, name in scored if d <= limit]
    if not scored or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None
    return scored[0][1]
