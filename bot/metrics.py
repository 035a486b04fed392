"""GET /metrics on the webhook servers, in Prometheus' text exposition format.

The series are counted in the core (handlers/metrics.py), so Telegram and Zalo report the same
ones; the procedure runs open now are read from the database at scrape time, so every worker
reports the shared truth rather than its own share. Under `--workers N` (bot/workers.py) the
workers write their counts to PROMETHEUS_MULTIPROC_DIR and any of them reports the group's sum.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from conversations.state import RunStatus
from db.engine import Database
from db.repo.stats import open_runs_by_status
from handlers.metrics import ERRORS, OPEN_RUNS, REGISTRY


def metrics_handler(open_runs: Callable[[], Awaitable[dict[str, int]]]) -> Callable[
        [web.Request], Awaitable[web.Response]]:
    """The GET /metrics handler; `open_runs` reads {status: count} from the database."""

    async def handler(request: web.Request) -> web.Response:
        try:
            counts = await open_runs()
        except Exception:  # the database is down: report what this process knows
            ERRORS.labels(kind="database").inc()
        else:
            for status in (RunStatus.ACTIVE, RunStatus.BLOCKED):
                OPEN_RUNS.labels(status=status).set(counts.get(status, 0))
        body = generate_latest(_registry())
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handler


def _registry() -> CollectorRegistry:
    """This process's registry, or the whole worker group's in multiprocess mode."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=folder)
    return registry


def metrics_for(database: Database) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The /metrics handler of a webhook server whose core uses `database`."""

    async def open_runs() -> dict[str, int]:
        async with database.read_session() as session:
            return await open_runs_by_status(session)

    return metrics_handler(open_runs)
