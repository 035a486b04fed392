"""Handing an update to the core from a channel adapter, the same for Telegram and Zalo."""

from __future__ import annotations

import asyncio

import structlog

from handlers.file_limits import FileDelivery
from handlers.pipeline import Core, DatabaseUnavailable
from handlers.types import Incoming, Reply

# In polling mode nothing redelivers an update the core could not take, so a database outage
# is waited out a few times first; in webhook mode it raises at once and the platform redelivers.
POLLING_DB_RETRY_DELAYS = (1.0, 2.0, 4.0)


async def handle_update(core: Core, incoming: Incoming, *, retry: bool, log_prefix: str,
                        delivery: FileDelivery | None = None) -> list[Reply]:
    """`core.handle(incoming)`, retried after POLLING_DB_RETRY_DELAYS while the database is down
    when `retry` (polling mode); the last DatabaseUnavailable is raised."""
    for delay in POLLING_DB_RETRY_DELAYS if retry else ():
        try:
            return await core.handle(incoming, delivery=delivery)
        except DatabaseUnavailable:
            structlog.get_logger(f"gocua.{log_prefix}").warning(
                f"{log_prefix}.database_unavailable_retry", update_id=incoming.update_id, delay=delay)
            await asyncio.sleep(delay)
    return await core.handle(incoming, delivery=delivery)
