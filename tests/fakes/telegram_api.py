"""A stand-in for the Telegram Bot API: a real aiohttp server on 127.0.0.1, random port.

Point the bot at it with TELEGRAM_API_BASE=`api.base_url` (requests go to
`{base}/bot{token}/{method}`). It keeps a queue of updates for getUpdates (long polling that
honours `offset`), remembers setWebhook, answers the sending methods with Telegram-shaped
objects, and records every successful call so that tests and benchmarks can assert on them:

    async with FakeTelegramAPI() as api:
        user = FakeUser(42, "An", language_code="en")
        api.push(api.message(user, "/start"))
        [call] = await api.wait_for("sendMessage")

`api.fail("sendMessage", status=429, retry_after=1)` makes the next call fail on purpose.
The server plumbing is tests/fakes/base.py's. No pytest here: bench/ imports it too.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.base import Call, FakeBotAPI
from tests.fakes.base import error as _error

__all__ = ["Call", "FakeTelegramAPI", "FakeUser"]

DEFAULT_TOKEN = "123456789:TEST-fake-token_for-gocua"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

# Form fields that carry JSON (objects, arrays, numbers, booleans) rather than plain text.
_JSON_FIELDS = {
    "reply_markup", "commands", "scope", "allowed_updates", "entities", "caption_entities",
    "link_preview_options", "reply_parameters", "chat_id", "message_id", "offset", "limit",
    "timeout", "drop_pending_updates", "show_alert", "cache_time", "disable_notification",
    "protect_content", "max_connections", "user_id",
}


@dataclass(frozen=True)
class FakeUser:
    """A Telegram user in a private chat with the bot (chat id = user id)."""

    id: int
    first_name: str = "Test"
    last_name: str | None = None
    language_code: str | None = None
    username: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "language_code", "username"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    def chat(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        if self.last_name:
            out["last_name"] = self.last_name
        return out


class FakeTelegramAPI(FakeBotAPI):
    """The Bot API stand-in. Use `async with` or `await start()` / `await close()`."""

    methods = ("getMe", "getUpdates", "deleteWebhook", "setWebhook", "getWebhookInfo",
               "setMyCommands", "getMyCommands", "deleteMyCommands", "sendMessage",
               "deleteMessage", "editMessageText", "editMessageReplyMarkup", "editMessageCaption",
               "answerCallbackQuery", "sendDocument",
               "sendPhoto", "sendChatAction", "close", "logOut")
    secret_header = SECRET_HEADER
    text_methods = ("sendMessage", "sendDocument", "sendPhoto", "editMessageText", "editMessageCaption")

    def __init__(self, token: str = DEFAULT_TOKEN, *, max_poll_wait: float = 0.25,
                 bot_username: str = "gocua_test_bot") -> None:
        super().__init__(token, max_poll_wait=max_poll_wait)
        self.bot_user = {"id": int(token.split(":", 1)[0]), "is_bot": True, "first_name": "GoCua",
                         "username": bot_username, "can_join_groups": False,
                         "can_read_all_group_messages": False, "supports_inline_queries": False}
        self.webhook["allowed_updates"] = None
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}  # (chat, message id) → Message
        self.blocked: set[int] = set()  # chats whose user blocked the bot (403)
        self._allowed: list[str] | None = None
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(1)

    # -- what tests push --------------------------------------------------------------------

    def update(self, kind: str, body: dict[str, Any], *, update_id: int | None = None) -> dict[str, Any]:
        """An update of any kind, e.g. `api.update("my_chat_member", {...})`."""
        return {"update_id": update_id if update_id is not None else next(self._update_ids), kind: body}

    def message(self, user: FakeUser, text: str | None = None, *, kind: str = "message",
                **extra: Any) -> dict[str, Any]:
        """A message update from `user` (text, or `extra` such as sticker=...)."""
        body: dict[str, Any] = {"message_id": next(self._message_ids), "date": int(time.time()),
                                "chat": user.chat(), "from": user.as_json(), **extra}
        if text is not None:
            body["text"] = text
            if text.startswith("/"):
                length = len(text.split(" ", 1)[0])
                body["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        return self.update(kind, body)

    def sticker(self, user: FakeUser) -> dict[str, Any]:
        return self.message(user, sticker={
            "file_id": "CAACAgIAAxkBAAEBsticker", "file_unique_id": "AgADsticker", "type": "regular",
            "width": 512, "height": 512, "is_animated": False, "is_video": False, "emoji": "👍",
        })

    def callback(self, user: FakeUser, data: str, message_id: int) -> dict[str, Any]:
        """A button press on the bot's message `message_id` in `user`'s chat."""
        message = self.messages.get((user.id, message_id)) or {
            "message_id": message_id, "date": int(time.time()), "chat": user.chat(),
            "from": self.bot_user, "text": "…",
        }
        body = {"id": f"cb{next(self._update_ids)}", "from": user.as_json(), "message": message,
                "chat_instance": f"ci{user.id}", "data": data}
        return self.update("callback_query", body)

    # -- what tests read --------------------------------------------------------------------

    def last_message(self, chat_id: int) -> dict[str, Any]:
        """The newest message the bot sent to `chat_id` (as Telegram stores it, edits applied)."""
        mine = [m for (chat, _), m in self.messages.items() if chat == chat_id]
        if not mine:
            raise LookupError(f"the bot sent nothing to chat {chat_id}")
        return max(mine, key=lambda m: m["message_id"])

    # -- the server -------------------------------------------------------------------------

    async def read_params(self, request: web.Request) -> dict[str, Any]:
        return await _read_params(request)

    async def _m_getMe(self, params: dict[str, Any]) -> Any:
        return self.bot_user

    async def _m_getUpdates(self, params: dict[str, Any]) -> Any:
        if self.webhook["url"]:
            return _error(409, "Conflict: can't use getUpdates method while webhook is active; "
                               "use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        if offset:
            self._queue = [u for u in self._queue if u["update_id"] >= offset]
        if params.get("allowed_updates") is not None:
            self._allowed = list(params["allowed_updates"]) or None
        await self._wait_for_queue(float(params.get("timeout") or 0),
                                    lambda: any(self._is_allowed(u) for u in self._queue))
        ready = [u for u in self._queue if self._is_allowed(u)]
        # Updates of kinds not allowed are dropped as Telegram does.
        self._queue = [u for u in self._queue if self._is_allowed(u)]
        return ready[: int(params.get("limit") or 100)]

    def _is_allowed(self, update: dict[str, Any]) -> bool:
        return self._allowed is None or any(kind in update for kind in self._allowed)

    async def _m_setWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = {"url": params.get("url", ""), "secret_token": params.get("secret_token"),
                        "allowed_updates": params.get("allowed_updates")}
        return True

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        if params.get("drop_pending_updates"):
            self._queue.clear()
        self.webhook = {"url": "", "secret_token": None, "allowed_updates": None}
        return True

    async def _m_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        return {"url": self.webhook["url"], "has_custom_certificate": False,
                "pending_update_count": len(self._queue),
                "allowed_updates": self.webhook["allowed_updates"] or []}

    async def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        return self._new_message(params, text=params.get("text", ""))

    async def _m_sendDocument(self, params: dict[str, Any]) -> Any:
        file = params.get("document") or {}
        return self._new_message(params, caption=params.get("caption"), document={
            "file_id": f"doc{len(self.messages)}", "file_unique_id": f"u{len(self.messages)}",
            "file_name": file.get("filename"), "file_size": file.get("size")})

    async def _m_sendPhoto(self, params: dict[str, Any]) -> Any:
        file = params.get("photo") or {}
        return self._new_message(params, caption=params.get("caption"), photo=[{
            "file_id": f"photo{len(self.messages)}", "file_unique_id": f"p{len(self.messages)}",
            "width": 800, "height": 600, "file_size": file.get("size")}])

    async def _m_deleteMessage(self, params: dict[str, Any]) -> Any:
        """A user's message or the bot's own: gone from the chat (the bot's are in `messages`)."""
        self.messages.pop((int(params.get("chat_id", 0)), int(params.get("message_id", 0))), None)
        return True

    async def _m_editMessageText(self, params: dict[str, Any]) -> Any:
        key = (int(params.get("chat_id", 0)), int(params.get("message_id", 0)))
        message = self.messages.get(key)
        if message is None:
            return _error(400, "Bad Request: message to edit not found")
        if "text" not in message:
            return _error(400, "Bad Request: there is no text in the message to edit")
        return self._edit(key, message, "text", params)

    async def _m_editMessageCaption(self, params: dict[str, Any]) -> Any:
        key = (int(params.get("chat_id", 0)), int(params.get("message_id", 0)))
        message = self.messages.get(key)
        if message is None:
            return _error(400, "Bad Request: message to edit not found")
        if "text" in message:
            return _error(400, "Bad Request: there is no caption in the message to edit")
        return self._edit(key, message, "caption", params)

    async def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> Any:
        key = (int(params.get("chat_id", 0)), int(params.get("message_id", 0)))
        message = self.messages.get(key)
        if message is None:
            return _error(400, "Bad Request: message to edit not found")
        return self._edit(key, message, None, params)

    def _edit(self, key: tuple[int, int], message: dict[str, Any], field: str | None,
              params: dict[str, Any]) -> Any:
        """Telegram's edit: the new `field` (text or caption; None: the keyboard only) and
        keyboard, refused when nothing changes."""
        markup = params.get("reply_markup") or None
        same_content = field is None or message.get(field) == params.get(field)
        if same_content and message.get("reply_markup") == markup:
            return _error(400, "Bad Request: message is not modified: specified new message content "
                               "and reply markup are exactly the same")
        message = {**message, "edit_date": int(time.time())}
        if field is not None:
            message[field] = params.get(field, "")
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        self.messages[key] = message
        return message

    def chat_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages in `chat_id`, oldest first, as they read now (edits applied)."""
        return sorted((m for (chat, _), m in self.messages.items() if chat == chat_id),
                      key=lambda m: m["message_id"])

    def live_keyboards(self, chat_id: int) -> list[dict[str, Any]]:
        """The bot's messages in `chat_id` that still carry buttons one can press."""
        return [m for m in self.chat_messages(chat_id) if m.get("reply_markup")]

    def _new_message(self, params: dict[str, Any], **content: Any) -> Any:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, int):
            return _error(400, "Bad Request: chat not found")
        if chat_id in self.blocked:
            return _error(403, "Forbidden: bot was blocked by the user")
        message: dict[str, Any] = {
            "message_id": next(self._message_ids), "date": int(time.time()), "from": self.bot_user,
            "chat": {"id": chat_id, "type": "private", "first_name": "User"},
        }
        message.update({k: v for k, v in content.items() if v is not None})
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.messages[(chat_id, message["message_id"])] = message
        return message


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Form (urlencoded or multipart, as aiogram sends), JSON body or query string."""
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        if request.content_type == "application/json":
            params.update(await request.json())
            return params
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                data = value.file.read()
                params[key] = {"filename": value.filename, "size": len(data),
                               "content_type": value.content_type, "data": data}
            else:
                params[key] = _decode(key, str(value))
    for key, value in list(params.items()):  # aiogram sends files as "attach://<field>"
        if isinstance(value, str) and value.startswith("attach://"):
            params[key] = params.pop(value.removeprefix("attach://"), value)
    return params


def _decode(key: str, value: str) -> Any:
    if key not in _JSON_FIELDS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
