"""A stand-in for the Zalo Bot Platform API: a real aiohttp server on 127.0.0.1, random port.

Point the bot at it with ZALO_API_BASE=`api.base_url` (requests go to
`{base}/bot{token}/{method}`, JSON bodies, the `{"ok", "result", "error_code", "description"}`
envelope). It keeps a queue of updates for getUpdates (ONE update per call; error 408 when
nothing arrives within a short wait), remembers setWebhook, checks what Zalo checks on the
sending methods (a text of at most 2,000 characters, a photo given by http(s) URL) and records
every call it answered, so that tests can assert on them:

    async with FakeZaloAPI() as api:
        api.push(api.text("u1", "/start"))
        [sent] = await api.wait_for("sendMessage")

`api.fail("sendMessage", status=429, retry_after=1)` fails the next call on purpose;
`await api.go_down()` / `await api.come_back()` make the whole API refuse connections and
return on the same port. The update shapes follow shared/zalo.md; the facts the bot relies on
(secret header, text limit, empty-poll code, text event) are imported from the bot's single place
for them, bot/channels/zalo_api.py, so that a correction there reaches the stand-in too. No
pytest here.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.channels.zalo_api import EMPTY_POLL, MAX_TEXT, SECRET_HEADER, TEXT_EVENT

__all__ = ["MAX_TEXT", "SECRET_HEADER", "Call", "FakeZaloAPI"]

DEFAULT_TOKEN = "1234567890:TEST-fake-zalo-token_for-gocua"

_METHOD_NAMES = {
    name.lower(): name
    for name in ("getMe", "getUpdates", "setWebhook", "deleteWebhook", "getWebhookInfo", "sendMessage",
                 "sendPhoto", "sendSticker", "sendChatAction")
}
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            408: "Request Timeout", 409: "Conflict", 429: "Too Many Requests",
            500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


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


class FakeZaloAPI:
    """The Zalo Bot API stand-in. Use `async with` or `await start()` / `await close()`."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, max_poll_wait: float = 0.2) -> None:
        self.token = token
        self.max_poll_wait = max_poll_wait
        self.bot_info = {"id": token.split(":", 1)[0], "account_name": "gocua_test_bot",
                         "account_type": "BASIC", "display_name": "GoCua"}
        self.calls: list[Call] = []  # calls answered normally (empty polls included)
        self.failed: list[Call] = []  # calls answered with an injected or a real error
        self.webhook: dict[str, Any] = {"url": "", "secret_token": None}
        self._by_method: dict[str, list[Call]] = {}
        self._queue: list[dict[str, Any]] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._changed = asyncio.Condition()
        self._message_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> FakeZaloAPI:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        await self.go_down()

    async def go_down(self) -> None:
        """Stop serving: connections are refused until `come_back()`."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def come_back(self) -> None:
        """Serve again, on the same port."""
        if self._runner is None:
            await self.start()

    async def __aenter__(self) -> FakeZaloAPI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- what tests push --------------------------------------------------------------------

    def push(self, *updates: dict[str, Any]) -> None:
        """Queue updates for getUpdates (one is handed out per call)."""
        self._queue.extend(updates)
        task = asyncio.get_running_loop().create_task(self._notify())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def message(self, user_id: str, event: str, *, message_id: str | None = None,
                display_name: str | None = None, chat_type: str = "PRIVATE", **fields: Any) -> dict[str, Any]:
        """An update `event` from `user_id` in the private chat with the bot (chat id = user id)."""
        body: dict[str, Any] = {
            "message_id": message_id or f"m{next(self._message_ids):08d}",
            "date": int(time.time() * 1000),
            "from": {"id": str(user_id), "display_name": display_name or f"User {user_id}", "is_bot": False},
            "chat": {"id": str(user_id), "chat_type": chat_type},
            **fields,
        }
        return {"event_name": event, "message": body}

    def text(self, user_id: str, text: str, *, message_id: str | None = None,
             display_name: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return self.message(user_id, TEXT_EVENT, message_id=message_id,
                            display_name=display_name, text=text, **kwargs)

    def sticker(self, user_id: str, *, message_id: str | None = None) -> dict[str, Any]:
        return self.message(user_id, "message.sticker.received", message_id=message_id,
                            sticker="bfe458bf64fa8da4d4eb", url="https://zalo-api.zadn.vn/sticker.png")

    def image(self, user_id: str, *, message_id: str | None = None,
              caption: str | None = None) -> dict[str, Any]:
        extra = {"caption": caption} if caption else {}
        return self.message(user_id, "message.image.received", message_id=message_id,
                            photo_url="https://photo-stal-1.zadn.vn/photo.jpg", **extra)

    def unsupported(self, user_id: str, *, message_id: str | None = None) -> dict[str, Any]:
        return self.message(user_id, "message.unsupported.received", message_id=message_id)

    async def post_webhook(self, update: dict[str, Any] | bytes, *, secret: str | bool | None = True,
                           url: str | None = None) -> tuple[int, str]:
        """POST `update` to the webhook as Zalo does (the bare update, the secret header).

        `secret=True` sends the registered secret, a string sends that one, None no header;
        bytes are sent as they are (to test a body that is not JSON). Returns (status, body).
        """
        target = url or self.webhook["url"]
        if not target:
            raise RuntimeError("no webhook is set")
        token = self.webhook["secret_token"] if secret is True else secret
        headers = {SECRET_HEADER: token} if isinstance(token, str) else {}
        if self._http is None:
            self._http = aiohttp.ClientSession()
        if isinstance(update, bytes):
            headers["Content-Type"] = "application/json"
            request = self._http.post(target, data=update, headers=headers)
        else:
            request = self._http.post(target, json=update, headers=headers)
        async with request as resp:
            return resp.status, await resp.text()

    def fail(self, method: str, *, status: int = 500, retry_after: int | None = None, times: int = 1,
             description: str | None = None) -> None:
        """Answer the next `times` calls of `method` with an error (a 429 carries `retry_after`)."""
        failure = _Failure(status, retry_after, times, description)
        self._failures.setdefault(method.lower(), []).append(failure)

    # -- what tests read --------------------------------------------------------------------

    def calls_to(self, method: str, where: Callable[[dict[str, Any]], bool] | None = None) -> list[
            dict[str, Any]]:
        calls = self._by_method.get(_METHOD_NAMES.get(method.lower(), method), [])
        return [c.params for c in calls if where is None or where(c.params)]

    def sent_texts(self, chat_id: str | None = None) -> list[str]:
        """Texts (sendMessage) and captions (sendPhoto) the bot sent, in order."""
        out: list[str] = []
        for call in self.calls:
            if call.method not in ("sendMessage", "sendPhoto"):
                continue
            if chat_id is not None and call.params.get("chat_id") != chat_id:
                continue
            text = call.params.get("text", call.params.get("caption"))
            if text is not None:
                out.append(text)
        return out

    async def wait_for(self, method: str, count: int = 1, timeout: float = 5.0,  # noqa: ASYNC109
                       where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """The params of the first `count` calls of `method` (matching `where`), once there."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: len(self.calls_to(method, where)) >= count)
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
            return _error(401, "Unauthorized: invalid token")
        method = _METHOD_NAMES.get(request.match_info["method"].lower())
        if method is None:
            return _error(404, "Not Found: method not found")
        params: dict[str, Any] = {}
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                return _error(400, "Bad Request: the body is not JSON")
            params = body if isinstance(body, dict) else {}
        injected = self._take_failure(method)
        if injected is not None:
            self.failed.append(Call(method, params))
            await self._notify()
            return injected
        handler = getattr(self, f"_m_{method}", None)
        result = await handler(params) if handler is not None else True
        call = Call(method, params)
        if isinstance(result, web.Response) and result.status != EMPTY_POLL:
            self.failed.append(call)
            await self._notify()
            return result
        self.calls.append(call)
        self._by_method.setdefault(method, []).append(call)
        await self._notify()
        if isinstance(result, web.Response):
            return result
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
                          parameters={"retry_after": retry_after}, headers={"Retry-After": str(retry_after)})
        if failure.status == 502 and failure.description is None:
            # What a proxy in front of an API that is down answers: HTML, no envelope.
            return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>",
                                content_type="text/html")
        return _error(failure.status, failure.description or _REASONS.get(failure.status, "Error"))

    async def _m_getMe(self, params: dict[str, Any]) -> Any:
        return self.bot_info

    async def _m_getUpdates(self, params: dict[str, Any]) -> Any:
        if self.webhook["url"]:
            return _error(409, "Conflict: a webhook is set; delete it before polling")
        try:
            wait = min(float(params.get("timeout") or 0), self.max_poll_wait)
        except (TypeError, ValueError):
            return _error(400, "Bad Request: timeout must be a number")
        deadline = time.monotonic() + wait
        while not self._queue and time.monotonic() < deadline:
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())), self._changed:
                    await self._changed.wait()
            except TimeoutError:
                pass
        if not self._queue:
            return _error(EMPTY_POLL, "Request timeout: no update")
        return self._queue.pop(0)

    async def _m_setWebhook(self, params: dict[str, Any]) -> Any:
        url, secret = params.get("url"), params.get("secret_token")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return _error(400, "Bad Request: url must be an http(s) URL")
        if not isinstance(secret, str) or not 8 <= len(secret) <= 256:
            return _error(400, "Bad Request: secret_token must be 8 to 256 characters")
        self.webhook = {"url": url, "secret_token": secret}
        return {"url": url, "updated_at": int(time.time() * 1000)}

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> Any:
        self.webhook = {"url": "", "secret_token": None}
        return {"url": "", "updated_at": int(time.time() * 1000)}

    async def _m_getWebhookInfo(self, params: dict[str, Any]) -> Any:
        return {"url": self.webhook["url"], "updated_at": int(time.time() * 1000)}

    async def _m_sendMessage(self, params: dict[str, Any]) -> Any:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            return _error(400, "Bad Request: text is empty")
        if len(text) > MAX_TEXT:
            return _error(400, f"Bad Request: text is longer than {MAX_TEXT} characters")
        return self._sent(params)

    async def _m_sendPhoto(self, params: dict[str, Any]) -> Any:
        photo = params.get("photo")
        if not isinstance(photo, str) or not photo.startswith(("http://", "https://")):
            return _error(400, "Bad Request: photo must be an http(s) URL")
        return self._sent(params)

    async def _m_sendChatAction(self, params: dict[str, Any]) -> Any:
        if not isinstance(params.get("chat_id"), str):
            return _error(400, "Bad Request: chat_id must be a string")
        return True

    def _sent(self, params: dict[str, Any]) -> Any:
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, str) or not chat_id:
            return _error(400, "Bad Request: chat_id must be a string")
        return {"message_id": f"bot{next(self._message_ids):08d}", "date": int(time.time() * 1000)}


def _error(status: int, description: str, *, parameters: dict[str, Any] | None = None,
           headers: dict[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status, headers=headers)
