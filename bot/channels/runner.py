"""The channel runner: what every chat platform's adapter shares, written once.

An adapter (bot/channels/telegram.py, bot/channels/zalo.py) subclasses `Channel` and says only
what is its platform's (the list is in docs/architecture.md, "Writing a channel adapter"):
how an update becomes an `Incoming` (`parse`, `webhook_update`), how one `Reply` is sent
(`send`), which errors mean "the platform is unavailable, try later" (`delivery_errors`,
`poll_errors`), and its start-up calls (`prepare_polling`, `register_webhook`, `get_updates`).

The runner owns the outbox protocol around them, the same on every platform:

- one update: per-chat lock → `Core.handle` (retried while the database is down when polling)
  → send each reply for this channel (replies addressed to another channel are the notice
  relay's) → `Core.mark_sent`; when the platform stays down, `Core.release_replies` (webhook:
  the platform delivers the update again) or `Core.defer_replies` (polling: nothing will);
- serving: long polling with back-off, or a webhook server (secret header, 401 / 200 / 500),
  both with GET /healthz and GET /metrics; the notice relay (bot/channels/notice_relay.py)
  runs while the channel serves; `drain` and `close` on the way out;
- `run_channel`: the `gocua run <channel>` skeleton (signals, token check, App, housekeeping).

Channels import no `db` module: the database is reached through `app.core` and
`app.channel_services` (handlers/channel_services.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from bot.app import App, open_app
from bot.channels.chat_locks import ChatLocks
from bot.channels.core_calls import handle_update
from bot.channels.file_store import FileStore
from bot.channels.notice_relay import INTERVAL as NOTICE_INTERVAL
from bot.channels.notice_relay import NoticeRefused, NoticeRelay
from bot.channels.pacer import pacer_for
from bot.channels.signals import install_signal_handlers
from bot.channels.webhook_auth import secret_given, secret_matches
from bot.config import ConfigError, Settings, validate_http_url
from bot.scheduler import Scheduler
from handlers.file_limits import TELEGRAM, FileDelivery, FileLimits, discard
from handlers.pipeline import DatabaseUnavailable, RepliesInFlight
from handlers.types import Address, Incoming, Reply

U = TypeVar("U")  # the platform's update (aiogram's Update, Zalo's dict)

POLL_BACKOFF = (1.0, 30.0)  # seconds: the first wait after a failed getUpdates, and the longest
MAX_INFLIGHT = 64  # updates handled at once in polling mode (different chats run in parallel)
HEALTH_TIMEOUT = 5.0
DRAIN_GRACE = 30.0
SERVER_PATHS = ("/healthz", "/metrics")


class Channel(Generic[U]):
    """Feeds a platform's updates to the core and sends its replies (see the module's doc)."""

    # -- what an adapter declares ---------------------------------------------------------------
    name: ClassVar[str]  # Incoming.channel, the log prefix ("zalo": zalo.update_ignored …)
    title: ClassVar[str]  # the platform's name in error messages ("Zalo")
    secret_header: ClassVar[str]  # the webhook POST's header holding setWebhook's secret
    delivery_errors: ClassVar[tuple[type[Exception], ...]]  # sending: unavailable, try later
    poll_errors: ClassVar[tuple[type[Exception], ...]]  # getUpdates failed: back off, poll again
    unauthorized: ClassVar[tuple[type[Exception], ...]] = ()  # poll errors logged as errors
    reserved_paths: ClassVar[tuple[str, ...]] = ("/files/",)  # path prefixes `routes` serves besides ours
    webhook_answer: ClassVar[dict[str, Any]] = {}  # the JSON body of a webhook POST's 200
    # True when getUpdates confirms the updates it returned last time (Telegram's offset): a
    # batch is then handled to the end before the next poll, so that a process that dies
    # meanwhile gets it again. False when a returned update is gone (Zalo).
    poll_confirms_batch: ClassVar[bool] = False
    poll_timeout: ClassVar[int] = 25  # seconds a getUpdates waits for an update
    can_edit: ClassVar[bool] = False  # sent messages can be edited (Reply.edit_ref)
    # True when `acknowledge` is not ordered with the chat's messages (Telegram's answer to a
    # button): it then runs beside `send_replies` rather than before it.
    acknowledge_concurrently: ClassVar[bool] = False
    default_file_limits: ClassVar[FileLimits] = TELEGRAM  # handlers/file_limits.py

    def __init__(self, app: App, *, poll_backoff: tuple[float, float] = POLL_BACKOFF,
                 max_inflight: int = MAX_INFLIGHT, notice_interval: float = NOTICE_INTERVAL,
                 file_limits: FileLimits | None = None) -> None:
        self.app = app
        # What the platform takes as a file (handlers/file_limits.py; tests inject small ones).
        self.file_limits = file_limits or self.default_file_limits
        # GET /files/… (download links, Zalo's charts) when a public base URL is set.
        self.files: FileStore | None = None
        self.poll_backoff = poll_backoff
        self.notice_interval = notice_interval
        self.locks = ChatLocks()
        self.log = structlog.get_logger(f"gocua.{self.name}")
        # Polling cannot get an update again once it is confirmed, so errors are logged there;
        # in webhook mode they propagate and become HTTP 500, and the platform delivers again.
        self.raise_errors = True
        self._relay: NoticeRelay | None = None
        self._inflight: set[asyncio.Task[Any]] = set()
        self._spawned: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max_inflight)

    # -- what an adapter implements -------------------------------------------------------------

    def parse(self, update: U) -> Incoming | None:
        """The core's view of an update; None for what the bot does not serve."""
        raise NotImplementedError

    def webhook_update(self, body: Any) -> U | None:
        """The update in a webhook POST's JSON body; None (or ValueError) when malformed."""
        raise NotImplementedError

    async def send(self, chat_id: str, reply: Reply, *, edit: str | None = None) -> bool:
        """Send one reply to `chat_id` (`edit`: the id of the message to replace, when the
        platform can). False when the platform refused it for good (logged); raises one of
        `delivery_errors` when it stays unavailable."""
        raise NotImplementedError

    async def send_kept(self, chat_id: str, reply: Reply) -> str | None:
        """Send `reply` (one with a `key`) and return the id of the message later replies may
        edit (the one with its buttons); None where the platform cannot edit (the default)."""
        await self.send(chat_id, reply)
        return None
    async def forget_message(self, chat_id: str, message_id: str) -> bool:
        """Delete a user's message from the chat (a citizen ID typed in it), where the platform
        lets the bot; False where it cannot (the default)."""
        return False

    async def get_updates(self, wait: int) -> list[U]:
        """One long poll; raises one of `poll_errors` when it fails."""
        raise NotImplementedError

    async def prepare_polling(self) -> None:
        """Start-up calls before polling (delete the webhook, set a command menu …)."""

    async def register_webhook(self, url: str, secret: str) -> None:
        """Start-up calls of webhook mode (setWebhook with `secret`, a command menu …)."""
        raise NotImplementedError

    async def acknowledge(self, update: U, toast: str | None = None) -> None:
        """Called once the core has the update (or it was ignored): e.g. stop a button's spinner,
        showing `toast` (the text of a `Reply.toast`) where the platform has toasts."""

    async def preparing_file(self, update: U, incoming: Incoming, kind: str, note: str) -> None:
        """The core is about to build a file of `kind` ("document" | "photo") for this update,
        which may take a while: e.g. answer the button now with `note` (a toast) and show an
        upload action until `prepared`."""

    async def prepared(self, update: U) -> None:
        """The core is done with the update (its files are built): stop what `preparing_file`
        started."""

    async def finish_polling(self) -> None:
        """Called when polling stops (e.g. confirm the last batch now)."""

    async def close_client(self) -> None:
        """Close what `close` should close of the platform's client."""

    def update_fields(self, update: U) -> dict[str, Any]:
        """What identifies an update in a log line (never personal data)."""
        return {}

    def routes(self, router: web.UrlDispatcher) -> None:
        """Extra GET routes of the channel's HTTP server (/files/… with a public base URL)."""
        if self.files is not None:
            self.files.routes(router)

    @property
    def serves_http_when_polling(self) -> bool:
        """Whether polling needs the HTTP server too (to serve `routes`)."""
        return self.files is not None

    def delivery(self, update: U, incoming: Incoming) -> FileDelivery:
        """How this chat takes files, for `Core.handle` (handlers/file_limits.py)."""

        async def preparing(kind: str, note: str) -> None:
            await self.preparing_file(update, incoming, kind, note)

        return FileDelivery(limits=self.file_limits,
                            public_base=self.files.public_base if self.files is not None else None,
                            preparing=preparing)

    def scrub(self, text: str) -> str:
        """`text` without secrets (the token), for logs and errors."""
        return text

    @staticmethod
    def check_token_setting(settings: Settings) -> None:
        """ConfigError when the platform's token is missing or malformed (no network)."""
        raise NotImplementedError

    @classmethod
    def check_settings(cls, settings: Settings, webhook_url: str | None) -> tuple[str, str, str] | None:
        """What `gocua run <channel>` refuses before it starts (a token, webhook settings);
        the webhook's (url, path, secret), or None for polling."""
        cls.check_token_setting(settings)
        return webhook_settings(settings, webhook_url, cls)

    # -- one update -------------------------------------------------------------------------------

    async def feed(self, update: U) -> None:
        """Handle one update: core, replies, mark sent. What the bot does not serve is ignored."""
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            await self._feed(update)
        except Exception as exc:
            if self.raise_errors:
                raise
            # Polling has already confirmed this update; it is lost if the database stays
            # down longer than the retries. Webhook mode has no such limit.
            expected = isinstance(exc, (DatabaseUnavailable, RepliesInFlight, *self.delivery_errors))
            self.log.error(f"{self.name}.update_failed", **self.update_fields(update),
                           error=type(exc).__name__, detail=self.scrub(str(exc)), exc_info=not expected)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _feed(self, update: U) -> None:
        incoming = self.parse(update)
        if incoming is None:
            await self.acknowledge(update)
            self.log.info(f"{self.name}.update_ignored", **self.update_fields(update))
            return
        async with self.locks.hold(incoming.chat_id):
            replies: list[Reply] = []
            try:
                replies = await handle_update(self.app.core, incoming, retry=not self.raise_errors,
                                              log_prefix=self.name,
                                              delivery=self.delivery(update, incoming))
            finally:
                await self.prepared(update)
                if not (replies and self.acknowledge_concurrently):
                    await self.acknowledge(update, toast=tap_toast(incoming, replies))
            if not replies:
                # Nothing new, or a redelivery whose replies someone else is still sending:
                # marking it sent here could lose those replies.
                return
            answering = None
            if self.acknowledge_concurrently:
                toast = tap_toast(incoming, replies)
                answering = asyncio.ensure_future(self.acknowledge(update, toast=toast))
            try:
                try:
                    await self.send_replies(incoming, replies)
                finally:
                    if answering is not None:
                        await self._answered_beside(answering)
            except self.delivery_errors:
                if self.raise_errors:  # webhook: the platform delivers it again
                    await self.app.core.release_replies(incoming)
                    raise
                # Polling confirmed the update already: the notice relay sends them later.
                await self.app.core.defer_replies(incoming, replies)
                return
            await self.app.core.mark_sent(incoming)

    async def _answered_beside(self, answering: asyncio.Future[None]) -> None:
        """Wait for the button's answer sent beside the replies. Its failure is logged, never
        raised: the replies may be out already, and failing here would skip their sent mark and
        send them all again on the redelivery."""
        try:
            await answering
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log.warning(f"{self.name}.acknowledge_failed", error=type(exc).__name__)

    async def send_replies(self, incoming: Incoming, replies: list[Reply]) -> None:
        """Send the core's replies for `incoming`, in order; replies addressed to another channel
        are skipped, and only the first `edit` reply may replace the message its button was on.
        Raises one of `delivery_errors` when the platform stays unavailable."""
        edit_ref = incoming.message_ref
        for reply in replies:
            if reply.to is not None and reply.to.channel != self.name:
                # The core relays these through the notices table; an outbox stored before it did.
                self.log.warning(f"{self.name}.reply_for_other_channel_skipped",
                                 to_channel=reply.to.channel)
                continue
            edit = None
            if (reply.edit or reply.toast) and reply.to is None:
                edit, edit_ref = edit_ref, None
            if reply.forget and reply.to is None and incoming.message_id is not None:
                await self.forget_message(incoming.chat_id, incoming.message_id)
            chat_id = reply.to.chat_id if reply.to is not None else incoming.chat_id
            await self.send_addressed(chat_id, reply, edit=edit)
            if reply.attachment is not None:
                discard(reply.attachment.path)  # a temporary export, sent (or refused for good)

    async def send_addressed(self, chat_id: str, reply: Reply, *, edit: str | None = None) -> bool:
        """`send`, plus what a reply's `key` and `edit_ref` ask: record where a kept message
        landed; replace a recorded one (sending nothing where the platform cannot edit)."""
        if reply.edit_ref is not None:
            return await self.send(chat_id, reply, edit=reply.edit_ref) if self.can_edit else True
        if reply.key is None:
            return await self.send(chat_id, reply, edit=edit)
        ref = await self.send_kept(chat_id, reply)
        if ref is not None:
            try:
                await self.app.channel_services.record_message(reply.key, self.name, chat_id, ref)
            except DatabaseUnavailable as exc:  # the copy simply stays as it is later
                self.log.warning(f"{self.name}.message_not_recorded", key=reply.key, error=str(exc)[:200])
        return True

    # -- notices from other channels' updates -----------------------------------------------------

    async def send_notice(self, address: Address, reply: Reply) -> None:
        """The notice relay's `send`: NoticeRefused when the platform refuses it for good, one of
        `delivery_errors` when it stays unavailable (retried later)."""
        reply = await self.app.channel_services.offer_notice(self.name, address.chat_id, reply)
        sent = await self.send_addressed(address.chat_id, reply)
        if reply.attachment is not None:
            discard(reply.attachment.path)
        if not sent:
            raise NoticeRefused(f"{self.name}: the platform refused the notice")

    def start_relay(self) -> None:
        """Start sending the pending notices for this channel's chats (a no-op while it runs)."""
        if self._relay is None:
            self._relay = NoticeRelay(self.app.channel_services, self.name, self.send_notice,
                                      interval=self.notice_interval, pacer=pacer_for(self.name))
        self._relay.start()

    async def _start_relay_on_startup(self, application: web.Application) -> None:
        self.start_relay()

    # -- polling ----------------------------------------------------------------------------------

    async def start_polling(self, *, stop: asyncio.Event, poll_timeout: int | None = None) -> None:
        """Poll until `stop` is set, after `prepare_polling`. Failures to poll are logged and
        backed off (`poll_backoff`, doubling, or a 429's retry-after); the back-off starts
        small again once a poll succeeds."""
        self.raise_errors = False
        await self.prepare_polling()
        self.start_relay()
        stopping = asyncio.create_task(stop.wait())
        delay: float | None = None
        try:
            while not stop.is_set():
                poll = asyncio.create_task(self.get_updates(poll_timeout or self.poll_timeout))
                await asyncio.wait({poll, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not poll.done():
                    poll.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await poll
                    break
                try:
                    updates = poll.result()
                except self.poll_errors as exc:
                    first, longest = self.poll_backoff
                    delay = first if delay is None else min(delay * 2, longest)
                    wait = max(delay, float(getattr(exc, "retry_after", None) or 0))
                    level = self.log.error if isinstance(exc, self.unauthorized) else self.log.warning
                    level(f"{self.name}.polling_failed", error=type(exc).__name__,
                          detail=self.scrub(str(exc)), retry_in=wait)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(stopping), wait)
                    continue
                if delay is not None:
                    self.log.info(f"{self.name}.polling_recovered")
                    delay = None
                batch = [await self._spawn(update) for update in updates]
                if self.poll_confirms_batch and batch:
                    await asyncio.wait(batch)
            await self.finish_polling()
        finally:
            stopping.cancel()
            await self.drain()

    async def _spawn(self, update: U) -> asyncio.Task[None]:
        await self._slots.acquire()
        task = asyncio.create_task(self.feed(update), name=f"gocua.{self.name}.update")
        self._spawned.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._spawned.discard(finished)
            self._slots.release()

        task.add_done_callback(done)
        return task

    # -- HTTP: webhook, health, metrics -----------------------------------------------------------

    def http_app(self) -> web.Application:
        """GET /healthz, GET /metrics and the adapter's `routes`."""
        application = web.Application()
        application.router.add_get("/healthz", self.healthz)
        application.router.add_get("/metrics", self.app.metrics_handler())
        self.routes(application.router)
        return application

    def webhook_app(self, path: str, *, secret: str) -> web.Application:
        """`http_app()` plus POST `path`: updates carrying the secret header. The notice relay
        starts with the server (and stops in `close`)."""
        self.raise_errors = True
        application = self.http_app()
        application.router.add_post(path, functools.partial(self._webhook, secret.encode("utf-8")))
        application.on_startup.append(self._start_relay_on_startup)
        return application

    async def _webhook(self, secret: bytes, request: web.Request) -> web.Response:
        """401 for a wrong secret; 200 for an update handled, ignored or malformed (the platform
        would only deliver those again); 500 when it could not be handled now (delivered again,
        the outbox resends what is owed). Updates go straight to `feed`."""
        if not secret_matches(request, self.secret_header, secret):
            self.log.warning(f"{self.name}.webhook_bad_secret", remote=request.remote,
                             missing=not secret_given(request, self.secret_header))
            return web.Response(status=401, text="unauthorized")
        try:
            update = self.webhook_update(await request.json())
        except ValueError as exc:  # not JSON, not UTF-8, not an update (pydantic's ValidationError)
            self.log.warning(f"{self.name}.update_malformed", error=type(exc).__name__,
                             size=request.content_length)
            return web.json_response(self.webhook_answer)
        if update is None:
            self.log.warning(f"{self.name}.update_malformed", size=request.content_length)
            return web.json_response(self.webhook_answer)
        unavailable: tuple[type[Exception], ...] = (DatabaseUnavailable, *self.delivery_errors)
        try:
            await self.feed(update)
        except RepliesInFlight:
            # Another sender holds the replies' lease; the core logged it in one line.
            return web.Response(status=500, text="in progress, retry later")
        except unavailable as exc:
            self.log.error(f"{self.name}.webhook_failed", error=type(exc).__name__,
                           detail=self.scrub(str(exc)))
            return web.Response(status=500, text="temporarily unavailable, retry later")
        return web.json_response(self.webhook_answer)

    async def healthz(self, request: web.Request) -> web.Response:
        if not await self.app.channel_services.healthy(HEALTH_TIMEOUT):
            self.log.warning(f"{self.name}.health_failed")
            return web.Response(status=503, text="database unavailable")
        return web.Response(text="ok")

    # -- serving and shutdown ---------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event, webhook: tuple[str, str, str] | None, *, host: str,
                    port: int, worker_index: int | None = None) -> None:
        """Serve until `stop`: the webhook (url, path, secret) on host:port, else long polling
        (with the HTTP server when `serves_http_when_polling`). Of several workers sharing the
        port (`worker_index`), only worker 0 registers the webhook."""
        if webhook is not None:
            url, path, secret = webhook
            async with serving(self.webhook_app(path, secret=secret), host, port,
                               reuse_port=worker_index is not None):
                if worker_index in (None, 0):
                    await self.register_webhook(url, secret)
                self.log.info(f"{self.name}.webhook", url=self.scrub(url), host=host, port=port,
                              worker=worker_index)
                await stop.wait()
        elif self.serves_http_when_polling:
            async with serving(self.http_app(), host, port):
                self.log.info(f"{self.name}.polling", http=f"{host}:{port}")
                await self.start_polling(stop=stop)
        else:
            self.log.info(f"{self.name}.polling")
            await self.start_polling(stop=stop)

    async def drain(self, grace: float = DRAIN_GRACE) -> None:
        """Wait up to `grace` seconds for updates being handled (their replies are still sent)."""
        current = asyncio.current_task()
        pending = {t for t in self._inflight | self._spawned if t is not current and not t.done()}
        if pending:
            await asyncio.wait(pending, timeout=grace)

    async def close(self) -> None:
        if self._relay is not None:
            await self._relay.stop()
        await self.drain()
        await self.close_client()


def tap_toast(incoming: Incoming, replies: list[Reply]) -> str | None:
    """The toast a tap is answered with: the text of its first `toast` reply, if any."""
    if not incoming.tapped:
        return None
    return next((r.text for r in replies if r.toast and r.to is None and r.text.strip()), None)


@contextlib.asynccontextmanager
async def serving(application: web.Application, host: str, port: int, *,
                  reuse_port: bool = False) -> AsyncIterator[None]:
    runner = web.AppRunner(application, access_log=None, shutdown_timeout=30.0)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        yield
    finally:
        await runner.cleanup()


def webhook_settings(settings: Settings, webhook_url: str | None,
                     channel: type[Channel[Any]]) -> tuple[str, str, str] | None:
    """(url, path, secret) of webhook mode, checked; None without a webhook URL."""
    if webhook_url is None:
        return None
    url = validate_http_url("--webhook-url", webhook_url, require_path=True)
    path = urlsplit(url).path
    if path in SERVER_PATHS or any(path.startswith(prefix) for prefix in channel.reserved_paths):
        raise ConfigError(f"--webhook-url must not use the path {path} (the bot serves it itself; "
                          f"use e.g. /{channel.name})")
    if not settings.webhook_secret:
        raise ConfigError("GOCUA_WEBHOOK_SECRET is not set; webhook mode needs it so that only "
                          f"{channel.title} can post updates (8-256 letters, digits, '_' or '-')")
    if urlsplit(url).scheme != "https":
        structlog.get_logger(f"gocua.{channel.name}").warning(
            f"{channel.name}.webhook_not_https", hint=f"{channel.title} delivers webhooks only to https URLs")
    return url, path, settings.webhook_secret


async def run_channel(
    settings: Settings,
    make: Callable[[App], Channel[Any]],
    *,
    connect: Callable[[], Awaitable[None]],
    close_client: Callable[[], Awaitable[None]],
    webhook: tuple[str, str, str] | None = None,
    host: str = "0.0.0.0",
    port: int = 8080,
    stop: asyncio.Event | None = None,
    app: App | None = None,
    worker_index: int | None = None,
) -> None:
    """`gocua run <channel>`: serve until `stop` is set (or SIGINT/SIGTERM when no event is
    given). `connect()` checks the token first (a ConfigError before the database is touched);
    `make(app)` builds the channel; `close_client()` runs at the very end.

    `app` lets a caller share its App (it is then not closed here); otherwise one is opened
    (and the database migrated). `worker_index` (webhook mode, bot/workers.py): one of several
    workers sharing host:port with SO_REUSEPORT; the group's parent has migrated the database.
    """
    own_app = app is None
    stop_event = stop or asyncio.Event()
    signals = install_signal_handlers(stop_event) if stop is None else []
    try:
        await connect()
        if app is None:
            app = await open_app(settings, migrate=worker_index is None, build_faq=True)
        channel = make(app)
        housekeeper = app.housekeeper().start()
        # Follow-ups due (reminders, escalations, digests, announcements), every minute.
        scheduler = Scheduler(app.db, app.core.services.clock, app.core.services.flows).start()
        try:
            await channel.serve(stop_event, webhook, host=host, port=port, worker_index=worker_index)
        finally:
            await scheduler.stop()
            await housekeeper.stop()
            await channel.close()
    finally:
        await close_client()
        if own_app and app is not None:
            await app.close()
        for sig in signals:
            asyncio.get_running_loop().remove_signal_handler(sig)
