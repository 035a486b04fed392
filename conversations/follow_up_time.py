"""When a follow-up may go out: quiet hours, working hours and come-back dates (pure).

Nothing is sent between 21:00 and 07:00 Vietnam time (conversations/local_time.py): work due
then waits for 07:00. An escalation "within 2 hours" counts only the hours between 07:00 and
21:00. All functions take and return aware datetimes; the result is in UTC.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from conversations.local_time import VIETNAM

DAY_STARTS = time(7, 0)  # the first minute a follow-up may go out
DAY_ENDS = time(21, 0)  # quiet from here
COME_BACK_AT = time(8, 0)  # a come-back reminder's hour on its day
DIGEST_AT = time(7, 30)  # the Monday digests
FAR_AHEAD = timedelta(days=183)  # a come-back date further than this asks to confirm


def _local(dt: datetime) -> datetime:
    return dt.astimezone(VIETNAM)


def at_local(day: date, at: time) -> datetime:
    """`day` at `at` Vietnam time, in UTC."""
    return datetime.combine(day, at, VIETNAM).astimezone(UTC)


def is_quiet(dt: datetime) -> bool:
    """Whether `dt` falls in the quiet hours (21:00–07:00 Vietnam time)."""
    clock = _local(dt).time()
    return clock >= DAY_ENDS or clock < DAY_STARTS


def next_sendable(dt: datetime) -> datetime:
    """`dt` itself outside quiet hours, else the next 07:00 Vietnam time."""
    if not is_quiet(dt):
        return dt.astimezone(UTC)
    local = _local(dt)
    day = local.date() if local.time() < DAY_STARTS else local.date() + timedelta(days=1)
    return at_local(day, DAY_STARTS)


def add_working_hours(dt: datetime, hours: float) -> datetime:
    """`hours` later, counting only 07:00–21:00 Vietnam time (a request made at 20:00 with two
    working hours to wait is due at 08:00 the next day)."""
    current = next_sendable(dt)
    left = timedelta(hours=hours)
    while True:
        local = _local(current)
        end_of_day = at_local(local.date(), DAY_ENDS)
        room = end_of_day - current
        if left <= room:
            return current + left
        left -= room
        current = at_local(local.date() + timedelta(days=1), DAY_STARTS)


def next_weekday_at(dt: datetime, weekday: int, at: time) -> datetime:
    """The first moment at or after `dt` that is `weekday` (Monday 0) at `at` Vietnam time."""
    local = _local(dt)
    days = (weekday - local.weekday()) % 7
    candidate = at_local(local.date() + timedelta(days=days), at)
    if candidate < dt:
        candidate = at_local(local.date() + timedelta(days=days + 7), at)
    return candidate


def week_of(dt: datetime) -> str:
    """The ISO week of `dt` in Vietnam ("2026-W49"): one digest per person per week."""
    year, week, _ = _local(dt).isocalendar()
    return f"{year}-W{week:02d}"


def come_back_at(day: date) -> datetime:
    """When a come-back reminder for `day` goes out: 08:00 Vietnam time that day."""
    return at_local(day, COME_BACK_AT)


# -- a come-back date typed as dd/mm ------------------------------------------------------------

_DATE = re.compile(r"^\s*(\d{1,2})\s*[/.\-]\s*(\d{1,2})(?:\s*[/.\-]\s*(\d{2}|\d{4}))?\s*$")


@dataclass(frozen=True)
class ComeBackDate:
    day: date
    far: bool = False  # more than FAR_AHEAD from today: ask to confirm


@dataclass(frozen=True)
class BadDate:
    reason: str  # "format" | "invalid" | "past"


def parse_come_back(text: str, today: date) -> ComeBackDate | BadDate:
    """A date typed as dd/mm (this year, or next year if dd/mm this year has passed and no
    year was given) or dd/mm/yyyy. Today counts as past: the reminder is for a later day."""
    match = _DATE.match(text)
    if match is None:
        return BadDate("format")
    day, month, year_text = int(match[1]), int(match[2]), match[3]
    year = today.year if year_text is None else int(year_text) + (2000 if len(year_text) == 2 else 0)
    try:
        found = date(year, month, day)
    except ValueError:
        return BadDate("invalid")
    if found <= today:
        if year_text is not None:
            return BadDate("past")
        try:
            found = date(year + 1, month, day)
        except ValueError:  # 29/02 next year
            return BadDate("past")
        # dd/mm that has just passed is more likely a mistake than a date next year.
        if (today - date(year, month, day)).days < 60:
            return BadDate("past")
    return ComeBackDate(found, far=found - today > FAR_AHEAD)
