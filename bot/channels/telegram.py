"""The Telegram channel adapter (aiogram 3): long polling by default, or webhooks behind HTTPS.

Only what is Telegram's is here; the outbox protocol, polling, the webhook server, health,
metrics and the notice relay are bot/channels/runner.py's. An Update becomes an `Incoming`
(bot/channels/telegram_render.py, which also builds the Bot API calls of a reply); a button
press is answered (the phone's spinner) once the core has it; a reply with `edit` replaces
the message its button was on when Telegram lets it. Public API:

- `make_bot(settings) -> Bot`: a Bot talking to `{TELEGRAM_API_BASE}/bot{token}/{method}`.
- `TelegramChannel(app, bot)`: a `runner.Channel` (`feed`, `start_polling(stop=)`,
  `webhook_app(path, secret=)`, `send_replies`, `send_notice`, `start_relay`, `close` …) plus
  `setup_commands()`.
- `check_settings(settings, webhook_url)`, `run_telegram(settings, *, webhook_url=None,
  host=, port=, stop=None, app=None, worker_index=None)`: the `gocua run telegram` command.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, TypeVar, overload

import aiohttp
import structlog
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    TelegramAPIError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    DeleteWebhook,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    GetFile,
    GetMe,
    GetUpdates,
    SendChatAction,
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

from bot.app import App
from bot.channels.chat_locks import ChatLocks
from bot.channels.file_store import FileStore
from bot.channels.runner import run_channel, webhook_settings
from bot.channels.telegram_render import (
    MAX_CAPTION,
    MAX_TEXT,
    NO_PREVIEW,
    bot_commands,
    chat_id_of,
    chat_menu,
    incoming_from_update,
    keyboard_json,
    message_ref,
    parse_message_ref,
    render,
)
from bot.channels.telegram_session import ApiCall, JsonBodySession, SentMessage
from bot.channels.telegram_settings import (
    CHANNEL,
    MALFORMED,
    TelegramSettingsCheck,
    check_settings,
    check_telegram_token,
)
from bot.channels.telegram_updates import LeanUpdate, update_from_json
from bot.config import ConfigError, Settings
from handlers.types import Incoming, Reply

# aiogram parses every API answer into `Response[<the method's result type>]`, a pydantic generic
# that pydantic caches only weakly: under load it is collected and rebuilt again and again
# (about a third of the send path's CPU in bench/throughput.py). Keeping the ones GoCua uses
# alive makes each a one-time cost.
_RESPONSE_MODELS = [
    Response[method.__returning__]  # type: ignore[name-defined]  # a parametrisation at run time
    for method in (SendMessage, EditMessageText, EditMessageReplyMarkup, EditMessageCaption,
                   AnswerCallbackQuery, SendDocument, SendPhoto, SendChatAction,
                   SetMyCommands, SetWebhook, DeleteWebhook, GetMe, GetUpdates)
]

log = structlog.get_logger("gocua.telegram")

T = TypeVar("T")

ALLOWED_UPDATES = ["message", "callback_query"]
SEND_RETRY_DELAYS = (0.5, 1.0, 2.0)  # network errors and 5xx
MAX_RATE_LIMITED_TRIES = 3  # 429 Too Many Requests
MAX_TOAST = 200  # characters answerCallbackQuery shows
MAX_RETRY_AFTER = 60.0  # seconds; a longer flood wait is not sat out under a chat's lock
CHAT_ACTION_EVERY = 4.0  # seconds: Telegram shows a chat action for 5 s or until a message
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # on webhook POSTs, equal to setWebhook's secret_token


TelegramUpdate = Update | LeanUpdate  # aiogram's (polling, unusual webhook updates) or a lean one


class DeliveryFailed(Exception):
    """Telegram stayed unreachable (network, 5xx, 429) after the retries."""


def make_bot(settings: Settings) -> Bot:
    token = check_telegram_token(settings.telegram_bot_token)
    session = JsonBodySession(api=TelegramAPIServer.from_base(settings.telegram_api_base))
    try:
        return Bot(token, session=session)
    except TokenValidationError:  # should aiogram ever check more than check_telegram_token
        raise ConfigError(MALFORMED) from None


def method_name(method: TelegramMethod[Any] | ApiCall) -> str:
    return method.name if isinstance(method, ApiCall) else method.__api_method__


async def once(bot: Bot, method: TelegramMethod[T] | ApiCall) -> T | SentMessage | bool:
    """One Bot API call: a lean `ApiCall` through the session's `call_json` (its validated
    aiogram method on another session), anything else through aiogram."""
    if not isinstance(method, ApiCall):
        return await bot(method)
    session = bot.session
    if isinstance(session, JsonBodySession):
        return await session.call_json(bot, method)
    sent = await bot(method.validated())
    if isinstance(sent, bool):
        return sent
    return SentMessage.of(sent)


@overload
async def call_with_retries(bot: Bot, method: ApiCall) -> SentMessage | bool: ...
@overload
async def call_with_retries(bot: Bot, method: TelegramMethod[T]) -> T: ...
async def call_with_retries(bot: Bot, method: TelegramMethod[T] | ApiCall) -> T | SentMessage | bool:
    """`bot(method)`, waiting out 429s and retrying network errors and 5xx with backoff.

    Raises DeliveryFailed when Telegram stays unavailable, and Telegram's refusals as they are.
    """
    rate_limited = failures = 0
    while True:
        try:
            return await once(bot, method)
        except TelegramRetryAfter as exc:
            rate_limited += 1
            if rate_limited >= MAX_RATE_LIMITED_TRIES or exc.retry_after > MAX_RETRY_AFTER:
                raise DeliveryFailed(f"{method_name(method)}: rate limited") from exc
            log.warning("telegram.rate_limited", method=method_name(method),
                        retry_after=exc.retry_after)
            await asyncio.sleep(exc.retry_after)
        except TelegramEntityTooLarge:
            raise
        except (TelegramNetworkError, TelegramServerError) as exc:
            if failures >= len(SEND_RETRY_DELAYS):
                raise DeliveryFailed(f"{method_name(method)}: {scrub(bot, exc.message)}") from exc
            delay = SEND_RETRY_DELAYS[failures]
            failures += 1
            log.warning("telegram.send_retry", method=method_name(method), delay=delay,
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


async def check_token(bot: Bot) -> str | None:
    """getMe: the token is accepted and the API reachable; the bot's username."""
    me = await startup_call(bot, GetMe())
    log.info("telegram.bot", username=me.username, bot_id=me.id)
    return me.username


def scrub(bot: Bot, message: str) -> str:
    """`message` without the bot's token (error texts may quote URLs)."""
    return message.replace(bot.token, "<token>")


class TelegramChannel(TelegramSettingsCheck[TelegramUpdate]):
    """Feeds Telegram updates to the core and renders its replies (its name, title and settings
    checks are TelegramSettingsCheck's)."""

    secret_header = SECRET_HEADER
    delivery_errors = (DeliveryFailed,)
    poll_errors = (TelegramAPIError, aiohttp.ClientError, OSError)
    unauthorized = (TelegramUnauthorizedError,)
    # getUpdates with an offset confirms every earlier update: a batch is handled to the end
    # (replies sent and marked sent) before the next poll, so a process that dies meanwhile
    # gets it again on restart, and the outbox sends only what was not sent.
    poll_confirms_batch = True
    can_edit = True
    # Answering a button (the phone's spinner, a toast) is not ordered with the chat's
    # messages: it goes beside the replies instead of before them.
    acknowledge_concurrently = True

    def __init__(self, app: App, bot: Bot, *, public_base_url: str | None = None,
                 **options: Any) -> None:
        super().__init__(app, **options)
        self.bot = bot
        self._offset: int | None = None
        self._answered: set[str] = set()  # callback queries answered early (preparing_file)
        self._actions: dict[int, asyncio.Task[None]] = {}  # update → its chat action, renewed
        if public_base_url:  # exports over Telegram's limit go as download links, served here
            self.files = FileStore(app.channel_services, public_base_url)
        if app is not None:  # None: a renderer only (tests)
            app.core.services.fetch_file[CHANNEL] = self.fetch_file

    async def fetch_file(self, ref: str) -> bytes:
        """The bytes of a document someone sent (Bot API getFile, then the download: files of
        at most 20 MB, the Bot API's own limit)."""
        file = await self.call(GetFile(file_id=ref))
        if file is None or not file.file_path:
            raise OSError("Telegram gave no path for the file")
        data = await self.bot.download_file(file.file_path, timeout=60)
        if data is None:
            raise OSError("Telegram sent no file")
        return data.read()

    # -- update → Incoming --------------------------------------------------------------------

    def parse(self, update: TelegramUpdate) -> Incoming | None:
        if isinstance(update, LeanUpdate):
            return update.incoming
        return incoming_from_update(update)

    def webhook_update(self, body: Any) -> TelegramUpdate:
        """The lean reading of the two kinds the bot serves; aiogram's Update for the rest."""
        lean = update_from_json(body)
        if lean is not None:
            return lean
        return Update.model_validate(body, context={"bot": self.bot})

    def update_fields(self, update: TelegramUpdate) -> dict[str, Any]:
        return {"update_id": update.update_id}

    @staticmethod
    def callback_id(update: TelegramUpdate) -> str | None:
        """The id of the button press to answer, if the update is one."""
        if isinstance(update, LeanUpdate):
            return update.callback_id
        return update.callback_query.id if update.callback_query is not None else None

    async def acknowledge(self, update: TelegramUpdate, toast: str | None = None) -> None:
        # Stops the spinner on the phone (showing `toast`, when the core has a note about the
        # tap); a redelivered or old query cannot be answered twice.
        query_id = self.callback_id(update)
        if query_id is None:
            return
        if query_id in self._answered:  # answered with "preparing the file"
            self._answered.discard(query_id)
            return
        await self._answer(query_id, toast[:MAX_TOAST] if toast and toast.strip() else None)

    async def _answer(self, callback_id: str, text: str | None = None) -> None:
        params: dict[str, Any] = {"callback_query_id": callback_id}
        if text:
            params["text"] = text
        try:
            await once(self.bot, ApiCall(AnswerCallbackQuery, params))
        except (AiogramError, aiohttp.ClientError, OSError) as exc:
            # A courtesy (the button stops spinning): its failure, even an undecodable answer,
            # must never hold back or fail the replies.
            log.debug("telegram.callback_answer_failed", error=self.scrub(str(exc)))

    async def preparing_file(self, update: TelegramUpdate, incoming: Incoming, kind: str,
                             note: str) -> None:
        """A file is about to be built: the button is answered now with `note` (a toast), and
        "sending a document / a photo" shows in the chat, renewed every few seconds (Telegram
        clears it after 5), until `prepared`."""
        query_id = self.callback_id(update)
        if query_id is not None and query_id not in self._answered:
            self._answered.add(query_id)
            await self._answer(query_id, note)
        if id(update) in self._actions:
            return
        action = "upload_photo" if kind == "photo" else "upload_document"
        self._actions[id(update)] = asyncio.create_task(
            self._show_action(chat_id_of(incoming.chat_id), action), name="gocua.telegram.chat_action")

    async def _show_action(self, chat_id: int | str, action: str) -> None:
        while True:
            try:
                await self.bot(SendChatAction(chat_id=chat_id, action=action))
            except (TelegramAPIError, aiohttp.ClientError, OSError) as exc:
                log.debug("telegram.chat_action_failed", error=self.scrub(str(exc)))
                return
            await asyncio.sleep(CHAT_ACTION_EVERY)

    async def prepared(self, update: TelegramUpdate) -> None:
        task = self._actions.pop(id(update), None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- sending ------------------------------------------------------------------------------

    async def send(self, chat_id: str, reply: Reply, *, edit: str | None = None) -> bool:
        target = chat_id_of(chat_id)
        if reply.menu is not None:
            await self.set_chat_menu(target, *reply.menu)
        if reply.toast and edit is not None:
            # The toast was the tap's answer (acknowledge): only the old keyboard goes.
            await self._drop_keyboard(target, parse_message_ref(edit)[0])
            return True
        if reply.toast and not reply.text.strip():
            return True
        if edit is not None and await self._try_edit(target, edit, reply):
            return True
        sent = True
        for method in render(reply, target):
            sent = await self.call(method) is not None and sent
        return sent

    async def send_kept(self, chat_id: str, reply: Reply) -> str | None:
        """Send `reply`; the id of its last message (the one with the keyboard)."""
        last: str | None = None
        for method in render(reply, chat_id_of(chat_id)):
            sent = await self.call(method)
            if sent is not None and hasattr(sent, "message_id"):
                last = message_ref(sent)
        return last

    async def _drop_keyboard(self, chat_id: int | str, message_id: int) -> None:
        try:
            await call_with_retries(self.bot, ApiCall(EditMessageReplyMarkup,
                                                      {"chat_id": chat_id, "message_id": message_id}))
        except TelegramAPIError as exc:  # too old, deleted, or had no keyboard any more
            log.info("telegram.keyboard_kept", reason=self.scrub(exc.message))

    async def set_chat_menu(self, chat_id: int | str, role: str, locale: str) -> None:
        """This chat's "/" menu: the commands of `role` in `locale` (BotCommandScopeChat wins
        over the default menu, in any app language); refused is logged, the reply still goes."""
        await self.call(chat_menu(chat_id, role, locale))

    async def forget_message(self, chat_id: str, message_id: str) -> bool:
        """deleteMessage: a bot may delete a user's message in a private chat within 48 hours;
        refused (too old, already gone) is logged and the chat goes on."""
        method = DeleteMessage(chat_id=chat_id_of(chat_id), message_id=int(message_id))
        deleted = await self.call(method)
        return deleted is True

    async def _try_edit(self, chat_id: int | str, ref: str, reply: Reply) -> bool:
        """Replace the tapped message with `reply`: its text, or for a photo or document its
        caption (editMessageText would fail on those). False when it cannot be edited."""
        message_id, media = parse_message_ref(ref)
        limit = MAX_CAPTION if media else MAX_TEXT
        if reply.attachment is not None or not reply.text.strip() or len(reply.text) > limit:
            await self._drop_keyboard(chat_id, message_id)
            return False
        params: dict[str, Any] = {"chat_id": chat_id, "message_id": message_id}
        if media:
            params["caption"] = reply.text
        else:
            params["text"] = reply.text
            if not reply.preview:
                params["link_preview_options"] = NO_PREVIEW
        markup = keyboard_json(reply)
        if markup is not None:
            params["reply_markup"] = markup
        method = ApiCall(EditMessageCaption if media else EditMessageText, params)
        try:
            await call_with_retries(self.bot, method)
        except TelegramAPIError as exc:
            if "not modified" in exc.message:
                return True  # it already reads so: a copy would be a second live keyboard
            # Too old to edit, deleted, or too long for a caption: a new message instead, and
            # the old one loses its keyboard so that only the new one's can be pressed.
            log.info("telegram.edit_fell_back", reason=self.scrub(exc.message))
            await self._drop_keyboard(chat_id, message_id)
            return False
        return True

    @overload
    async def call(self, method: ApiCall) -> SentMessage | bool | None: ...
    @overload
    async def call(self, method: TelegramMethod[T]) -> T | None: ...
    async def call(self, method: TelegramMethod[T] | ApiCall) -> T | SentMessage | bool | None:
        """One Bot API call with retries; None when Telegram refused it for good (logged)."""
        try:
            return await call_with_retries(self.bot, method)
        except TelegramForbiddenError:
            chat_id = (method.params.get("chat_id") if isinstance(method, ApiCall)
                       else getattr(method, "chat_id", None))
            log.info("telegram.blocked_by_user", method=method_name(method), chat_id=chat_id)
        except TelegramAPIError as exc:  # bad request, chat not found, file too large …
            log.error("telegram.send_refused", method=method_name(method),
                      error=self.scrub(exc.message))
        return None

    def scrub(self, text: str) -> str:
        return scrub(self.bot, text)

    # -- start-up -----------------------------------------------------------------------------

    async def setup_commands(self) -> None:
        """The command menu: Vietnamese by default, English for English-language clients."""
        scope = BotCommandScopeDefault()
        await startup_call(self.bot, SetMyCommands(commands=bot_commands("vi"), scope=scope))
        await startup_call(self.bot, SetMyCommands(commands=bot_commands("en"), scope=scope,
                                                   language_code="en"))

    async def register_webhook(self, url: str, secret: str) -> None:
        await startup_call(self.bot, SetWebhook(url=url, secret_token=secret,
                                                allowed_updates=ALLOWED_UPDATES))
        await self.setup_commands()

    async def prepare_polling(self) -> None:
        await startup_call(self.bot, DeleteWebhook(drop_pending_updates=False))
        await self.setup_commands()

    # -- polling ------------------------------------------------------------------------------

    async def get_updates(self, wait: int) -> list[TelegramUpdate]:
        updates = await self.bot(
            GetUpdates(offset=self._offset, timeout=wait, allowed_updates=ALLOWED_UPDATES),
            request_timeout=int(self.bot.session.timeout + wait))
        if updates:  # confirmed by the next poll, which the runner makes once they are handled
            self._offset = updates[-1].update_id + 1
        return list(updates)

    async def finish_polling(self) -> None:
        if self._offset is not None:  # confirm the last batch now rather than on the next start
            with contextlib.suppress(TelegramAPIError, aiohttp.ClientError, OSError):
                await self.bot(GetUpdates(offset=self._offset, timeout=0, limit=1,
                                          allowed_updates=ALLOWED_UPDATES))

    async def close_client(self) -> None:
        await self.bot.session.close()




async def run_telegram(settings: Settings, *, webhook_url: str | None = None,
                       public_url: str | None = None, **options: Any) -> None:
    """`gocua run telegram`: long polling, or webhooks at `webhook_url`; `options` are
    bot/channels/runner.py `run_channel`'s (host, port, stop, app, worker_index). Only worker 0
    of a group registers the webhook and the command menu. With a public base URL (`public_url`
    or GOCUA_PUBLIC_BASE_URL) an export over Telegram's 50 MB goes as a download link served at
    /files/ on host:port (in polling mode too)."""
    bot = make_bot(settings)
    webhook = webhook_settings(settings, webhook_url, TelegramChannel)
    public = (public_url or settings.public_base_url or "").strip() or None
    username: list[str | None] = []

    async def connect() -> None:
        username.append(await check_token(bot))

    def make(app: App) -> TelegramChannel:
        services = app.core.services
        services.bot_username = services.bot_username or (username[0] if username else None)
        return TelegramChannel(app, bot, public_base_url=public)

    await run_channel(settings, make, connect=connect,
                      close_client=bot.session.close, webhook=webhook, **options)


__all__ = ["ChatLocks", "TelegramChannel", "check_settings", "make_bot", "run_telegram"]
