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
for them, bot/channels/zalo_api.py, so that a correction there reaches the stand-in too. The
server plumbing is tests/fakes/base.py's. No pytest here.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from aiohttp import web

from bot.channels.zalo_api import EMPTY_POLL, MAX_TEXT, SECRET_HEADER, TEXT_EVENT
from tests.fakes.base import Call, FakeBotAPI
from tests.fakes.base import error as _error

__all__ = ["MAX_TEXT", "SECRET_HEADER", "Call", "FakeZaloAPI"]

DEFAULT_TOKEN = "1234567890:TEST-fake-zalo-token_for-gocua"

class FakeZaloAPI(FakeBotAPI):
    """The Zalo Bot API stand-in. Use `async with` or `await start()` / `await close()`;
    `go_down()` / `come_back()` make it refuse connections, then serve on the same port."""

    methods = ("getMe", "getUpdates", "setWebhook", "deleteWebhook", "getWebhookInfo", "sendMessage",
               "sendPhoto", "sendSticker", "sendChatAction")
    secret_header = SECRET_HEADER
    text_methods = ("sendMessage", "sendPhoto")
    unauthorized = "Unauthorized: invalid token"
    html_502 = True
    ok_statuses = (EMPTY_POLL,)  # an empty poll is an answer, recorded as a call

    def __init__(self, token: str = DEFAULT_TOKEN, *, max_poll_wait: float = 0.2) -> None:
        super().__init__(token, max_poll_wait=max_poll_wait)
        self.bot_info = {"id": token.split(":", 1)[0], "account_name": "gocua_test_bot",
                         "account_type": "BASIC", "display_name": "GoCua"}
        self._message_ids = itertools.count(1)

    # -- what tests push --------------------------------------------------------------------

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

    # -- the server -------------------------------------------------------------------------

    async def read_params(self, request: web.Request) -> dict[str, Any] | web.Response:
        if not request.can_read_body:
            return {}
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "Bad Request: the body is not JSON")
        return body if isinstance(body, dict) else {}

    async def _m_getMe(self, params: dict[str, Any]) -> Any:
        return self.bot_info

    async def _m_getUpdates(self, params: dict[str, Any]) -> Any:
        if self.webhook["url"]:
            return _error(409, "Conflict: a webhook is set; delete it before polling")
        try:
            wait = float(params.get("timeout") or 0)
        except (TypeError, ValueError):
            return _error(400, "Bad Request: timeout must be a number")
        await self._wait_for_queue(wait, lambda: bool(self._queue))
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
