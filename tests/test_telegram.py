"""The real aiogram adapter against a stand-in Telegram Bot API (tests/fakes/telegram_api.py)."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import ClientSession
from sqlalchemy import func, select

from bot.app import App
from bot.channels.telegram import ChatLocks, TelegramChannel, make_bot, run_telegram
from bot.channels.telegram_render import split_text
from bot.cli import main as cli_main
from bot.config import ConfigError, Settings
from bot.seed_demo import seed_demo
from db.models import ProcessedUpdate, User
from db.repo.areas import area_by_code
from db.repo.invites import create_invite
from handlers.i18n import translator
from handlers.pipeline import DatabaseUnavailable
from handlers.types import Address, Attachment, Button, Incoming, Reply
from tests.fakes import FakeTelegramAPI, FakeUser
from tests.process_env import clean_env

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-secret-123"  # the `settings` fixture's webhook secret


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def to(user: FakeUser) -> Any:
    return lambda params: params.get("chat_id") == user.id


@pytest.fixture
async def api() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture
def tg_settings(settings: Settings, api: FakeTelegramAPI) -> Settings:
    return settings.with_overrides(telegram_bot_token=api.token, telegram_api_base=api.base_url)


@asynccontextmanager
async def running(settings: Settings, app: App, ready: Awaitable[Any], **kwargs: Any) -> AsyncIterator[None]:
    """run_telegram as a task, until the block ends; `ready` says it is serving."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_telegram(settings, stop=stop, app=app, **kwargs))
    waiter = asyncio.ensure_future(ready)
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # raises what stopped it
        raise AssertionError("run_telegram returned before serving")
    await waiter
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@asynccontextmanager
async def webhook_bot(settings: Settings, app: App) -> AsyncIterator[FakeTelegramAPI]:
    """The bot serving webhooks (handled before the POST returns) against a stand-in API."""
    async with FakeTelegramAPI() as api:
        port = free_port()
        tg = settings.with_overrides(telegram_bot_token=api.token, telegram_api_base=api.base_url)
        async with running(tg, app, api.wait_for("setMyCommands", count=2),
                           webhook_url=f"http://127.0.0.1:{port}/telegram/hook", host="127.0.0.1", port=port):
            yield api


@pytest.fixture
async def polling(tg_settings: Settings, app: App, api: FakeTelegramAPI) -> AsyncIterator[FakeTelegramAPI]:
    async with running(tg_settings, app, api.wait_for("getUpdates")):
        yield api


@pytest.fixture
async def webhook(tg_settings: Settings, app: App, api: FakeTelegramAPI) -> AsyncIterator[FakeTelegramAPI]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    async with running(tg_settings, app, api.wait_for("setMyCommands", count=2),
                       webhook_url=url, host="127.0.0.1", port=port):
        yield api


async def _count(app: App, model: Any) -> int:
    async with app.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


# -- end to end: polling ----------------------------------------------------------------------

async def test_polling_start_lang_and_button(polling: FakeTelegramAPI) -> None:
    """Over long polling, /start answers in the client's language and the /lang button switches it,
    the choice replacing the question."""
    api = polling
    alice = FakeUser(5001, "Alice", "Nguyen", language_code="en")
    api.push(api.message(alice, "/start"))
    [hello] = await api.wait_for("sendMessage", where=to(alice))
    assert "Hello Alice Nguyen" in hello["text"] and "I am GoCua" in hello["text"]

    api.push(api.message(alice, "/lang"))
    [_, choose] = await api.wait_for("sendMessage", count=2, where=to(alice))
    rows = choose["reply_markup"]["inline_keyboard"]
    assert [[b["text"] for b in row] for row in rows] == [["Tiếng Việt", "English"]]
    assert [b["callback_data"] for b in rows[0]] == ["lang:vi", "lang:en"]

    choose_id = api.last_message(alice.id)["message_id"]
    press = api.callback(alice, "lang:vi", choose_id)
    api.push(press)
    [answered] = await api.wait_for("answerCallbackQuery")
    assert answered["callback_query_id"] == press["callback_query"]["id"]
    [edited] = await api.wait_for("editMessageText", where=to(alice))  # the choice, in place
    assert edited["message_id"] == choose_id
    assert edited["text"] == "Đã chuyển sang Tiếng Việt.\nÔng/bà gõ /help để xem GoCua giúp được gì ạ."
    assert len(api.calls_to("sendMessage", to(alice))) == 2
    assert api.calls_to("deleteWebhook") == [{"drop_pending_updates": False}]
    assert api.calls_to("getUpdates")[-1]["allowed_updates"] == ["message", "callback_query"]


async def test_polling_retries_after_429(polling: FakeTelegramAPI) -> None:
    """A 429 Too Many Requests on sendMessage is waited out and the message still arrives."""
    api = polling
    api.fail("sendMessage", status=429, retry_after=1)
    bob = FakeUser(5002, "Bob", language_code="en")
    api.push(api.message(bob, "/help"))
    [sent] = await api.wait_for("sendMessage", where=to(bob), timeout=6)
    assert "/help" in sent["text"]
    assert [c.method for c in api.failed] == ["sendMessage"]


async def test_polling_sends_later_what_the_api_would_not_take(polling: FakeTelegramAPI) -> None:
    """Long polling has confirmed the update when Telegram stays down through every retry of
    the reply: the reply is not lost but sent by the notice relay once Telegram is back, once."""
    api = polling
    api.fail("sendMessage", status=502, times=4)  # the first try and its three retries
    cuc = FakeUser(5003, "Cúc", language_code="en")
    api.push(api.message(cuc, "/help"))
    [sent] = await api.wait_for("sendMessage", where=to(cuc), timeout=15)
    assert "/help" in sent["text"]
    assert len(api.failed) == 4
    await asyncio.sleep(2.5)  # a relay round later: nothing is sent a second time
    assert len(api.calls_to("sendMessage", where=to(cuc))) == 1


async def test_polling_confirms_an_update_only_once_its_replies_are_sent_and_marked(
        polling: FakeTelegramAPI, app: App) -> None:
    """Long polling asks for the next updates (which confirms the last ones to Telegram) only
    after their replies went out and were marked sent, so a process killed while handling an
    update gets it again on restart instead of losing it."""
    api = polling
    api.fail("sendMessage", status=502, times=2)  # the reply goes out after two retries
    dung = FakeUser(5004, "Dũng", language_code="en")
    update = api.message(dung, "/help")
    api.push(update)
    await api.wait_for("sendMessage", where=to(dung), timeout=10)
    [sent] = [c for c in api.calls if c.method == "sendMessage"]
    await api.wait_for("getUpdates", where=lambda p: int(p.get("offset") or 0) > update["update_id"])
    confirming = [c for c in api.calls if c.method == "getUpdates"
                  and int(c.params.get("offset") or 0) > update["update_id"]]
    assert confirming[0].at > sent.at
    async with app.db.transaction() as session:
        row = await session.get(ProcessedUpdate, ("telegram", str(update["update_id"])))
    assert row is not None and row.sent_at is not None


async def test_commands_menu_in_vi_and_en(polling: FakeTelegramAPI) -> None:
    """Start-up sets the command menu in Vietnamese by default and in English for English clients."""
    calls = polling.calls_to("setMyCommands")
    by_language = {c.get("language_code"): c for c in calls}
    assert set(by_language) == {None, "en"}
    for language, call in by_language.items():
        assert call["scope"] == {"type": "default"}
        names = [c["command"] for c in call["commands"]]
        assert names[:4] == ["start", "join", "help", "lang"] and "cancel" in names
        assert "households" not in names  # volunteers' commands are not everyone's
        described = {c["command"]: c["description"] for c in call["commands"]}
        assert described["help"] == translator(language or "vi")("the commands you can use")
    assert by_language[None]["commands"] != by_language["en"]["commands"]


# -- end to end: webhook ----------------------------------------------------------------------

async def test_webhook_checks_the_secret(webhook: FakeTelegramAPI, app: App) -> None:
    """The webhook is registered with its secret; only requests carrying that secret are handled."""
    api = webhook
    assert api.webhook["url"].endswith("/telegram/hook")
    assert api.webhook["secret_token"] == SECRET
    assert api.webhook["allowed_updates"] == ["message", "callback_query"]
    carol = FakeUser(5003, "Carol", language_code="en")
    assert (await api.post_webhook(api.message(carol, "/start")))[0] == 200
    assert len(api.calls_to("sendMessage", to(carol))) == 1
    rows = await _count(app, ProcessedUpdate)

    eve = FakeUser(5004, "Eve", language_code="en")
    status, _ = await api.post_webhook(api.message(eve, "/start"), secret="wrong-secret-000")
    assert status == 401
    status, _ = await api.post_webhook(api.message(eve, "/start"), secret=None)
    assert status == 401
    assert api.calls_to("sendMessage", to(eve)) == []
    assert await _count(app, ProcessedUpdate) == rows


async def test_webhook_duplicate_delivery_answers_once(webhook: FakeTelegramAPI) -> None:
    """The same update delivered twice, in turn or at once, is answered exactly once."""
    api = webhook
    dan = FakeUser(5005, "Dan", language_code="en")
    update = api.message(dan, "/help")
    assert (await api.post_webhook(update))[0] == 200
    assert (await api.post_webhook(update))[0] == 200
    assert len(api.calls_to("sendMessage", to(dan))) == 1

    again = api.message(dan, "/start")
    statuses = await asyncio.gather(api.post_webhook(again), api.post_webhook(again))
    assert [s for s, _ in statuses] == [200, 200]
    assert len(api.calls_to("sendMessage", to(dan))) == 2


async def test_webhook_ignores_other_update_kinds(webhook: FakeTelegramAPI, app: App) -> None:
    """Edited messages, membership changes and group messages get 200 and no answer; chat goes on."""
    api = webhook
    fay = FakeUser(5006, "Fay", language_code="en")
    edited = api.message(fay, "/help", kind="edited_message")
    member = api.update("my_chat_member", {
        "chat": fay.chat(), "from": fay.as_json(), "date": 1,
        "old_chat_member": {"status": "member", "user": api.bot_user},
        "new_chat_member": {"status": "kicked", "user": api.bot_user, "until_date": 0},
    })
    group = api.message(fay, "/help")
    group["message"]["chat"] = {"id": -100123, "type": "group", "title": "Đoàn phường"}
    for update in (edited, member, group):
        assert (await api.post_webhook(update))[0] == 200
    assert api.calls_to("sendMessage") == []
    assert await _count(app, ProcessedUpdate) == 0
    assert (await api.post_webhook(api.message(fay, "/help")))[0] == 200
    assert len(api.calls_to("sendMessage", to(fay))) == 1


async def test_sticker_gets_a_text_only_answer(webhook: FakeTelegramAPI) -> None:
    """A sticker is answered with a polite note that only text is read."""
    api = webhook
    gus = FakeUser(5007, "Gus", language_code="en")
    assert (await api.post_webhook(api.sticker(gus)))[0] == 200
    [sent] = api.calls_to("sendMessage", to(gus))
    assert "only read text" in sent["text"]


async def test_deep_link_invite_makes_a_volunteer(webhook: FakeTelegramAPI, app: App, clock: Any) -> None:
    """`/start CODE` from a Telegram deep link claims the invite: /help then lists /households."""
    api = webhook
    await seed_demo(app)
    async with app.db.transaction() as session:
        area = await area_by_code(session, "danang.hoa-xuan")
        code = (await create_invite(session, role="volunteer", area=area, now=clock())).code
    hoa = FakeUser(5008, "Hoa", "Trần", language_code="en")
    assert (await api.post_webhook(api.message(hoa, f"/start {code}")))[0] == 200
    assert any("volunteer" in t for t in api.sent_texts(hoa.id))
    assert (await api.post_webhook(api.message(hoa, "/help")))[0] == 200
    assert "/households" in api.sent_texts(hoa.id)[-1]
    async with app.db.transaction() as session:
        names = set(await session.scalars(select(User.display_name)))
    assert "Hoa Trần" in names


async def test_webhook_database_outage_is_a_500(webhook: FakeTelegramAPI, app: App,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """While the database is down the webhook answers 500 (Telegram retries) and sends nothing."""
    api = webhook

    async def down(incoming: Incoming, **_: Any) -> list[Reply]:
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(app.core, "handle", down)
    ivy = FakeUser(5009, "Ivy", language_code="en")
    status, _ = await api.post_webhook(api.message(ivy, "/help"))
    assert status == 500
    assert api.calls_to("sendMessage") == []


async def test_healthz(webhook: FakeTelegramAPI, app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """GET /healthz is 200 "ok" while the database answers and 503 when it does not."""
    url = webhook.webhook["url"].rsplit("/", 2)[0] + "/healthz"
    async with ClientSession() as http:
        async with http.get(url) as resp:
            assert (resp.status, await resp.text()) == (200, "ok")

        def broken() -> Any:
            raise OSError("database is gone")

        monkeypatch.setattr(app.db, "transaction", broken)
        async with http.get(url) as resp:
            assert resp.status == 503


# -- rendering, without a database ------------------------------------------------------------

@pytest.fixture
async def channel(api: FakeTelegramAPI) -> AsyncIterator[TelegramChannel]:
    settings = Settings(telegram_bot_token=api.token, telegram_api_base=api.base_url)
    tg = TelegramChannel(cast(App, None), make_bot(settings))  # sending needs no App
    try:
        yield tg
    finally:
        await tg.close()


def incoming_of(user: FakeUser, message_ref: int | None = None) -> Incoming:
    return Incoming(channel="telegram", chat_id=str(user.id), sender_id=str(user.id), update_id="1",
                    payload="x" if message_ref else None, text=None if message_ref else "hi",
                    message_ref=str(message_ref) if message_ref else None)


async def test_render_long_text_buttons_and_files(channel: TelegramChannel, api: FakeTelegramAPI) -> None:
    """Long texts split at lines, buttons come in `columns` per row, files carry short captions."""
    kim = FakeUser(6001, "Kim")
    long_text = "\n".join(f"line {i:04d} " + "x" * 90 for i in range(100))
    buttons = tuple(Button(f"B{i}", f"p:{i}") for i in range(5))
    await channel.send_replies(incoming_of(kim), [
        Reply(long_text, buttons=buttons, columns=2),
        Reply("Báo cáo", attachment=Attachment("document", "report.csv", b"a,b\n1,2\n")),
        Reply("y" * 1500, attachment=Attachment("photo", "chart.png", b"\x89PNG...")),
    ])
    *chunks, caption = api.calls_to("sendMessage")
    assert len(chunks) == 3 and all(len(c["text"]) <= 4096 for c in chunks)
    assert "\n".join(c["text"] for c in chunks) == long_text
    assert ["reply_markup" in c for c in chunks] == [False, False, True]
    assert [len(row) for row in chunks[-1]["reply_markup"]["inline_keyboard"]] == [2, 2, 1]
    [document] = api.calls_to("sendDocument")
    assert document["caption"] == "Báo cáo" and document["document"]["filename"] == "report.csv"
    assert document["document"]["data"] == b"a,b\n1,2\n"
    [photo] = api.calls_to("sendPhoto")
    assert "caption" not in photo and caption["text"] == "y" * 1500


async def test_edit_falls_back_and_other_channels_are_skipped(channel: TelegramChannel,
                                                             api: FakeTelegramAPI) -> None:
    """An edit reply edits the button's message, or sends anew if it cannot; non-Telegram `to` is skipped."""
    lan = FakeUser(6002, "Lan")
    await channel.send_replies(incoming_of(lan), [Reply("Chọn:", buttons=(Button("A", "a:1"),))])
    shown = api.last_message(lan.id)["message_id"]
    await channel.send_replies(incoming_of(lan, shown), [Reply("Đã chọn A", edit=True)])
    [edit] = api.calls_to("editMessageText")
    assert edit["message_id"] == shown and api.last_message(lan.id)["text"] == "Đã chọn A"
    await channel.send_replies(incoming_of(lan, 999_999), [
        Reply("Cũ rồi", edit=True),
        Reply("to zalo", to=Address("zalo", "z1")),
        Reply("to another chat", to=Address("telegram", "6003")),
    ])
    assert [t["text"] for t in api.calls_to("sendMessage")] == ["Chọn:", "Cũ rồi", "to another chat"]
    assert api.calls_to("sendMessage")[-1]["chat_id"] == 6003


async def test_blocked_user_and_server_errors(channel: TelegramChannel, api: FakeTelegramAPI) -> None:
    """A user who blocked the bot is skipped; a 500 is retried until the message goes through."""
    mai, ngoc = FakeUser(6004, "Mai"), FakeUser(6005, "Ngọc")
    api.blocked.add(mai.id)
    await channel.send_replies(incoming_of(mai), [Reply("hello")])
    api.fail("sendMessage", status=500)
    await channel.send_replies(incoming_of(ngoc), [Reply("xin chào")])
    assert [t["text"] for t in api.calls_to("sendMessage")] == ["xin chào"]


def test_split_text_keeps_lines_whole() -> None:
    """Splitting cuts at line ends and only cuts inside a line longer than the limit."""
    assert split_text("short") == ["short"]
    assert split_text("aaa\nbbb\nccc", limit=8) == ["aaa\nbbb", "ccc"]
    assert split_text("x" * 10, limit=4) == ["xxxx", "xxxx", "xx"]


async def test_chat_locks_serialise_one_chat_only() -> None:
    """Updates of one chat run one at a time, other chats run alongside, and locks are dropped."""
    locks, log = ChatLocks(), []

    async def work(chat: str, n: int) -> None:
        async with locks.hold(chat):
            log.append(f"{chat}{n}+")
            await asyncio.sleep(0.01)
            log.append(f"{chat}{n}-")

    await asyncio.gather(work("a", 1), work("a", 2), work("b", 1))
    assert log.index("a1-") < log.index("a2+")
    assert log.index("b1+") < log.index("a1-")
    assert len(locks) == 0


# -- the command line -------------------------------------------------------------------------

async def _gocua(tmp_path: Path, *args: str, **env: str) -> tuple[int, str]:
    base = clean_env("TELEGRAM_", "GOCUA_")
    base.update(GOCUA_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}", **env)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "telegram", *args, cwd=ROOT, env=base,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode or 0, err.decode()


async def test_cli_without_token_exits_2(tmp_path: Path) -> None:
    """`python -m bot run telegram` without TELEGRAM_BOT_TOKEN exits 2 with one line, no traceback."""
    code, err = await _gocua(tmp_path)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("gocua: error: TELEGRAM_BOT_TOKEN is not set"), err


def test_cli_malformed_webhook_url_exits_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """`gocua run telegram --webhook-url not-a-url` exits 2 with one line naming the option."""
    monkeypatch.setattr("bot.cli.configure_logging", lambda level: None)
    monkeypatch.setenv("GOCUA_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:ABCdef")
    monkeypatch.setenv("GOCUA_WEBHOOK_SECRET", "s3cret-s3cret")
    assert cli_main(["run", "telegram", "--webhook-url", "not-a-url"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gocua: error: --webhook-url must be"), err
    assert "ABCdef" not in err


@pytest.mark.parametrize(("token", "webhook_url", "secret", "needle"), [
    ("not a token", None, None, "TELEGRAM_BOT_TOKEN is malformed"),
    ("123456:ABCdef", "https://bot.example.org/tg", None, "GOCUA_WEBHOOK_SECRET is not set"),
    ("123456:ABCdef", "https://bot.example.org", "s3cret-s3cret", "must include a path"),
    ("123456:ABCdef", None, None, "Telegram rejected TELEGRAM_BOT_TOKEN"),
])
async def test_run_telegram_refuses_bad_settings(api: FakeTelegramAPI, tmp_path: Path, token: str,
                                                 webhook_url: str | None, secret: str | None,
                                                 needle: str) -> None:
    """A malformed or refused token, or webhook mode without a secret or path, is a ConfigError."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", webhook_secret=secret,
                        telegram_bot_token=token, telegram_api_base=api.base_url)
    with pytest.raises(ConfigError, match=needle) as raised:
        await run_telegram(settings, webhook_url=webhook_url, stop=asyncio.Event())
    assert "ABCdef" not in str(raised.value)
    assert not (tmp_path / "x.db").exists()  # refused before touching the database
