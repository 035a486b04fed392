"""The serving processes prune the bookkeeping tables now and then (db/repo/housekeeping.py).

Every worker runs one `Housekeeper`: the first prune a few minutes after start, then every
INTERVAL, with jitter so that workers started together do not prune together (if they do, they
delete the same rows in turns; nothing breaks). `gocua db prune` does the same once, for cron.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.background import BackgroundTask
from db.engine import Database
from db.repo.housekeeping import prune

log = structlog.get_logger("gocua.housekeeping")

FIRST_DELAY = 300.0  # seconds after start
INTERVAL = 3600.0
JITTER = 0.2  # share of the interval


class Housekeeper(BackgroundTask):
    name = "gocua.housekeeping"

    def __init__(self, db: Database, clock: Callable[[], datetime], *,
                 first_delay: float = FIRST_DELAY, interval: float = INTERVAL) -> None:
        super().__init__()
        self.db = db
        self.clock = clock
        self.first_delay = first_delay
        self.interval = interval

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
