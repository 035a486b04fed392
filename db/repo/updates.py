"""Duplicate deliveries and the transactional outbox (processed_updates)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
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


def record_processed(
    session: AsyncSession,
    *,
    channel: str,
    update_id: str,
    chat_id: str,
    replies: list[dict[str, Any]],
    now: datetime,
) -> None:
    """Adds the update with its replies; a concurrent duplicate fails on the primary key."""
    session.add(
        ProcessedUpdate(
            channel=channel,
            update_id=update_id,
            chat_id=chat_id,
            processed_at=now,
            replies=replies or None,
            send_lease_until=now + SEND_LEASE if replies else None,
            sent_at=None if replies else now,
        )
    )


async def take_unsent_replies(
    session: AsyncSession, channel: str, update_id: str, now: datetime
) -> list[dict[str, Any]]:
    """Replies of an already processed update that were never sent and nobody is sending now."""
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
        return []
    row.send_lease_until = now + SEND_LEASE
    return list(row.replies)


async def mark_sent(session: AsyncSession, channel: str, update_id: str, now: datetime) -> None:
    await session.execute(
        update(ProcessedUpdate)
        .where(ProcessedUpdate.channel == channel, ProcessedUpdate.update_id == update_id)
        .values(sent_at=now, replies=None, send_lease_until=None)
    )
