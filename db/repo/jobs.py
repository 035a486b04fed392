"""Scheduled jobs (db/models.py ScheduledJob): schedule with the event, claim with a lease.

`schedule` is idempotent by `key`: a second call for the same key moves a pending job's due
time (a volunteer picks another come-back day) and leaves a finished one alone. It runs in the
caller's transaction, so a job exists exactly when the event that caused it was committed.

`claim_due` leases due pending jobs (and claimed ones whose lease ran out: their worker died)
for `lease`; on PostgreSQL with FOR UPDATE SKIP LOCKED, so two workers claim different rows;
SQLite has one writer at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.follow_up_kinds import JobState
from db.models import ScheduledJob


def come_back_key(run_id: int) -> str:
    """The one come-back reminder of a flow run (handlers/come_back.py)."""
    return f"come_back:{run_id}"

JOB_LEASE = timedelta(minutes=5)
MAX_JOB_ATTEMPTS = 5


async def schedule(
    session: AsyncSession, key: str, kind: str, due_at: datetime, now: datetime, *,
    user_id: int | None = None, area_id: int | None = None, payload: dict[str, Any] | None = None,
    rearm: bool = False,
) -> ScheduledJob:
    """The job `key`, made or (if still pending) moved to `due_at` with this payload. With
    `rearm`, a job already finished (sent, cancelled, failed) is made pending again: a reminder
    the person asks for a second time (a come-back date after a new problem) is sent again."""
    job = await session.scalar(select(ScheduledJob).where(ScheduledJob.key == key))
    if job is None:
        job = ScheduledJob(kind=kind, key=key, user_id=user_id, area_id=area_id, payload=payload or {},
                           due_at=due_at, state=JobState.PENDING, attempts=0, created_at=now)
        session.add(job)
        await session.flush()
    elif job.state == JobState.PENDING or (rearm and job.state != JobState.CLAIMED):
        if job.state != JobState.PENDING:
            job.state, job.attempts, job.finished_at, job.claimed_until = JobState.PENDING, 0, None, None
        job.due_at = due_at
        if user_id is not None:
            job.user_id = user_id
        if payload is not None:
            job.payload = payload
    return job


async def cancel(session: AsyncSession, key: str, now: datetime) -> bool:
    """Cancel the pending job `key`; whether there was one."""
    job = await session.scalar(select(ScheduledJob).where(ScheduledJob.key == key))
    if job is None or job.state not in (JobState.PENDING, JobState.CLAIMED):
        return False
    job.state, job.finished_at = JobState.CANCELLED, now
    return True


async def job_by_key(session: AsyncSession, key: str) -> ScheduledJob | None:
    return await session.scalar(select(ScheduledJob).where(ScheduledJob.key == key))


def _due(now: datetime) -> Any:
    return or_(
        and_(ScheduledJob.state == JobState.PENDING, ScheduledJob.due_at <= now),
        and_(ScheduledJob.state == JobState.CLAIMED, ScheduledJob.claimed_until <= now),
    )


async def claim_due(
    session: AsyncSession, now: datetime, limit: int = 50, lease: timedelta = JOB_LEASE
) -> list[int]:
    """Lease up to `limit` due jobs, oldest due first; their ids."""
    ids = list(await session.scalars(
        select(ScheduledJob.id).where(_due(now)).order_by(ScheduledJob.due_at, ScheduledJob.id)
        .limit(limit).with_for_update(skip_locked=True)
    ))
    if ids:
        await session.execute(
            update(ScheduledJob).where(ScheduledJob.id.in_(ids))
            .values(state=JobState.CLAIMED, claimed_until=now + lease,
                    attempts=ScheduledJob.attempts + 1)
            .execution_options(synchronize_session=False)
        )
    return ids


async def finish(session: AsyncSession, job_id: int, state: JobState, now: datetime) -> None:
    await session.execute(
        update(ScheduledJob).where(ScheduledJob.id == job_id)
        .values(state=state, finished_at=now, claimed_until=None)
        .execution_options(synchronize_session=False)
    )


async def pending_jobs(
    session: AsyncSession, due_before: datetime | None = None, kinds: Sequence[str] = ()
) -> list[ScheduledJob]:
    """Pending and claimed jobs, soonest first (`gocua jobs list`)."""
    stmt = select(ScheduledJob).where(ScheduledJob.state.in_([JobState.PENDING, JobState.CLAIMED]))
    if due_before is not None:
        stmt = stmt.where(ScheduledJob.due_at <= due_before)
    if kinds:
        stmt = stmt.where(ScheduledJob.kind.in_(list(kinds)))
    return list(await session.scalars(stmt.order_by(ScheduledJob.due_at, ScheduledJob.id)))
