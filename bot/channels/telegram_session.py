"""The Bot API session: calls without a file go as one JSON body (issue 19).

aiogram's AiohttpSession sends every call as an urlencoded form, JSON-encoding each nested value
(a keyboard, a reply's entities) on its own and then quoting the whole form: a third of what
aiogram costs per call on a flow step. Telegram takes the same parameters as a JSON body
(`application/json`), built here in one `json.dumps`; which fields are sent is aiogram's rule
(None and empty strings left out; defaults such as parse_mode resolved by `prepare_value`).
A call with a file to upload goes as aiogram's multipart form, unchanged. The response is read
and checked by aiogram as before (errors, retry-after, the typed result).
"""

from __future__ import annotations

from typing import Any, cast

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import InputFile
from aiohttp import ClientError, ClientTimeout

JSON_HEADERS = {"Content-Type": "application/json"}


class JsonBodySession(AiohttpSession):
    async def make_request(
        self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None  # noqa: ASYNC109
    ) -> TelegramType:
        files: dict[str, InputFile] = {}
        payload: dict[str, Any] = {}
        for key, value in method.model_dump(warnings=False).items():
            prepared = self.prepare_value(value, bot=bot, files=files, _dumps_json=False)
            if prepared is None or prepared == "":  # what the form leaves out
                continue
            payload[key] = prepared
        if files:
            return await super().make_request(bot, method, timeout)
        session = await self.create_session()
        url = self.api.api_url(token=bot.token, method=method.__api_method__)
        try:
            seconds = self.timeout if timeout is None else timeout
            async with session.post(url, data=self.json_dumps(payload), headers=JSON_HEADERS,
                                    timeout=ClientTimeout(total=seconds)) as resp:
                raw_result = await resp.text()
        except TimeoutError as exc:
            raise TelegramNetworkError(method=method, message="Request timeout error") from exc
        except ClientError as exc:
            raise TelegramNetworkError(method=method, message=f"{type(exc).__name__}: {exc}") from exc
        response = self.check_response(bot=bot, method=method, status_code=resp.status, content=raw_result)
        return cast(TelegramType, response.result)
