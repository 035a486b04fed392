"""The lean Telegram layer (issue 19): Bot API calls as plain JSON, webhook updates read from
their JSON, the button answered beside the replies. What users see must not change: each test
holds the lean path to what aiogram's models sent, read or raised, against the Bot API stand-in."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    RestartingTelegram,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
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
from aiogram.types import BotCommandScopeChat, LinkPreviewOptions, Update
from aiohttp import web
from sqlalchemy import func, select

from bot.app import App
from bot.channels import telegram, telegram_render
from bot.channels.telegram import DeliveryFailed, TelegramChannel, make_bot
from bot.channels.telegram_render import (
    bot_commands,
    chat_menu,
    commands_json,
    incoming_from_update,
    keyboard,
    keyboard_json,
    render,
    send_message,
)
from bot.channels.telegram_session import ApiCall, JsonBodySession, SentMessage, read_answer
from bot.channels.telegram_updates import LeanUpdate, update_from_json
from bot.config import Settings
from bot.seed_demo import seed_demo
from db.models import ProcessedUpdate
from handlers import i18n
from handlers.types import Button, Reply
from tests.fakes import FakeTelegramAPI, FakeUser
from tests.test_flows_telegram_e2e import RC, data_of, join_with_household, post, press
from tests.test_telegram import free_port, incoming_of, running, to


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture
async def channel(api: FakeTelegramAPI) -> AsyncIterator[TelegramChannel]:
    settings = Settings(telegram_bot_token=api.token, telegram_api_base=api.base_url)
    tg = TelegramChannel(cast(App, None), make_bot(settings))  # sending needs no App
    try:
        yield tg
    finally:
        await tg.close()


def aiogram_body(channel: TelegramChannel, method: TelegramMethod[Any]) -> dict[str, Any]:
    """What aiogram's model of `method` sent (the JSON body, as Telegram parses it)."""
    session = cast(JsonBodySession, channel.bot.session)
    payload, files = session.payload(channel.bot, method)
    assert not files
    return cast(dict[str, Any], json.loads(session.json_dumps(payload)))


def lean_body(call: ApiCall) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(json.dumps(call.params)))


# -- the calls: the same JSON as aiogram's models -----------------------------------------------

BUTTONS = tuple(Button(f"B{i} ✅", f"p:{i}") for i in range(5))
TOO_LONG = Button("dropped", "x" * 65)  # over Telegram's 64 bytes: left out, the text still goes


@pytest.mark.parametrize("reply", [
    Reply("Xin chào"),
    Reply("Bước 3/5 · https://dichvucong.gov.vn", buttons=BUTTONS, columns=2, preview=False),
    Reply("Chọn:", buttons=(*BUTTONS, TOO_LONG), rows=(1, 3)),
    Reply("\n".join(f"dòng {i:04d} " + "x" * 90 for i in range(100)), buttons=BUTTONS[:1]),
    Reply("   "),
], ids=["text", "buttons-no-preview", "rows-and-a-dropped-button", "long-split", "blank"])
def test_a_reply_is_sent_as_aiogram_sent_it(channel: TelegramChannel, reply: Reply) -> None:
    """Each sendMessage of a reply carries exactly the JSON that aiogram's SendMessage did."""
    calls = render(reply, 6001)
    chunks = telegram_render.split_text(reply.text) if reply.text.strip() else []
    preview = None if reply.preview else LinkPreviewOptions(is_disabled=True)
    expected = [SendMessage(chat_id=6001, text=chunk, link_preview_options=preview,
                            reply_markup=keyboard(reply) if i == len(chunks) - 1 else None)
                for i, chunk in enumerate(chunks)]
    assert all(isinstance(call, ApiCall) for call in calls)
    assert [lean_body(cast(ApiCall, c)) for c in calls] == [aiogram_body(channel, m) for m in expected]


@pytest.mark.parametrize(("lean", "model"), [
    (ApiCall(EditMessageText, {"chat_id": 5, "message_id": 9, "text": "✅ Xong",
                               "link_preview_options": telegram_render.NO_PREVIEW,
                               "reply_markup": keyboard_json(Reply("", buttons=BUTTONS))}),
     EditMessageText(chat_id=5, message_id=9, text="✅ Xong",
                     link_preview_options=LinkPreviewOptions(is_disabled=True),
                     reply_markup=keyboard(Reply("", buttons=BUTTONS)))),
    (ApiCall(EditMessageCaption, {"chat_id": 5, "message_id": 9, "caption": "Biểu đồ"}),
     EditMessageCaption(chat_id=5, message_id=9, caption="Biểu đồ", reply_markup=None)),
    (ApiCall(EditMessageReplyMarkup, {"chat_id": 5, "message_id": 9}),
     EditMessageReplyMarkup(chat_id=5, message_id=9)),
    (ApiCall(AnswerCallbackQuery, {"callback_query_id": "cb1", "text": "Nút này đã cũ"}),
     AnswerCallbackQuery(callback_query_id="cb1", text="Nút này đã cũ")),
    (chat_menu(5, "volunteer", "en"),
     SetMyCommands(commands=bot_commands("en", "volunteer"), scope=BotCommandScopeChat(chat_id=5))),
    (send_message("@gocua", "x"), SendMessage(chat_id="@gocua", text="x")),
], ids=["edit-text", "edit-caption", "drop-keyboard", "answer", "chat-menu", "channel-name"])
def test_the_other_hot_calls_carry_aiogram_s_json(channel: TelegramChannel, lean: ApiCall,
                                                  model: TelegramMethod[Any]) -> None:
    """Edits, the answer to a button and a chat's menu carry the JSON of aiogram's models."""
    assert lean.name == model.__api_method__
    assert lean_body(lean) == aiogram_body(channel, model)


def test_a_chat_menu_is_built_once_until_the_catalogs_or_commands_change(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The same role and language get the same menu object; a reloaded catalog or another command
    table builds it again."""
    first = commands_json("vi", "volunteer")
    assert commands_json("vi", "volunteer") is first
    assert commands_json("en", "volunteer") is not first and commands_json("vi", "leader") is not first
    i18n.reload_catalogs()
    rebuilt = commands_json("vi", "volunteer")
    assert rebuilt is not first and rebuilt == first
    table = dict(telegram_render.ROUTES.commands)
    table.pop("/households")
    monkeypatch.setattr(telegram_render.ROUTES, "commands", table)
    assert "households" not in [c["command"] for c in commands_json("vi", "volunteer")]


# -- the answers: what aiogram read or raised ---------------------------------------------------

MESSAGE = {"message_id": 77, "date": 1, "chat": {"id": 5, "type": "private"}, "text": "x"}
PHOTO = {**MESSAGE, "photo": [{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}]}
ANSWERS = [
    (SendMessage, 200, {"ok": True, "result": MESSAGE}, SentMessage(77)),
    (EditMessageCaption, 200, {"ok": True, "result": PHOTO}, SentMessage(77, media=True)),
    (EditMessageText, 200, {"ok": True, "result": True}, True),
    (AnswerCallbackQuery, 200, {"ok": True, "result": True}, True),
    (EditMessageText, 400, {"ok": False, "error_code": 400, "description":
                            "Bad Request: message is not modified: specified new message content"},
     TelegramBadRequest),
    (SendMessage, 403, {"ok": False, "error_code": 403,
                        "description": "Forbidden: bot was blocked by the user"}, TelegramForbiddenError),
    (SendMessage, 429, {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 3",
                        "parameters": {"retry_after": 3}}, TelegramRetryAfter),
    (SendMessage, 400, {"ok": False, "error_code": 400, "description": "Bad Request: group chat was upgraded",
                        "parameters": {"migrate_to_chat_id": -100123}}, TelegramMigrateToChat),
    (SendMessage, 404, {"ok": False, "error_code": 404, "description": "Not Found"}, TelegramNotFound),
    (SendMessage, 409, {"ok": False, "error_code": 409, "description": "Conflict"}, TelegramConflictError),
    (SendMessage, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"},
     TelegramUnauthorizedError),
    (SendMessage, 413, {"ok": False, "error_code": 413, "description": "Request Entity Too Large"},
     TelegramEntityTooLarge),
    (SendMessage, 500, {"ok": False, "error_code": 500, "description": "Internal Server Error"},
     TelegramServerError),
    (SendMessage, 502, {"ok": False, "error_code": 502, "description": "Bot API is restarting"},
     RestartingTelegram),
    (SendMessage, 418, {"ok": False, "error_code": 418, "description": "I'm a teapot"}, TelegramAPIError),
    (SendMessage, 200, {"ok": False, "error_code": 400, "description": "odd"}, TelegramAPIError),
    (SendMessage, 200, "<html>200 but not the Bot API</html>", ClientDecodeError),
    (SendMessage, 200, {"result": MESSAGE}, ClientDecodeError),
    (SendMessage, 200, {"ok": True, "result": True}, ClientDecodeError),
    (AnswerCallbackQuery, 200, {"ok": True, "result": MESSAGE}, ClientDecodeError),
]


def _params(method: type[TelegramMethod[Any]]) -> dict[str, Any]:
    return {SendMessage: {"chat_id": 5, "text": "x"},
            EditMessageText: {"chat_id": 5, "message_id": 9, "text": "x"},
            EditMessageCaption: {"chat_id": 5, "message_id": 9, "caption": "x"},
            AnswerCallbackQuery: {"callback_query_id": "cb"}}[method]


@pytest.mark.parametrize(("method", "status", "body", "expected"), ANSWERS,
                         ids=[f"{m.__api_method__}-{s}-{i}" for i, (m, s, _, _) in enumerate(ANSWERS)])
def test_answers_are_read_as_aiogram_read_them(channel: TelegramChannel, method: type[TelegramMethod[Any]],
                                               status: int, body: Any, expected: Any) -> None:
    """The lean reading of an answer gives aiogram's result, or raises aiogram's exception with
    aiogram's text (flood waits keep their seconds, refusals their description)."""
    call = ApiCall(method, _params(method))
    content = body if isinstance(body, str) else json.dumps(body)
    session = channel.bot.session
    if isinstance(expected, type):
        with pytest.raises(expected) as lean:
            read_answer(call, status, content, json.loads)
        with pytest.raises(expected) as model:
            session.check_response(channel.bot, call.validated(), status, content)
        assert type(lean.value) is type(model.value)
        if not isinstance(lean.value, ClientDecodeError):
            assert str(lean.value) == str(model.value)
        assert getattr(lean.value, "retry_after", None) == getattr(model.value, "retry_after", None)
        return
    assert read_answer(call, status, content, json.loads) == expected
    result = session.check_response(channel.bot, call.validated(), status, content).result
    assert result is True if expected is True else result.message_id == expected.message_id


@pytest.mark.parametrize("body", [
    {"ok": True, "result": {**MESSAGE, "message_id": True}},
    {"ok": False, "error_code": 429, "description": "Too Many Requests", "parameters": {"retry_after": True}},
], ids=["message-id", "retry-after"])
def test_a_boolean_is_no_id_in_an_answer(body: dict[str, Any]) -> None:
    """JSON true where Telegram sends an integer is a malformed answer, not the number 1."""
    with pytest.raises(ClientDecodeError):
        read_answer(ApiCall(SendMessage, {"chat_id": 5, "text": "x"}), 200 if body["ok"] else 429,
                    json.dumps(body), json.loads)


async def test_a_boolean_message_id_from_the_api_is_refused(channel: TelegramChannel,
                                                           api: FakeTelegramAPI,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A sent message whose id comes back as `true` is not recorded as message 1."""
    async def bool_id(params: dict[str, Any]) -> Any:
        return {**MESSAGE, "message_id": True}

    monkeypatch.setattr(api, "_m_sendMessage", bool_id)
    with pytest.raises(ClientDecodeError):
        await channel.send_kept("6010", Reply("Yêu cầu #12", buttons=BUTTONS[:1]))


# -- the answers against the stand-in: flood control, refusals, the network --------------------

async def test_a_flood_wait_is_sat_out_and_the_message_sent_once(channel: TelegramChannel,
                                                                 api: FakeTelegramAPI) -> None:
    """A 429 with retry_after 1 is waited out (about a second) and the message then goes once."""
    kim = FakeUser(6011, "Kim")
    api.fail("sendMessage", status=429, retry_after=1)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await channel.send_replies(incoming_of(kim), [Reply("xin chào")])
    assert loop.time() - started >= 0.9
    assert api.sent_texts(kim.id) == ["xin chào"] and len(api.failed) == 1


async def test_a_flood_wait_too_long_to_sit_out_fails_the_delivery(channel: TelegramChannel,
                                                                   api: FakeTelegramAPI,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A retry_after longer than MAX_RETRY_AFTER is not waited under the chat's lock: the delivery
    fails (the outbox sends it later) and nothing is sent now."""
    monkeypatch.setattr(telegram, "MAX_RETRY_AFTER", 0.5)
    kim = FakeUser(6012, "Kim")
    api.fail("sendMessage", status=429, retry_after=1)
    with pytest.raises(DeliveryFailed, match="sendMessage: rate limited"):
        await channel.send_replies(incoming_of(kim), [Reply("xin chào")])
    assert api.sent_texts(kim.id) == []


async def test_network_errors_are_retried_then_fail_the_delivery(channel: TelegramChannel,
                                                                 api: FakeTelegramAPI,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """5xx answers are retried until the message goes; an API that stays down fails the delivery."""
    monkeypatch.setattr(telegram, "SEND_RETRY_DELAYS", (0.01, 0.01, 0.01))
    mai = FakeUser(6013, "Mai")
    api.fail("sendMessage", status=502, times=2)
    await channel.send_replies(incoming_of(mai), [Reply("một")])
    assert api.sent_texts(mai.id) == ["một"]
    await api.go_down()
    with pytest.raises(DeliveryFailed, match="sendMessage"):
        await channel.send_replies(incoming_of(mai), [Reply("hai")])
    await api.come_back()


async def test_a_user_who_blocked_the_bot_is_skipped(channel: TelegramChannel, api: FakeTelegramAPI) -> None:
    """A 403 (blocked) is logged and skipped: the send is refused for good, nothing raises."""
    mai = FakeUser(6014, "Mai")
    api.blocked.add(mai.id)
    assert await channel.send(str(mai.id), Reply("hello")) is False
    assert await channel.send_kept(str(mai.id), Reply("hello", buttons=BUTTONS[:1])) is None
    assert api.sent_texts(mai.id) == []


async def test_an_edit_that_changes_nothing_is_kept(channel: TelegramChannel, api: FakeTelegramAPI) -> None:
    """Telegram's "message is not modified" counts as edited: no copy is sent, the keyboard stays."""
    lan = FakeUser(6015, "Lan")
    shown_reply = Reply("Chọn:", buttons=(Button("A", "a:1"),))
    await channel.send_replies(incoming_of(lan), [shown_reply])
    shown = api.last_message(lan.id)["message_id"]
    same = Reply("Chọn:", buttons=(Button("A", "a:1"),), edit=True)
    await channel.send_replies(incoming_of(lan, shown), [same])
    assert [c.method for c in api.failed] == ["editMessageText"]  # refused: not modified
    assert api.sent_texts(lan.id) == ["Chọn:"] and api.calls_to("editMessageReplyMarkup") == []
    assert api.live_keyboards(lan.id) == [api.last_message(lan.id)]


async def test_an_old_message_falls_back_to_a_new_one(channel: TelegramChannel, api: FakeTelegramAPI) -> None:
    """An edit Telegram refuses (the message is gone) sends the reply anew, with its media caption
    edited where the message is a photo."""
    lan = FakeUser(6016, "Lan")
    await channel.send_replies(incoming_of(lan, 999_999), [Reply("Mới", edit=True, buttons=BUTTONS[:1])])
    [sent] = api.calls_to("sendMessage", to(lan))
    assert sent["text"] == "Mới" and sent["reply_markup"] == keyboard_json(Reply("", buttons=BUTTONS[:1]))
    kept = await channel.send_kept(str(lan.id), Reply("Biểu đồ"))
    assert kept is not None and not kept.endswith(":media")


# -- webhook updates: read from the JSON as aiogram read them -----------------------------------

USER = {"id": 7001, "is_bot": False, "first_name": "Hạnh", "last_name": "Lê", "language_code": "en"}
CHAT = {"id": 7001, "type": "private", "first_name": "Hạnh"}
TEXT = {"message_id": 11, "date": 1, "chat": CHAT, "from": USER, "text": "/start ABC",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}
PRESSED = {"message_id": 12, "date": 1, "chat": CHAT, "from": {**USER, "id": 1, "is_bot": True},
           "text": "Bước"}
LEAN = [
    {"update_id": 1, "message": TEXT},
    {"update_id": 2, "message": {**TEXT, "from": {"id": 7001, "is_bot": False, "first_name": "An"}}},
    {"update_id": 3, "message": {k: v for k, v in TEXT.items() if k not in ("text", "entities")}
     | {"photo": [{"file_id": "p", "file_unique_id": "u", "width": 1, "height": 1}], "caption": "ảnh"}},
    {"update_id": 4, "message": {k: v for k, v in TEXT.items() if k not in ("text", "entities")}
     | {"caption": "không ảnh"}},
    {"update_id": 5, "message": {**TEXT, "text": None, "document": {
        "file_id": "d", "file_unique_id": "u", "file_name": "ho.xlsx", "file_size": 2048}}},
    {"update_id": 6, "message": {**TEXT, "text": None, "document": {"file_id": "d", "file_unique_id": "u"}}},
    {"update_id": 7, "message": {k: v for k, v in TEXT.items() if k not in ("text", "entities")}
     | {"sticker": {"file_id": "s", "file_unique_id": "u", "type": "regular", "width": 1, "height": 1,
                    "is_animated": False, "is_video": False}}},
    {"update_id": 8, "callback_query": {"id": "cb8", "from": USER, "chat_instance": "ci",
                                        "data": "flow:1:done", "message": PRESSED}},
    {"update_id": 9, "callback_query": {"id": "cb9", "from": USER, "chat_instance": "ci", "data": "stats:x",
                                        "message": {**PRESSED, "text": None, "caption": "c",
                                                    "photo": PHOTO["photo"]}}},
    {"update_id": 10, "callback_query": {"id": "cb10", "from": USER, "chat_instance": "ci", "data": "x",
                                         "message": {"message_id": 3, "date": 0, "chat": CHAT}}},
    {"update_id": 11, "callback_query": {"id": "cb11", "from": USER, "chat_instance": "ci",
                                         "game_short_name": "g", "message": PRESSED}},
]
FALLBACK = [
    {"update_id": 20, "edited_message": TEXT},
    {"update_id": 21, "message": {**TEXT, "chat": {"id": -5, "type": "group", "title": "Tổ 1"}}},
    {"update_id": 22, "message": {k: v for k, v in TEXT.items() if k != "from"}},
    {"update_id": 23, "callback_query": {"id": "cb23", "from": USER, "chat_instance": "ci",
                                         "inline_message_id": "im", "data": "x"}},
    {"update_id": 24, "my_chat_member": {"chat": CHAT, "from": USER, "date": 1,
                                         "old_chat_member": {"status": "member", "user": USER},
                                         "new_chat_member": {"status": "kicked", "user": USER,
                                                             "until_date": 0}}},
    {"update_id": 25, "message": {**TEXT, "text": 12}},
]


def _clean(body: dict[str, Any]) -> dict[str, Any]:
    """`body` without the None values tests use to leave a field out."""
    if not isinstance(body, dict):
        return body
    return {k: _clean(v) for k, v in body.items() if v is not None}


@pytest.mark.parametrize("body", LEAN, ids=[str(b["update_id"]) for b in LEAN])
def test_webhook_updates_are_read_as_aiogram_read_them(channel: TelegramChannel,
                                                       body: dict[str, Any]) -> None:
    """A private chat's message or button press gives the same Incoming from its JSON as from
    aiogram's Update, and the same button to answer."""
    body = _clean(body)
    update = channel.webhook_update(body)
    assert isinstance(update, LeanUpdate)
    model = Update.model_validate(body)
    assert channel.parse(update) == incoming_from_update(model)
    assert update.callback_id == (model.callback_query.id if model.callback_query else None)
    assert channel.update_fields(update) == {"update_id": model.update_id}


@pytest.mark.parametrize("body", FALLBACK, ids=[str(b["update_id"]) for b in FALLBACK])
def test_other_updates_are_left_to_aiogram(channel: TelegramChannel, body: dict[str, Any]) -> None:
    """Kinds and shapes the lean reader does not take are read by aiogram, with its outcome."""
    assert update_from_json(body) is None
    try:
        model = Update.model_validate(body)
    except ValueError:
        with pytest.raises(ValueError):
            channel.webhook_update(body)
        return
    update = channel.webhook_update(body)
    assert isinstance(update, Update)
    assert channel.parse(update) == incoming_from_update(model)


BOOLEAN_IDS = [
    {"update_id": True, "message": TEXT},
    {"update_id": 30, "message": {**TEXT, "message_id": True}},
    {"update_id": 31, "message": {**TEXT, "chat": {**CHAT, "id": True}}},
    {"update_id": 32, "message": {**TEXT, "from": {**USER, "id": True}}},
    {"update_id": 33, "callback_query": {"id": "cb33", "from": USER, "chat_instance": "ci", "data": "x",
                                         "message": {**PRESSED, "message_id": True}}},
]


@pytest.mark.parametrize("body", BOOLEAN_IDS, ids=["update", "message", "chat", "sender", "pressed"])
def test_a_boolean_id_in_an_update_is_refused(channel: TelegramChannel, body: dict[str, Any]) -> None:
    """JSON true where Telegram sends an id makes the update malformed (pydantic would read 1)."""
    with pytest.raises(ValueError, match="boolean"):
        channel.webhook_update(body)


# -- end to end: a flow step over the webhook ---------------------------------------------------

class SlowAnswers(FakeTelegramAPI):
    """The stand-in, answering button presses `delay` seconds late."""

    delay = 0.0
    broken_answers = False  # answer presses with a page that is not the Bot API's JSON

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> Any:
        await asyncio.sleep(self.delay)
        if self.broken_answers:
            return web.Response(status=200, text="<html>not the Bot API</html>", content_type="text/html")
        return True


@asynccontextmanager
async def serving(settings: Settings, app: App) -> AsyncIterator[SlowAnswers]:
    async with SlowAnswers() as api:
        port = free_port()
        tg = settings.with_overrides(telegram_bot_token=api.token, telegram_api_base=api.base_url)
        async with running(tg, app, api.wait_for("setMyCommands", count=2),
                           webhook_url=f"http://127.0.0.1:{port}/telegram/hook", host="127.0.0.1", port=port):
            yield api


async def _count(app: App, model: Any) -> int:
    async with app.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _at_a_task_step(app: App, api: FakeTelegramAPI, clock: Any) -> tuple[FakeUser, dict[str, Any]]:
    """A volunteer (Hạnh, in English, over the webhook) at a task step of the residence
    confirmation, with its Done / Skip / Problem buttons."""
    hanh = FakeUser(7101, "Hạnh", "Lê", language_code="en")
    await join_with_household(app, api, clock, hanh, "Hạnh Lê")
    await post(api, api.message(hanh, "/households"))
    for label in ("HV-TL-002", "Start a procedure", RC, "Continue", "In the VNeID app"):
        await press(api, hanh, label)
    task = api.last_message(hanh.id)
    assert [label for label, _ in _keyboard(task)] == ["✅ Done", "⏭ Skip", "⚠️ Problem"]
    return hanh, task


async def test_a_flow_step_answers_as_before_with_the_button_answered_beside(settings, app, clock) -> None:
    """A pressed step: its message becomes the outcome and the next step arrives (in that order),
    the press is answered meanwhile (a slow answer holds neither back), all before the webhook's
    200; each call carries what aiogram's models carried."""
    await seed_demo(app)
    async with serving(settings, app) as api:
        hanh, task = await _at_a_task_step(app, api, clock)

        api.delay = 1.0  # longer than the edit and the next step take, even on a busy machine
        marks = len(api.calls)
        pressed = api.callback(hanh, data_of(task, "Done"), task["message_id"])
        await post(api, pressed)
        methods = [c.method for c in api.calls[marks:]]
        assert methods == ["editMessageText", "sendMessage", "answerCallbackQuery"]
        edit, sent, answer = (c.params for c in api.calls[marks:])
        assert answer == {"callback_query_id": pressed["callback_query"]["id"]}
        assert edit["message_id"] == task["message_id"] and edit["text"].startswith("✅ Done: In VNeID")
        assert "reply_markup" not in edit
        assert "reply_markup" not in api.messages[(hanh.id, task["message_id"])]  # its buttons are gone
        assert sent["text"].startswith(f"Step 4/5 · {RC}\nIt takes half a working day")
        assert [b["text"] for row in sent["reply_markup"]["inline_keyboard"] for b in row] == ["Continue"]
        bodies = {"edit": edit, "sent": sent}
        session = JsonBodySession()
        bot = make_bot(Settings(telegram_bot_token=api.token, telegram_api_base=api.base_url))
        models: dict[str, TelegramMethod[Any]] = {"edit": EditMessageText.model_validate(edit),
                                                  "sent": SendMessage.model_validate(sent)}
        for name, model in models.items():
            payload, _ = session.payload(bot, model)
            assert json.loads(json.dumps(payload)) == bodies[name], name
        await bot.session.close()
        await session.close()

        # Telegram delivers the press again: nothing is sent twice, the press is answered again.
        processed = await _count(app, ProcessedUpdate)
        api.delay = 0.0
        await post(api, pressed)
        assert [c.method for c in api.calls[marks + 3:]] == ["answerCallbackQuery"]
        assert await _count(app, ProcessedUpdate) == processed


async def test_a_button_answer_that_fails_loses_no_reply_and_sends_none_twice(settings, app, clock) -> None:
    """The press's answer gets an answer that is not the Bot API's (a proxy's page with status
    200), after the outcome and the next step went out: the webhook still answers 200, and
    Telegram's redelivery of the press sends neither message again (the replies were marked
    sent; before, the failed answer skipped the mark and the next step came twice)."""
    await seed_demo(app)
    async with serving(settings, app) as api:
        hanh, task = await _at_a_task_step(app, api, clock)
        api.broken_answers = True
        marks = len(api.calls)
        pressed = api.callback(hanh, data_of(task, "Done"), task["message_id"])
        await post(api, pressed)
        assert [c.method for c in api.calls[marks:]] == ["editMessageText", "sendMessage"]
        assert [c.method for c in api.failed] == ["answerCallbackQuery"]
        api.broken_answers = False
        await post(api, pressed)
        assert [c.method for c in api.calls[marks:]] == ["editMessageText", "sendMessage",
                                                         "answerCallbackQuery"]
        assert api.last_message(hanh.id)["text"].startswith(f"Step 4/5 · {RC}")


def test_a_proxy_s_html_5xx_is_a_server_error() -> None:
    """A 502 or 504 page from a proxy in front of the Bot API (no JSON) is a TelegramServerError,
    which is retried and then fails the delivery, not a decoding error that loses the reply;
    a 200 that is not the Bot API's JSON stays aiogram's ClientDecodeError."""
    call = ApiCall(SendMessage, {"chat_id": 5, "text": "x"})
    for status in (502, 504):
        with pytest.raises(TelegramServerError):
            read_answer(call, status, "<html><body>Bad Gateway</body></html>", json.loads)
    with pytest.raises(ClientDecodeError):
        read_answer(call, 200, "<html>ok?</html>", json.loads)


async def test_a_proxy_s_html_502_is_retried_and_the_message_sent_once(
        channel: TelegramChannel, api: FakeTelegramAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two HTML 502 pages, then the Bot API answers: the message goes, once."""
    monkeypatch.setattr(telegram, "SEND_RETRY_DELAYS", (0.01, 0.01, 0.01))
    monkeypatch.setattr(FakeTelegramAPI, "html_502", True)
    mai = FakeUser(6014, "Mai")
    api.fail("sendMessage", status=502, times=2)
    await channel.send_replies(incoming_of(mai), [Reply("một")])
    assert api.sent_texts(mai.id) == ["một"]


async def test_unusual_updates_over_the_webhook(settings, app) -> None:
    """Over the webhook, an update of another kind or from a group is ignored through aiogram's
    reading, a boolean id is refused as malformed, and a plain message is still answered."""
    async with serving(settings, app) as api:
        an = FakeUser(7201, "An")
        for body in (FALLBACK[0], FALLBACK[1], FALLBACK[4], BOOLEAN_IDS[2]):
            status, _ = await api.post_webhook(body)
            assert status == 200
        assert api.calls_to("sendMessage") == [] and await _count(app, ProcessedUpdate) == 0
        await post(api, api.message(an, "/start"))
        [hello] = api.calls_to("sendMessage", to(an))
        assert hello["chat_id"] == an.id and hello["text"]


def _keyboard(message: dict[str, Any]) -> list[tuple[str, str]]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [(b["text"], b["callback_data"]) for row in rows for b in row]


async def test_a_bot_on_aiogram_s_own_session_still_sends_lean_calls(api: FakeTelegramAPI) -> None:
    """With aiogram's form session (no `call_json`), a lean call goes as its validated aiogram
    method: the same message, the same id to edit later, the same refusals."""
    bot = Bot(api.token, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
    tg = TelegramChannel(cast(App, None), bot)
    try:
        kim = FakeUser(6020, "Kim")
        ref = await tg.send_kept(str(kim.id), Reply("Chọn:", buttons=BUTTONS[:2]))
        shown = api.last_message(kim.id)
        assert ref == str(shown["message_id"]) and len(_keyboard(shown)) == 2
        await tg.send_replies(incoming_of(kim, shown["message_id"]), [Reply("Đã chọn", edit=True)])
        assert api.last_message(kim.id)["text"] == "Đã chọn"
        assert api.sent_texts(kim.id) == ["Chọn:", "Đã chọn"]
        api.blocked.add(kim.id)
        assert await tg.send(str(kim.id), Reply("hello")) is False
    finally:
        await tg.close()
