"""The Zalo Bot Platform API: every assumption GoCua makes about Zalo, and a small aiohttp client.

Zalo's documentation could not be read while this was written; the facts come from
shared/zalo.md (maintained client code). All of them are in the first section below, so that a
correction is one edit here: the channel (bot/channels/zalo.py) and the tests' stand-in follow.

The client posts JSON to `{ZALO_API_BASE}/bot{token}/{method}` and unwraps the envelope
`{"ok", "result", "error_code", "description"}`. Errors are typed: `ZaloUnauthorized` (a bad
token), `ZaloRateLimited` (429), `ZaloServerError` (5xx), `ZaloNetworkError` (no answer);
`ZaloUnavailable` when the retries (exponential back-off, capped) are used up; a plain
`ZaloError` for a refusal (a bad request). The token never appears in an error or a log line.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

log = structlog.get_logger("gocua.zalo")

# -- Zalo Bot Platform facts (shared/zalo.md): correct them here, nowhere else ----------------

CHANNEL = "zalo"
DEFAULT_API_BASE = "https://bot-api.zaloplatforms.com"
SECRET_HEADER = "X-Bot-Api-Secret-Token"  # on webhook POSTs, equal to setWebhook's secret_token
MAX_TEXT = 2000  # characters per sendMessage text
EMPTY_POLL = 408  # getUpdates' error_code when nothing arrived: not an error
UNAUTHORIZED = 401
RATE_LIMITED = 429
POLL_TIMEOUT = 30  # seconds getUpdates waits for an update (sent as a string, like "30")
TEXT_EVENT = "message.text.received"  # sticker / unsupported events carry no text
IMAGE_EVENT = "message.image.received"  # its `caption`, if any, is read as the text
PRIVATE_CHAT = "PRIVATE"  # bots cannot be added to groups; anything else is ignored
DEFAULT_RETRY_AFTER = 1.0  # seconds, when a 429 says nothing about how long to wait


def envelope_error(body: Any, http_status: int) -> tuple[int, str, float | None] | None:
    """(error code, description, retry-after) of a failed call; None when it succeeded.

    The envelope's `error_code` wins over the HTTP status (Zalo may answer HTTP 200 with
    `ok: false`). The retry-after of a 429 is read from `parameters.retry_after` (Telegram's
    place) or a `retry_after` field; the caller falls back on the HTTP Retry-After header.
    """
    if isinstance(body, Mapping) and body.get("ok") is True:
        return None
    if not isinstance(body, Mapping):
        return http_status, f"HTTP {http_status} without a JSON envelope", None
    try:
        code = int(body.get("error_code") or http_status)
    except (TypeError, ValueError):
        code = http_status
    if code < 400:  # ok: false without a usable code
        code = http_status if http_status >= 400 else 500
    description = str(body.get("description") or body.get("message") or f"error {code}")
    parameters = body.get("parameters")
    raw = parameters.get("retry_after") if isinstance(parameters, Mapping) else None
    return code, description, _seconds(raw if raw is not None else body.get("retry_after"))


def updates_of(result: Any) -> list[dict[str, Any]]:
    """getUpdates' result is ONE update (a dict); a list or null is accepted too."""
    if isinstance(result, Mapping):
        return [dict(result)]
    if isinstance(result, list):
        return [dict(u) for u in result if isinstance(u, Mapping)]
    return []


def webhook_update(body: Any) -> dict[str, Any] | None:
    """The update in a webhook POST: the bare update (also accepted inside an envelope)."""
    if not isinstance(body, Mapping):
        return None
    if "message" not in body and isinstance(body.get("result"), Mapping):
        body = body["result"]
    return dict(body)


@dataclass(frozen=True)
class ZaloMessage:
    """A private message to the bot, as GoCua needs it."""

    event: str
    message_id: str
    chat_id: str
    sender_id: str
    display_name: str
    text: str | None  # None for images, stickers and anything unsupported

    @property
    def update_key(self) -> str:
        """The id a redelivery repeats, for deduplication (processed_updates.update_id).

        The message id is scoped by the chat: zalo.md does not say that message ids are unique
        across chats, and a collision would silently drop another user's message. Fits the
        100-character column (a hash beyond that).
        """
        key = f"{self.chat_id}:{self.message_id}"
        return key if len(key) <= 100 else "h:" + hashlib.sha256(key.encode()).hexdigest()


def parse_update(update: Mapping[str, Any]) -> ZaloMessage | None:
    """The message in an update; None for what the bot does not serve (groups, other events,
    updates without the ids it needs)."""
    message = update.get("message")
    if not isinstance(message, Mapping):
        return None
    chat, sender = message.get("chat"), message.get("from")
    chat = chat if isinstance(chat, Mapping) else {}
    sender = sender if isinstance(sender, Mapping) else {}
    chat_type = chat.get("chat_type")
    if chat_type is not None and str(chat_type).upper() != PRIVATE_CHAT:
        return None
    message_id, chat_id = message.get("message_id"), chat.get("id")
    sender_id = sender.get("id", chat_id)
    if not (_is_id(message_id, limit=None) and _is_id(chat_id) and _is_id(sender_id)):
        return None
    event = str(update.get("event_name") or "")
    text = message.get("text")
    if event == IMAGE_EVENT:  # a photo with a caption: the caption is what the sender says
        caption = message.get("caption")
        text = caption if isinstance(caption, str) and caption.strip() else None
        event = TEXT_EVENT if text is not None else event
    return ZaloMessage(
        event=event,
        message_id=str(message_id),
        chat_id=str(chat_id),
        sender_id=str(sender_id),
        display_name=str(sender.get("display_name") or ""),
        text=text if event == TEXT_EVENT and isinstance(text, str) else None,
    )


ID_MAX = 100  # what the chat and account id columns hold


def _is_id(value: Any, limit: int | None = ID_MAX) -> bool:
    """A Zalo id: a non-empty string or an integer (not a boolean), within the columns' size.
    Anything else is not from Zalo: the update is ignored rather than failing again and again."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return False
    text = str(value)
    return bool(text.strip()) and (limit is None or len(text) <= limit)


# -- errors ----------------------------------------------------------------------------------

class ZaloError(Exception):
    """Zalo refused a call (or could not be reached: see the subclasses)."""

    def __init__(self, method: str, code: int, description: str) -> None:
        super().__init__(f"{method}: {code} {description}" if code else f"{method}: {description}")
        self.method = method
        self.code = code
        self.description = description


class ZaloUnauthorized(ZaloError):
    """401: the token is wrong or revoked."""


class ZaloTransientError(ZaloError):
    """Worth retrying: rate limited, a server error, no answer."""


class ZaloRateLimited(ZaloTransientError):
    def __init__(self, method: str, description: str, retry_after: float | None) -> None:
        super().__init__(method, RATE_LIMITED, description)
        self.retry_after = retry_after


class ZaloServerError(ZaloTransientError):
    """5xx (or an answer that is not the envelope)."""


class ZaloNetworkError(ZaloTransientError):
    """No answer: connection refused or reset, timeout, DNS."""

    def __init__(self, method: str, description: str) -> None:
        super().__init__(method, 0, description)


class ZaloUnavailable(ZaloError):
    """Zalo stayed unavailable (network, 5xx, 429) through the retries."""

    def __init__(self, last: ZaloTransientError) -> None:
        super().__init__(last.method, last.code, f"unavailable after retries: {last.description}")
        self.last = last


@dataclass(frozen=True)
class RetryPolicy:
    """Back-off for network errors and 5xx, and how long 429s are waited out."""

    first_delay: float = 0.5
    max_delay: float = 8.0
    tries: int = 5  # failures (network, 5xx) before giving up; 0.5+1+2+4 s of waiting
    rate_limited_tries: int = 3
    max_retry_after: float = 60.0  # a longer wait is not sat out (it would hold a chat's lock)

    def delay(self, failures: int) -> float:
        return min(self.max_delay, self.first_delay * 2 ** max(0, failures - 1))


# -- the client ------------------------------------------------------------------------------

class ZaloAPI:
    """`POST {base}/bot{token}/{method}` with a JSON body; one aiohttp session, opened lazily."""

    def __init__(self, token: str, base: str = DEFAULT_API_BASE, *, retry: RetryPolicy | None = None,
                 request_timeout: float = 20.0) -> None:
        self.token = token
        self.base = base.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.request_timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None

    # -- the methods GoCua uses -----------------------------------------------------------------

    async def get_me(self) -> dict[str, Any]:
        result = await self.call("getMe")
        return dict(result) if isinstance(result, Mapping) else {}

    async def get_updates(self, timeout: int = POLL_TIMEOUT) -> list[dict[str, Any]]:  # noqa: ASYNC109
        """One long poll, no retries (the polling loop backs off); [] when nothing arrived."""
        try:
            result = await self.call("getUpdates", {"timeout": str(timeout)}, retry=False,
                                     http_timeout=timeout + 15.0)
        except ZaloError as exc:
            if exc.code == EMPTY_POLL:
                return []
            raise
        return updates_of(result)

    async def set_webhook(self, url: str, secret_token: str) -> Any:
        return await self.call("setWebhook", {"url": url, "secret_token": secret_token})

    async def delete_webhook(self) -> Any:
        return await self.call("deleteWebhook")

    async def send_message(self, chat_id: str, text: str) -> Any:
        return await self.call("sendMessage", {"chat_id": chat_id, "text": text})

    async def send_photo(self, chat_id: str, photo: str, caption: str | None = None) -> Any:
        """`photo` is an http(s) URL that Zalo fetches."""
        params: dict[str, Any] = {"chat_id": chat_id, "photo": photo}
        if caption:
            params["caption"] = caption
        return await self.call("sendPhoto", params)

    async def send_chat_action(self, chat_id: str, action: str = "typing") -> Any:
        return await self.call("sendChatAction", {"chat_id": chat_id, "action": action})

    # -- the transport --------------------------------------------------------------------------

    async def call(self, method: str, params: Mapping[str, Any] | None = None, *, retry: bool = True,
                   http_timeout: float | None = None) -> Any:
        """The call's `result`; waits out 429s and retries 5xx and network errors unless
        `retry` is False. Raises ZaloUnavailable when the retries are used up."""
        failures = rate_limited = 0
        while True:
            try:
                return await self._post(method, params or {}, http_timeout)
            except ZaloRateLimited as exc:
                rate_limited += 1
                wait = exc.retry_after if exc.retry_after is not None else DEFAULT_RETRY_AFTER
                if not retry or rate_limited >= self.retry.rate_limited_tries \
                        or wait > self.retry.max_retry_after:
                    raise ZaloUnavailable(exc) if retry else exc from None
                log.warning("zalo.rate_limited", method=method, retry_after=wait)
                await asyncio.sleep(wait)
            except (ZaloServerError, ZaloNetworkError) as exc:
                failures += 1
                if not retry or failures >= self.retry.tries:
                    raise ZaloUnavailable(exc) if retry else exc from None
                delay = self.retry.delay(failures)
                log.warning("zalo.call_retry", method=method, delay=delay, error=str(exc))
                await asyncio.sleep(delay)

    async def _post(self, method: str, params: Mapping[str, Any], http_timeout: float | None) -> Any:
        session = self._session_for_loop()
        url = f"{self.base}/bot{self.token}/{method}"
        timeout = aiohttp.ClientTimeout(total=http_timeout or self.request_timeout)
        try:
            async with session.post(url, json=dict(params), timeout=timeout) as resp:
                status = resp.status
                header_wait = _seconds(resp.headers.get("Retry-After"))
                try:
                    body: Any = await resp.json(content_type=None)
                except ValueError:
                    body = None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ZaloNetworkError(method, self.scrub(f"{type(exc).__name__}: {exc}")) from None
        failed = envelope_error(body, status)
        if failed is None:
            return body.get("result")
        code, description, retry_after = failed
        description = self.scrub(description)
        if code == UNAUTHORIZED:
            raise ZaloUnauthorized(method, code, description)
        if code == RATE_LIMITED:
            wait = retry_after if retry_after is not None else header_wait
            raise ZaloRateLimited(method, description, wait)
        if code >= 500 or (code == EMPTY_POLL and method != "getUpdates"):
            raise ZaloServerError(method, code, description)
        raise ZaloError(method, code, description)

    def _session_for_loop(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    def scrub(self, text: str) -> str:
        """`text` without the token (error texts may quote the URL)."""
        return text.replace(self.token, "<token>") if self.token else text

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _seconds(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if value >= 0 else None
