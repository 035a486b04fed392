"""How a share is written, the same in the chat's text, its buttons, the chart and the exports."""

from __future__ import annotations


def percent(part: int, whole: int | None) -> str | None:
    """`part` as a share of `whole`, e.g. "33%", the same in the text, the buttons, the chart and
    the exports. Floored, so that "100%" means all of it; a share under 1% reads "<1%", never
    "0%", which means none. None when there is no whole to compare with."""
    if not whole or whole <= 0:
        return None
    if 0 < part * 100 < whole:
        return "<1%"
    return f"{max(part, 0) * 100 // whole}%"
