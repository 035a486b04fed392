"""One update, one transaction: dedupe, load, dispatch, store replies (outbox), commit.

After commit the channel sends the replies and calls `mark_sent`. A redelivered update whose
replies were never sent (a crash between commit and send) gets exactly those replies again;
a redelivery of a sent one gets nothing. A database outage raises, so that the channel answers
the platform with an error and the platform delivers the update again later.

The update path is kept short: the dedupe check, the sender's user and roles and the chat's
conversation come back in one statement (db/repo/users.py `load_for_update`); the conversation
is written only when its state or offered options changed; the outbox entry is one INSERT; the
"sent" marks of concurrent updates are committed together, and each update's mark before the
channel acknowledges it (`mark_sent`), so a platform that got its 200 is never answered twice.
These statements run on the driver's own connection inside the transaction (db/fast_sql.py); on
PostgreSQL a first message's rows, and the conversation with the outbox entry, are one statement
each, and the "sent" marks one autocommitted UPDATE per batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from conversations.redact import redact_citizen_ids
from db.engine import Database
from db.models import User
from db.repo.notices import add_notices
from db.repo.updates import (
    is_processed,
    mark_sent_at_once,
    mark_sent_many,
    record_processed,
    release_lease,
    take_unsent_replies,
)
from db.repo.users import (
    Loaded,
    create_user,
    create_user_and_conversation,
    in_dialog,
    load_for_update,
    new_conversation,
    offer_in_chat,
)
from handlers import dispatch
from handlers.choices import paged
from handlers.context import Context, Services
from handlers.deferred import RenderContext
from handlers.deferred import render as render_deferred
from handlers.file_limits import FileDelivery
from handlers.flood import FLOOD_EXEMPT, FLOOD_LIMIT, FLOOD_WINDOW, flood_verdict, slow_down
from handlers.i18n import N_, hinted_locale, pick_locale, translator
from handlers.metrics import observe_update
from handlers.options import NUMBERED_CHANNELS, offered_from
from handlers.types import Incoming, Reply

log = structlog.get_logger("gocua.core")

MAX_TEXT = 4000
HANDLER_FAILED = N_("Sorry, something went wrong and nothing was saved. Please try again.")


class DatabaseUnavailable(Exception):
    """The database could not be reached; the update was not processed and may be redelivered."""


class RepliesInFlight(Exception):
    """A redelivered update whose replies another sender holds the lease on (another worker
    sending them now, or one that died before it could): the channel answers the platform with
    an error status, so that it delivers the update again later; after the lease the replies
    are taken and sent by whoever gets it then."""


class _HandlerFailed(Exception):
    def __init__(self, locale: str) -> None:
        super().__init__(locale)
        self.locale = locale


class Core:
    def __init__(self, db: Database, services: Services) -> None:
        self.db = db
        self.services = services
        # Updates whose replies were sent but whose "sent" mark is not committed yet (being
        # written, or its write failed): see mark_sent; the send lease covers other workers.
        self._unflushed: set[tuple[str, str]] = set()
        self._queued_marks: list[tuple[tuple[str, str], asyncio.Future[None]]] = []
        self._flush_lock = asyncio.Lock()
        self._flush_task: asyncio.Task[None] | None = None
        self._lease = timedelta(seconds=services.settings.send_lease_seconds)
        self._render_context = RenderContext(services, db.transaction)
        db.before_dispose(self.close)

    async def handle(self, incoming: Incoming, *, delivery: FileDelivery | None = None) -> list[Reply]:
        """The replies to `incoming`, after its commit. `delivery` (handlers/file_limits.py) is
        how the channel takes files: its size limits, a public base URL for download links, and
        `preparing`, awaited just before a slow file is built (answer the tap, show an upload
        action). Without it every file is sent as it is (the console)."""
        incoming = _cleaned(incoming)
        with structlog.contextvars.bound_contextvars(
            channel=incoming.channel, chat_id=incoming.chat_id, update_id=incoming.update_id
        ):
            started, outcome = time.perf_counter(), "handled"
            try:
                try:
                    replies, outcome = await self._handle_once(incoming)
                    await self._offer_to_other_chats(replies)
                    # After the commit: heavy replies are made now, holding no write lock.
                    return await render_deferred(self._render_context, replies, delivery=delivery)
                except _HandlerFailed as failed:
                    # A bug must not lose the update nor loop redeliveries: nothing of the
                    # handler's work is kept (rolled back), the user is told, the update counts
                    # as handled.
                    outcome = "handler_failed"
                    log.exception("update.handler_failed", exc_info=failed.__cause__)
                    return await self._record_failure(incoming, failed.locale)
            except RepliesInFlight:
                outcome = "duplicate"
                raise
            except DatabaseUnavailable:  # a "sent" mark still could not be written
                outcome = "database_unavailable"
                raise
            except IntegrityError as exc:
                # A concurrent delivery of the same update won the race: answer nothing.
                if await self._already_processed(incoming):
                    outcome = "duplicate"
                    log.info("update.duplicate_concurrent")
                    return []
                # Another worker inserted this chat's first rows at the same moment: the update
                # is not processed; the platform delivers it again and then it finds them.
                outcome = "database_unavailable"
                log.warning("update.conflict", error=str(exc.orig if exc.orig else exc)[:200])
                raise DatabaseUnavailable("conflicting concurrent write") from exc
            except StaleDataError as exc:
                # Another worker changed this update's run or conversation since it was read
                # (optimistic locking, db/models.py): nothing was kept; delivered again, the
                # update is handled on what is now there.
                outcome = "database_unavailable"
                log.warning("update.conflict", error=str(exc)[:200])
                raise DatabaseUnavailable("conflicting concurrent write") from exc
            except (OperationalError, DBAPIError, OSError) as exc:
                outcome = "database_unavailable"
                log.error("update.database_unavailable", error=str(exc))
                raise DatabaseUnavailable(str(exc)) from exc
            finally:
                observe_update(incoming.channel, outcome, time.perf_counter() - started)

    async def _offer_to_other_chats(self, replies: list[Reply]) -> None:
        """A notice with buttons sent to another chat that shows numbered options (console,
        Zalo) becomes that chat's current options, so "1" there means its first button, unless
        that chat is in a dialog (its options stay; visit notices there carry a word instead).
        Done after the update's commit, one small transaction per target, so two chats notifying
        each other never wait on each other's rows; if it fails the notice still goes out, logged."""
        for reply in replies:
            if reply.to is None or not reply.buttons or reply.to.channel not in NUMBERED_CHANNELS:
                continue
            try:
                async with self.db.transaction() as session:
                    if await in_dialog(session, reply.to.channel, reply.to.chat_id):
                        # A notice never replaces the options of a dialog in progress: "1" there
                        # stays the step's (a notice for a numbered chat says its own word).
                        log.info("notice.options_not_offered_mid_dialog", to=reply.to.chat_id)
                        continue
                    await offer_in_chat(session, reply.to.channel, reply.to.chat_id,
                                        [[b.label, b.payload] for b in reply.buttons], self.services.clock(),
                                        prompt=reply.text)
            except (OperationalError, DBAPIError, OSError) as exc:
                log.warning("notice.options_not_recorded", to=reply.to.chat_id, error=str(exc))

    async def _already_processed(self, incoming: Incoming) -> bool:
        async with self.db.transaction() as session:
            return await is_processed(session, incoming.channel, incoming.update_id)

    async def _handle_once(self, incoming: Incoming) -> tuple[list[Reply], str]:
        """(replies, outcome for the metrics: "handled", "duplicate" or "flood_limited")."""
        now = self.services.clock()
        channel, update_id = incoming.channel, incoming.update_id
        if (channel, update_id) in self._unflushed:
            # Sent by this process, its "sent" mark not written yet: write it (or fail again,
            # and the platform delivers once more), send nothing.
            await self.flush_sent()
            log.info("update.duplicate", resent=0)
            return [], "duplicate"
        async with self.db.transaction() as session:
            loaded = await load_for_update(
                session, channel=channel, update_id=update_id, sender_id=incoming.sender_id,
                chat_id=incoming.chat_id, lock=not self.db.is_sqlite,
                since=now - FLOOD_WINDOW, count_up_to=FLOOD_LIMIT + 1,
            )
            if loaded.processed:
                unsent = await take_unsent_replies(session, channel, update_id, now, self._lease)
                if unsent is None:
                    log.info("update.duplicate_in_flight")
                    raise RepliesInFlight(update_id)
                log.info("update.duplicate", resent=len(unsent))
                return [Reply.from_json(raw) for raw in unsent], "duplicate"
            if channel not in FLOOD_EXEMPT and flood_verdict(loaded.recent_updates) != "allow":
                return await self._flood_limited(session, incoming, loaded, now), "flood_limited"
            if loaded.user is None and loaded.conversation is None:
                # A first message: user, identity and conversation (one statement on PostgreSQL).
                user, conversation = await create_user_and_conversation(
                    session, channel, incoming.sender_id, incoming.chat_id, incoming.display_name,
                    now, locale=hinted_locale(incoming.language_hint),
                )
            else:
                user = await _user_of(session, incoming, loaded, now)
                conversation = loaded.conversation or await new_conversation(
                    session, channel, incoming.chat_id, user.id, now
                )
            # A copy: a value changed in place is still a change (Context.state is read-only).
            before = copy.deepcopy((conversation.state, conversation.offered, conversation.offered_prompt))
            ctx = Context(
                session=session, incoming=incoming, user=user, conversation=conversation,
                grants=loaded.grants, now=now, services=self.services,
                recent_updates=loaded.recent_updates,
            )
            menu_before = (ctx.role, ctx.t.locale)
            try:
                replies = await dispatch.dispatch(ctx)
            except (OperationalError, IntegrityError, StaleDataError):
                raise
            except Exception as exc:
                raise _HandlerFailed(ctx.t.locale) from exc
            replies = _forgetting_citizen_ids(ctx, replies)
            replies = paged(ctx, replies)
            replies = _with_menu(ctx, replies, menu_before, first_contact=loaded.user is None)
            # Never a full citizen ID in the outbox, nor sent: a reply may echo what was typed.
            replies, relayed = _split_relayed([masked_reply(r) for r in replies], channel)
            if relayed:
                # Committed with the update, exactly once; a worker of their channel sends them.
                await add_notices(session, _as_notices(incoming, relayed), now)
            offer = offered_from(replies)
            if offer is not None or conversation.offered:
                # Replies that answer a wrong choice ask again with the options (handlers/
                # dispatch.py), so the options the chat is answering stay until a new question.
                conversation.offered = offer.options if offer else []
                conversation.offered_prompt = offer.prompt if offer else None
            # The conversation is written only when it changed (compared by value with the copy
            # taken before), so an update like /help writes one row, its outbox entry; on
            # PostgreSQL both go in one statement (db/repo/updates.py).
            changed = (conversation.state, conversation.offered, conversation.offered_prompt) != before
            await record_processed(
                session, channel=channel, update_id=update_id, chat_id=incoming.chat_id,
                replies=[r.to_json() for r in replies], now=now, lease=self._lease,
                conversation=conversation if changed else None,
            )
        log.info("update.handled", replies=len(replies), notices=len(relayed))
        await self._offer_to_other_chats(relayed)
        return replies, "handled"

    async def _flood_limited(
        self, session: AsyncSession, incoming: Incoming, loaded: Loaded, now: datetime
    ) -> list[Reply]:
        """The chat is over the flood limit (handlers/flood.py): no handler runs and the
        conversation stays as it was. The update is recorded, so that it counts and a redelivery
        is a duplicate, with the polite SLOW_DOWN for the first update over the limit (in the
        sender's language) and no reply after it."""
        replies: list[Reply] = []
        if flood_verdict(loaded.recent_updates) == "warn":
            user = await _user_of(session, incoming, loaded, now)
            locale = pick_locale(user.locale, incoming.language_hint, self.services.settings.locale)
            replies = [slow_down(translator(locale))]
            log.info("update.flood_limited", recent=loaded.recent_updates)
        await record_processed(
            session, channel=incoming.channel, update_id=incoming.update_id,
            chat_id=incoming.chat_id, replies=[r.to_json() for r in replies], now=now,
            lease=self._lease,
        )
        return replies

    async def _record_failure(self, incoming: Incoming, locale: str) -> list[Reply]:
        replies = [Reply(translator(locale)(HANDLER_FAILED))]
        async with self.db.transaction() as session:
            if await is_processed(session, incoming.channel, incoming.update_id):
                return []
            await record_processed(
                session, channel=incoming.channel, update_id=incoming.update_id,
                chat_id=incoming.chat_id, replies=[r.to_json() for r in replies],
                now=self.services.clock(), lease=self._lease,
            )
        return replies

    async def release_replies(self, incoming: Incoming) -> None:
        """Sending the replies of `incoming` failed (the platform's API stayed down): drop this
        sender's lease, so the platform's redelivery sends them at once. Best effort: if the
        database is down too, the lease runs out by itself."""
        try:
            async with self.db.transaction() as session:
                await release_lease(session, incoming.channel, incoming.update_id)
        except (OperationalError, DBAPIError, OSError) as exc:
            log.warning("update.release_failed", error=str(exc))

    async def defer_replies(self, incoming: Incoming, replies: list[Reply]) -> None:
        """Sending the replies of `incoming` failed and nothing will deliver the update again
        (long polling has confirmed it): hand them to the notice relay (bot/channels/
        notice_relay.py), which sends them when the platform is back, and mark the update sent
        in the same transaction. Raises DatabaseUnavailable if the database is down too."""
        now = self.services.clock()
        try:
            async with self.db.transaction() as session:
                await add_notices(session, _as_notices(incoming, replies), now)
                await mark_sent_many(session, [(incoming.channel, incoming.update_id)], now)
        except (OperationalError, DBAPIError, OSError) as exc:
            raise DatabaseUnavailable(str(exc)) from exc
        log.warning("update.replies_deferred", replies=len(replies))

    # -- the "sent" marks, committed before the platform is answered --------------------------

    async def mark_sent(self, incoming: Incoming) -> None:
        """The replies of `incoming` were sent: drop them from the outbox, durably, before the
        caller acknowledges the update (HTTP 200 in webhook mode).

        Marks of concurrent updates are written together (group commit): while one batch is
        being committed the next ones queue up and go in the following statement, so a busy
        worker writes few transactions and nobody waits for a timer. Returns once this mark is
        committed; raises DatabaseUnavailable when it could not be, and then this process keeps
        the update as sent-but-unmarked: a redelivery that reaches it writes the mark and sends
        nothing (see `_handle_once`).
        """
        key = (incoming.channel, incoming.update_id)
        self._unflushed.add(key)
        done = asyncio.get_running_loop().create_future()
        # Read the outcome even when the caller stopped waiting (cancelled), so that asyncio
        # does not report a failure nobody retrieved; the mark stays unwritten, as said above.
        done.add_done_callback(lambda future: future.cancelled() or future.exception())
        self._queued_marks.append((key, done))
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.create_task(self._write_marks(), name="gocua.mark_sent")
        await asyncio.shield(done)

    async def _write_marks(self) -> None:
        while self._queued_marks:
            batch, self._queued_marks = self._queued_marks, []
            keys = {key for key, _ in batch}
            failure: Exception | None = None
            try:
                await self._commit_marks(keys)
            except DatabaseUnavailable as exc:
                failure = exc
            except Exception as exc:  # a bug: the callers answer an error, the platform retries
                log.exception("update.mark_sent_failed")
                failure = DatabaseUnavailable(f"mark_sent: {type(exc).__name__}")
            for _, done in batch:
                if done.done():
                    continue
                if failure is None:
                    done.set_result(None)
                else:
                    done.set_exception(failure)

    async def _commit_marks(self, keys: set[tuple[str, str]]) -> None:
        async with self._flush_lock:
            try:
                if self.db.autocommits:
                    await self._mark_at_once(keys)
                else:
                    async with self.db.transaction() as session:
                        await mark_sent_many(session, keys, self.services.clock())
            except (OperationalError, DBAPIError, OSError) as exc:
                log.warning("update.mark_sent_failed", pending=len(keys), error=str(exc))
                raise DatabaseUnavailable(str(exc)) from exc
            self._unflushed -= keys

    async def _mark_at_once(self, keys: set[tuple[str, str]]) -> None:
        """PostgreSQL: the marks as one autocommitted UPDATE (db/repo/updates.py); a pooled
        connection found dead (the server restarted) is replaced and the UPDATE, idempotent,
        sent again once."""
        for attempt in (1, 2):
            try:
                async with self.db.autocommit() as direct:
                    await mark_sent_at_once(direct, keys, self.services.clock())
                return
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise

    async def flush_sent(self) -> None:
        """Write every mark this process still holds unwritten (after a failed write) now.
        Raises DatabaseUnavailable and keeps them if the database cannot be reached."""
        keys = set(self._unflushed)
        if keys:
            await self._commit_marks(keys)

    async def close(self) -> None:
        """Wait for the marks being written and retry the unwritten ones (best effort: a mark
        that cannot be written only means a redelivery after the lease may send those replies
        again; their updates were answered with an error, so the platform does deliver again)."""
        task, self._flush_task = self._flush_task, None
        if task is not None and not task.done() and task is not asyncio.current_task():
            with contextlib.suppress(Exception):
                await task
        try:
            await self.flush_sent()
        except DatabaseUnavailable:
            log.error("update.mark_sent_lost", pending=len(self._unflushed))


async def _user_of(session: AsyncSession, incoming: Incoming, loaded: Loaded, now: datetime) -> User:
    """The sender's user; someone writing for the first time gets one, in their app's language."""
    return loaded.user or await create_user(
        session, incoming.channel, incoming.sender_id, incoming.display_name, now,
        locale=hinted_locale(incoming.language_hint),
    )


def _as_notices(incoming: Incoming, replies: list[Reply]) -> list[tuple[str, str, dict[str, Any]]]:
    """(channel, chat id, reply JSON) rows for the notices table: each reply to its `to`, or to
    the update's chat; a notice is a new message, never an edit."""
    return [(r.to.channel if r.to else incoming.channel, r.to.chat_id if r.to else incoming.chat_id,
             replace(r, edit=False).to_json()) for r in replies]


# Channels whose adapter may delete a user's message from the chat (runner.Channel.forget_message).
DELETES_MESSAGES = frozenset({"telegram"})
ID_REMOVED = N_("🔒 Your message with the citizen ID number was removed from this chat; GoCua keeps "
                "only its masked form.")


def _forgetting_citizen_ids(ctx: Context, replies: list[Reply]) -> list[Reply]:
    """A full citizen ID typed in the chat (a household member's, a step's answer) is stored
    masked by its handler; the message itself is then deleted from the chat, after the commit,
    where the channel may, and a note says so (first, so the step that follows stays last)."""
    incoming = ctx.incoming
    typed = incoming.text
    if incoming.channel not in DELETES_MESSAGES or not typed or redact_citizen_ids(typed) == typed:
        return replies
    return [Reply(ctx.t(ID_REMOVED), forget=True), *replies]


# Channels with a per-chat command menu ("/" in Telegram): setMyCommands for the chat's scope.
MENU_CHANNELS = frozenset({"telegram"})


def _with_menu(ctx: Context, replies: list[Reply], before: tuple[str, str], *,
               first_contact: bool = False) -> list[Reply]:
    """After a role is granted or taken away, or the language changed (and on /start, so that
    a menu set before a role changed elsewhere is put right), the chat's "/" menu is set to the
    commands of the user's role in their language, with the last reply of this chat. Not on a
    first contact whose menu is the default one (a resident's, in the language of their app:
    bot/channels/telegram.py `setup_commands`): their chat has no menu of its own to put right."""
    now = (ctx.role, ctx.t.locale)
    typed = (ctx.incoming.text or "").strip()
    if ctx.incoming.channel not in MENU_CHANNELS or not (now != before or typed.startswith("/start")):
        return replies
    if first_contact and now == ("resident", pick_locale(ctx.incoming.language_hint)):
        return replies
    for i in range(len(replies) - 1, -1, -1):
        if replies[i].to is None:
            return [*replies[:i], replace(replies[i], menu=now), *replies[i + 1:]]
    return replies


def masked_reply(reply: Reply) -> Reply:
    """`reply` with citizen IDs masked in what people read: its text and its buttons' labels
    (conversations/redact.py). Payloads are left alone: they carry the bot's own ids."""
    text = redact_citizen_ids(reply.text)
    buttons = tuple(replace(b, label=label) if (label := redact_citizen_ids(b.label)) != b.label else b
                    for b in reply.buttons)
    if text == reply.text and buttons == reply.buttons:
        return reply
    return replace(reply, text=text, buttons=buttons)


def _split_relayed(replies: list[Reply], channel: str) -> tuple[list[Reply], list[Reply]]:
    """(replies the channel of the update sends, notices to a chat on another channel)."""
    own = [r for r in replies if r.to is None or r.to.channel == channel]
    return own, [r for r in replies if r.to is not None and r.to.channel != channel]


def _cleaned(incoming: Incoming) -> Incoming:
    """The update as the handlers may keep it: text cut at MAX_TEXT, and no NUL characters
    (nobody types one, and PostgreSQL cannot store one in a text column, so a "\x00" that a
    handler kept, in a FAQ miss or an audit target, would fail the update there and not on
    SQLite), and a citizen ID in the sender's display name masked."""
    text, payload = incoming.text, incoming.payload
    if text is not None and (len(text) > MAX_TEXT or "\x00" in text):
        incoming = replace(incoming, text=text[:MAX_TEXT].replace("\x00", ""))
    if payload is not None and "\x00" in payload:
        incoming = replace(incoming, payload=payload.replace("\x00", ""))
    name = redact_citizen_ids(incoming.display_name.replace("\x00", ""))  # kept as a new user's name
    if name != incoming.display_name:
        incoming = replace(incoming, display_name=name)
    return incoming
