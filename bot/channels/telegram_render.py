"""Pure translation between Telegram and the core: Update → Incoming, Reply → Bot API calls.

Nothing here does I/O; bot/channels/telegram.py sends what these functions build. A reply
without a file becomes lean `ApiCall`s (plain JSON, bot/channels/telegram_session.py); a file
goes as aiogram's SendDocument / SendPhoto (a multipart upload).
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import structlog
from aiogram.methods import SendDocument, SendMessage, SendPhoto, SetMyCommands, TelegramMethod
from aiogram.types import (
    BotCommand,
    BufferedInputFile,
    FSInputFile,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Update,
)

from bot.channels.telegram_session import ApiCall, SentMessage
from bot.channels.telegram_settings import CHANNEL
from handlers.dispatch import ROUTES
from handlers.i18n import translator
from handlers.types import Incoming, IncomingFile, Reply

log = structlog.get_logger("gocua.telegram")

MAX_TEXT = 4096  # Bot API limit for a message text
MAX_CAPTION = 1024  # Bot API limit for a document or photo caption
MAX_CALLBACK_DATA = 64  # bytes
_COMMAND_NAME = re.compile(r"^[a-z0-9_]{1,32}$")

ChatId = int | str
T = TypeVar("T")
NO_PREVIEW = {"is_disabled": True}  # LinkPreviewOptions(is_disabled=True) as Telegram reads it


def incoming_from_update(update: Update) -> Incoming | None:
    """The core's view of a private-chat message or button press; None for anything else."""
    if update.message is not None:
        message = update.message
        user = message.from_user
        if user is None or message.chat.type != "private":
            return None
        document = message.document
        return Incoming(
            channel=CHANNEL,
            chat_id=str(message.chat.id),
            sender_id=str(user.id),
            display_name=user.full_name,
            update_id=str(update.update_id),
            # None for stickers, voice, a photo without a caption …: the core answers those;
            # a photo's caption is what the sender says.
            text=message.text if message.text is not None else (message.caption if message.photo else None),
            message_id=str(message.message_id),
            language_hint=user.language_code,
            file=IncomingFile(document.file_id, document.file_name or "", document.file_size or 0)
            if document is not None else None,
        )
    query = update.callback_query
    if query is not None:
        pressed = query.message  # the message with the button (maybe too old to edit)
        if pressed is None or pressed.chat.type != "private":
            return None  # inline-mode buttons and group chats are not ours
        return Incoming(
            channel=CHANNEL,
            chat_id=str(pressed.chat.id),
            sender_id=str(query.from_user.id),
            display_name=query.from_user.full_name,
            update_id=str(update.update_id),
            payload=query.data,
            language_hint=query.from_user.language_code,
            message_ref=message_ref(pressed),
        )
    return None


def message_ref(message: Any) -> str:
    """The id of a tapped message as `Incoming.message_ref` keeps it: "<id>" for a text,
    "<id>:media" for a photo or document (its caption is what an edit replaces)."""
    sent = message if isinstance(message, SentMessage) else SentMessage.of(message)
    return f"{sent.message_id}:media" if sent.media else str(sent.message_id)


def parse_message_ref(ref: str) -> tuple[int, bool]:
    """(message id, whether it is a photo or document) of a `message_ref`."""
    raw, _, kind = ref.partition(":")
    return int(raw), kind == "media"


def chat_id_of(raw: str) -> ChatId:
    """Telegram chat ids are integers; '@channelname' stays a string."""
    return int(raw) if raw.lstrip("-").isdigit() else raw


def keyboard(reply: Reply) -> InlineKeyboardMarkup | None:
    """The reply's buttons as aiogram's model (for uploads; `keyboard_json` for the rest)."""
    markup = keyboard_json(reply)
    if markup is None:
        return None
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(**button) for button in row]
                                                 for row in markup["inline_keyboard"]])


def keyboard_json(reply: Reply) -> dict[str, Any] | None:
    """The reply's buttons as Telegram reads an InlineKeyboardMarkup; None without any."""
    buttons: list[dict[str, str]] = []
    for button in reply.buttons:
        if len(button.payload.encode()) > MAX_CALLBACK_DATA:
            # Telegram would refuse the whole message; drop the button, keep the text.
            log.error("telegram.button_dropped", reason="callback data over 64 bytes",
                      label=button.label[:40])
            continue
        buttons.append({"text": button.label, "callback_data": button.payload})
    if not buttons:
        return None
    return {"inline_keyboard": layout(buttons, reply.rows, reply.columns)}


def send_message(chat_id: ChatId, text: str, markup: dict[str, Any] | None = None, *,
                 preview: bool = True) -> ApiCall:
    """sendMessage as JSON (the parameters aiogram's SendMessage would send)."""
    params: dict[str, Any] = {"chat_id": chat_id, "text": text}
    if not preview:
        params["link_preview_options"] = NO_PREVIEW
    if markup is not None:
        params["reply_markup"] = markup
    return ApiCall(SendMessage, params)


def layout(buttons: list[T], rows: tuple[int, ...], columns: int) -> list[list[T]]:
    """`buttons` in rows: the first rows of the sizes in `rows`, the rest `columns` a row."""
    out: list[list[T]] = []
    start = 0
    for size in rows:
        if start >= len(buttons):
            break
        out.append(buttons[start:start + max(1, size)])
        start += max(1, size)
    per_row = max(1, columns)
    out += [buttons[i:i + per_row] for i in range(start, len(buttons), per_row)]
    return out


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Chunks of at most `limit` characters, cut at line ends (a longer line is cut hard)."""
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > limit:
            if current:
                chunks.append(current)
                current = ""
            chunks.append(line[:limit])
            line = line[limit:]
        if len(current) + len(line) > limit:
            chunks.append(current)
            current = ""
        current += line
    if current:
        chunks.append(current)
    stripped = [chunk.rstrip("\n") for chunk in chunks]
    return [chunk for chunk in stripped if chunk.strip()] or [text[:limit]]


def render(reply: Reply, chat_id: ChatId) -> list[TelegramMethod[Any] | ApiCall]:
    """The Bot API calls that show `reply` in `chat_id`, in order; the keyboard goes on the last."""
    attachment = reply.attachment
    if attachment is None:
        if not reply.text.strip():
            log.warning("telegram.empty_reply_skipped")
            return []
        markup_json = keyboard_json(reply)
        chunks = split_text(reply.text)
        last = len(chunks) - 1
        return [send_message(chat_id, chunk, markup_json if i == last else None, preview=reply.preview)
                for i, chunk in enumerate(chunks)]
    markup = keyboard(reply)
    calls: list[TelegramMethod[Any] | ApiCall] = []
    caption: str | None = reply.text if reply.text.strip() else None
    if caption is not None and len(caption) > MAX_CAPTION:
        calls += [send_message(chat_id, chunk) for chunk in split_text(caption)]
        caption = None
    # An export on disk is streamed from its file, never read into memory.
    file: InputFile = (FSInputFile(attachment.path, filename=attachment.filename)
                       if attachment.path is not None
                       else BufferedInputFile(attachment.data, filename=attachment.filename))
    if attachment.kind == "photo":
        calls.append(SendPhoto(chat_id=chat_id, photo=file, caption=caption, reply_markup=markup))
    else:
        if attachment.kind != "document":
            log.warning("telegram.unknown_attachment_kind", kind=attachment.kind)
        calls.append(SendDocument(chat_id=chat_id, document=file, caption=caption, reply_markup=markup))
    return calls


def bot_commands(locale: str, role: str = "resident") -> list[BotCommand]:
    """The commands of `role` (a resident's: anyone's), described in `locale`, in /help order."""
    return [BotCommand(command=command["command"], description=command["description"])
            for command in commands_json(locale, role)]


# (locale, role) → (the translator and the command table it was made from, the commands): a
# chat's menu is set on every /start, invite and /lang, and is the same for everyone of a role
# and language. A catalog reload (a new translator) or another command table makes it anew.
_menus: dict[tuple[str, str], tuple[object, object, int, list[dict[str, str]]]] = {}


def commands_json(locale: str, role: str = "resident") -> list[dict[str, str]]:
    """`bot_commands` as Telegram reads BotCommands (kept: do not change the list)."""
    t = translator(locale)
    table = ROUTES.commands
    kept = _menus.get((locale, role))
    if kept is not None and kept[0] is t and kept[1] is table and kept[2] == len(table):
        return kept[3]
    commands: list[dict[str, str]] = []
    for cmd in sorted(table.values(), key=lambda c: (c.order, c.name)):
        name = cmd.name.lstrip("/")
        if not cmd.help or role not in cmd.roles or not _COMMAND_NAME.match(name):
            continue
        commands.append({"command": name, "description": t(cmd.help)[:256]})
    _menus[(locale, role)] = (t, table, len(table), commands)
    return commands


def chat_menu(chat_id: ChatId, role: str, locale: str) -> ApiCall:
    """setMyCommands for one chat (BotCommandScopeChat): the commands of `role` in `locale`."""
    return ApiCall(SetMyCommands, {"commands": commands_json(locale, role),
                                   "scope": {"type": "chat", "chat_id": chat_id}})
