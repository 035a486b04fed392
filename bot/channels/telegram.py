"""The Telegram channel (aiogram 3): long polling by default, or webhooks behind HTTPS.

The adapter is thin: an Update becomes an `Incoming`, the core decides, the replies are sent
(bot/channels/telegram_render.py builds the Bot API calls), then the core is told they were
sent. Public API:

- `make_bot(settings) -> Bot`: a Bot talking to `{TELEGRAM_API_BASE}/bot{token}/{method}`.
- `TelegramChannel(app, bot)`: `feed(update)`, `setup_commands()`, `start_polling(stop=)`,
  `register_webhook(url, secret)`, `webhook_app(path, secret=)`, `drain()`, `close()`;
  `send_notice(address, reply)` and `start_relay()`: notices that updates on another channel
  addressed to Telegram chats (bot/channels/notice_relay.py), sent while the channel serves.
- `run_telegram(settings, *, webhook_url=None, host=, port=, stop=None, app=None)`: the
  `gocua run telegram` command.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import structlog
from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    EditMessageText,
    GetMe,
    GetUpdates,
    SendDocument,
    SendMessage,
    SendPhoto,
    SetMyCommands,
    SetWebhook,
    TelegramMethod,
)
from aiogram.methods.base import Response
from aiogram.types import BotCommandScopeDefault, Update
from aiogram.utils.token import TokenValidationError
from aiohttp import web
from sqlalchemy import text as sql_text

from bot.app import App, open_app
from bot.channels.chat_locks import ChatLocks
from bot.channels.core_calls import handle_update
from bot.channels.notice_relay import INTERVAL as NOTICE_INTERVAL
from bot.channels.notice_relay import NoticeRefused, NoticeRelay
from bot.channels.signals import install_signal_handlers
from bot.channels.telegram_render import (
    CHANNEL,
    MAX_TEXT,
    bot_commands,
    chat_id_of,
    incoming_from_update,
    keyboard,
    render,
)
from bot.channels.webhook_auth import secret_given, secret_matches
from bot.config import ConfigError, Settings, validate_http_url
from bot.housekeeping import Housekeeper
from bot.metrics import metrics_for
from handlers.pipeline import DatabaseUnavailable, RepliesInFlight
from handlers.types import Address, Incoming, Reply

# aiogram parses every API answer into `Response[<the method's result type>]`, a pydantic generic
# that pydantic caches only weakly: under load it is collected and rebuilt again and again
# (about a third of the send path's CPU in bench/throughput.py). Keeping the ones GoCua uses
# alive makes each a one-time cost.
_RESPONSE_MODELS = [
    Response[method.__returning__]
    for method in (SendMessage, EditMessageText, AnswerCallbackQuery, SendDocument, SendPhoto,
                   SetMyCommands, SetWebhook, DeleteWebhook, GetMe, GetUpdates)
]

log = structlog.get_logger("gocua.telegram")

T = TypeVar("T")

ALLOWED_UPDATES = ["message", "callback_query"]
SEND_RETRY_DELAYS = (0.5, 1.0, 2.0)  # network errors and 5xx
MAX_RATE_LIMITED_TRIES = 3  # 429 Too Many Requests
MAX_RETRY_AFTER = 60.0  # seconds; a longer flood wait is not sat out under a chat's lock
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # on webhook POSTs, equal to setWebhook's secret_token
HEALTH_TIMEOUT = 5.0
DRAIN_GRACE = 30.0
POLL_BACKOFF = (1.0, 30.0)  # seconds: the first wait after a failed getUpdates, and the longest


class DeliveryFailed(Exception):
    """Telegram stayed unreachable (network, 5xx, 429) after the retries."""


def make_bot(settings: Settings) -> Bot:
    token = settings.telegram_bot_token
    if not token:
        raise ConfigError("TELEGRAM_BOT_TOKEN is not set (get a token from @BotFather and export it)")
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    try:
        return Bot(token, session=session)
    except TokenValidationError:
        raise ConfigError(
            "TELEGRAM_BOT_TOKEN is malformed (expected digits, a colon and a secret, "
            "e.g. 123456:ABC-DEF...)"
        ) from None


async def call_with_retries(bot: Bot, method: TelegramMethod[T]) -> T:
    """`bot(method)`, waiting out 429s and retrying network errors and 5xx with backoff.

    Raises DeliveryFailed when Telegram stays unavailable, and Telegram's refusals as they are.
    """
    rate_limited = failures = 0
    while True:
        try:
            return await bot(method)
        except TelegramRetryAfter as exc:
            rate_limited += 1
            if rate_limited >= MAX_RATE_LIMITED_TRIES or exc.retry_after > MAX_RETRY_AFTER:
                raise DeliveryFailed(f"{method.__api_method__}: rate limited") from exc
            log.warning("telegram.rate_limited", method=method.__api_method__,
                        retry_after=exc.retry_after)
            await asyncio.sleep(exc.retry_after)
        except TelegramEntityTooLarge:
            raise
        except (TelegramNetworkError, TelegramServerError) as exc:
            if failures >= len(SEND_RETRY_DELAYS):
                raise DeliveryFailed(f"{method.__api_method__}: {scrub(bot, exc.message)}") from exc
            delay = SEND_RETRY_DELAYS[failures]
            failures += 1
            log.warning("telegram.send_retry", method=method.__api_method__, delay=delay,
                        error=scrub(bot, exc.message))
            await asyncio.sleep(delay)


async def startup_call(bot: Bot, method: TelegramMethod[T]) -> T:
    """A call the bot cannot start without: failures become one-line ConfigErrors."""
    try:
        return await call_with_retries(bot, method)
    except TelegramUnauthorizedError:
        raise ConfigError("Telegram rejected TELEGRAM_BOT_TOKEN (401 Unauthorized); "
                          "check the token with @BotFather") from None
    except (DeliveryFailed, TelegramAPIError) as exc:
        reason = scrub(bot, str(exc.__cause__ or exc)).strip().splitlines()[0]
        raise ConfigError(f"cannot use the Telegram Bot API ({method.__api_method__}): {reason} "
                          "(check TELEGRAM_API_BASE and the network)") from None


async def check_token(bot: Bot) -> None:
    """getMe: the token is accepted and the API reachable."""
    me = await startup_call(bot, GetMe())
    log.info("telegram.bot", username=me.username, bot_id=me.id)


def scrub(bot: Bot, message: str) -> str:
    """`message` without the bot's token (error texts may quote URLs)."""
    return message.replace(bot.token, "<token>")


class TelegramChannel:
    """Feeds Telegram updates to the core and renders its replies."""

    def __init__(self, app: App, bot: Bot, *, notice_interval: float = NOTICE_INTERVAL) -> None:
        self.app = app
        self.bot = bot
        self.locks = ChatLocks()
        self.notice_interval = notice_interval
        self._relay: NoticeRelay | None = None
        # Polling confirms updates whatever happens to them, so errors are logged there; in
        # webhook mode they propagate and become HTTP 500, and Telegram delivers again.
        self.raise_errors = True
        self._inflight: set[asyncio.Task[Any]] = set()
        self.dispatcher = Dispatcher(disable_fsm=True)
        self.dispatcher.message.register(self._on_event)
        self.dispatcher.callback_query.register(self._on_event)

    async def _on_event(self, event: object, event_update: Update) -> None:
        await self.feed(event_update)

    # -- one update -------------------------------------------------------------------------

    async def feed(self, update: Update) -> None:
        """Handle one update: core, replies, mark sent. Kinds we do not serve are ignored."""
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            await self._feed(update)
        except Exception as exc:
            if self.raise_errors:
                raise
            # Polling has already confirmed this update (getUpdates offset); it is lost if the
            # database stays down longer than the retries. Webhook mode has no such limit.
            expected = isinstance(exc, (DatabaseUnavailable, DeliveryFailed, RepliesInFlight))
            log.error("telegram.update_failed", update_id=update.update_id,
                      error=type(exc).__name__, detail=self._scrub(str(exc)), exc_info=not expected)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _feed(self, update: Update) -> None:
        incoming = incoming_from_update(update)
        query = update.callback_query
        if incoming is None:
            if query is not None:
                await self._answer_callback(query.id)
            log.info("telegram.update_ignored", update_id=update.update_id)
            return
        async with self.locks.hold(incoming.chat_id):
            try:
                replies = await self._handle(incoming)
            finally:
                if query is not None:
                    await self._answer_callback(query.id)
            if not replies:
                # Nothing new, or a redelivery whose replies someone else is still sending:
                # marking it sent here could lose those replies.
                return
            try:
                await self.send_replies(incoming, replies)
            except DeliveryFailed:
                if self.raise_errors:  # webhook: the platform delivers it again
                    await self.app.core.release_replies(incoming)
                    raise
                # Polling confirmed the update already: the notice relay sends them later.
                await self.app.core.defer_replies(incoming, replies)
                return
            await self.app.core.mark_sent(incoming)

    async def _handle(self, incoming: Incoming) -> list[Reply]:
        return await handle_update(self.app.core, incoming, retry=not self.raise_errors,
                                   log_prefix=CHANNEL)

    async def _answer_callback(self, query_id: str) -> None:
        # Stops the spinner on the phone; a redelivered or old query cannot be answered twice.
        try:
            await self.bot(AnswerCallbackQuery(callback_query_id=query_id))
        except TelegramAPIError as exc:
            log.debug("telegram.callback_answer_failed", error=self._scrub(str(exc)))

    # -- sending ----------------------------------------------------------------------------

    async def send_replies(self, incoming: Incoming, replies: list[Reply]) -> None:
        """Send the core's replies for `incoming`; raises DeliveryFailed if Telegram stays down."""
        edit_ref = incoming.message_ref
        for reply in replies:
            if reply.to is not None and reply.to.channel != CHANNEL:
                # The core relays these through the notices table; an outbox stored before it did.
                log.warning("telegram.reply_for_other_channel_skipped", to_channel=reply.to.channel)
                continue
            chat_id = chat_id_of(reply.to.chat_id if reply.to is not None else incoming.chat_id)
            if reply.edit and reply.to is None and edit_ref is not None:
                edited = await self._try_edit(chat_id, int(edit_ref), reply)
                edit_ref = None  # only one reply can take over the message the button was on
                if edited:
                    continue
            for method in render(reply, chat_id):
                await self.call(method)

    async def send_notice(self, address: Address, reply: Reply) -> None:
        """One notice for a Telegram chat from another channel's update (the relay's `send`).
        Raises NoticeRefused when Telegram refuses it for good (blocked, unknown chat, bad
        request) and DeliveryFailed when Telegram stays unavailable (retried later)."""
        for method in render(reply, chat_id_of(address.chat_id)):
            try:
                await self._call_with_retries(method)
            except (TelegramForbiddenError, TelegramBadRequest, TelegramNotFound,
                    TelegramEntityTooLarge) as exc:
                raise NoticeRefused(f"{method.__api_method__}: {self._scrub(exc.message)}") from exc

    def start_relay(self) -> None:
        """Start sending the pending notices for Telegram chats (a no-op while it runs)."""
        if self._relay is None:
            self._relay = NoticeRelay(self.app.db, CHANNEL, self.send_notice,
                                      self.app.core.services.clock, interval=self.notice_interval)
        self._relay.start()

    async def _start_relay_on_startup(self, application: web.Application) -> None:
        self.start_relay()

    async def _try_edit(self, chat_id: int | str, message_id: int, reply: Reply) -> bool:
        if reply.attachment is not None or not reply.text.strip() or len(reply.text) > MAX_TEXT:
            return False
        method = EditMessageText(chat_id=chat_id, message_id=message_id, text=reply.text,
                                 reply_markup=keyboard(reply))
        try:
            await self._call_with_retries(method)
        except TelegramAPIError as exc:
            # Too old to edit, deleted, or not modified: send a new message instead.
            log.info("telegram.edit_fell_back", reason=self._scrub(exc.message))
            return False
        return True

    async def call(self, method: TelegramMethod[T]) -> T | None:
        """One Bot API call with retries; None when Telegram refused it for good (logged)."""
        try:
            return await self._call_with_retries(method)
        except TelegramForbiddenError:
            log.info("telegram.blocked_by_user", method=method.__api_method__,
                     chat_id=getattr(method, "chat_id", None))
        except TelegramAPIError as exc:  # bad request, chat not found, file too large …
            log.error("telegram.send_refused", method=method.__api_method__,
                      error=self._scrub(exc.message))
        return None

    async def _call_with_retries(self, method: TelegramMethod[T]) -> T:
        return await call_with_retries(self.bot, method)

    def _scrub(self, message: str) -> str:
        return scrub(self.bot, message)

    # -- start-up ---------------------------------------------------------------------------

    async def setup_commands(self) -> None:
        """The command menu: Vietnamese by default, English for English-language clients."""
        scope = BotCommandScopeDefault()
        await self._startup_call(SetMyCommands(commands=bot_commands("vi"), scope=scope))
        await self._startup_call(SetMyCommands(commands=bot_commands("en"), scope=scope,
                                               language_code="en"))

    async def register_webhook(self, url: str, secret: str) -> None:
        await self._startup_call(SetWebhook(url=url, secret_token=secret,
                                            allowed_updates=ALLOWED_UPDATES))
        await self.setup_commands()

    async def _startup_call(self, method: TelegramMethod[T]) -> T:
        return await startup_call(self.bot, method)

    # -- polling ----------------------------------------------------------------------------

    async def start_polling(self, *, stop: asyncio.Event, polling_timeout: int = 25) -> None:
        """Long-poll until `stop` is set: delete any webhook, set the menu, then getUpdates.

        Telegram forgets updates once a getUpdates asks for later ones (its offset), so each
        batch is handled to the end (replies sent and marked sent, chats in parallel, each
        chat's updates in order) before the next getUpdates confirms it: a process that dies
        meanwhile gets the batch again on restart, and the outbox sends only what was not sent.
        Failures to poll are logged and backed off (POLL_BACKOFF, or a 429's retry-after)."""
        self.raise_errors = False
        await self._startup_call(DeleteWebhook(drop_pending_updates=False))
        await self.setup_commands()
        self.start_relay()
        stopping = asyncio.create_task(stop.wait())
        offset: int | None = None
        delay: float | None = None
        try:
            while not stop.is_set():
                poll = asyncio.create_task(self.bot(GetUpdates(
                    offset=offset, timeout=polling_timeout, allowed_updates=ALLOWED_UPDATES),
                    request_timeout=int(self.bot.session.timeout + polling_timeout)))
                await asyncio.wait({poll, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not poll.done():
                    poll.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await poll
                    break
                try:
                    updates = poll.result()
                except (TelegramAPIError, aiohttp.ClientError, OSError) as exc:
                    delay = POLL_BACKOFF[0] if delay is None else min(delay * 2, POLL_BACKOFF[1])
                    wait = max(delay, float(getattr(exc, "retry_after", 0) or 0))
                    log.warning("telegram.polling_failed", error=type(exc).__name__,
                                detail=self._scrub(str(exc)), retry_in=wait)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(stopping), wait)
                    continue
                delay = None
                if updates:
                    await asyncio.gather(*(self.feed(update) for update in updates))
                    offset = updates[-1].update_id + 1
            if offset is not None:  # confirm the last batch now rather than on the next start
                with contextlib.suppress(TelegramAPIError, aiohttp.ClientError, OSError):
                    await self.bot(GetUpdates(offset=offset, timeout=0, limit=1,
                                              allowed_updates=ALLOWED_UPDATES))
        finally:
            stopping.cancel()
            await self.drain()

    # -- webhook ----------------------------------------------------------------------------

    def webhook_app(self, path: str, *, secret: str) -> web.Application:
        """An aiohttp app: POST `path` (secret-checked updates), GET /healthz, GET /metrics.

        Updates are fed straight to `feed` rather than through aiogram's request handler and
        dispatcher, which log each failure with a traceback and answer a malformed update
        with 500 (so Telegram delivers it again and again)."""
        self.raise_errors = True
        application = web.Application()
        application.router.add_post(path, functools.partial(self._webhook, secret.encode("utf-8")))
        application.router.add_get("/healthz", self.healthz)
        application.router.add_get("/metrics", metrics_for(self.app.db))
        application.on_startup.append(self._start_relay_on_startup)  # stopped by close()
        return application

    async def _webhook(self, secret: bytes, request: web.Request) -> web.Response:
        """401 for a wrong secret; 200 for an update handled, ignored or malformed (Telegram
        would only deliver those again); 500 when it could not be handled now (delivered again,
        the outbox resends what is owed)."""
        if not secret_matches(request, SECRET_HEADER, secret):
            log.warning("telegram.webhook_bad_secret", remote=request.remote,
                        missing=not secret_given(request, SECRET_HEADER))
            return web.Response(status=401, text="unauthorized")
        try:
            update = Update.model_validate(await request.json(), context={"bot": self.bot})
        except ValueError as exc:  # not JSON, not UTF-8, not an update (pydantic's ValidationError)
            log.warning("telegram.update_malformed", error=type(exc).__name__,
                        size=request.content_length)
            return web.json_response({})
        try:
            await self.feed(update)
        except RepliesInFlight:
            # Another sender holds the replies' lease; the core logged it in one line.
            return web.Response(status=500, text="in progress, retry later")
        except (DatabaseUnavailable, DeliveryFailed) as exc:
            log.error("telegram.webhook_failed", error=type(exc).__name__,
                      detail=self._scrub(str(exc)))
            return web.Response(status=500, text="temporarily unavailable, retry later")
        return web.json_response({})

    async def healthz(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT), self.app.db.transaction() as session:
                await session.execute(sql_text("SELECT 1"))
        except Exception as exc:
            log.warning("telegram.health_failed", error=type(exc).__name__)
            return web.Response(status=503, text="database unavailable")
        return web.Response(text="ok")

    # -- shutdown ---------------------------------------------------------------------------

    async def drain(self, grace: float = DRAIN_GRACE) -> None:
        """Wait up to `grace` seconds for updates being handled (their replies are still sent)."""
        pending = {task for task in self._inflight if task is not asyncio.current_task()}
        if pending:
            await asyncio.wait(pending, timeout=grace)

    async def close(self) -> None:
        if self._relay is not None:
            await self._relay.stop()
        await self.drain()
        await self.bot.session.close()


def webhook_settings(settings: Settings, webhook_url: str) -> tuple[str, str, str]:
    url = validate_http_url("--webhook-url", webhook_url, require_path=True)
    if not settings.webhook_secret:
        raise ConfigError("GOCUA_WEBHOOK_SECRET is not set; webhook mode needs it so that only "
                          "Telegram can post updates (8-256 letters, digits, '_' or '-')")
    path = urlsplit(url).path
    if path in ("/healthz", "/metrics"):
        raise ConfigError(f"--webhook-url: the path {path} is the server's own; use e.g. /telegram")
    return url, path, settings.webhook_secret


async def run_telegram(
    settings: Settings,
    *,
    webhook_url: str | None = None,
    host: str = "0.0.0.0",
    port: int = 8080,
    stop: asyncio.Event | None = None,
    app: App | None = None,
    worker_index: int | None = None,
) -> None:
    """Run the bot until `stop` is set (or SIGINT/SIGTERM when no event is given).

    `app` lets a caller share its App (it is then not closed here); otherwise one is opened
    (and the database migrated). `worker_index` (webhook mode, bot/workers.py): one of several
    workers sharing host:port with SO_REUSEPORT; the group's parent has migrated the database
    and only worker 0 registers the webhook and the command menu.
    """
    bot = make_bot(settings)
    webhook = webhook_settings(settings, webhook_url) if webhook_url is not None else None
    own_app = app is None
    stop_event = stop or asyncio.Event()
    signals = install_signal_handlers(stop_event) if stop is None else []
    try:
        await check_token(bot)
        if app is None:
            app = await open_app(settings, migrate=worker_index is None)
        channel = TelegramChannel(app, bot)
        housekeeper = Housekeeper(app.db, app.core.services.clock).start()
        try:
            if webhook is None:
                log.info("telegram.polling", api=settings.telegram_api_base)
                await channel.start_polling(stop=stop_event)
            else:
                await _serve_webhook(channel, *webhook, host=host, port=port, stop=stop_event,
                                     worker_index=worker_index)
        finally:
            await housekeeper.stop()
            await channel.close()
    finally:
        await bot.session.close()
        if own_app and app is not None:
            await app.close()
        for sig in signals:
            asyncio.get_running_loop().remove_signal_handler(sig)


async def _serve_webhook(
    channel: TelegramChannel, url: str, path: str, secret: str, *, host: str, port: int,
    stop: asyncio.Event, worker_index: int | None = None,
) -> None:
    runner = web.AppRunner(channel.webhook_app(path, secret=secret), access_log=None,
                           shutdown_timeout=30.0)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port, reuse_port=worker_index is not None).start()
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        if worker_index in (None, 0):
            await channel.register_webhook(url, secret)
        log.info("telegram.webhook", url=scrub(channel.bot, url), host=host, port=port,
                 worker=worker_index)
        await stop.wait()
    finally:
        await runner.cleanup()
