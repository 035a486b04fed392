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
No pytest here: bench/ imports it too.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

DEFAULT_TOKEN = "123456789:TEST-fake-token_for-gocua"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

# Form fields that carry JSON (objects, arrays, numbers, booleans) rather than plain text.
_JSON_FIELDS = {
    "reply_markup", "commands", "scope", "allowed_updates", "entities", "caption_entities",
    "link_preview_options", "reply_parameters", "chat_id", "message_id", "offset", "limit",
    "timeout", "drop_pending_updates", "show_alert", "cache_time", "disable_notification",
    "protect_content", "max_connections", "user_id",
}
_METHOD_NAMES = {
    name.lower(): name
    for name in (
        "getMe", "getUpdates", "deleteWebhook", "setWebhook", "getWebhookInfo", "setMyCommands",
        "getMyCommands", "deleteMyCommands", "sendMessage", "editMessageText",
        "editMessageReplyMarkup", "answerCallbackQuery", "sendDocument", "sendPhoto",
        "sendChatAction", "close", "logOut",
    )
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


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Failure:
    status: int
    retry_after: int | None
    times: int
    description: str | None


class FakeTelegramAPI:
    """The Bot API stand-in. Use `async with` or `await start()` / `await close()`."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, max_poll_wait: float = 0.25,
                 bot_username: str = "gocua_test_bot") -> None:
        self.token = token
        self.max_poll_wait = max_poll_wait
        self.bot_user = {"id": int(token.split(":", 1)[0]), "is_bot": True, "first_name": "GoCua",
                         "username": bot_username, "can_join_groups": False,
                         "can_read_all_group_messages": False, "supports_inline_queries": False}
        self.calls: list[Call] = []  # successful calls only
        self._by_method: dict[str, list[Call]] = {}
        self.failed: list[Call] = []  # calls answered with an injected or real error
        self.webhook: dict[str, Any] = {"url": "", "secret_token": None, "allowed_updates": None}
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}  # (chat, message id) → Message
        self.blocked: set[int] = set()  # chats whose user blocked the bot (403)
        self._queue: list[dict[str, Any]] = []
        self._allowed: list[str] | None = None
        self._failures: dict[str, list[_Failure]] = {}
        self._changed = asyncio.Condition()
        self._update_ids = itertools.count(1000)
        self._message_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> FakeTelegramAPI:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegramAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- what tests push --------------------------------------------------------------------

    def push(self, *updates: dict[str, Any]) -> None:
        """Queue updates for getUpdates."""
        self._queue.extend(updates)
        task = asyncio.get_running_loop().create_task(self._notify())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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

    async def post_webhook(self, update: dict[str, Any], *, secret: str | bool | None = True,
                           url: str | None = None) -> tuple[int, str]:
        """POST `update` to the webhook as Telegram would; `secret=True` uses the registered one,
        None sends no secret header. Returns (status, body)."""
        target = url or self.webhook["url"]
        if not target:
            raise RuntimeError("no webhook is set")
        token = self.webhook["secret_token"] if secret is True else secret
        headers = {SECRET_HEADER: token} if isinstance(token, str) else {}
        if self._http is None:
            self._http = aiohttp.ClientSession()
        async with self._http.post(target, json=update, headers=headers) as resp:
            return resp.status, await resp.text()

    def fail(self, method: str, *, status: int = 500, retry_after: int | None = None, times: int = 1,
             description: str | None = None) -> None:
        """Answer the next `times` calls of `method` with an error (429 takes `retry_after`)."""
        self._failures.setdefault(method.lower(), []).append(
            _Failure(status, retry_after, times, description))

    # -- what tests read --------------------------------------------------------------------

    def calls_to(self, method: str, where: Callable[[dict[str, Any]], bool] | None = None) -> list[
            dict[str, Any]]:
        calls = self._by_method.get(_METHOD_NAMES.get(method.lower(), method), [])
        return [c.params for c in calls if where is None or where(c.params)]

    def sent_texts(self, chat_id: int | None = None) -> list[str]:
        """Texts (and captions) the bot sent, in order, optionally to one chat."""
        out: list[str] = []
        for call in self.calls:
            if call.method not in ("sendMessage", "sendDocument", "sendPhoto", "editMessageText"):
                continue
            if chat_id is not None and call.params.get("chat_id") != chat_id:
                continue
            text = call.params.get("text", call.params.get("caption"))
            if text is not None:
                out.append(text)
        return out

    def last_message(self, chat_id: int) -> dict[str, Any]:
        """The newest message the bot sent to `chat_id` (as Telegram stores it, edits applied)."""
        mine = [m for (chat, _), m in self.messages.items() if chat == chat_id]
        if not mine:
            raise LookupError(f"the bot sent nothing to chat {chat_id}")
        return max(mine, key=lambda m: m["message_id"])

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0,  # noqa: ASYNC109
                       where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """The params of the first `count` calls of `method` (matching `where`), once there."""

        def enough() -> bool:
            if where is None:
                return len(self._by_method.get(_METHOD_NAMES.get(method.lower(), method), ())) >= count
            return len(self.calls_to(method, where)) >= count

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(enough)
        except TimeoutError:
            seen = [c.method for c in self.calls if c.method != "getUpdates"]
            raise TimeoutError(
                f"expected {count} {method} call(s) within {timeout}s, got "
                f"{len(self.calls_to(method, where))}; calls so far: {seen}"
            ) from None
        return self.calls_to(method, where)[:count]

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- the server -------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = _METHOD_NAMES.get(request.match_info["method"].lower())
        if method is None:
            return _error(404, "Not Found: method not found")
        params = await _read_params(request)
        injected = self._take_failure(method)
        if injected is not None:
            self.failed.append(Call(method, params))
            return injected
        handler = getattr(self, f"_m_{method}", None)
        result = await handler(params) if handler is not None else True
        if isinstance(result, web.Response):
            self.failed.append(Call(method, params))
            return result
        call = Call(method, params)
        self.calls.append(call)
        self._by_method.setdefault(method, []).append(call)
        await self._notify()
        return web.json_response({"ok": True, "result": result})

    def _take_failure(self, method: str) -> web.Response | None:
        pending = self._failures.get(method.lower())
        if not pending:
            return None
        failure = pending[0]
        failure.times -= 1
        if failure.times <= 0:
            pending.pop(0)
        if failure.status == 429:
            retry_after = failure.retry_after if failure.retry_after is not None else 1
            return _error(429, failure.description or f"Too Many Requests: retry after {retry_after}",
                          parameters={"retry_after": retry_after})
        return _error(failure.status, failure.description or _REASONS.get(failure.status, "Error"))

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
        wait = min(float(params.get("timeout") or 0), self.max_poll_wait)
        deadline = time.monotonic() + wait
        while True:
            ready = [u for u in self._queue if self._is_allowed(u)]
            if ready or time.monotonic() >= deadline:
                break
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())), self._changed:
                    await self._changed.wait()
            except TimeoutError:
                pass
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

    async def _m_editMessageText(self, params: dict[str, Any]) -> Any:
        key = (int(params.get("chat_id", 0)), int(params.get("message_id", 0)))
        message = self.messages.get(key)
        if message is None:
            return _error(400, "Bad Request: message to edit not found")
        markup = params.get("reply_markup")
        if message.get("text") == params.get("text") and message.get("reply_markup") == markup:
            return _error(400, "Bad Request: message is not modified: specified new message content "
                               "and reply markup are exactly the same")
        message = {**message, "text": params.get("text", ""), "edit_date": int(time.time())}
        message.pop("reply_markup", None)
        if markup:
            message["reply_markup"] = markup
        self.messages[key] = message
        return message

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


_REASONS = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict",
            500: "Internal Server Error", 502: "Bad Gateway"}


def _error(status: int, description: str, *, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


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
