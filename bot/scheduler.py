"""The running bot runs the due follow-ups every minute (handlers/follow_up_runner.py).

Every worker runs one `Scheduler`; they share the jobs table safely (claims are leases, rows
are locked with SKIP LOCKED on PostgreSQL), so each job runs once whatever the number of
workers. While the database is down it logs and tries again at the next tick: a job due
meanwhile is run when the database is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.background import BackgroundTask
from conversations.flow_model import FlowRegistry
from db.engine import Database
from handlers.follow_up_runner import RunResult, run_due

log = structlog.get_logger("gocua.scheduler")

INTERVAL = 60.0  # seconds between runs


class Scheduler(BackgroundTask):
    name = "gocua.scheduler"

    def __init__(self, db: Database, clock: Callable[[], datetime], flows: FlowRegistry | None, *,
                 interval: float = INTERVAL) -> None:
        super().__init__()
        self.db = db
        self.clock = clock
        self.flows = flows
        self.interval = interval

    async def tick(self) -> RunResult | None:
        """One run of what is due now; None when the database could not be used."""
        try:
            result = await run_due(self.db, self.clock(), self.flows)
        except (OperationalError, DBAPIError, OSError) as exc:
            log.warning("scheduler.database_unavailable", error=str(exc)[:200])
            return None
        if result.jobs or result.notices or result.failed:
            log.info("scheduler.ran", **result.as_json())
        return result

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("scheduler.failed")
            await asyncio.sleep(self.interval)
