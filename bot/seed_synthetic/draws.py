"""The one random stream every synthetic row is drawn from, the 16-week window its times fall
in, and the primary keys handed out in order. Everything here is deterministic for a seed."""

from __future__ import annotations

import math
import random
from bisect import bisect
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from conversations.local_time import VIETNAM

WINDOW_DAYS = 16 * 7  # all activity lies in the 16 weeks before `now`
_MINUTES_KEPT = 48 * 60


class Draws:
    """Random draws from one stream seeded by (seed, number of households, anchor date), and
    local times of the window: day 0 is WINDOW_DAYS before the anchor's date."""

    def __init__(self, seed: int, households: int, anchor: date) -> None:
        self.rng = random.Random(f"gocua-synthetic/{seed}/{households}/{anchor.isoformat()}")
        self.random = self.rng.random
        self.year = anchor.year
        self.first_day = anchor - timedelta(days=WINDOW_DAYS)  # the local date of day 0
        day0 = datetime(self.first_day.year, self.first_day.month, self.first_day.day,
                        tzinfo=VIETNAM).astimezone(UTC)
        self.window_start = day0
        self._days = [day0 + timedelta(days=d) for d in range(WINDOW_DAYS)]
        self._minutes = [timedelta(minutes=m) for m in range(_MINUTES_KEPT)]

    def pick(self, population: Sequence[Any], cumulative: Sequence[float]) -> Any:
        """One of `population`, by cumulative weights (as random.choices, a little faster)."""
        return population[bisect(cumulative, self.random() * cumulative[-1])]

    def between(self, least: int, most: int) -> int:
        """A whole number from least to most, both included."""
        return least + int(self.random() * (most - least + 1))

    def moment(self, day: int, minutes: int) -> datetime:
        """Day `day` of the window (local calendar), `minutes` after local midnight, in UTC."""
        offset = self._minutes[minutes] if 0 <= minutes < _MINUTES_KEPT else timedelta(minutes=minutes)
        return self._days[day] + offset

    def local_date(self, day: int) -> date:
        return self.first_day + timedelta(days=day)

    def campaign_day(self) -> int:
        """A day of the window for a visit: a campaign picking up, about six times as many
        visits in the last week as in the first."""
        if self.random() < 0.25:
            return int(self.random() * WINDOW_DAYS)
        return min(WINDOW_DAYS - 1, int(WINDOW_DAYS * math.sqrt(self.random())))

    def visit_start(self) -> int:
        """Minutes after midnight when a visit starts: 07:30 to 18:30 local time."""
        return 7 * 60 + 30 + int(self.random() * 11 * 60)


class Ids:
    """Primary keys assigned here, from the first free one of each table (no RETURNING)."""

    def __init__(self, first: dict[str, int]) -> None:
        self._next = dict(first)

    def take(self, table: str) -> int:
        value = self._next[table]
        self._next[table] = value + 1
        return value
