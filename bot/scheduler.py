"""The running bot runs the due follow-ups every minute (handlers/follow_up_runner.py).

Every worker runs one `Scheduler`; they share the jobs table safely (claims are leases, rows
are locked with SKIP LOCKED on PostgreSQL), so each job runs once whatever the number of
workers. While the database is down it logs and tries again at the next tick: a job due
meanwhile is run when the database is back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.exc import DBAPIError, OperationalError

from conversations.flow_model import FlowRegistry
from db.engine import Database
from handlers.follow_up_runner import RunResult, run_due

log = structlog.get_logger("gocua.scheduler")

INTERVAL = 60.0  # seconds between runs


class Scheduler:
    def __init__(self, db: Database, clock: Callable[[], datetime], flows: FlowRegistry | None, *,
                 interval: float = INTERVAL) -> None:
        self.db = db
        self.clock = clock
        self.flows = flows
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Scheduler:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="gocua.scheduler")
        return self

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

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
