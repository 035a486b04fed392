"""Keeping the bookkeeping tables small: what a worker needed only for a while.

`processed_updates` gets a row per update (duplicates, the outbox, flood counts); after
PROCESSED_KEEP no platform delivers an update again, so nothing will ask for the row (nor for
replies it still holds: they were owed to a delivery that never came back), and it goes.
`notices` that were sent or given up go after NOTICES_KEEP; unsent ones stay while the relay
tries them. `notice_messages` (where a visit request's notices landed, to edit them once it is
taken) go after NOTICES_KEEP too. Shared files (charts Zalo fetches by URL) go when they
expire. `invite_attempts` (failed invite codes, counted for a few hours; the audit log keeps
them for good) go after PROCESSED_KEEP too. Finished `scheduled_jobs` (done, cancelled, failed)
go after NOTICES_KEEP, like the notices they made. Rows go in batches of BATCH, each its own
short transaction, so a first prune of a big table never holds a lock for long.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import InviteAttempt, Notice, NoticeMessage, ProcessedUpdate, ScheduledJob, SharedFile

PROCESSED_KEEP = timedelta(days=7)
NOTICES_KEEP = timedelta(days=30)
BATCH = 2000

Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]


@dataclass(frozen=True)
class Pruned:
    processed_updates: int
    notices: int
    files: int = 0
    invite_attempts: int = 0
    notice_messages: int = 0
    jobs: int = 0


async def prune(transaction: Transaction, now: datetime, *,
                processed_keep: timedelta = PROCESSED_KEEP, notices_keep: timedelta = NOTICES_KEEP,
                batch: int = BATCH, pause: Callable[[], Awaitable[None]] | None = None) -> Pruned:
    """Delete what is older than the keep periods, batch by batch (`pause` is awaited between
    batches: the serving process lets updates through)."""
    processed = await _in_batches(transaction, _batch_of(
        (ProcessedUpdate.channel, ProcessedUpdate.update_id),
        ProcessedUpdate.processed_at < now - processed_keep, batch), pause)
    notices = await _in_batches(transaction, _batch_of(
        (Notice.id,), Notice.sent_at < now - notices_keep, batch), pause)
    files = await _in_batches(transaction, _batch_of(
        (SharedFile.name,), SharedFile.expires_at <= now, batch), pause)
    attempts = await _in_batches(transaction, _batch_of(
        (InviteAttempt.id,), InviteAttempt.at < now - processed_keep, batch), pause)
    kept_messages = await _in_batches(transaction, _batch_of(
        (NoticeMessage.id,), NoticeMessage.created_at < now - notices_keep, batch), pause)
    jobs = await _in_batches(transaction, _batch_of(
        (ScheduledJob.id,), ScheduledJob.finished_at < now - notices_keep, batch), pause)
    return Pruned(processed, notices, files, attempts, kept_messages, jobs)


def _batch_of(key: tuple[Any, ...], where: ColumnElement[bool],
              batch: int) -> Callable[[AsyncSession], Awaitable[int]]:
    """Deletes up to `batch` rows matching `where`, found by their primary `key` columns;
    returns how many."""
    table = key[0].class_
    key_of = key[0] if len(key) == 1 else tuple_(*key)

    async def one_batch(session: AsyncSession) -> int:
        rows = (await session.execute(select(*key).where(where).limit(batch))).all()
        if rows:
            keys = [row[0] for row in rows] if len(key) == 1 else rows
            await session.execute(delete(table).where(key_of.in_(keys))
                                  .execution_options(synchronize_session=False))
        return len(rows)

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
