"""Flood control: a chat sending far more than a person types is slowed down, politely.

Every handled update of a chat leaves a processed_updates row, so the updates a chat sent in the
last FLOOD_WINDOW are counted from an index, by every worker on the same database, in the
statement that loads the update (db/repo/users.py `load_for_update`). Past FLOOD_LIMIT the core
(handlers/pipeline.py) does not run the handler: the first update over the limit gets SLOW_DOWN,
the next ones nothing, until the chat has been calmer for a window. Dropped updates are recorded
too (a redelivery stays a duplicate), so a chat that keeps flooding stays slowed down.

Some updates cost more than a message: a visit request is pushed to every volunteer of an area,
so creating one counts as REQUEST_WEIGHT updates (`request_verdict`, checked by handlers/
visits.py before a request is made): a chat may make a few requests in a minute, not a stream.
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
# What creating a visit request counts, in plain updates, towards FLOOD_LIMIT.
REQUEST_WEIGHT = 8
SLOW_DOWN = N_("You are sending messages very fast. Please wait a minute, then I will answer again.")

Verdict = Literal["allow", "warn", "drop"]


def flood_verdict(recent: int, limit: int = FLOOD_LIMIT) -> Verdict:
    """What to do with an update of a chat that sent `recent` updates in the window before it:
    answer it, answer only SLOW_DOWN (the first update over the limit) or answer nothing."""
    if recent < limit:
        return "allow"
    return "warn" if recent == limit else "drop"


def request_verdict(recent_updates: int, recent_requests: int) -> Verdict:
    """Whether a chat that sent `recent_updates` updates and made `recent_requests` visit
    requests within the window may make one more: each request, this one included, counts as
    REQUEST_WEIGHT updates (`recent_updates` does not include the update being handled)."""
    weighted = recent_updates + REQUEST_WEIGHT * (recent_requests + 1)
    return "allow" if weighted <= FLOOD_LIMIT else "drop"


def slow_down(t: Translator) -> Reply:
    """The polite answer to the first update over the limit, in the sender's language."""
    return Reply(t(SLOW_DOWN))
