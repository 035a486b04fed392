"""Duplicate deliveries and the transactional outbox (processed_updates)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert, null, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import ProcessedUpdate

SEND_LEASE = timedelta(seconds=30)


async def is_processed(session: AsyncSession, channel: str, update_id: str) -> bool:
    found = await session.scalar(
        select(ProcessedUpdate.update_id).where(
            ProcessedUpdate.channel == channel, ProcessedUpdate.update_id == update_id
        )
    )
    return found is not None


_INSERT_PROCESSED = insert(cast(Table, ProcessedUpdate.__table__))


async def record_processed(
    session: AsyncSession,
    *,
    channel: str,
    update_id: str,
    chat_id: str,
    replies: list[dict[str, Any]],
    now: datetime,
    lease: timedelta = SEND_LEASE,
) -> None:
    """Inserts the update with its replies (a plain INSERT, not the ORM's unit of work); a
    concurrent duplicate fails on the primary key."""
    row: dict[str, Any] = {"channel": channel, "update_id": update_id, "chat_id": chat_id,
                           "processed_at": now}
    if replies:
        row.update(replies=replies, send_lease_until=now + lease)
    else:
        row.update(sent_at=now)  # nothing to send: no outbox entry
    await session.execute(_INSERT_PROCESSED, row)


async def take_unsent_replies(
    session: AsyncSession, channel: str, update_id: str, now: datetime,
    lease: timedelta = SEND_LEASE,
) -> list[dict[str, Any]] | None:
    """Replies of an already processed update that were never sent and nobody is sending now
    (taken: leased to the caller); [] when there is nothing to send; None when another sender
    holds the lease (it may yet send them, or have died: ask again after the lease)."""
    row = await session.scalar(
        select(ProcessedUpdate).where(
            ProcessedUpdate.channel == channel,
            ProcessedUpdate.update_id == update_id,
            ProcessedUpdate.sent_at.is_(None),
        )
    )
    if row is None or not row.replies:
        return []
    if row.send_lease_until is not None and row.send_lease_until > now:
        return None
    row.send_lease_until = now + lease
    return list(row.replies)


async def release_lease(session: AsyncSession, channel: str, update_id: str) -> None:
    """The sender of this update's replies gave up (the platform's API stayed down): the next
    redelivery may take them at once instead of waiting out the lease."""
    await session.execute(
        update(ProcessedUpdate)
        .where(ProcessedUpdate.channel == channel, ProcessedUpdate.update_id == update_id,
               ProcessedUpdate.sent_at.is_(None))
        .values(send_lease_until=None)
        .execution_options(synchronize_session=False)
    )


async def mark_sent(session: AsyncSession, channel: str, update_id: str, now: datetime) -> None:
    await mark_sent_many(session, [(channel, update_id)], now)


MARK_SENT_CHUNK = 500  # keys per statement, well under every database's bound-parameter limit


async def mark_sent_many(
    session: AsyncSession, keys: Iterable[tuple[str, str]], now: datetime
) -> None:
    """Marks the updates `keys` ((channel, update id) pairs) sent: their stored replies are
    dropped and their lease released, a few statements for any number of keys."""
    by_channel: dict[str, list[str]] = defaultdict(list)
    for channel, update_id in keys:
        by_channel[channel].append(update_id)
    for channel, update_ids in sorted(by_channel.items()):
        update_ids.sort()
        for start in range(0, len(update_ids), MARK_SENT_CHUNK):
            await session.execute(
                update(ProcessedUpdate)
                .where(
                    ProcessedUpdate.channel == channel,
                    ProcessedUpdate.update_id.in_(update_ids[start:start + MARK_SENT_CHUNK]),
                )
                .values(sent_at=now, replies=null(), send_lease_until=None)
                .execution_options(synchronize_session=False)
            )
