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
from typing import Any, TypeVar

import aiohttp
import structlog
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
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
    DeleteWebhook,
    EditMessageText,
    GetFile,
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

from bot.app import App
from bot.channels.chat_locks import ChatLocks
from bot.channels.runner import Channel, run_channel, webhook_settings
from bot.channels.telegram_render import (
    CHANNEL,
    MAX_TEXT,
    bot_commands,
    chat_id_of,
    incoming_from_update,
    keyboard,
    render,
)
from bot.config import ConfigError, Settings
from handlers.types import Incoming, Reply

# aiogram parses every API answer into `Response[<the method's result type>]`, a pydantic generic
# that pydantic caches only weakly: under load it is collected and rebuilt again and again
# (about a third of the send path's CPU in bench/throughput.py). Keeping the ones GoCua uses
# alive makes each a one-time cost.
_RESPONSE_MODELS = [
    Response[method.__returning__]  # type: ignore[name-defined]  # a parametrisation at run time
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


class TelegramChannel(Channel[Update]):
    """Feeds Telegram updates to the core and renders its replies."""

    name = CHANNEL
    title = "Telegram"
    secret_header = SECRET_HEADER
    delivery_errors = (DeliveryFailed,)
    poll_errors = (TelegramAPIError, aiohttp.ClientError, OSError)
    unauthorized = (TelegramUnauthorizedError,)
    # getUpdates with an offset confirms every earlier update: a batch is handled to the end
    # (replies sent and marked sent) before the next poll, so a process that dies meanwhile
    # gets it again on restart, and the outbox sends only what was not sent.
    poll_confirms_batch = True

    def __init__(self, app: App, bot: Bot, **options: Any) -> None:
        super().__init__(app, **options)
        self.bot = bot
        self._offset: int | None = None
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

    def parse(self, update: Update) -> Incoming | None:
        return incoming_from_update(update)

    def webhook_update(self, body: Any) -> Update:
        return Update.model_validate(body, context={"bot": self.bot})

    def update_fields(self, update: Update) -> dict[str, Any]:
        return {"update_id": update.update_id}

    async def acknowledge(self, update: Update) -> None:
        # Stops the spinner on the phone; a redelivered or old query cannot be answered twice.
        if update.callback_query is None:
            return
        try:
            await self.bot(AnswerCallbackQuery(callback_query_id=update.callback_query.id))
        except TelegramAPIError as exc:
            log.debug("telegram.callback_answer_failed", error=self.scrub(str(exc)))

    # -- sending ------------------------------------------------------------------------------

    async def send(self, chat_id: str, reply: Reply, *, edit: str | None = None) -> bool:
        target = chat_id_of(chat_id)
        if edit is not None and await self._try_edit(target, int(edit), reply):
            return True
        sent = True
        for method in render(reply, target):
            sent = await self.call(method) is not None and sent
        return sent

    async def _try_edit(self, chat_id: int | str, message_id: int, reply: Reply) -> bool:
        if reply.attachment is not None or not reply.text.strip() or len(reply.text) > MAX_TEXT:
            return False
        method = EditMessageText(chat_id=chat_id, message_id=message_id, text=reply.text,
                                 reply_markup=keyboard(reply))
        try:
            await call_with_retries(self.bot, method)
        except TelegramAPIError as exc:
            # Too old to edit, deleted, or not modified: send a new message instead.
            log.info("telegram.edit_fell_back", reason=self.scrub(exc.message))
            return False
        return True

    async def call(self, method: TelegramMethod[T]) -> T | None:
        """One Bot API call with retries; None when Telegram refused it for good (logged)."""
        try:
            return await call_with_retries(self.bot, method)
        except TelegramForbiddenError:
            log.info("telegram.blocked_by_user", method=method.__api_method__,
                     chat_id=getattr(method, "chat_id", None))
        except TelegramAPIError as exc:  # bad request, chat not found, file too large …
            log.error("telegram.send_refused", method=method.__api_method__,
                      error=self.scrub(exc.message))
        return None

    def scrub(self, text: str) -> str:
        return scrub(self.bot, text)

    @staticmethod
    def check_token_setting(settings: Settings) -> None:
        make_bot(settings)

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

    async def get_updates(self, wait: int) -> list[Update]:
        updates = await self.bot(
            GetUpdates(offset=self._offset, timeout=wait, allowed_updates=ALLOWED_UPDATES),
            request_timeout=int(self.bot.session.timeout + wait))
        if updates:  # confirmed by the next poll, which the runner makes once they are handled
            self._offset = updates[-1].update_id + 1
        return updates

    async def finish_polling(self) -> None:
        if self._offset is not None:  # confirm the last batch now rather than on the next start
            with contextlib.suppress(TelegramAPIError, aiohttp.ClientError, OSError):
                await self.bot(GetUpdates(offset=self._offset, timeout=0, limit=1,
                                          allowed_updates=ALLOWED_UPDATES))

    async def close_client(self) -> None:
        await self.bot.session.close()


check_settings = TelegramChannel.check_settings


async def run_telegram(settings: Settings, *, webhook_url: str | None = None, **options: Any) -> None:
    """`gocua run telegram`: long polling, or webhooks at `webhook_url`; `options` are
    bot/channels/runner.py `run_channel`'s (host, port, stop, app, worker_index). Only worker 0
    of a group registers the webhook and the command menu."""
    bot = make_bot(settings)
    webhook = webhook_settings(settings, webhook_url, TelegramChannel)
    await run_channel(settings, lambda app: TelegramChannel(app, bot), connect=lambda: check_token(bot),
                      close_client=bot.session.close, webhook=webhook, **options)


__all__ = ["ChatLocks", "TelegramChannel", "check_settings", "make_bot", "run_telegram"]
