"""Keeping the bookkeeping tables small: what a worker needed only for a while.

`processed_updates` gets a row per update (duplicates, the outbox, flood counts); after
PROCESSED_KEEP no platform delivers an update again, so nothing will ask for the row (nor for
replies it still holds: they were owed to a delivery that never came back), and it goes.
`notices` that were sent or given up go after NOTICES_KEEP; unsent ones stay while the relay
tries them. Shared files (charts Zalo fetches by URL) go when they expire. Rows go in batches of BATCH, each
its own short transaction, so a first prune of a big table never holds a lock for long.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Notice, ProcessedUpdate, SharedFile

PROCESSED_KEEP = timedelta(days=7)
NOTICES_KEEP = timedelta(days=30)
BATCH = 2000

Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass(frozen=True)
class Pruned:
    processed_updates: int
    notices: int
    files: int = 0


async def prune(transaction: Transaction, now: datetime, *,
                processed_keep: timedelta = PROCESSED_KEEP, notices_keep: timedelta = NOTICES_KEEP,
                batch: int = BATCH, pause: Callable[[], Awaitable[None]] | None = None) -> Pruned:
    """Delete what is older than the keep periods, batch by batch (`pause` is awaited between
    batches: the serving process lets updates through)."""
    processed = await _in_batches(transaction, _old_processed(now - processed_keep, batch), pause)
    notices = await _in_batches(transaction, _old_notices(now - notices_keep, batch), pause)
    files = await _in_batches(transaction, _expired_files(now, batch), pause)
    return Pruned(processed, notices, files)


def _old_processed(cutoff: datetime, batch: int) -> Callable[[AsyncSession], Awaitable[int]]:
    async def one_batch(session: AsyncSession) -> int:
        keys = (await session.execute(
            select(ProcessedUpdate.channel, ProcessedUpdate.update_id)
            .where(ProcessedUpdate.processed_at < cutoff)
            .limit(batch))).all()
        if keys:
            await session.execute(
                delete(ProcessedUpdate)
                .where(tuple_(ProcessedUpdate.channel, ProcessedUpdate.update_id).in_(keys))
                .execution_options(synchronize_session=False))
        return len(keys)

    return one_batch


def _old_notices(cutoff: datetime, batch: int) -> Callable[[AsyncSession], Awaitable[int]]:
    async def one_batch(session: AsyncSession) -> int:
        ids = list(await session.scalars(
            select(Notice.id).where(Notice.sent_at < cutoff).order_by(Notice.id).limit(batch)))
        if ids:
            await session.execute(delete(Notice).where(Notice.id.in_(ids))
                                  .execution_options(synchronize_session=False))
        return len(ids)

    return one_batch


def _expired_files(now: datetime, batch: int) -> Callable[[AsyncSession], Awaitable[int]]:
    async def one_batch(session: AsyncSession) -> int:
        names = list(await session.scalars(
            select(SharedFile.name).where(SharedFile.expires_at <= now).limit(batch)))
        if names:
            await session.execute(delete(SharedFile).where(SharedFile.name.in_(names))
                                  .execution_options(synchronize_session=False))
        return len(names)

    return one_batch


async def _in_batches(transaction: Transaction, one_batch: Callable[[AsyncSession], Awaitable[int]],
                      pause: Callable[[], Awaitable[None]] | None) -> int:
    total = 0
    while True:
        async with transaction() as session:
            done = await one_batch(session)
        total += done
        if done == 0:
            return total
        if pause is not None:
            await pause()
