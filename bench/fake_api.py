"""A lean Telegram Bot API sink for the throughput benchmark (its own process).

It answers `{base}/bot{token}/{method}` with Telegram-shaped JSON, quickly, and counts what the
bot sent. It is not a Telegram emulator: it keeps no state besides counters.

    python bench/fake_api.py --port 8081

Control endpoints (used by bench/throughput.py):
    GET  /__stats  -> {"methods": {method: n}, "send_message": {chat_id: n}, "errors": n}
    POST /__reset  -> zero every counter
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}
TRUE_METHODS = frozenset({
    "setWebhook", "deleteWebhook", "setMyCommands", "deleteMyCommands", "answerCallbackQuery",
    "setChatMenuButton", "sendChatAction", "setMyDescription", "setMyShortDescription", "close",
    "logOut",
})
# Methods that return a Message; the rest of the unknown ones get `true`.
MESSAGE_PREFIXES = ("send", "edit", "copy", "forward")
JSON_HEADERS = {"Content-Type": "application/json"}


class Sink:
    def __init__(self) -> None:
        self.methods: Counter[str] = Counter()
        self.send_message: Counter[str] = Counter()
        self.errors = 0
        self.message_id = 0

    def reset(self) -> None:
        self.methods.clear()
        self.send_message.clear()
        self.errors = 0

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith("/__"):
            return self.control(request)
        # /bot<token>/<method>
        parts = path.split("/")
        if len(parts) != 3 or not parts[1].startswith("bot"):
            self.errors += 1
            return _json(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        method = parts[2]
        fields = await _fields(request)
        self.methods[method] += 1
        if method in TRUE_METHODS:
            return _ok(True)
        if method == "getMe":
            return _ok(BOT_USER)
        if method == "getWebhookInfo":
            return _ok({"url": "", "has_custom_certificate": False, "pending_update_count": 0})
        if method == "getUpdates":
            return _ok([])
        if method.startswith(MESSAGE_PREFIXES):
            chat_id = fields.get("chat_id")
            if chat_id is None and "inline_message_id" in fields:
                return _ok(True)
            if chat_id is None:
                self.errors += 1
                return _json(400, {"ok": False, "error_code": 400,
                                   "description": "Bad Request: chat_id is empty"})
            if method == "sendMessage":
                self.send_message[chat_id] += 1
            if method.startswith("edit"):
                message_id = int(fields.get("message_id") or 1)
            else:
                self.message_id += 1
                message_id = self.message_id
            return _ok(_message(message_id, chat_id, fields.get("text")))
        return _ok(True)

    def control(self, request: web.BaseRequest) -> web.StreamResponse:
        if request.path == "/__stats":
            return _json(200, {"methods": dict(self.methods), "send_message": dict(self.send_message),
                               "errors": self.errors})
        if request.path == "/__reset" and request.method == "POST":
            self.reset()
            return _json(200, {"ok": True})
        if request.path == "/__health":
            return _json(200, {"ok": True})
        return _json(404, {"ok": False})


async def _fields(request: web.BaseRequest) -> dict[str, str]:
    ctype = request.content_type
    if ctype == "application/x-www-form-urlencoded":
        return dict(parse_qsl((await request.read()).decode(), keep_blank_values=True))
    if ctype == "application/json":
        try:
            data = json.loads(await request.read() or b"{}")
        except ValueError:
            return {}
        return {k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
    if ctype.startswith("multipart/"):
        post = await request.post()
        return {k: v for k, v in post.items() if isinstance(v, str)}
    # aiogram sends a method without parameters as an empty body
    return dict(parse_qsl((await request.read()).decode(), keep_blank_values=True))


def _message(message_id: int, chat_id: str, text: str | None) -> dict[str, Any]:
    try:
        chat: int | str = int(chat_id)
    except ValueError:
        chat = chat_id
    message: dict[str, Any] = {
        "message_id": message_id,
        "from": BOT_USER,
        "chat": {"id": chat, "type": "private", "first_name": "Bench"},
        "date": int(time.time()),
    }
    if text is not None:
        message["text"] = text
    return message


def _ok(result: Any) -> web.Response:
    return _json(200, {"ok": True, "result": result})


def _json(status: int, body: Any) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), headers=JSON_HEADERS)


async def serve(host: str, port: int) -> None:
    sink = Sink()
    server = web.Server(sink.handle, access_log=None)
    runner = web.ServerRunner(server, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=1024)
    await site.start()
    print(f"fake Telegram API on http://{host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        parser.error("the sink listens on the loopback interface only")
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
