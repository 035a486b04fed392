"""One update, one transaction: dedupe, load, dispatch, store replies (outbox), commit.

After commit the channel sends the replies and calls `mark_sent`. A redelivered update whose
replies were never sent (a crash between commit and send) gets exactly those replies again;
a redelivery of a sent one gets nothing. A database outage raises, so that the channel answers
the platform with an error and the platform delivers the update again later.
"""

from __future__ import annotations

import structlog
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from db.engine import Database
from db.repo.updates import is_processed, mark_sent, record_processed, take_unsent_replies
from db.repo.users import conversation_for_chat, role_grants, user_for_identity
from handlers import dispatch
from handlers.context import Context, Services
from handlers.i18n import N_, translator
from handlers.options import offered_from
from handlers.types import Incoming, Reply

log = structlog.get_logger("gocua.core")

MAX_TEXT = 4000
HANDLER_FAILED = N_("Sorry, something went wrong and nothing was saved. Please try again.")


class DatabaseUnavailable(Exception):
    """The database could not be reached; the update was not processed and may be redelivered."""


class _HandlerFailed(Exception):
    def __init__(self, locale: str) -> None:
        super().__init__(locale)
        self.locale = locale


class Core:
    def __init__(self, db: Database, services: Services) -> None:
        self.db = db
        self.services = services

    async def handle(self, incoming: Incoming) -> list[Reply]:
        if incoming.text is not None and len(incoming.text) > MAX_TEXT:
            incoming = _truncate(incoming)
        with structlog.contextvars.bound_contextvars(
            channel=incoming.channel, chat_id=incoming.chat_id, update_id=incoming.update_id
        ):
            try:
                try:
                    return await self._handle_once(incoming)
                except _HandlerFailed as failed:
                    # A bug must not lose the update nor loop redeliveries: nothing of the
                    # handler's work is kept (rolled back), the user is told, the update counts
                    # as handled.
                    log.exception("update.handler_failed", exc_info=failed.__cause__)
                    return await self._record_failure(incoming, failed.locale)
            except IntegrityError:
                # A concurrent delivery of the same update won the race: answer nothing.
                if await self._already_processed(incoming):
                    log.info("update.duplicate_concurrent")
                    return []
                raise
            except (OperationalError, DBAPIError, OSError) as exc:
                log.error("update.database_unavailable", error=str(exc))
                raise DatabaseUnavailable(str(exc)) from exc

    async def _already_processed(self, incoming: Incoming) -> bool:
        async with self.db.transaction() as session:
            return await is_processed(session, incoming.channel, incoming.update_id)

    async def _handle_once(self, incoming: Incoming) -> list[Reply]:
        now = self.services.clock()
        async with self.db.transaction() as session:
            if await is_processed(session, incoming.channel, incoming.update_id):
                unsent = await take_unsent_replies(session, incoming.channel, incoming.update_id, now)
                log.info("update.duplicate", resent=len(unsent))
                return [Reply.from_json(raw) for raw in unsent]
            user = await user_for_identity(
                session, incoming.channel, incoming.sender_id, incoming.display_name, now
            )
            conversation = await conversation_for_chat(
                session, incoming.channel, incoming.chat_id, user.id, now, lock=not self.db.is_sqlite
            )
            ctx = Context(
                session=session, incoming=incoming, user=user, conversation=conversation,
                grants=await role_grants(session, user.id), now=now, services=self.services,
            )
            try:
                replies = await dispatch.dispatch(ctx)
            except (OperationalError, IntegrityError):
                raise
            except Exception as exc:
                raise _HandlerFailed(ctx.t.locale) from exc
            offered = offered_from(replies)
            if offered is not None or conversation.offered:
                conversation.offered = offered or []
            conversation.updated_at = now
            conversation.version = (conversation.version or 0) + 1
            record_processed(
                session, channel=incoming.channel, update_id=incoming.update_id,
                chat_id=incoming.chat_id, replies=[r.to_json() for r in replies], now=now,
            )
        log.info("update.handled", replies=len(replies))
        return replies

    async def _record_failure(self, incoming: Incoming, locale: str) -> list[Reply]:
        replies = [Reply(translator(locale)(HANDLER_FAILED))]
        async with self.db.transaction() as session:
            if await is_processed(session, incoming.channel, incoming.update_id):
                return []
            record_processed(
                session, channel=incoming.channel, update_id=incoming.update_id,
                chat_id=incoming.chat_id, replies=[r.to_json() for r in replies],
                now=self.services.clock(),
            )
        return replies

    async def mark_sent(self, incoming: Incoming) -> None:
        async with self.db.transaction() as session:
            await mark_sent(session, incoming.channel, incoming.update_id, self.services.clock())


def _truncate(incoming: Incoming) -> Incoming:
    from dataclasses import replace

    return replace(incoming, text=(incoming.text or "")[:MAX_TEXT])
