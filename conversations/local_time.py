"""Vietnam's time, the one definition: UTC+7 all year (no daylight saving), named ICT.

Times are stored in UTC (db/types.py); a local date or hour is only ever made from them here,
for date checks at the door, report periods, exports and the pages people read.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

VIETNAM = timezone(timedelta(hours=7), "ICT")


def local_date(now: datetime) -> date:
    """The calendar date in Vietnam at the moment `now` (an aware datetime)."""
    return now.astimezone(VIETNAM).date()
