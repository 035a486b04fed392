"""The serving processes prune the bookkeeping tables now and then (db/repo/housekeeping.py).

Every worker runs one `Housekeeper`: the first prune a few minutes after start, then every
INTERVAL, with jitter so that workers started together do not prune together (if they do, they
delete the same rows in turns; nothing breaks). `gocua db prune` does the same once, for cron.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.exc import DBAPIError, OperationalError

from db.engine import Database
from db.repo.housekeeping import prune

log = structlog.get_logger("gocua.housekeeping")

FIRST_DELAY = 300.0  # seconds after start
INTERVAL = 3600.0
JITTER = 0.2  # share of the interval


class Housekeeper:
    def __init__(self, db: Database, clock: Callable[[], datetime], *,
                 first_delay: float = FIRST_DELAY, interval: float = INTERVAL) -> None:
        self.db = db
        self.clock = clock
        self.first_delay = first_delay
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Housekeeper:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="gocua.housekeeping")
        return self

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        delay = self.first_delay
        while True:
            await asyncio.sleep(delay * random.uniform(1 - JITTER, 1 + JITTER))
            delay = self.interval
            try:
                pruned = await prune(self.db.transaction, self.clock(), pause=_yield)
            except (OperationalError, DBAPIError, OSError) as exc:
                log.warning("housekeeping.database_unavailable", error=str(exc)[:200])
                continue
            except Exception:
                log.exception("housekeeping.failed")
                continue
            if pruned.processed_updates or pruned.notices or pruned.files or pruned.jobs:
                log.info("housekeeping.pruned", processed_updates=pruned.processed_updates,
                         notices=pruned.notices, files=pruned.files, jobs=pruned.jobs)


async def _yield() -> None:
    await asyncio.sleep(0.05)
