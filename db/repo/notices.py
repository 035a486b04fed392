"""Notices to a chat on another channel (the `notices` outbox), sent by that channel's workers.

An update's handler may address a reply to a chat on another channel (a Zalo resident's visit
request to a Telegram volunteer). The core writes it here in the update's own transaction
(`add_notices`), so it is stored exactly once with the update; a worker of the target channel
(bot/channels/notice_relay.py) takes a batch (`claim_pending`), sends it and marks it
(`mark_sent`).

A claim is a lease: the rows are unavailable to other workers for NOTICE_LEASE. On PostgreSQL
the claim locks its rows with FOR UPDATE SKIP LOCKED, so two workers claiming at once get
different rows; SQLite runs one writer at a time. A notice whose send failed is left to its
lease and claimed again when the lease ends; each claim counts an attempt.

States, from the columns (no separate state column):
- pending: `sent_at` NULL (leased while `send_lease_until` is in the future);
- sent: `sent_at` set, `send_lease_until` NULL;
- given up: `sent_at` set, `send_lease_until` kept (the last lease) — after MAX_ATTEMPTS
  claims, or at once when the platform refused it for good (the user blocked the bot). It
  leaves the queue like a sent one; the relay logs `notice.given_up`.

db/ knows no handler types: a notice's reply is stored and returned as Reply.to_json().
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Notice, NoticeMessage

NOTICE_LEASE = timedelta(seconds=30)
MAX_ATTEMPTS = 10  # claims of one notice before it is given up


@dataclass(frozen=True)
class PendingNotice:
    """A claimed notice: `reply` is the stored Reply.to_json() (db/ knows no handler types)."""

    id: int
    channel: str
    chat_id: str
    reply: dict[str, Any]
    attempts: int  # claims so far, this one included


async def add_notices(
    session: AsyncSession, notices: Iterable[tuple[str, str, dict[str, Any]]], now: datetime,
    origin: str | None = None,
) -> int:
    """Store (channel, chat id, reply JSON) notices in the caller's transaction; returns how many.
    `origin`: what made them ("announcement:12", a follow-up's kind), to count them later."""
    rows = [{"channel": channel, "chat_id": chat_id, "reply": reply, "created_at": now,
             "attempts": 0, "origin": origin} for channel, chat_id, reply in notices]
    if rows:
        await session.execute(insert(Notice), rows)
    return len(rows)


async def claim_pending(
    session: AsyncSession, channel: str, now: datetime, limit: int = 20
) -> tuple[list[PendingNotice], list[int]]:
    """Lease up to `limit` unsent, unleased notices for `channel`, oldest first, counting an
    attempt on each: (the claimed notices, the ids given up). A notice already claimed
    MAX_ATTEMPTS times (its senders kept failing or died) is given up here, not returned."""
    found = (await session.execute(
        select(Notice.id, Notice.chat_id, Notice.reply, Notice.attempts)
        .where(Notice.channel == channel, Notice.sent_at.is_(None),
               or_(Notice.send_lease_until.is_(None), Notice.send_lease_until <= now))
        .order_by(Notice.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )).all()
    exhausted = [row.id for row in found if row.attempts >= MAX_ATTEMPTS]
    await give_up(session, exhausted, now)
    claimed = [row for row in found if row.attempts < MAX_ATTEMPTS]
    if claimed:
        await session.execute(
            update(Notice)
            .where(Notice.id.in_([row.id for row in claimed]))
            .values(send_lease_until=now + NOTICE_LEASE, attempts=Notice.attempts + 1)
            .execution_options(synchronize_session=False)
        )
    pending = [PendingNotice(row.id, channel, row.chat_id, row.reply, row.attempts + 1)
               for row in claimed]
    return pending, exhausted


async def mark_sent(session: AsyncSession, ids: Sequence[int], now: datetime) -> None:
    """These notices were sent: they leave the queue, their lease cleared."""
    if ids:
        await session.execute(
            update(Notice).where(Notice.id.in_(list(ids)))
            .values(sent_at=now, send_lease_until=None)
            .execution_options(synchronize_session=False)
        )


async def give_up(session: AsyncSession, ids: Sequence[int], now: datetime) -> None:
    """These notices will not be sent: they leave the queue, their (last) lease kept as the mark
    that tells them from sent ones."""
    if ids:
        await session.execute(
            update(Notice).where(Notice.id.in_(list(ids)), Notice.sent_at.is_(None))
            .values(sent_at=now)
            .execution_options(synchronize_session=False)
        )


async def take_for_chat(
    session: AsyncSession, channel: str, chat_id: str, now: datetime, limit: int = 100
) -> list[PendingNotice]:
    """The pending notices of one chat, oldest first, marked sent in the caller's transaction:
    for a channel that shows them itself when that chat is open (the console)."""
    found = (await session.execute(
        select(Notice.id, Notice.reply, Notice.attempts)
        .where(Notice.channel == channel, Notice.sent_at.is_(None), Notice.chat_id == chat_id)
        .order_by(Notice.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )).all()
    await mark_sent(session, [row.id for row in found], now)
    return [PendingNotice(row.id, channel, chat_id, row.reply, row.attempts + 1) for row in found]


# -- where notices landed (edited later: a taken request's notice on every volunteer's phone) --

async def record_message(session: AsyncSession, key: str, channel: str, chat_id: str,
                         message_ref: str, now: datetime) -> None:
    """Remember that the message about `key` is `message_ref` in that chat."""
    session.add(NoticeMessage(key=key, channel=channel, chat_id=chat_id, message_ref=message_ref,
                              created_at=now))


async def messages_about(session: AsyncSession, key: str) -> list[tuple[str, str, str]]:
    """(channel, chat id, message ref) of every recorded message about `key`, oldest first."""
    rows = await session.execute(
        select(NoticeMessage.channel, NoticeMessage.chat_id, NoticeMessage.message_ref)
        .where(NoticeMessage.key == key).order_by(NoticeMessage.id))
    return [(channel, chat_id, ref) for channel, chat_id, ref in rows]


async def origin_counts(session: AsyncSession, origins: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """(delivered, failed, waiting) notices per origin: sent, given up, not yet sent."""
    from sqlalchemy import case, func

    counts: dict[str, tuple[int, int, int]] = {origin: (0, 0, 0) for origin in origins}
    if not origins:
        return counts
    rows = await session.execute(
        select(Notice.origin,
               func.sum(case((Notice.sent_at.is_not(None) & Notice.send_lease_until.is_(None), 1), else_=0)),
               func.sum(case((Notice.sent_at.is_not(None) & Notice.send_lease_until.is_not(None), 1),
                             else_=0)),
               func.sum(case((Notice.sent_at.is_(None), 1), else_=0)))
        .where(Notice.origin.in_(list(origins))).group_by(Notice.origin)
    )
    for origin, delivered, failed, waiting in rows:
        counts[origin] = (int(delivered or 0), int(failed or 0), int(waiting or 0))
    return counts
