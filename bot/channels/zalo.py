"""The Zalo channel (Zalo Bot Platform): long polling by default, or webhooks behind HTTPS.

The adapter is thin, like the Telegram one: a Zalo update becomes an `Incoming`, the core
decides, the replies are sent, then the core is told they were sent. Zalo has no buttons, so a
reply's buttons become numbered lines ("1. Tiếng Việt") that the core maps back from the number
or the label (handlers/options.py); texts over Zalo's 2,000 characters are split at line ends.
Zalo takes photos only by URL and cannot receive a file: when a public base URL is configured,
a chart is stored in the database (shared_files, so any worker can serve it) and sent as a
photo from `{GOCUA_PUBLIC_BASE_URL}/files/<random>.png`, and an export is stored the same way
and offered as a download link `{GOCUA_PUBLIC_BASE_URL}/files/<random>/<file name>`; both
are served for a day, under 128 random bits. Without one, the text says where to see the chart
or get the file.
What GoCua assumes about Zalo itself is all in bot/channels/zalo_api.py.

Public API:

- `ZaloChannel(app, api, *, public_base_url=None, ...)`:
  `feed(update)`, `send_replies(incoming, replies)`, `start_polling(stop=)`,
  `webhook_app(path, secret=)`, `files_app()`, `healthz(request)`, `drain()`, `close()`;
  `send_notice(address, reply)` and `start_relay()`: notices that updates on another channel
  addressed to Zalo chats (bot/channels/notice_relay.py), sent while the channel serves.
- `run_zalo(settings, *, webhook_url=None, host=, port=, stop=None, app=None, ...)`: the
  `gocua run zalo` command.
- Pure helpers: `incoming_from_update`, `render_text`, `split_message`, `guess_locale`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from sqlalchemy import text as sql_text
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.app import App, open_app
from bot.channels.chat_locks import ChatLocks
from bot.channels.core_calls import handle_update
from bot.channels.notice_relay import INTERVAL as NOTICE_INTERVAL
from bot.channels.notice_relay import NoticeRefused, NoticeRelay
from bot.channels.signals import install_signal_handlers
from bot.channels.webhook_auth import secret_given, secret_matches
from bot.channels.zalo_api import (
    CHANNEL,
    MAX_TEXT,
    POLL_TIMEOUT,
    SECRET_HEADER,
    ZaloAPI,
    ZaloError,
    ZaloUnauthorized,
    ZaloUnavailable,
    parse_update,
    webhook_update,
)
from bot.config import ConfigError, Settings, validate_http_url
from bot.housekeeping import Housekeeper
from bot.metrics import metrics_for
from db.engine import Database
from db.repo.files import get_file, put_file
from handlers.i18n import N_, translator
from handlers.pipeline import DatabaseUnavailable, RepliesInFlight
from handlers.types import Address, Attachment, Incoming, Reply

log = structlog.get_logger("gocua.zalo")

T = TypeVar("T")

PUBLIC_BASE_ENV = "GOCUA_PUBLIC_BASE_URL"
FILE_MAX_AGE = 24 * 3600.0  # seconds a chart stays downloadable
FILE_NAME = re.compile(r"^[0-9a-f]{32}\.(png|xlsx|csv)$")
DOWNLOAD_NAME = re.compile(r"^[\w.\-]{1,120}\.(xlsx|csv)$", re.ASCII)  # the name a browser saves
TOKEN = re.compile(r"^[0-9a-f]{32}$")
MEDIA_TYPES = {
    "png": "image/png",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
}
STORED_TYPE_MAX = 40  # characters shared_files.media_type holds; the served type comes from the suffix
POLL_BACKOFF = (1.0, 30.0)  # first and longest wait after a failed getUpdates
MAX_INFLIGHT = 64  # updates handled at once in polling mode (different chats run in parallel)
HEALTH_TIMEOUT = 5.0
DRAIN_GRACE = 30.0

CHART_NOTE = N_("📊 Zalo cannot show this chart here: open GoCua on Telegram to see it, or ask an "
                "administrator for the figures (command: gocua export).")
FILE_NOTE = N_("📎 Zalo cannot receive this file: open GoCua on Telegram to download it, or ask an "
               "administrator to run the command gocua export.")
DOWNLOAD_NOTE = N_("📎 Download the file (the link works for 24 hours; do not share it): {url}")


# -- pure: update → Incoming, Reply → texts ---------------------------------------------------

def incoming_from_update(update: Mapping[str, Any]) -> Incoming | None:
    """The core's view of a private message; None for what the bot does not serve.

    Images, stickers and unsupported messages become an Incoming with neither text nor payload
    (the core answers that it reads only text).
    """
    message = parse_update(update)
    if message is None:
        return None
    return Incoming(
        channel=CHANNEL,
        chat_id=message.chat_id,
        sender_id=message.sender_id,
        display_name=message.display_name,
        update_id=message.update_key,
        text=message.text,
        extra={"event": message.event, "message_id": message.message_id},
    )


def render_text(reply: Reply, note: str | None = None) -> str:
    """The reply's text, an optional note, then its buttons as numbered lines after a blank line."""
    blocks = [reply.text.strip("\n")] if reply.text.strip() else []
    if note:
        blocks.append(note)
    if reply.buttons:
        blocks.append("\n".join(f"{i}. {button.label}" for i, button in enumerate(reply.buttons, start=1)))
    return "\n\n".join(blocks)


def split_message(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Parts of at most `limit` characters, in order, cut at line ends; a longer line is cut at
    its last space that fits, else hard. Blank parts are dropped."""
    if len(text) <= limit:
        return [text] if text.strip() else []
    parts: list[str] = []
    current: str | None = None
    for line in text.split("\n"):
        for piece in _split_line(line, limit):
            if current is not None and len(current) + 1 + len(piece) <= limit:
                current += "\n" + piece
                continue
            if current is not None:
                parts.append(current)
            current = piece
    if current is not None:
        parts.append(current)
    return [part.strip("\n") for part in parts if part.strip()]


def _split_line(line: str, limit: int) -> list[str]:
    pieces: list[str] = []
    while len(line) > limit:
        cut = line.rfind(" ", 0, limit + 1)
        if cut <= 0:
            pieces.append(line[:limit])
            line = line[limit:]
        else:
            pieces.append(line[:cut])
            line = line[cut + 1:]
    pieces.append(line)
    return pieces


_WORD = re.compile(r"[^\W\d_]+")


def guess_locale(text: str, default: str = "vi") -> str:
    """The language a reply was written in, for a note added to it: the core translated the
    text but a Reply does not carry its locale. Vietnamese writes most lower-case words with
    diacritics; English none (capitalised words are skipped: place names keep their marks in
    English texts). Too little text to tell: `default`."""
    words = [w for w in _WORD.findall(text) if w[0].islower()]
    if len(words) < 2:
        return default
    marked = sum(1 for w in words if not w.isascii())
    return "vi" if marked / len(words) >= 0.15 else "en"


# -- photos served by URL ----------------------------------------------------------------------

class FileStore:
    """Files served for `max_age` seconds: charts at `{public_base}/files/<32 hex>.png`, exports at
    `{public_base}/files/<32 hex>/<file name>` (the name is the one a browser saves; the random
    part alone finds the file). They are kept in the database (shared_files), so that whichever
    worker, on whichever machine, a fetch reaches can serve them; the bots' housekeeping deletes
    them when they expire."""

    def __init__(self, db: Database, public_base: str, clock: Callable[[], datetime],
                 max_age: float = FILE_MAX_AGE) -> None:
        self.db = db
        self.public_base = public_base.rstrip("/")
        self.clock = clock
        self.max_age = max_age

    async def _put(self, data: bytes, suffix: str) -> str:
        """Store `data` under a new random name with `suffix`; returns the random part."""
        token, now = secrets.token_hex(16), self.clock()
        media_type = MEDIA_TYPES[suffix]
        stored_type = media_type if len(media_type) <= STORED_TYPE_MAX else "application/octet-stream"
        async with self.db.transaction() as session:
            await put_file(session, f"{token}.{suffix}", data, stored_type, now,
                           now + timedelta(seconds=self.max_age))
        return token

    async def put_png(self, data: bytes) -> str:
        """Store a chart; returns its public URL."""
        return f"{self.public_base}/files/{await self._put(data, 'png')}.png"

    async def put_document(self, data: bytes, filename: str) -> str:
        """Store an export (`filename` ends in .xlsx or .csv); returns its download URL."""
        suffix = filename.rpartition(".")[2].lower()
        if suffix not in ("xlsx", "csv"):
            raise ValueError(f"not an export file: {filename!r}")
        shown = filename if DOWNLOAD_NAME.match(filename) else f"gocua.{suffix}"
        return f"{self.public_base}/files/{await self._put(data, suffix)}/{shown}"

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """GET /files/<32 hex>.png (a chart) or /files/<32 hex>/<name>.xlsx|.csv (an export)."""
        token, download = request.match_info.get("name", ""), request.match_info.get("download")
        if download is None:
            name = token
        elif TOKEN.match(token) and DOWNLOAD_NAME.match(download):
            name = f"{token}.{download.rpartition('.')[2]}"
        else:
            raise web.HTTPNotFound()
        if not FILE_NAME.match(name) or (download is None and not name.endswith(".png")):
            raise web.HTTPNotFound()
        async with self.db.read_session() as session:
            found = await get_file(session, name, self.clock())
        if found is None:
            raise web.HTTPNotFound()
        content = found[0]
        headers = {"Content-Type": MEDIA_TYPES[name.rpartition(".")[2]]}
        if download is None:
            headers["Cache-Control"] = "public, max-age=86400"
        else:  # an export holds personal data: no shared cache keeps it
            headers["Cache-Control"] = "private, no-store"
            headers["Content-Disposition"] = f'attachment; filename="{download}"'
        return web.Response(body=content, headers=headers)


# -- the channel --------------------------------------------------------------------------------

class ZaloChannel:
    """Feeds Zalo updates to the core and renders its replies."""

    def __init__(self, app: App, api: ZaloAPI, *, public_base_url: str | None = None,
                 locale: str | None = None,
                 poll_backoff: tuple[float, float] = POLL_BACKOFF, max_inflight: int = MAX_INFLIGHT,
                 notice_interval: float = NOTICE_INTERVAL) -> None:
        self.app = app
        self.api = api
        self.notice_interval = notice_interval
        self._relay: NoticeRelay | None = None
        self.files = (FileStore(app.db, public_base_url, app.core.services.clock)
                      if public_base_url else None)
        settings = getattr(app, "settings", None)
        self.locale = locale or getattr(settings, "locale", None) or "vi"
        self.poll_backoff = poll_backoff
        self.locks = ChatLocks()
        # Polling cannot get an update again, so errors are logged there; in webhook mode they
        # propagate and become HTTP 500, and Zalo delivers again.
        self.raise_errors = True
        self._inflight: set[asyncio.Task[Any]] = set()
        self._spawned: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max_inflight)

    # -- one update -----------------------------------------------------------------------------

    async def feed(self, update: Mapping[str, Any]) -> None:
        """Handle one update: core, replies, mark sent. What the bot does not serve is ignored."""
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            await self._feed(update)
        except Exception as exc:
            if self.raise_errors:
                raise
            expected = isinstance(exc, (DatabaseUnavailable, ZaloUnavailable, ZaloUnauthorized,
                                        RepliesInFlight))
            log.error("zalo.update_failed", error=type(exc).__name__,
                      detail=self.api.scrub(str(exc)), exc_info=not expected)
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def _feed(self, update: Mapping[str, Any]) -> None:
        incoming = incoming_from_update(update)
        if incoming is None:
            # Not for the bot (a group, another event, ids no column can hold): answered, once.
            log.info("zalo.update_ignored", event_name=str(update.get("event_name"))[:60])
            return
        async with self.locks.hold(incoming.chat_id):
            replies = await self._handle(incoming)
            if not replies:
                # Nothing new, or a redelivery whose replies someone else is still sending.
                return
            try:
                await self.send_replies(incoming, replies)
            except (ZaloUnavailable, ZaloUnauthorized):
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

    # -- sending --------------------------------------------------------------------------------

    async def send_replies(self, incoming: Incoming, replies: list[Reply]) -> None:
        """Send the core's replies for `incoming`, in order. Replies addressed to another channel
        are skipped; `edit` is ignored (Zalo cannot edit). Raises ZaloUnavailable if Zalo
        stays down."""
        for reply in replies:
            if reply.to is not None and reply.to.channel != CHANNEL:
                # The core relays these through the notices table; an outbox stored before it did.
                log.warning("zalo.reply_for_other_channel_skipped", to_channel=reply.to.channel)
                continue
            chat_id = reply.to.chat_id if reply.to is not None else incoming.chat_id
            await self.send_reply(chat_id, reply)

    async def send_reply(self, chat_id: str, reply: Reply) -> bool:
        """One reply: the chart as a photo when it can be served, then the text with its numbered
        options (and a note where a chart or a file could not be sent), in parts of at most
        2,000 characters. False when Zalo refused a part of the text for good (logged)."""
        note: str | None = None
        attachment = reply.attachment
        if attachment is not None:
            is_photo = attachment.kind == "photo"
            if is_photo and self.files is not None:
                if not await self._send_photo(chat_id, attachment.data):
                    note = self._note(reply, CHART_NOTE)
            elif attachment.kind == "document" and self.files is not None:
                url = await self._store_document(attachment)
                note = self._note(reply, FILE_NOTE if url is None else DOWNLOAD_NOTE, url=url)
            else:
                if not is_photo and attachment.kind != "document":
                    log.warning("zalo.unknown_attachment_kind", kind=attachment.kind)
                note = self._note(reply, CHART_NOTE if is_photo else FILE_NOTE)
        parts = split_message(render_text(reply, note))
        if not parts and attachment is None:
            log.warning("zalo.empty_reply_skipped")
        delivered = True
        for part in parts:
            delivered = await self._send(self.api.send_message(chat_id, part)) and delivered
        return delivered

    async def send_notice(self, address: Address, reply: Reply) -> None:
        """One notice for a Zalo chat from another channel's update (the relay's `send`).
        Raises NoticeRefused when Zalo refuses it for good and ZaloUnavailable (retried later)
        when Zalo stays unavailable."""
        if not await self.send_reply(address.chat_id, reply):
            raise NoticeRefused("sendMessage refused")

    def start_relay(self) -> None:
        """Start sending the pending notices for Zalo chats (a no-op while it runs)."""
        if self._relay is None:
            self._relay = NoticeRelay(self.app.db, CHANNEL, self.send_notice,
                                      self.app.core.services.clock, interval=self.notice_interval)
        self._relay.start()

    async def _start_relay_on_startup(self, application: web.Application) -> None:
        self.start_relay()

    async def _send_photo(self, chat_id: str, png: bytes) -> bool:
        """The chart as a photo Zalo fetches from our URL; False if it could not be (the text
        then says where to see it)."""
        assert self.files is not None
        try:
            url = await self.files.put_png(png)
        except (OperationalError, DBAPIError, OSError) as exc:
            log.error("zalo.file_store_failed", error=str(exc)[:200])
            return False
        return await self._send(self.api.send_photo(chat_id, url))

    async def _store_document(self, attachment: Attachment) -> str | None:
        """The export's download URL; None if it could not be stored (the text then says where
        to get it)."""
        assert self.files is not None
        try:
            return await self.files.put_document(attachment.data, attachment.filename)
        except (OperationalError, DBAPIError, OSError, ValueError) as exc:
            log.error("zalo.file_store_failed", error=str(exc)[:200])
            return None

    def _note(self, reply: Reply, msgid: str, **values: Any) -> str:
        locale = getattr(reply, "locale", None) or guess_locale(reply.text, self.locale)
        return translator(locale)(msgid, **{k: v for k, v in values.items() if v is not None})

    async def _send(self, call: Awaitable[Any]) -> bool:
        """One API call (the client retries); False when Zalo refused it for good (logged)."""
        try:
            await call
        except (ZaloUnavailable, ZaloUnauthorized):
            raise
        except ZaloError as exc:  # a bad request, a chat that is gone …
            log.error("zalo.send_refused", method=exc.method, code=exc.code, error=exc.description)
            return False
        return True

    # -- polling --------------------------------------------------------------------------------

    async def start_polling(self, *, stop: asyncio.Event, poll_timeout: int = POLL_TIMEOUT) -> None:
        """Delete any webhook, then getUpdates until `stop` is set. Failures are logged and backed
        off (1 s, doubling, up to 30 s); the back-off resets once a poll succeeds."""
        self.raise_errors = False
        await startup_call(self.api.delete_webhook())
        self.start_relay()
        stopping = asyncio.create_task(stop.wait())
        delay: float | None = None
        try:
            while not stop.is_set():
                poll = asyncio.create_task(self.api.get_updates(timeout=poll_timeout))
                await asyncio.wait({poll, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not poll.done():
                    poll.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await poll
                    break
                try:
                    updates = poll.result()
                except ZaloError as exc:
                    delay = self.poll_backoff[0] if delay is None else min(delay * 2, self.poll_backoff[1])
                    wait = max(delay, getattr(exc, "retry_after", None) or 0.0)
                    level = log.error if isinstance(exc, ZaloUnauthorized) else log.warning
                    level("zalo.polling_failed", error=type(exc).__name__, detail=str(exc), retry_in=wait)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(stopping), wait)
                    continue
                if delay is not None:
                    log.info("zalo.polling_recovered")
                    delay = None
                for update in updates:
                    await self._spawn(update)
        finally:
            stopping.cancel()
            await self.drain()

    async def _spawn(self, update: Mapping[str, Any]) -> None:
        await self._slots.acquire()
        task = asyncio.create_task(self.feed(update), name="gocua.zalo.update")
        self._spawned.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._spawned.discard(finished)
            self._slots.release()

        task.add_done_callback(done)

    # -- HTTP: webhook, health, files ------------------------------------------------------------

    def files_app(self) -> web.Application:
        """GET /healthz, GET /metrics and, when a public base URL is set, GET /files/… (charts, exports)."""
        application = web.Application()
        application.router.add_get("/healthz", self.healthz)
        application.router.add_get("/metrics", metrics_for(self.app.db))
        if self.files is not None:
            application.router.add_get("/files/{name}", self.files.serve)
            application.router.add_get("/files/{name}/{download}", self.files.serve)
        return application

    def webhook_app(self, path: str, *, secret: str) -> web.Application:
        """`files_app()` plus POST `path`: updates carrying the secret header."""
        self.raise_errors = True
        application = self.files_app()
        application.router.add_post(path, functools.partial(self._webhook, secret.encode("utf-8")))
        application.on_startup.append(self._start_relay_on_startup)  # stopped by close()
        return application

    async def _webhook(self, secret: bytes, request: web.Request) -> web.Response:
        """401 for a wrong secret; 200 for an update handled, ignored or malformed (Zalo would
        only deliver those again); 500 when it could not be handled now (delivered again)."""
        if not secret_matches(request, SECRET_HEADER, secret):
            log.warning("zalo.webhook_bad_secret", remote=request.remote,
                        missing=not secret_given(request, SECRET_HEADER))
            return web.Response(status=401, text="unauthorized")
        try:
            update = webhook_update(await request.json())
        except ValueError:  # not JSON, not UTF-8
            update = None
        if update is None:
            log.warning("zalo.update_malformed", size=request.content_length)
            return web.json_response({"ok": True})
        try:
            await self.feed(update)
        except RepliesInFlight:
            # Another sender holds the replies' lease; the core logged it in one line.
            return web.Response(status=500, text="in progress, retry later")
        except (DatabaseUnavailable, ZaloUnavailable, ZaloUnauthorized) as exc:
            # Not processed (or not all sent): Zalo delivers again, the outbox resends what is owed.
            log.error("zalo.webhook_failed", error=type(exc).__name__, detail=self.api.scrub(str(exc)))
            return web.Response(status=500, text="temporarily unavailable, retry later")
        return web.json_response({"ok": True})

    async def healthz(self, request: web.Request) -> web.Response:
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT), self.app.db.transaction() as session:
                await session.execute(sql_text("SELECT 1"))
        except Exception as exc:
            log.warning("zalo.health_failed", error=type(exc).__name__)
            return web.Response(status=503, text="database unavailable")
        return web.Response(text="ok")

    # -- shutdown -------------------------------------------------------------------------------

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


# -- start-up and the command ---------------------------------------------------------------

async def startup_call(call: Awaitable[T]) -> T:
    """A call the bot cannot start without: failures become one-line ConfigErrors."""
    try:
        return await call
    except ZaloUnauthorized:
        raise ConfigError("Zalo rejected ZALO_BOT_TOKEN (401 Unauthorized); check the bot's token "
                          "in Zalo Bot Manager") from None
    except ZaloError as exc:
        reason = exc.description.strip().splitlines()[0] if exc.description.strip() else str(exc.code)
        raise ConfigError(f"cannot use the Zalo Bot API ({exc.method}): {reason} "
                          "(check ZALO_API_BASE and the network)") from None


async def check_token(api: ZaloAPI) -> None:
    """getMe: the token is accepted and the API reachable."""
    me = await startup_call(api.get_me())
    log.info("zalo.bot", **{k: me[k] for k in ("id", "account_name", "display_name") if k in me})


def zalo_token(settings: Settings) -> str:
    token = settings.zalo_bot_token
    if not token:
        raise ConfigError("ZALO_BOT_TOKEN is not set (create a bot in Zalo Bot Manager and export "
                          "its token: ZALO_BOT_TOKEN=<digits>:<secret>)")
    if any(ch.isspace() or ch in "/?#%" for ch in token):
        raise ConfigError("ZALO_BOT_TOKEN is malformed (expected digits, a colon and a secret, "
                          "without spaces or slashes)")
    return token


def resolve_public_base_url(settings: Settings, explicit: str | None = None) -> str | None:
    """The public base URL: given explicitly, else the GOCUA_PUBLIC_BASE_URL setting."""
    raw = explicit or settings.public_base_url or ""
    raw = raw.strip()
    if not raw:
        return None
    url = validate_http_url(PUBLIC_BASE_ENV, raw)
    if urlsplit(url).scheme != "https":
        log.warning("zalo.public_url_not_https", url=url)
    return url


def webhook_settings(settings: Settings, webhook_url: str) -> tuple[str, str, str]:
    url = validate_http_url("--webhook-url", webhook_url, require_path=True)
    path = urlsplit(url).path
    if path in ("/healthz", "/metrics") or path.startswith("/files/"):
        raise ConfigError(f"--webhook-url must not use the path {path} (the bot serves it itself)")
    if not settings.webhook_secret:
        raise ConfigError("GOCUA_WEBHOOK_SECRET is not set; webhook mode needs it so that only "
                          "Zalo can post updates (8-256 letters, digits, '_' or '-')")
    if urlsplit(url).scheme != "https":
        log.warning("zalo.webhook_not_https", hint="Zalo delivers webhooks only to https URLs")
    return url, path, settings.webhook_secret


async def run_zalo(
    settings: Settings,
    *,
    webhook_url: str | None = None,
    host: str = "0.0.0.0",
    port: int = 8080,
    stop: asyncio.Event | None = None,
    app: App | None = None,
    public_url: str | None = None,
    worker_index: int | None = None,
) -> None:
    """Run the Zalo bot until `stop` is set (or SIGINT/SIGTERM when no event is given).

    Polling by default (after deleteWebhook); with `webhook_url`, serves its path on host:port
    and registers it with setWebhook and GOCUA_WEBHOOK_SECRET. With a public base URL
    (`public_url` or GOCUA_PUBLIC_BASE_URL) charts are sent as photos, served at /files/ on
    host:port (in polling mode too). `app` lets a caller share its App (it is then not
    closed here); otherwise one is opened (and the database migrated) and disposed at the end.
    `worker_index` (webhook mode, bot/workers.py): one of several workers sharing host:port with
    SO_REUSEPORT; the group's parent has migrated the database and only worker 0 registers the
    webhook.
    """
    token = zalo_token(settings)
    public = resolve_public_base_url(settings, public_url)
    webhook = webhook_settings(settings, webhook_url) if webhook_url is not None else None
    api = ZaloAPI(token, settings.zalo_api_base)
    own_app = app is None
    stop_event = stop or asyncio.Event()
    signals = install_signal_handlers(stop_event) if stop is None else []
    try:
        await check_token(api)
        if app is None:
            app = await open_app(settings, migrate=worker_index is None)
        channel = ZaloChannel(app, api, public_base_url=public)
        housekeeper = Housekeeper(app.db, app.core.services.clock).start()
        try:
            if webhook is not None:
                url, path, secret = webhook
                async with _serving(channel.webhook_app(path, secret=secret), host, port,
                                    reuse_port=worker_index is not None):
                    if worker_index in (None, 0):
                        await startup_call(api.set_webhook(url, secret))
                    log.info("zalo.webhook", url=api.scrub(url), host=host, port=port,
                             photos=bool(public), worker=worker_index)
                    await stop_event.wait()
            elif public is not None:
                async with _serving(channel.files_app(), host, port):
                    log.info("zalo.polling", api=settings.zalo_api_base, files=f"{host}:{port}")
                    await channel.start_polling(stop=stop_event)
            else:
                log.info("zalo.polling", api=settings.zalo_api_base, photos=False)
                await channel.start_polling(stop=stop_event)
        finally:
            await housekeeper.stop()
            await channel.close()
    finally:
        await api.close()
        if own_app and app is not None:
            await app.close()
        for sig in signals:
            asyncio.get_running_loop().remove_signal_handler(sig)


@contextlib.asynccontextmanager
async def _serving(application: web.Application, host: str, port: int, *,
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
