"""Flood control: a chat sending far more than a person types is slowed down, politely.

Every handled update of a chat leaves a processed_updates row, so the updates a chat sent in the
last FLOOD_WINDOW are counted from an index, by every worker on the same database, in the
statement that loads the update (db/repo/users.py `load_for_update`). Past FLOOD_LIMIT the core
(handlers/pipeline.py) does not run the handler: the first update over the limit gets SLOW_DOWN,
the next ones nothing, until the chat has been calmer for a window. Dropped updates are recorded
too (a redelivery stays a duplicate), so a chat that keeps flooding stays slowed down.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from handlers.i18n import N_, Translator
from handlers.types import Reply

FLOOD_WINDOW = timedelta(seconds=60)
# Updates of one chat per window before it is slowed down: a volunteer tapping through a
# procedure at a door sends a few a minute, a burst of 20 is still far below.
FLOOD_LIMIT = 40
# A local single user: nobody else to protect.
FLOOD_EXEMPT = frozenset({"console"})
SLOW_DOWN = N_("You are sending messages very fast. Please wait a minute, then I will answer again.")

Verdict = Literal["allow", "warn", "drop"]


def flood_verdict(recent: int, limit: int = FLOOD_LIMIT) -> Verdict:
    """What to do with an update of a chat that sent `recent` updates in the window before it:
    answer it, answer only SLOW_DOWN (the first update over the limit) or answer nothing."""
    if recent < limit:
        return "allow"
    return "warn" if recent == limit else "drop"


def slow_down(t: Translator) -> Reply:
    """The polite answer to the first update over the limit, in the sender's language."""
    return Reply(t(SLOW_DOWN))
