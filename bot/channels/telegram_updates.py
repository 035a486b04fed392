"""A webhook's Update read straight from its JSON: only what `Incoming` needs (issue 19).

aiogram validates a whole Update into pydantic models (the message, its chat, its sender, every
entity) before GoCua reads six fields of it. `update_from_json` reads those fields from the
JSON body for the two kinds the bot serves, a private chat's message and a button pressed in one,
and returns a `LeanUpdate`: the update id, the `Incoming` (exactly what
`telegram_render.incoming_from_update` makes of aiogram's Update) and the button's query id.
Anything else, or a shape it does not expect, is left to aiogram (`None`: the caller validates
the body with aiogram as before). An id that is a JSON boolean is refused (ValueError, as a
malformed update): pydantic would read `true` as 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.channels.telegram_render import message_ref
from bot.channels.telegram_session import MEDIA_KINDS, SentMessage
from bot.channels.telegram_settings import CHANNEL
from handlers.types import Incoming, IncomingFile


@dataclass(frozen=True, slots=True)
class LeanUpdate:
    """A webhook update read by `update_from_json`."""

    update_id: int
    incoming: Incoming
    callback_id: str | None = None  # the callback query to answer (a button press)


class _Unexpected(Exception):
    """A shape the lean reader leaves to aiogram."""


def update_from_json(body: Any) -> LeanUpdate | None:
    """The update in a webhook's JSON body, or None when aiogram should read it (another kind,
    a group chat, an unexpected shape). ValueError for an id that is a boolean."""
    if not isinstance(body, dict) or len(body) != 2:
        return None
    update_id = body.get("update_id")
    try:
        if "message" in body:
            return LeanUpdate(_id(update_id), _message(body["message"], _id(update_id)))
        if "callback_query" in body:
            return _callback(body["callback_query"], _id(update_id))
    except _Unexpected:
        return None
    return None


def _id(value: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bool):
        raise ValueError("a boolean where Telegram sends an integer id")
    raise _Unexpected


def _str(value: Any, *, optional: bool = False) -> Any:
    if isinstance(value, str) or (optional and value is None):
        return value
    raise _Unexpected


def _dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise _Unexpected


def _private_chat(message: dict[str, Any]) -> int:
    """The id of the message's chat; _Unexpected unless it is a private chat."""
    chat = _dict(message.get("chat"))
    chat_id = _id(chat.get("id"))
    if chat.get("type") != "private":
        raise _Unexpected  # aiogram's path ignores it (and logs it the same way)
    return chat_id


def _sender(user: Any) -> tuple[str, str, str | None]:
    """(id, full name as aiogram's User.full_name writes it, language code)."""
    user = _dict(user)
    user_id = _id(user.get("id"))
    if type(user.get("is_bot")) is not bool:
        raise _Unexpected
    first = _str(user.get("first_name"))
    last = _str(user.get("last_name"), optional=True)
    return str(user_id), f"{first} {last}" if last else first, _str(user.get("language_code"), optional=True)


def _message(message: Any, update_id: int) -> Incoming:
    message = _dict(message)
    message_id = _id(message.get("message_id"))
    _id(message.get("date"))
    chat_id = _private_chat(message)
    if "from" not in message:
        raise _Unexpected
    sender, name, language = _sender(message["from"])
    text = _str(message.get("text"), optional=True)
    caption = _str(message.get("caption"), optional=True)
    photo = message.get("photo")
    if photo is not None and not isinstance(photo, list):
        raise _Unexpected
    file: IncomingFile | None = None
    if "document" in message:
        document = _dict(message["document"])
        _str(document.get("file_unique_id"))
        size = document.get("file_size")
        if size is not None:
            _id(size)
        file = IncomingFile(_str(document.get("file_id")),
                            _str(document.get("file_name"), optional=True) or "", size or 0)
    return Incoming(
        channel=CHANNEL,
        chat_id=str(chat_id),
        sender_id=sender,
        display_name=name,
        update_id=str(update_id),
        text=text if text is not None else (caption if photo else None),
        message_id=str(message_id),
        language_hint=language,
        file=file,
    )


def _callback(query: Any, update_id: int) -> LeanUpdate:
    query = _dict(query)
    query_id = _str(query.get("id"))
    _str(query.get("chat_instance"))
    sender, name, language = _sender(query.get("from"))
    data = _str(query.get("data"), optional=True)
    pressed = _dict(query.get("message"))  # the message with the button (maybe too old to edit)
    message_id = _id(pressed.get("message_id"))
    _id(pressed.get("date"))
    chat_id = _private_chat(pressed)
    for kind in MEDIA_KINDS:
        if pressed.get(kind) is not None and not isinstance(pressed[kind], (list, dict)):
            raise _Unexpected
    sent = SentMessage(message_id, any(pressed.get(kind) for kind in MEDIA_KINDS))
    incoming = Incoming(
        channel=CHANNEL,
        chat_id=str(chat_id),
        sender_id=sender,
        display_name=name,
        update_id=str(update_id),
        payload=data,
        language_hint=language,
        message_ref=message_ref(sent),
    )
    return LeanUpdate(update_id, incoming, query_id)
