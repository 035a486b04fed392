"""Runs the follow-ups due at a moment: `run_due(db, now, flows)`.

Called every minute by the running bot (bot/scheduler.py) and by `gocua jobs run-due`. In
quiet hours (21:00–07:00 Vietnam time) it does nothing: what is due waits for 07:00.

1. Plans: on Monday from 07:30 the week's digests (one job per person and week: the unique key
   makes planning twice harmless), and the reminders of paused runs.
2. Claims the due jobs with a lease (db/repo/jobs.py) in one transaction, then runs each in
   its own: its notices and its "done" mark are committed together, so a job is sent once. A
   worker killed after claiming leaves its jobs to the lease: the next run claims them again.
   A job that raises is retried after its lease, MAX_JOB_ATTEMPTS times, then marked failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import select

from conversations.flow_model import FlowRegistry
from conversations.follow_up_kinds import JobKind, JobState
from conversations.follow_up_time import DIGEST_AT, is_quiet, week_of
from conversations.local_time import VIETNAM
from db.engine import Database
from db.models import Area, Household, Membership, ScheduledJob
from db.repo.jobs import JOB_LEASE, MAX_JOB_ATTEMPTS, claim_due, finish, schedule
from handlers import announce, follow_ups
from handlers.follow_ups import JobContext

log = structlog.get_logger("gocua.jobs")


@dataclass
class RunResult:
    jobs: int = 0  # jobs run (done, whether or not they had something to send)
    notices: int = 0  # messages stored for the relays
    failed: int = 0
    quiet: bool = False
    by_kind: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {"jobs": self.jobs, "notices": self.notices, "failed": self.failed, "quiet": self.quiet,
                "by_kind": self.by_kind}


async def plan_digests(db: Database, now: datetime) -> None:
    """Monday from 07:30 (Vietnam): one digest job per volunteer with households and per
    leader's area, this week (keys make it once)."""
    local = now.astimezone(VIETNAM)
    if local.weekday() != 0 or local.time() < DIGEST_AT:
        return
    week = week_of(now)
    async with db.transaction() as session:
        # Once per week, not at every tick of the Monday: the marker row says it was done.
        marker = await schedule(session, f"planned:digests:{week}", JobKind.PLANNED, now, now)
        if marker.state != JobState.PENDING:
            return
        await finish(session, marker.id, JobState.DONE, now)
        volunteers = {uid for uid in await session.scalars(
            select(Household.volunteer_id).where(Household.volunteer_id.is_not(None),
                                                 Household.archived_at.is_(None)).distinct())
                      if uid is not None}
        for uid in sorted(volunteers):
            await schedule(session, f"vdigest:{uid}:{week}", JobKind.VOLUNTEER_DIGEST, now, now, user_id=uid)
        leaders = (await session.execute(
            select(Membership.user_id, Membership.area_id).join(Area, Area.id == Membership.area_id)
            .where(Membership.role == "leader").order_by(Membership.user_id, Membership.area_id))).all()
        for uid, area_id in leaders:
            await schedule(session, f"ldigest:{uid}:{area_id}:{week}", JobKind.LEADER_DIGEST, now, now,
                           user_id=uid, area_id=area_id)


async def run_due(db: Database, now: datetime, flows: FlowRegistry | None = None, *,
                  batch: int = 100, lease: timedelta = JOB_LEASE) -> RunResult:
    result = RunResult()
    if is_quiet(now):
        result.quiet = True
        return result
    await plan_digests(db, now)
    async with db.transaction() as session:
        paused = await follow_ups.plan_paused(JobContext(session, now, flows))
    if paused:
        result.notices += paused
        result.by_kind[JobKind.PAUSED_LOOK] = paused
    while True:
        async with db.transaction() as session:
            ids = await claim_due(session, now, batch, lease)
        for job_id in ids:
            await _run_one(db, job_id, now, flows, result)
        if len(ids) < batch:
            return result


async def _run_one(db: Database, job_id: int, now: datetime, flows: FlowRegistry | None,
                   result: RunResult) -> None:
    try:
        async with db.transaction() as session:
            job = await session.get(ScheduledJob, job_id)
            if job is None or job.state != JobState.CLAIMED:
                return
            builder = (announce.deliver_job if job.kind == JobKind.ANNOUNCEMENT
                       else follow_ups.BUILDERS.get(job.kind))
            sent = await builder(JobContext(session, now, flows), job) if builder is not None else 0
            await finish(session, job.id, JobState.DONE, now)
            kind = job.kind
        result.jobs += 1
        result.notices += sent
        result.by_kind[kind] = result.by_kind.get(kind, 0) + sent
        log.info("job.done", job_id=job_id, kind=kind, notices=sent)
    except Exception:
        log.exception("job.failed", job_id=job_id)
        result.failed += 1
        async with db.transaction() as session:
            job = await session.get(ScheduledJob, job_id)
            if job is not None and job.attempts >= MAX_JOB_ATTEMPTS:
                await finish(session, job.id, JobState.FAILED, now)
