"""The server plumbing the Bot API stand-ins share (tests/fakes/telegram_api.py, zalo_api.py).

A stand-in is a real aiohttp server on 127.0.0.1 (random port) answering
`{base}/bot{token}/{method}`. This base keeps the queue of updates, records every call, fails
calls on purpose, posts to the bot's webhook and waits for calls; a platform's stand-in says
which methods it knows (`methods`), how it reads a call's parameters (`read_params`), what an
error looks like on the wire (`error`) and answers each method in an `_m_<method>` coroutine.
No pytest here: bench/ imports the stand-ins too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import aiohttp
from aiohttp import web

REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
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


def error(status: int, description: str, *, parameters: dict[str, Any] | None = None,
          headers: dict[str, str] | None = None) -> web.Response:
    """The Bot API's error envelope."""
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status, headers=headers)


class FakeBotAPI:
    """The shared part of a stand-in. Use `async with` or `await start()` / `await close()`."""

    methods: ClassVar[tuple[str, ...]]  # the Bot API methods it answers, in their spelling
    secret_header: ClassVar[str]  # the header a webhook POST carries the secret in
    text_methods: ClassVar[tuple[str, ...]]  # whose `text` or `caption` `sent_texts` lists
    unauthorized: ClassVar[str] = "Unauthorized"  # the description of a 401 for a wrong token
    html_502: ClassVar[bool] = False  # an injected 502 is a proxy's HTML page, not an envelope
    ok_statuses: ClassVar[tuple[int, ...]] = ()  # error answers recorded as calls (Zalo's 408)

    def __init__(self, token: str, *, max_poll_wait: float) -> None:
        self.token = token
        self.max_poll_wait = max_poll_wait
        self.calls: list[Call] = []  # calls answered normally
        self.failed: list[Call] = []  # calls answered with an injected or a real error
        self.webhook: dict[str, Any] = {"url": "", "secret_token": None}  # as setWebhook left it
        self._by_method: dict[str, list[Call]] = {}
        self._names = {name.lower(): name for name in self.methods}
        self._queue: list[dict[str, Any]] = []
        self._failures: dict[str, list[_Failure]] = {}
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> Self:
        app = web.Application(client_max_size=60 * 1024 * 1024)
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

    async def __aenter__(self) -> Self:
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

    async def post_webhook(self, update: dict[str, Any] | bytes, *, secret: str | bool | None = True,
                           url: str | None = None) -> tuple[int, str]:
        """POST `update` to the webhook as the platform does. `secret=True` sends the registered
        secret, a string sends that one, None no header; bytes are sent as they are (a body
        that is not JSON). Returns (status, body)."""
        target = url or self.webhook["url"]
        if not target:
            raise RuntimeError("no webhook is set")
        token = self.webhook["secret_token"] if secret is True else secret
        headers = {self.secret_header: token} if isinstance(token, str) else {}
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
        self._failures.setdefault(method.lower(), []).append(
            _Failure(status, retry_after, times, description))

    # -- what tests read --------------------------------------------------------------------

    def calls_to(self, method: str, where: Callable[[dict[str, Any]], bool] | None = None) -> list[
            dict[str, Any]]:
        calls = self._by_method.get(self._names.get(method.lower(), method), [])
        return [c.params for c in calls if where is None or where(c.params)]

    def sent_texts(self, chat_id: int | str | None = None) -> list[str]:
        """Texts (and captions) the bot sent, in order, optionally to one chat."""
        out: list[str] = []
        for call in self.calls:
            if call.method not in self.text_methods:
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

    async def _wait_for_queue(self, wait: float, ready: Callable[[], bool]) -> None:
        """A long poll: until `ready()` or `wait` seconds (at most `max_poll_wait`) have passed."""
        deadline = time.monotonic() + min(wait, self.max_poll_wait)
        while not ready() and time.monotonic() < deadline:
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())), self._changed:
                    await self._changed.wait()
            except TimeoutError:
                pass

    # -- the server -------------------------------------------------------------------------

    async def read_params(self, request: web.Request) -> dict[str, Any] | web.Response:
        raise NotImplementedError

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return error(401, self.unauthorized)
        method = self._names.get(request.match_info["method"].lower())
        if method is None:
            return error(404, "Not Found: method not found")
        params = await self.read_params(request)
        if isinstance(params, web.Response):
            return params
        injected = self._take_failure(method)
        if injected is not None:
            self.failed.append(Call(method, params))
            await self._notify()
            return injected
        handler = getattr(self, f"_m_{method}", None)
        result = await handler(params) if handler is not None else True
        call = Call(method, params)
        if isinstance(result, web.Response) and result.status not in self.ok_statuses:
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
            return error(429, failure.description or f"Too Many Requests: retry after {retry_after}",
                         parameters={"retry_after": retry_after}, headers={"Retry-After": str(retry_after)})
        if failure.status == 502 and failure.description is None and self.html_502:
            # What a proxy in front of an API that is down answers: HTML, no envelope.
            return web.Response(status=502, text="<html><body>502 Bad Gateway</body></html>",
                                content_type="text/html")
        return error(failure.status, failure.description or REASONS.get(failure.status, "Error"))
