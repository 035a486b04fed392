"""The Zalo channel (Zalo Bot Platform): long polling by default, or webhooks behind HTTPS.

Only what is Zalo's is here; the outbox protocol, polling, the webhook server, health, metrics
and the notice relay are bot/channels/runner.py's. A Zalo update becomes an `Incoming`, and a
reply becomes Zalo messages: Zalo has no buttons, so a
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

- `ZaloChannel(app, api, *, public_base_url=None, ...)`: a `runner.Channel` (`feed`,
  `start_polling(stop=)`, `webhook_app(path, secret=)`, `send_replies`, `send_notice`,
  `start_relay`, `close` …) plus `send_reply(chat_id, reply)`.
- `FileStore(services, public_base)` (bot/channels/file_store.py, shared with Telegram): charts
  and exports served by URL.
- `check_settings(settings, webhook_url)`, `run_zalo(settings, *, webhook_url=None, host=,
  port=, stop=None, app=None, public_url=None, worker_index=None)`: `gocua run zalo`.
- Pure helpers: `incoming_from_update`, `render_text`, `split_message`, `guess_locale`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Mapping
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import urlsplit

import structlog

from bot.app import App
from bot.channels.chat_locks import ChatLocks
from bot.channels.file_store import FILE_MAX_AGE, FileStore
from bot.channels.runner import Channel, run_channel, webhook_settings
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
from handlers.file_limits import ZALO as ZALO_LIMITS
from handlers.i18n import N_, translator
from handlers.pipeline import DatabaseUnavailable
from handlers.types import Attachment, Incoming, Reply

log = structlog.get_logger("gocua.zalo")

T = TypeVar("T")

PUBLIC_BASE_ENV = "GOCUA_PUBLIC_BASE_URL"
CHART_NOTE = N_("📊 Zalo cannot show this chart here: open GoCua on Telegram to see it, or ask an "
                "administrator for the figures (command: gocua export).")
FILE_NOTE = N_("📎 Zalo cannot receive this file: open GoCua on Telegram to download it, or ask an "
               "administrator to run the command gocua export.")
CONTINUED = N_("(continued)")
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
    )


def render_text(reply: Reply, note: str | None = None) -> str:
    """The reply's text (numbered content lines lettered, wording for a chat without buttons),
    an optional note, then its buttons as numbered lines after a blank line: on Zalo only the
    options are numbered, so that "1" is never both a step of a list and an option."""
    locale = guess_locale(reply.text)
    blocks = [zalo_wording(letter_content(reply.text.strip("\n")), locale)] if reply.text.strip() else []
    if note:
        blocks.append(note)
    if reply.buttons:
        blocks.append("\n".join(f"{i}. {zalo_label(button.label, locale)}"
                                for i, button in enumerate(reply.buttons, start=1)))
    return "\n\n".join(blocks)


# Numbered options in one Zalo message. The core shows at most 8 with "Thêm" for the rest
# (handlers/choices.py `paged`); a longer list (an outbox kept from before) goes on in the next
# message, its numbers continuing.
OPTIONS_PER_MESSAGE = 8


def render_parts(reply: Reply, note: str | None = None, continued: str = "(…)") -> list[str]:
    """The Zalo messages of a reply: its text and options (`render_text`) in parts of at most
    2,000 characters and OPTIONS_PER_MESSAGE options, the numbers going on from part to part
    and the heading (the text's first line) repeated at the top of every later part."""
    buttons = reply.buttons
    if len(buttons) <= OPTIONS_PER_MESSAGE:
        return split_with_heading(render_text(reply, note), continued)
    first = render_text(replace(reply, buttons=buttons[:OPTIONS_PER_MESSAGE]), note)
    parts = split_with_heading(first, continued)
    heading = reply.text.strip("\n").split("\n", 1)[0].strip()
    top = f"{heading} {continued}\n\n" if heading and len(heading) <= HEADING_MAX else ""
    locale = guess_locale(reply.text)
    for start in range(OPTIONS_PER_MESSAGE, len(buttons), OPTIONS_PER_MESSAGE):
        lines = [f"{i}. {zalo_label(b.label, locale)}"
                 for i, b in enumerate(buttons[start:start + OPTIONS_PER_MESSAGE], start=start + 1)]
        parts += split_message(top + "\n".join(lines))
    return parts


# A content line numbered like an option ("1. Mở ứng dụng VNeID", "2) …"): lettered instead.
_CONTENT_NUMBER = re.compile(r"^(\s*)(\d{1,2})[.)] +(?=\S)")
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def letter_content(text: str) -> str:
    """Numbered lines of a text become lettered ("1." → "a)", "2." → "b)"), their order kept;
    past "z)" a bullet. Only lines that start with a number and a dot or parenthesis."""
    def letter(match: re.Match[str]) -> str:
        n = int(match.group(2))
        mark = f"{LETTERS[n - 1]})" if 1 <= n <= len(LETTERS) else "•"
        return f"{match.group(1)}{mark} "
    return "\n".join(_CONTENT_NUMBER.sub(letter, line) for line in text.split("\n"))


# Texts written for buttons, as a chat without buttons says them (the core's catalogs serve
# every channel; these few phrases are Zalo's). Vietnamese first, then English.
ZALO_WORDING: tuple[tuple[str, str], ...] = (
    ("hoặc bấm nút bên dưới", "hoặc chọn số bên dưới"),
    ("(hoặc bấm nút)", "(hoặc chọn số bên dưới)"),
    ("Vui lòng chọn một trong các nút bên dưới.", "Ông/bà chọn một số trong danh sách bên dưới ạ."),
    ("Hãy bấm một nút", "Hãy trả lời bằng một số trong danh sách"),
    ("có nút làm lại từ đầu", "có lựa chọn làm lại từ đầu"),
    ("Nút này đã cũ, không dùng được nữa", "Lựa chọn này đã cũ, không dùng được nữa"),
    ("Nút này đã cũ", "Lựa chọn này đã cũ"),
    ("tự bấm từng nút", "tự làm từng thao tác"),  # the phone's buttons: "nút" is never said here
    ("or press the button below", "or choose the number below"),
    ("Press one of the buttons", "Answer with a number from the list"),
    ("Please answer with one of the buttons.", "Please answer with a number from the list."),
    ("This button is out of date", "This option is out of date"),
)
# Button labels a Zalo user reads as options: no English file-format names.
ZALO_LABELS = {
    "⬇️ Excel": N_("Download the spreadsheet"),
    "⬇️ CSV": N_("Download the data table"),
}


def zalo_wording(text: str, locale: str = "vi") -> str:
    for written, said in ZALO_WORDING:
        text = text.replace(written, said)
    return text


def zalo_label(label: str, locale: str = "vi") -> str:
    msgid = ZALO_LABELS.get(label)
    return translator(locale)(msgid) if msgid else label


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


HEADING_MAX = 80  # characters: a longer first line is no heading


def split_with_heading(text: str, continued: str = "(…)", limit: int = MAX_TEXT) -> list[str]:
    """`split_message`, with the text's first line (its heading: the area, the list) repeated at
    the top of every later part, marked `continued`, so each part says what it lists."""
    parts = split_message(text, limit)
    heading = text.strip("\n").split("\n", 1)[0].strip()
    if len(parts) < 2 or not heading or len(heading) > HEADING_MAX:
        return parts
    top = f"{heading} {continued}\n"
    rest = split_message("\n".join(parts[1:]), limit - len(top))
    return [parts[0], *(top + part for part in rest)]


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


# -- the channel --------------------------------------------------------------------------------

class ZaloChannel(Channel[Mapping[str, Any]]):
    """Feeds Zalo updates to the core and renders its replies."""

    name = CHANNEL
    title = "Zalo"
    secret_header = SECRET_HEADER
    delivery_errors = (ZaloUnavailable, ZaloUnauthorized)
    poll_errors = (ZaloError,)
    unauthorized = (ZaloUnauthorized,)
    reserved_paths = ("/files/",)
    webhook_answer = {"ok": True}
    poll_timeout = POLL_TIMEOUT
    default_file_limits = ZALO_LIMITS  # no files; photos by URL

    def __init__(self, app: App, api: ZaloAPI, *, public_base_url: str | None = None,
                 locale: str | None = None, **options: Any) -> None:
        super().__init__(app, **options)
        self.api = api
        self.files = FileStore(app.channel_services, public_base_url) if public_base_url else None
        if self.files is None:  # Zalo takes a photo only by URL: no charts without one
            self.file_limits = replace(self.file_limits, photo=None)
        settings = getattr(app, "settings", None)
        self.locale = locale or getattr(settings, "locale", None) or "vi"

    # -- update → Incoming ----------------------------------------------------------------------

    def parse(self, update: Mapping[str, Any]) -> Incoming | None:
        return incoming_from_update(update)

    def webhook_update(self, body: Any) -> Mapping[str, Any] | None:
        return webhook_update(body)

    def update_fields(self, update: Mapping[str, Any]) -> dict[str, Any]:
        return {"event_name": str(update.get("event_name"))[:60]}

    async def preparing_file(self, update: Mapping[str, Any], incoming: Incoming, kind: str,
                             note: str) -> None:
        """Zalo shows only "typing" while a chart or a file is made (a best effort)."""
        try:
            await self.api.call("sendChatAction", {"chat_id": incoming.chat_id, "action": "typing"},
                                retry=False)
        except ZaloError as exc:
            log.debug("zalo.chat_action_failed", error=exc.description)

    # -- sending --------------------------------------------------------------------------------

    async def send(self, chat_id: str, reply: Reply, *, edit: str | None = None) -> bool:
        """`send_reply`: Zalo cannot edit, so an edit is sent as a new message."""
        return await self.send_reply(chat_id, reply)

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
        parts = render_parts(reply, note, self._note(reply, CONTINUED))
        if not parts and attachment is None:
            log.warning("zalo.empty_reply_skipped")
        delivered = True
        for part in parts:
            delivered = await self._send(self.api.send_message(chat_id, part)) and delivered
        return delivered

    async def _send_photo(self, chat_id: str, png: bytes) -> bool:
        """The chart as a photo Zalo fetches from our URL; False if it could not be (the text
        then says where to see it)."""
        assert self.files is not None
        try:
            url = await self.files.put_png(png)
        except DatabaseUnavailable as exc:
            log.error("zalo.file_store_failed", error=str(exc)[:200])
            return False
        return await self._send(self.api.send_photo(chat_id, url))

    async def _store_document(self, attachment: Attachment) -> str | None:
        """The export's download URL; None if it could not be stored (the text then says where
        to get it)."""
        assert self.files is not None
        try:
            return await self.files.put_document(attachment.data, attachment.filename)
        except (DatabaseUnavailable, ValueError) as exc:
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

    def scrub(self, text: str) -> str:
        return self.api.scrub(text)

    @staticmethod
    def check_token_setting(settings: Settings) -> None:
        zalo_token(settings)

    # -- start-up, polling, the files server ----------------------------------------------------

    async def prepare_polling(self) -> None:
        await startup_call(self.api.delete_webhook())

    async def register_webhook(self, url: str, secret: str) -> None:
        await startup_call(self.api.set_webhook(url, secret))

    async def get_updates(self, wait: int) -> list[Mapping[str, Any]]:
        return list(await self.api.get_updates(timeout=wait))


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


check_settings = ZaloChannel.check_settings


async def run_zalo(settings: Settings, *, webhook_url: str | None = None, public_url: str | None = None,
                   **options: Any) -> None:
    """`gocua run zalo`: long polling after deleteWebhook, or webhooks at `webhook_url`
    (setWebhook with GOCUA_WEBHOOK_SECRET); `options` are bot/channels/runner.py
    `run_channel`'s (host, port, stop, app, worker_index). With a public base URL (`public_url`
    or GOCUA_PUBLIC_BASE_URL) charts and exports are served at /files/ on host:port, in polling
    mode too."""
    token = zalo_token(settings)
    public = resolve_public_base_url(settings, public_url)
    webhook = webhook_settings(settings, webhook_url, ZaloChannel)
    api = ZaloAPI(token, settings.zalo_api_base)
    await run_channel(settings, lambda app: ZaloChannel(app, api, public_base_url=public),
                      connect=lambda: check_token(api), close_client=api.close, webhook=webhook,
                      **options)


__all__ = ["FILE_MAX_AGE", "ChatLocks", "FileStore", "ZaloChannel", "check_settings", "run_zalo"]
