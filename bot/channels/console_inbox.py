"""Notices between console users: one terminal shows only what is for its own user.

A reply addressed to another console chat (a resident's visit request to the volunteer `an`)
is not printed in the sender's terminal, where its buttons could not be pressed by the right
person: it is kept in the `notices` table for that chat, like a notice to another channel, and
shown when that user's `gocua chat` starts (design.md section 4), together with what updates on
Telegram or Zalo addressed to them meanwhile. The buttons of the last one shown become that
chat's options, so "1" there answers the notice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import App
from db.models import Conversation, Identity, Notice
from db.repo.notices import add_notices, mark_sent
from db.repo.users import new_conversation, offer_in_chat
from handlers.types import Reply

CHANNEL = "console"


def for_this_chat(replies: list[Reply], user: str) -> tuple[list[Reply], list[Reply]]:
    """(replies to show in `user`'s terminal, replies for other console chats)."""
    own = [r for r in replies if r.to is None or (r.to.channel == CHANNEL and r.to.chat_id == user)]
    return own, [r for r in replies if r not in own]


async def keep_for_others(app: App, replies: list[Reply]) -> None:
    """Store replies for other console chats until their users open the console."""
    notices = [(CHANNEL, r.to.chat_id, replace(r, to=None, edit=False).to_json())
               for r in replies if r.to is not None and r.to.channel == CHANNEL]
    if notices:
        async with app.db.transaction() as session:
            await add_notices(session, notices, app.core.services.clock())


async def waiting_for(app: App, user: str) -> list[Reply]:
    """What was addressed to `user`'s console chat while it was closed, oldest first; marked sent."""
    async with app.db.transaction() as session:
        rows = (await session.execute(
            select(Notice.id, Notice.reply)
            .where(Notice.channel == CHANNEL, Notice.chat_id == user, Notice.sent_at.is_(None))
            .order_by(Notice.id)
        )).all()
        now = app.core.services.clock()
        await mark_sent(session, [row.id for row in rows], now)
        replies = [Reply.from_json(row.reply) for row in rows]
        with_buttons = [r for r in replies if r.buttons]
        if with_buttons:
            await _offer(session, user, [[b.label, b.payload] for b in with_buttons[-1].buttons], now)
    return replies


async def _offer(session: AsyncSession, user: str, offered: list[list[str]], now: datetime) -> None:
    """Make `offered` the options of `user`'s console chat, opening the chat if it has none yet."""
    exists = await session.scalar(select(Conversation.id).where(
        Conversation.channel == CHANNEL, Conversation.chat_id == user))
    if exists is None:
        user_id = await session.scalar(select(Identity.user_id).where(
            Identity.channel == CHANNEL, Identity.external_id == user))
        if user_id is None:
            return
        await new_conversation(session, CHANNEL, user, user_id, now)
    await offer_in_chat(session, CHANNEL, user, offered, now)
