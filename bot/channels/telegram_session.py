"""The Bot API session: calls go as one JSON body, and the hot ones skip aiogram's models (issue 19).

aiogram's AiohttpSession sends every call as an urlencoded form, JSON-encoding each nested value
(a keyboard, a reply's entities) on its own and then quoting the whole form: a third of what
aiogram costs per call on a flow step. Telegram takes the same parameters as a JSON body
(`application/json`), built here in one `json.dumps`; which fields are sent is aiogram's rule
(None and empty strings left out; defaults such as parse_mode resolved by `prepare_value`).
A call with a file to upload goes as aiogram's multipart form, unchanged.

The calls of every update (sendMessage, the edits, answerCallbackQuery, a chat's setMyCommands)
go one step further: an `ApiCall` is the method's name and its JSON parameters as plain dicts
(no pydantic model to build and dump), and `call_json` reads only what GoCua uses of the answer
(`ok`, the result's `message_id` and whether it is a photo or document, `error_code`,
`description`, `parameters.retry_after` / `migrate_to_chat_id`) instead of validating it into
aiogram's types. Its errors are aiogram's exceptions, chosen by aiogram's rules
(`BaseSession.check_response`), so retries, flood waits and refusals are handled as before; an
answer of the wrong shape (a boolean where an id belongs) is aiogram's ClientDecodeError, except
that a 5xx answer which is not the Bot API's JSON (a proxy's HTML 502) is a TelegramServerError,
retried like the Bot API's own (aiogram would raise ClientDecodeError, which nothing retries).
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import (
    ClientDecodeError,
    RestartingTelegram,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    SendMessage,
    SetMyCommands,
    TelegramMethod,
)
from aiogram.methods.base import TelegramType
from aiogram.types import InputFile
from aiohttp import ClientError, ClientTimeout

JSON_HEADERS = {"Content-Type": "application/json"}
MEDIA_KINDS = ("photo", "document", "video", "animation")  # a message whose caption is edited

# What each lean method returns: a Message, a Message or True (an edit), or a bool.
_MESSAGE, _MESSAGE_OR_TRUE, _BOOL = "message", "message or true", "bool"
_RETURNS: dict[type[TelegramMethod[Any]], str] = {
    SendMessage: _MESSAGE,
    EditMessageText: _MESSAGE_OR_TRUE,
    EditMessageCaption: _MESSAGE_OR_TRUE,
    EditMessageReplyMarkup: _MESSAGE_OR_TRUE,
    AnswerCallbackQuery: _BOOL,
    SetMyCommands: _BOOL,
}
_STATUS_ERRORS: dict[int, type[TelegramAPIError]] = {
    HTTPStatus.BAD_REQUEST: TelegramBadRequest,
    HTTPStatus.NOT_FOUND: TelegramNotFound,
    HTTPStatus.CONFLICT: TelegramConflictError,
    HTTPStatus.UNAUTHORIZED: TelegramUnauthorizedError,
    HTTPStatus.FORBIDDEN: TelegramForbiddenError,
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: TelegramEntityTooLarge,
}


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One Bot API call as JSON: `method` is the aiogram class that names it (its URL, and the
    model an error carries), `params` its parameters as Telegram reads them (plain dicts, lists,
    strings and integers; nothing None)."""

    method: type[TelegramMethod[Any]]
    params: dict[str, Any]

    def __post_init__(self) -> None:
        if self.method not in _RETURNS:
            raise ValueError(f"{self.method.__name__} has no lean call (use the aiogram method)")

    @property
    def name(self) -> str:
        return self.method.__api_method__

    def as_method(self) -> TelegramMethod[Any]:
        """The aiogram method with these parameters, unvalidated: what an error carries (its
        `method`, read by log lines and TelegramRetryAfter's text)."""
        return self.method.model_construct(**self.params)

    def validated(self) -> TelegramMethod[Any]:
        """The aiogram method, validated: for a Bot whose session has no `call_json`."""
        return self.method.model_validate(self.params)


@dataclass(frozen=True, slots=True)
class SentMessage:
    """What GoCua reads of a message Telegram answers with: its id, and whether it is a photo or
    document (its caption, not a text, is what an edit replaces)."""

    message_id: int
    media: bool = False

    @classmethod
    def of(cls, message: Any) -> SentMessage:
        """What GoCua reads of aiogram's Message (or any object with its attributes)."""
        return cls(message.message_id, any(getattr(message, kind, None) for kind in MEDIA_KINDS))


def _int(value: Any) -> bool:
    """An integer, and not a boolean (JSON `true` is no id and no number of seconds)."""
    return type(value) is int


def read_answer(call: ApiCall, status: int, content: str, loads: Any) -> SentMessage | bool:
    """The result of `call` from Telegram's answer (`status`, body `content`), or aiogram's
    exception for it (the rules of aiogram's `BaseSession.check_response`)."""
    try:
        answer = loads(content)
    except Exception as exc:  # the decoder may raise anything, as in aiogram
        _not_the_bot_api(call.as_method(), status)
        raise ClientDecodeError("Failed to decode object", exc, content) from exc
    if not isinstance(answer, dict) or type(answer.get("ok")) is not bool:
        _not_the_bot_api(call.as_method(), status)
        raise ClientDecodeError("Failed to deserialize object", ValueError("no 'ok' in the answer"), answer)
    if answer["ok"] and HTTPStatus.OK <= status <= HTTPStatus.IM_USED:
        return _result(call, answer.get("result"), answer)
    description = answer.get("description")
    if not isinstance(description, str):
        description = "" if description is None else str(description)
    parameters = answer.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise ClientDecodeError("Failed to deserialize object", ValueError("parameters"), answer)
    if parameters:
        retry_after = parameters.get("retry_after")
        migrate_to = parameters.get("migrate_to_chat_id")
        for value in (retry_after, migrate_to):
            if value is not None and not _int(value):
                raise ClientDecodeError("Failed to deserialize object", ValueError("not an integer"), answer)
        if retry_after:
            raise TelegramRetryAfter(method=call.as_method(), message=description, retry_after=retry_after)
        if migrate_to:
            raise TelegramMigrateToChat(method=call.as_method(), message=description,
                                        migrate_to_chat_id=migrate_to)
    error = _STATUS_ERRORS.get(status)
    if error is None and status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        error = RestartingTelegram if "restart" in description else TelegramServerError
    raise (error or TelegramAPIError)(method=call.as_method(), message=description)


def _not_the_bot_api(method: TelegramMethod[Any], status: int) -> None:
    """A 5xx answer that is not the Bot API's JSON (a proxy's HTML 502 or 504 in an outage) is
    a server error, retried and then a failed delivery like the Bot API's own 5xx, not a reply
    lost to a decoding error (aiogram raises ClientDecodeError, which nothing retries)."""
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        raise TelegramServerError(method=method, message=f"HTTP {status}, not a Bot API answer")


def _result(call: ApiCall, result: Any, answer: Any) -> SentMessage | bool:
    returns = _RETURNS[call.method]
    if returns == _BOOL:
        if type(result) is bool:
            return result
    elif isinstance(result, dict):
        message_id = result.get("message_id")
        if type(message_id) is int:  # not a bool
            return SentMessage(message_id, any(result.get(kind) for kind in MEDIA_KINDS))
    elif returns == _MESSAGE_OR_TRUE and type(result) is bool:
        return result
    raise ClientDecodeError("Failed to deserialize object",
                            ValueError(f"{call.name}: an unexpected result"), answer)


class JsonBodySession(AiohttpSession):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Built once: the URL of each (token, method) and the timeout of each length.
        self._urls: dict[tuple[str, str], str] = {}
        self._timeouts: dict[float, ClientTimeout] = {}

    def payload(self, bot: Bot, method: TelegramMethod[Any]) -> tuple[dict[str, Any], dict[str, InputFile]]:
        """The JSON parameters aiogram would send for `method`, and the files it uploads."""
        files: dict[str, InputFile] = {}
        payload: dict[str, Any] = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is None or prepared == "":  # what the form leaves out
                continue
            payload[key] = prepared
        return payload, files

    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None  # noqa: ASYNC109
    ) -> TelegramType:
        payload, files = self.payload(bot, method)
        if files:
            return await super().make_request(bot, method, timeout)
        status, raw_result = await self._post(bot, method.__api_method__, payload, timeout,
                                              lambda: method)
        try:
            response = self.check_response(bot=bot, method=method, status_code=status, content=raw_result)
        except ClientDecodeError:
            _not_the_bot_api(method, status)
            raise
        return cast(TelegramType, response.result)

    async def call_json(self, bot: Bot, call: ApiCall, timeout: int | None = None  # noqa: ASYNC109
                        ) -> SentMessage | bool:
        """`call` without aiogram's models: a SentMessage for a message, else Telegram's bool."""
        status, content = await self._post(bot, call.name, call.params, timeout, call.as_method)
        return read_answer(call, status, content, self.json_loads)

    async def _post(self, bot: Bot, name: str, payload: dict[str, Any], timeout: int | None,  # noqa: ASYNC109
                    method: Any) -> tuple[int, str]:
        session = await self.create_session()
        token = bot.token
        url = self._urls.get((token, name))
        if url is None:
            url = self._urls[(token, name)] = self.api.api_url(token=token, method=name)
        seconds = self.timeout if timeout is None else timeout
        client_timeout = self._timeouts.get(seconds)
        if client_timeout is None:
            client_timeout = self._timeouts[seconds] = ClientTimeout(total=seconds)
        try:
            async with session.post(url, data=self.json_dumps(payload), headers=JSON_HEADERS,
                                    timeout=client_timeout) as resp:
                return resp.status, await resp.text()
        except TimeoutError as exc:
            raise TelegramNetworkError(method=method(), message="Request timeout error") from exc
        except ClientError as exc:
            raise TelegramNetworkError(method=method(), message=f"{type(exc).__name__}: {exc}") from exc
