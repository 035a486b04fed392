"""Duplicate deliveries and the transactional outbox (processed_updates)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import JSON, Table, bindparam, insert, null, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import fast_sql
from db.models import Conversation, ProcessedUpdate
from db.repo.users import conversation_params, conversation_saved, save_conversation
from db.types import UTCDateTime

SEND_LEASE = timedelta(seconds=30)


async def is_processed(session: AsyncSession, channel: str, update_id: str) -> bool:
    found = await session.scalar(
        select(ProcessedUpdate.update_id).where(
            ProcessedUpdate.channel == channel, ProcessedUpdate.update_id == update_id
        )
    )
    return found is not None


_processed = cast(Table, ProcessedUpdate.__table__)
_INSERT_PROCESSED = insert(_processed)
# The outbox row with every column named, for the driver-level path (db/fast_sql.py): replies
# None is SQL NULL, as the INSERT above leaves it when the column is not given.
_REPLIES = JSON(none_as_null=True)
_NEW_PROCESSED = insert(_processed).values(
    channel=bindparam("channel"), update_id=bindparam("update_id"), chat_id=bindparam("chat_id"),
    processed_at=bindparam("processed_at", type_=UTCDateTime()),
    replies=bindparam("replies", type_=_REPLIES),
    send_lease_until=bindparam("send_lease_until", type_=UTCDateTime()),
    sent_at=bindparam("sent_at", type_=UTCDateTime()),
)
# PostgreSQL: the conversation's UPDATE (over its loaded version) and the outbox row in one
# statement; the count says whether the conversation matched.
_SAVE_AND_RECORD_PG = text("""
WITH c AS (
    UPDATE conversations SET state = :new_state, offered = :new_offered,
        offered_prompt = :new_offered_prompt, updated_at = :new_updated_at, version = version + 1
    WHERE id = :conversation_id AND version = :loaded_version RETURNING 1
), p AS (
    INSERT INTO processed_updates (channel, update_id, chat_id, processed_at, replies,
                                   send_lease_until, sent_at)
    VALUES (:channel, :update_id, :chat_id, :processed_at, :replies, :send_lease_until, :sent_at)
)
SELECT count(*) FROM c
""").bindparams(
    bindparam("new_state", type_=JSON()), bindparam("new_offered", type_=JSON()),
    bindparam("new_updated_at", type_=UTCDateTime()), bindparam("processed_at", type_=UTCDateTime()),
    bindparam("replies", type_=_REPLIES), bindparam("send_lease_until", type_=UTCDateTime()),
    bindparam("sent_at", type_=UTCDateTime()),
)


async def record_processed(
    session: AsyncSession,
    *,
    channel: str,
    update_id: str,
    chat_id: str,
    replies: list[dict[str, Any]],
    now: datetime,
    lease: timedelta = SEND_LEASE,
    conversation: Conversation | None = None,
) -> None:
    """Inserts the update with its replies (a plain INSERT, not the ORM's unit of work); a
    concurrent duplicate fails on the primary key. With `conversation`, first writes it as
    `save_conversation` does (on PostgreSQL's driver-level path both in one statement)."""
    row: dict[str, Any] = {"channel": channel, "update_id": update_id, "chat_id": chat_id,
                           "processed_at": now}
    if replies:
        row.update(replies=replies, send_lease_until=now + lease)
    else:
        row.update(sent_at=now)  # nothing to send: no outbox entry
    direct = fast_sql.direct(session)
    if direct is None:
        if conversation is not None:
            await save_conversation(session, conversation, now)
        await session.execute(_INSERT_PROCESSED, row)
        return
    full = {"replies": None, "send_lease_until": None, "sent_at": None, **row}
    if conversation is None:
        await direct.run(_NEW_PROCESSED, full)
    elif direct.is_sqlite:
        await save_conversation(session, conversation, now)
        await direct.run(_NEW_PROCESSED, full)
    else:
        params = {**full, **conversation_params(conversation, now)}
        ((count,),) = await direct.fetch(_SAVE_AND_RECORD_PG, params)
        conversation_saved(conversation, count, now)


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


# PostgreSQL: a batch of "sent" marks in one statement per channel, outside a transaction
# (Database.autocommit): any number of keys, no BEGIN and COMMIT round trips.
_MARK_SENT_PG = text(
    "UPDATE processed_updates SET sent_at = :now, replies = NULL, send_lease_until = NULL "
    "WHERE channel = :channel AND update_id = ANY(:update_ids)"
).bindparams(bindparam("now", type_=UTCDateTime()))


async def mark_sent_at_once(direct: fast_sql.Direct, keys: Iterable[tuple[str, str]], now: datetime) -> None:
    """`mark_sent_many` on the driver's connection in autocommit mode (PostgreSQL); idempotent,
    so a batch may be written again after a failure."""
    by_channel: dict[str, list[str]] = defaultdict(list)
    for channel, update_id in keys:
        by_channel[channel].append(update_id)
    for channel, update_ids in sorted(by_channel.items()):
        await direct.run(_MARK_SENT_PG, {"now": now, "channel": channel, "update_ids": sorted(update_ids)})
