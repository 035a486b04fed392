"""The vocabulary of scheduled work (db/models.py ScheduledJob, handlers/follow_ups.py)."""

from __future__ import annotations

from enum import StrEnum


class JobKind(StrEnum):
    COME_BACK = "come_back"  # a volunteer's chosen day to come back to a run with a Problem
    PAUSED_LOOK = "paused_look"  # a run untouched for the area's paused_after_days
    VOLUNTEER_DIGEST = "volunteer_digest"  # Monday 07:30
    LEADER_DIGEST = "leader_digest"  # Monday 07:30
    VISIT_UNTAKEN = "visit_untaken"  # a visit request nobody took in 2 working hours
    VISIT_OPEN = "visit_open"  # taken, not closed: 3 days → the volunteer, 7 days → leaders
    ANNOUNCEMENT = "announcement"  # sent with /announce during quiet hours: at 07:00
    PLANNED = "planned"  # a marker, done at once: the week's digests were planned


class JobState(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"  # by a worker until `claimed_until`; pending again after it
    DONE = "done"
    CANCELLED = "cancelled"  # no longer needed (the run moved on, the request was taken)
    FAILED = "failed"  # raised MAX_ATTEMPTS times


class Audience(StrEnum):
    VOLUNTEERS = "volunteers"
    LEADERS = "leaders"
    RESIDENTS = "residents"
