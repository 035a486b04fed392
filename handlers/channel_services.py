"""What a channel needs of the database besides `Core.handle`: the notices queue, the files
served by URL, the console's waiting notices and the health check.

Channels (bot/channels/) import no `db` module: they reach the database through `Core` and
through this service, which bot/app.py builds once per App (`app.channel_services`). Database
errors come out as `DatabaseUnavailable`, the core's one word for "try again later".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import text as sql_text
from sqlalchemy.exc import DBAPIError, OperationalError

from db.engine import Database
from db.repo.files import get_file, put_file
from db.repo.notices import (
    MAX_ATTEMPTS,
    NOTICE_LEASE,
    PendingNotice,
    add_notices,
    claim_pending,
    give_up,
    mark_sent,
    record_message,
    take_for_chat,
)
from db.repo.users import chat_locale, in_dialog, offer_in_chat, offer_in_own_chat
from handlers.i18n import N_, translator
from handlers.options import NUMBERED_CHANNELS, offered_from
from handlers.pipeline import DatabaseUnavailable
from handlers.types import Reply

# A notice with choices reaching a chat that numbers its options while it is in a dialog: the
# numbers stay the dialog's, so the notice comes without them and says where to find it again.
NOTICE_MID_DIALOG = N_("(You are in the middle of something, so the numbers stay for it. When you "
                       "have finished, find this again with /households or /requests.)")

__all__ = ["MAX_ATTEMPTS", "NOTICE_LEASE", "ChannelServices", "PendingNotice"]


class ChannelServices:
    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db = db
        self.clock = clock

    @asynccontextmanager
    async def _unavailable_as_one_error(self) -> AsyncIterator[None]:
        try:
            yield
        except (OperationalError, DBAPIError, OSError) as exc:
            raise DatabaseUnavailable(str(exc)[:200]) from exc

    async def healthy(self, timeout: float) -> bool:  # noqa: ASYNC109 - the check's own limit
        """Whether the database answers a write transaction within `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout), self.db.transaction() as session:
                await session.execute(sql_text("SELECT 1"))
        except Exception:
            return False
        return True

    # -- notices for this channel's chats (bot/channels/notice_relay.py) ----------------------

    async def claim_notices(self, channel: str, batch: int) -> tuple[list[PendingNotice], list[int]]:
        """Lease up to `batch` pending notices of `channel`; also the ids given up for having
        been tried MAX_ATTEMPTS times."""
        async with self._unavailable_as_one_error(), self.db.transaction() as session:
            return await claim_pending(session, channel, self.clock(), batch)

    async def notices_done(self, ids: Sequence[int], *, sent: bool) -> None:
        """Mark notices sent, or given up (`sent=False`: refused for good)."""
        async with self._unavailable_as_one_error(), self.db.transaction() as session:
            await (mark_sent if sent else give_up)(session, ids, self.clock())

    async def record_message(self, key: str, channel: str, chat_id: str, message_ref: str) -> None:
        """Remember where the message about `key` landed (a visit request's notice), so that a
        later reply can edit it (`Reply.edit_ref`)."""
        async with self._unavailable_as_one_error(), self.db.transaction() as session:
            await record_message(session, key, channel, chat_id, message_ref, self.clock())

    # -- the console: replies for users whose chat is not open --------------------------------

    async def keep_notices(self, channel: str, replies: Sequence[tuple[str, Reply]]) -> None:
        """Store (chat id, reply) notices for `channel`'s chats."""
        rows = [(channel, chat_id, reply.to_json()) for chat_id, reply in replies]
        async with self.db.transaction() as session:
            await add_notices(session, rows, self.clock())

    async def take_waiting(self, channel: str, chat_id: str) -> list[Reply]:
        """The notices waiting for one chat, oldest first, marked sent; their last buttons
        become the chat's current options (so that "1" answers the first), unless the chat is
        in a dialog: then they come without options (NOTICE_MID_DIALOG)."""
        now = self.clock()
        async with self.db.transaction() as session:
            waiting = await take_for_chat(session, channel, chat_id, now)
            replies = [replace(Reply.from_json(notice.reply), to=None) for notice in waiting]
            if await in_dialog(session, channel, chat_id):
                t = translator(await chat_locale(session, channel, chat_id))
                return [_without_options(reply, t(NOTICE_MID_DIALOG)) for reply in replies]
            offered = offered_from(replies)
            if offered:
                await offer_in_own_chat(session, channel, chat_id, offered.options, now,
                                        prompt=offered.prompt)
        return replies

    async def offer_notice(self, channel: str, chat_id: str, reply: Reply) -> Reply:
        """A notice about to be sent by the relay: on a channel that numbers its options, its
        buttons become the chat's options (so "1" answers its first), unless the chat is in a
        dialog; then, or when that cannot be recorded, it goes without them, saying so."""
        if not reply.buttons or channel not in NUMBERED_CHANNELS:
            return reply
        try:
            async with self.db.transaction() as session:
                if not await in_dialog(session, channel, chat_id):
                    options = [[b.label, b.payload] for b in reply.buttons]
                    await offer_in_chat(session, channel, chat_id, options, self.clock(), prompt=reply.text)
                    return reply
                locale = await chat_locale(session, channel, chat_id)
        except (OperationalError, DBAPIError, OSError):
            locale = None
        return _without_options(reply, translator(locale)(NOTICE_MID_DIALOG))

    async def away_header(self, channel: str, chat_id: str, hint: str | None) -> str:
        """"While you were away:" in the language of the user of this chat."""
        from sqlalchemy import select

        from db.models import Identity, User
        from handlers.i18n import hinted_locale, pick_locale, translator

        async with self.db.read_session() as session:
            locale = await session.scalar(
                select(User.locale).join(Identity, Identity.user_id == User.id)
                .where(Identity.channel == channel, Identity.external_id == chat_id))
        t = translator(pick_locale(locale, hinted_locale(hint)))
        return t("While you were away:")

    # -- files served by URL (shared_files: any worker serves what another stored) ------------

    async def put_file(self, name: str, data: bytes, media_type: str, max_age: float) -> None:
        now = self.clock()
        async with self._unavailable_as_one_error(), self.db.transaction() as session:
            await put_file(session, name, data, media_type, now, now + timedelta(seconds=max_age))

    async def get_file(self, name: str) -> bytes | None:
        async with self.db.read_session() as session:
            found = await get_file(session, name, self.clock())
        return found[0] if found is not None else None


def _without_options(reply: Reply, note: str) -> Reply:
    return replace(reply, buttons=(), rows=(), text=f"{reply.text}\n{note}") if reply.buttons else reply
