"""The Zalo channel against a stand-in Zalo Bot API (tests/fakes/zalo_api.py), on the real databases."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import ClientSession
from sqlalchemy import func, select
from structlog.testing import capture_logs

from bot.app import App
from bot.channels.zalo import (
    CHART_NOTE,
    FILE_NOTE,
    PUBLIC_BASE_ENV,
    ChatLocks,
    FileStore,
    ZaloChannel,
    guess_locale,
    incoming_from_update,
    render_text,
    run_zalo,
    split_message,
)
from bot.channels.zalo_api import RetryPolicy, ZaloAPI, ZaloError, ZaloUnauthorized, ZaloUnavailable
from bot.config import ConfigError, Settings
from bot.seed_demo import seed_demo
from db.models import ProcessedUpdate, SharedFile
from handlers.deferred import NO_FILES_HERE
from handlers.i18n import RESIDENT, translator
from handlers.pipeline import DatabaseUnavailable
from handlers.types import Address, Attachment, Button, Incoming, Reply
from tests.chat import all_rows
from tests.fakes.zalo_api import MAX_TEXT, FakeZaloAPI

SECRET = "test-secret-123"  # the `settings` fixture's webhook secret
LANGUAGE_SET = "Language set to English.\nType /help to see what I can do."
VI, EN = translator("vi"), translator("en")
RESIDENT_VI = translator("vi", RESIDENT)  # what a Zalo user without a role reads


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def to(chat_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda params: params.get("chat_id") == chat_id


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - the conditions are plain reads
            await asyncio.sleep(0.01)


@pytest.fixture(autouse=True)
def _no_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PUBLIC_BASE_ENV, raising=False)


@pytest.fixture
async def api() -> AsyncIterator[FakeZaloAPI]:
    async with FakeZaloAPI() as fake:
        yield fake


@pytest.fixture
def zalo_settings(settings: Settings, api: FakeZaloAPI) -> Settings:
    return settings.with_overrides(zalo_bot_token=api.token, zalo_api_base=api.base_url)


@asynccontextmanager
async def running(settings: Settings, app: App, ready: Awaitable[Any], **kwargs: Any) -> AsyncIterator[None]:
    """run_zalo as a task until the block ends; `ready` says it is serving."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_zalo(settings, stop=stop, app=app, **kwargs))
    waiter = asyncio.ensure_future(ready)
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()
        raise AssertionError("run_zalo returned before serving")
    await waiter
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


@pytest.fixture
async def polling(zalo_settings: Settings, app: App, api: FakeZaloAPI,
                  tmp_path: Path) -> AsyncIterator[FakeZaloAPI]:
    async with running(zalo_settings, app, api.wait_for("getUpdates")):
        yield api


@pytest.fixture
async def webhook(zalo_settings: Settings, app: App, api: FakeZaloAPI,
                  tmp_path: Path) -> AsyncIterator[FakeZaloAPI]:
    port = free_port()
    async with running(zalo_settings, app, api.wait_for("setWebhook"), webhook_url=f"http://127.0.0.1:{port}/zalo/hook",
                       host="127.0.0.1", port=port):
        yield api


async def say(api: FakeZaloAPI, user: str, text: str, **kwargs: Any) -> str:
    """Post a text over the webhook (handled before the POST returns); the bot's answer, all
    messages joined by blank lines."""
    before = len(api.sent_texts(user))
    status, body = await api.post_webhook(api.text(user, text, **kwargs))
    assert status == 200, body
    return "\n\n".join(api.sent_texts(user)[before:])


async def ask(api: FakeZaloAPI, user: str, text: str, *, messages: int = 1) -> str:
    """Push a text for polling; the next `messages` messages the bot sends to `user`, joined."""
    before = len(api.calls_to("sendMessage", to(user)))
    api.push(api.text(user, text))
    sent = await api.wait_for("sendMessage", count=before + messages, where=to(user))
    return "\n\n".join(s["text"] for s in sent[before:])


def number_of(text: str, label: str) -> str:
    """The number of the option whose label contains `label` in a numbered list."""
    for line in text.splitlines():
        number, dot, rest = line.partition(". ")
        if dot and number.isdigit() and label in rest:
            return number
    raise AssertionError(f"no option {label!r} in {text!r}")


async def processed_rows(app: App) -> int:
    async with app.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(ProcessedUpdate)) or 0)


async def invite(app: App, role: str, area: str = "danang.hai-van") -> str:
    seeded = await seed_demo(app)
    return next(i["code"] for i in seeded["invites"] if i["role"] == role and i["area"] == area)


# -- end to end: polling ----------------------------------------------------------------------

async def test_polling_start_and_numbered_language_choice(polling: FakeZaloAPI) -> None:
    """/start is answered in Vietnamese; /lang shows numbered languages; "2" or "English" switches."""
    api = polling
    assert api.calls_to("deleteWebhook") == [{}] and api.webhook["url"] == ""
    hello = await ask(api, "u100", "/start")
    assert hello.startswith("Xin chào ông/bà User u100!") and "GoCua" in hello

    choose = await ask(api, "u100", "/lang")
    assert choose.endswith("\n\n1. Tiếng Việt\n2. English")
    assert await ask(api, "u100", "2") == LANGUAGE_SET
    assert (await ask(api, "u100", "/help")).startswith("You are using GoCua")

    await ask(api, "u101", "/lang")
    assert await ask(api, "u101", "English") == LANGUAGE_SET


async def test_polling_keeps_each_chat_in_order_and_chats_in_parallel(
        polling: FakeZaloAPI, app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """While one chat's message is still being handled, its next message waits and other chats
    are answered; then the waiting chat gets its answers in the order it wrote."""
    api = polling
    release = asyncio.Event()
    handle = app.core.handle

    async def slow(incoming: Incoming, **kwargs: Any) -> list[Reply]:
        if incoming.chat_id == "slow" and incoming.text == "/help":
            await release.wait()
        return await handle(incoming, **kwargs)

    monkeypatch.setattr(app.core, "handle", slow)
    api.push(api.text("slow", "/help"), api.text("slow", "/lang"), api.text("fast", "/lang"))
    [fast] = await api.wait_for("sendMessage", where=to("fast"))
    assert fast["text"].startswith(RESIDENT_VI("Choose your language:"))
    await asyncio.sleep(0.1)
    assert api.sent_texts("slow") == []
    release.set()
    sent = await api.wait_for("sendMessage", count=2, where=to("slow"))
    assert "/lang" in sent[0]["text"] and sent[1]["text"].startswith(RESIDENT_VI("Choose your language:"))


async def test_polling_chart_sent_as_a_photo_served_by_the_bot(zalo_settings: Settings, app: App,
                                                               api: FakeZaloAPI, tmp_path: Path) -> None:
    """With a public base URL a leader's chart goes out as sendPhoto by URL; the bot serves the PNG."""
    code = await invite(app, "leader")
    port = free_port()
    async with running(zalo_settings, app, api.wait_for("getUpdates"), host="127.0.0.1", port=port,
                       public_url=f"http://127.0.0.1:{port}/"):
        await ask(api, "lead", f"/join {code}")
        await ask(api, "lead", "/lang")
        await ask(api, "lead", "2")
        stats = await ask(api, "lead", "/stats")
        api.push(api.text("lead", number_of(stats, "Chart")))
        [photo] = await api.wait_for("sendPhoto", where=to("lead"), timeout=15)
        caption = (await api.wait_for("sendMessage", count=5, where=to("lead")))[-1]["text"]
        assert caption.startswith("Procedures completed in the last 12 weeks") and "1. ⬅️ Back" in caption
        assert EN(CHART_NOTE) not in caption
        assert photo["photo"].startswith(f"http://127.0.0.1:{port}/files/")
        async with ClientSession() as http:
            async with http.get(photo["photo"]) as resp:
                assert resp.status == 200 and resp.content_type == "image/png"
                assert (await resp.read()).startswith(b"\x89PNG\r\n\x1a\n")
            async with http.get(f"http://127.0.0.1:{port}/files/{'0' * 32}.png") as resp:
                assert resp.status == 404
    [stored] = await all_rows(app, SharedFile)
    assert stored.name == photo["photo"].rsplit("/", 1)[1] and stored.media_type == "image/png"


# -- end to end: webhook ----------------------------------------------------------------------

async def test_webhook_checks_the_secret(webhook: FakeZaloAPI, app: App) -> None:
    """The webhook is registered with the secret; a wrong or missing secret is a 401 and changes nothing."""
    api = webhook
    assert api.webhook["secret_token"] == SECRET
    assert api.webhook["url"].endswith("/zalo/hook")
    assert "Xin chào ông/bà" in await say(api, "u200", "/start")
    rows = await processed_rows(app)
    assert rows == 1

    for secret in ("wrong-secret-000", None, ""):
        status, _ = await api.post_webhook(api.text("u201", "/start"), secret=secret)
        assert status == 401
    assert api.sent_texts("u201") == [] and await processed_rows(app) == rows

    status, _ = await api.post_webhook(b"{not json", secret=True)
    assert status == 200  # answered, so that Zalo does not deliver it again
    assert await processed_rows(app) == rows

    base = api.webhook["url"].removesuffix("/zalo/hook")
    async with ClientSession() as http, http.get(f"{base}/healthz") as resp:
        assert (resp.status, await resp.text()) == (200, "ok")


async def test_duplicate_deliveries_are_answered_once(webhook: FakeZaloAPI, app: App) -> None:
    """The same message_id delivered again, later or at the same time, gets one answer."""
    api = webhook
    update = api.text("u300", "/help", message_id="dup-1")
    assert (await api.post_webhook(update))[0] == 200
    assert (await api.post_webhook(update))[0] == 200
    assert len(api.sent_texts("u300")) == 1

    again = api.text("u300", "/start", message_id="dup-2")
    statuses = await asyncio.gather(api.post_webhook(again), api.post_webhook(again))
    assert [s for s, _ in statuses] == [200, 200]
    assert len(api.sent_texts("u300")) == 2
    assert await processed_rows(app) == 2

    # The same message id in another chat is another message.
    assert "/help" in await say(api, "u301", "/help", message_id="dup-1")


async def test_stickers_and_images_get_a_text_only_answer(webhook: FakeZaloAPI) -> None:
    """A sticker, an image or an unsupported message is answered with the text-only note."""
    api = webhook
    only_text = RESIDENT_VI("I can only read text messages. Type /help to see what I can do.")
    for update in (api.sticker("u400"), api.image("u400"), api.unsupported("u400")):
        assert (await api.post_webhook(update))[0] == 200
    assert api.sent_texts("u400") == [only_text] * 3


async def test_a_volunteer_runs_a_procedure_with_numbers(webhook: FakeZaloAPI, app: App) -> None:
    """A volunteer who joined by invite opens a household and starts a procedure by typing numbers;
    a number beyond the options offered says so and shows the options again."""
    api = webhook
    code = await invite(app, "volunteer")
    await say(api, "vol", "/lang")
    assert await say(api, "vol", "2") == LANGUAGE_SET
    assert (await say(api, "vol", f"/join {code}")).startswith(
        "Welcome! You are now a volunteer in Phường Hải Vân.")

    page = await say(api, "vol", "/household HV-TL-001")
    assert page.startswith("🏠 HV-TL-001 · Alăng Văn Tư")
    assert page.endswith("\n\n1. Start a procedure\n2. Add a member\n3. Correct details")
    again = await say(api, "vol", "4")
    assert again.startswith("There is no option 4; choose 1–3.\n\n🏠 HV-TL-001 · Alăng Văn Tư")
    assert again.endswith("\n\n1. Start a procedure\n2. Add a member\n3. Correct details")

    procedures = await say(api, "vol", number_of(again, "Start a procedure"))
    assert procedures.startswith("Which procedure for HV-TL-001?")
    step = await say(api, "vol", number_of(procedures, "Residence confirmation"))
    assert step.startswith("Step 1/5 · Residence confirmation (CT07)\n") and step.endswith("\n\n1. Continue")
    step = await say(api, "vol", "1")
    assert step.startswith("Step 2/5") and "\n\n1. In the VNeID app" in step
    step = await say(api, "vol", "On dichvucong.gov.vn")
    assert "Step 3/5" in step and step.endswith("1. Done\n2. Skip\n3. Problem")


async def test_chart_without_public_url_says_where_to_see_it(webhook: FakeZaloAPI, app: App) -> None:
    """Without a public base URL a chart is not drawn: a translated note says how to get it, and
    the way back stays."""
    api = webhook
    code = await invite(app, "leader")
    await say(api, "boss", f"/join {code}")
    stats = await say(api, "boss", "/stats")
    answer = await say(api, "boss", number_of(stats, VI("Chart")))
    assert answer.startswith(VI(NO_FILES_HERE)) and answer.endswith("1. ⬅️ " + VI("Back"))
    assert api.calls_to("sendPhoto") == []


async def test_send_429_is_waited_out_and_delivered_once(webhook: FakeZaloAPI) -> None:
    """A 429 with retry-after on sendMessage is waited out; the message arrives exactly once."""
    api = webhook
    api.fail("sendMessage", status=429, retry_after=1)
    started = time.monotonic()
    assert "/help" in await say(api, "u500", "/help")
    assert time.monotonic() - started >= 0.9
    assert len(api.calls_to("sendMessage", to("u500"))) == 1
    assert [c.method for c in api.failed] == ["sendMessage"]


async def test_webhook_database_outage_is_a_500(webhook: FakeZaloAPI, app: App,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """While the database is down the webhook answers 500 (Zalo delivers again); /healthz is 503."""
    api = webhook

    async def down(incoming: Incoming, **_: Any) -> list[Reply]:
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(app.core, "handle", down)
    status, _ = await api.post_webhook(api.text("u600", "/help"))
    assert status == 500 and api.sent_texts("u600") == []

    def broken() -> Any:
        raise OSError("database is gone")

    monkeypatch.setattr(app.db, "transaction", broken)
    base = api.webhook["url"].removesuffix("/zalo/hook")
    async with ClientSession() as http, http.get(f"{base}/healthz") as resp:
        assert resp.status == 503


# -- outages of the Zalo API ------------------------------------------------------------------

async def test_polling_survives_an_api_outage(app: App, api: FakeZaloAPI) -> None:
    """getUpdates failing (502, then connection refused) is logged and backed off; the bot answers
    once the API is back, and the back-off starts small again."""
    client = ZaloAPI(api.token, api.base_url)
    channel = ZaloChannel(app, client, poll_backoff=(0.05, 0.2))
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(channel.start_polling(stop=stop, poll_timeout=1))
        try:
            await api.wait_for("getUpdates")
            api.fail("getUpdates", status=502, times=3)
            await until(lambda: len(api.failed) >= 3)
            await api.go_down()
            api.push(api.text("u700", "/help"))
            await until(lambda: sum(e["event"] == "zalo.polling_failed" for e in logs) >= 6)
            assert not task.done()
            await api.come_back()
            [sent] = await api.wait_for("sendMessage", where=to("u700"))
            assert "/help" in sent["text"]
            api.fail("getUpdates", status=500)
            await until(lambda: sum(e["event"] == "zalo.polling_failed" for e in logs) >= 7)
        finally:
            stop.set()
            await asyncio.wait_for(task, 5)
            await client.close()
    failures = [e for e in logs if e["event"] == "zalo.polling_failed"]
    assert [e["retry_in"] for e in failures[:4]] == [0.05, 0.1, 0.2, 0.2]
    assert {e["error"] for e in failures[:-1]} == {"ZaloServerError", "ZaloNetworkError"}
    assert any(e["event"] == "zalo.polling_recovered" for e in logs)
    assert failures[-1]["retry_in"] == 0.05  # reset after the recovery
    assert all(api.token not in repr(e) for e in logs)


async def test_api_client_errors_are_typed_and_scrubbed(api: FakeZaloAPI) -> None:
    """401, refusals, 5xx and network errors come out as typed errors without the token."""
    fast = RetryPolicy(first_delay=0.01, max_delay=0.02, tries=3)
    bad = ZaloAPI("999:wrong-token-secret", api.base_url, retry=fast)
    good = ZaloAPI(api.token, api.base_url, retry=fast)
    gone = ZaloAPI(api.token, f"http://127.0.0.1:{free_port()}", retry=fast)
    try:
        with pytest.raises(ZaloUnauthorized):
            await bad.get_me()
        assert (await good.get_me())["account_name"] == "gocua_test_bot"
        assert await good.get_updates(timeout=0) == []  # 408: an empty poll

        with pytest.raises(ZaloError) as refused:
            await good.send_message("u1", "x" * (MAX_TEXT + 1))
        assert refused.value.code == 400 and not isinstance(refused.value, ZaloUnavailable)

        api.fail("sendMessage", status=503, times=2)
        await good.send_message("u1", "after two 503s")
        api.fail("sendMessage", status=502, times=3)
        with pytest.raises(ZaloUnavailable):
            await good.send_message("u1", "never")
        assert api.sent_texts("u1") == ["after two 503s"]

        with pytest.raises(ZaloUnavailable) as unreachable:
            await gone.send_message("u1", "nobody listens")
        assert api.token not in str(unreachable.value) and "ClientConnectorError" in str(unreachable.value)
    finally:
        for client in (bad, good, gone):
            await client.close()


# -- start-up ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("token", "webhook_url", "secret", "needle"), [
    (None, None, None, "ZALO_BOT_TOKEN is not set"),
    ("123 456:ABCdef", None, None, "ZALO_BOT_TOKEN is malformed"),
    ("123456:ABCdef", None, None, "Zalo rejected ZALO_BOT_TOKEN (401 Unauthorized)"),
    ("123456:ABCdef", "https://bot.example.org/zalo", None, "GOCUA_WEBHOOK_SECRET is not set"),
    ("123456:ABCdef", "https://bot.example.org", "s3cret-s3cret", "must include a path"),
    ("123456:ABCdef", "https://bot.example.org/healthz", "s3cret-s3cret", "must not use the path"),
])
async def test_run_zalo_refuses_bad_settings(api: FakeZaloAPI, tmp_path: Path, token: str | None,
                                             webhook_url: str | None, secret: str | None,
                                             needle: str) -> None:
    """A missing, malformed or refused token, or webhook mode without secret or path: one-line ConfigError."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", webhook_secret=secret,
                        zalo_bot_token=token, zalo_api_base=api.base_url)
    with pytest.raises(ConfigError, match=re.escape(needle)) as raised:
        await run_zalo(settings, webhook_url=webhook_url, stop=asyncio.Event())
    assert "ABCdef" not in str(raised.value) and "\n" not in str(raised.value)
    assert not (tmp_path / "x.db").exists()


async def test_run_zalo_with_the_api_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """getMe that never gets an answer stops start-up with a ConfigError naming ZALO_API_BASE."""
    fast = RetryPolicy(first_delay=0.01, tries=2)
    monkeypatch.setattr("bot.channels.zalo.ZaloAPI", lambda token, base: ZaloAPI(token, base, retry=fast))
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
                        zalo_bot_token="1:sekret-token", zalo_api_base=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConfigError, match=r"cannot use the Zalo Bot API \(getMe\).*ZALO_API_BASE") as raised:
        await run_zalo(settings, stop=asyncio.Event())
    assert "sekret" not in str(raised.value)


# -- rendering, without a database --------------------------------------------------------------

@pytest.fixture
async def channel(api: FakeZaloAPI) -> AsyncIterator[ZaloChannel]:
    client = ZaloAPI(api.token, api.base_url)
    try:
        yield ZaloChannel(cast(App, None), client)  # sending needs no App
    finally:
        await client.close()


def _incoming(chat_id: str) -> Incoming:
    return Incoming(channel="zalo", chat_id=chat_id, sender_id=chat_id, update_id="1", text="hi")


async def test_send_replies_numbers_splits_and_routes(channel: ZaloChannel, api: FakeZaloAPI) -> None:
    """Buttons become numbered lines, long texts are split at lines, files get a note, `to` routes,
    replies for other channels are skipped and edits are sent as new messages."""
    long_text = "\n".join(f"line {i:03d} " + "x" * 90 for i in range(50))  # 5,000 characters
    await channel.send_replies(_incoming("z1"), [
        Reply("Chọn:", buttons=(Button("Có", "y"), Button("Không", "n")), columns=2),
        Reply(long_text, buttons=(Button("Back", "b"),)),
        Reply("Phường Hải Vân · 30 ngày qua: 5 ghi nhận theo bước.",
              attachment=Attachment("document", "x.xlsx", b"PK")),
        Reply("Hai Van · last 30 days: 5 step records.", attachment=Attachment("document", "x.csv", b"a")),
        Reply("Procedures completed in 12 weeks: Phường Hải Vân.",
              attachment=Attachment("photo", "c.png", b"\x89PNG")),
        Reply("to telegram", to=Address("telegram", "42")),
        Reply("to another zalo chat", to=Address("zalo", "z2"), buttons=(Button("Take it", "t"),)),
        Reply("edited", edit=True),
        Reply("   "),
    ])
    texts = api.sent_texts("z1")
    assert texts[0] == "Chọn:\n\n1. Có\n2. Không"
    parts = texts[1:4]
    assert all(len(p) <= MAX_TEXT for p in parts) and len(parts) == 3
    assert "\n".join(parts) == long_text + "\n\n1. Back"
    assert texts[4] == "Phường Hải Vân · 30 ngày qua: 5 ghi nhận theo bước.\n\n" + VI(FILE_NOTE)
    assert texts[5] == "Hai Van · last 30 days: 5 step records.\n\n" + EN(FILE_NOTE)
    assert texts[6] == "Procedures completed in 12 weeks: Phường Hải Vân.\n\n" + EN(CHART_NOTE)
    assert texts[7:] == ["edited"]
    assert api.sent_texts("z2") == ["to another zalo chat\n\n1. Take it"]
    assert api.sent_texts("42") == [] and api.calls_to("sendPhoto") == []


async def test_long_reply_end_to_end_in_order(channel: ZaloChannel, api: FakeZaloAPI) -> None:
    """A 4,500-character reply reaches Zalo as several messages of at most 2,000, in order."""
    lines = [f"{i:04d} " + "Hộ gia đình đã được hỗ trợ cài đặt VNeID mức 2." * 2 for i in range(45)]
    await channel.send_replies(_incoming("z3"), [Reply("\n".join(lines))])
    sent = api.sent_texts("z3")
    assert len(sent) >= 3 and all(len(s) <= MAX_TEXT for s in sent)
    assert [line for part in sent for line in part.split("\n")] == lines


def test_split_message_cuts_at_lines_then_spaces_then_hard() -> None:
    """Parts stay within the limit and in order: whole lines first, a long line at a space, else hard."""
    assert split_message("short") == ["short"]
    assert split_message("   ") == []
    assert split_message("aaa\nbbb\nccc", limit=8) == ["aaa\nbbb", "ccc"]
    assert split_message("one two three four", limit=9) == ["one two", "three", "four"]
    assert split_message("x" * 10, limit=4) == ["xxxx", "xxxx", "xx"]
    assert split_message("ab\n\n\ncd", limit=3) == ["ab", "cd"]
    text = "\n".join(("word " * (i * 90)).strip() for i in range(12))  # lines up to 4,950 characters
    parts = split_message(text, limit=2000)
    assert len(parts) > 5 and all(0 < len(p) <= 2000 for p in parts)
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())


def test_render_text_numbers_the_options() -> None:
    """A reply's buttons follow its text after a blank line, one numbered line each."""
    reply = Reply("Chọn ngôn ngữ:", buttons=(Button("Tiếng Việt", "lang:vi"), Button("English", "lang:en")))
    assert render_text(reply) == "Chọn ngôn ngữ:\n\n1. Tiếng Việt\n2. English"
    assert render_text(Reply("", buttons=(Button("A", "a"),))) == "1. A"
    assert render_text(Reply("Text"), note="Note") == "Text\n\nNote"


def test_guess_locale() -> None:
    """The note's language follows the reply's: marks on lower-case words mean Vietnamese."""
    assert guess_locale("Thủ tục hoàn thành trong 12 tuần qua: Phường Hải Vân.") == "vi"
    assert guess_locale("Procedures completed in the last 12 weeks: Phường Hải Vân.") == "en"
    assert guess_locale("Phường Hải Vân") == "vi"
    assert guess_locale("HX-001", default="en") == "en"


def test_incoming_from_update() -> None:
    """Text messages carry their text; other events none; groups and id-less updates are ignored."""
    fake = FakeZaloAPI()
    text = incoming_from_update(fake.text("u1", "/start", message_id="m1", display_name="Lê An"))
    assert text == Incoming(channel="zalo", chat_id="u1", sender_id="u1", update_id="u1:m1",
                            display_name="Lê An", text="/start")
    for update in (fake.sticker("u1"), fake.image("u1"), fake.unsupported("u1")):
        incoming = incoming_from_update(update)
        assert incoming is not None and incoming.unsupported
    numeric = {"event_name": "message.text.received",
               "message": {"message_id": 7, "text": "hi", "from": {"id": 5}, "chat": {"id": 5}}}
    assert incoming_from_update(numeric) == Incoming(
        channel="zalo", chat_id="5", sender_id="5", update_id="5:7", text="hi")
    assert incoming_from_update(fake.text("u1", "hi", chat_type="GROUP")) is None
    assert incoming_from_update({"event_name": "message.text.received", "message": {"text": "x"}}) is None
    assert incoming_from_update({"ok": True}) is None


async def test_file_store_keeps_charts_in_the_database_for_a_day(app: App, clock: Any) -> None:
    """A stored PNG gets a random 32-hex name under {public base}/files/; any worker of the
    database serves it (here: a second App) until it expires, and housekeeping deletes it then."""
    from aiohttp import web
    from aiohttp.test_utils import make_mocked_request

    from bot.app import open_app
    from db.repo.housekeeping import prune

    store = FileStore(app.channel_services, "https://bot.example.org/gocua/")
    first, second = await store.put_png(b"\x89PNG1"), await store.put_png(b"\x89PNG2")
    assert first != second and first.startswith("https://bot.example.org/gocua/files/")
    name = first.rsplit("/", 1)[1]
    assert len(name) == 36

    other = await open_app(app.settings, migrate=False, clock=clock)
    try:
        elsewhere = FileStore(other.channel_services, "https://bot.example.org/gocua/")

        async def fetch(name: str) -> bytes | int:
            request = make_mocked_request("GET", f"/files/{name}", match_info={"name": name})
            try:
                response = await elsewhere.serve(request)
            except web.HTTPNotFound:
                return 404
            return response.body

        assert await fetch(name) == b"\x89PNG1"
        assert await fetch("../../etc/passwd") == 404 and await fetch(f"{'0' * 32}.png") == 404
        clock.advance(hours=25)
        assert await fetch(name) == 404
    finally:
        await other.close()
    assert (await prune(app.db.transaction, clock())).files == 2


async def test_chat_locks_serialise_one_chat_only() -> None:
    """Updates of one chat run one at a time, other chats alongside; locks are dropped after."""
    locks, log = ChatLocks(), []

    async def work(chat: str, n: int) -> None:
        async with locks.hold(chat):
            log.append(f"{chat}{n}+")
            await asyncio.sleep(0.01)
            log.append(f"{chat}{n}-")

    await asyncio.gather(work("a", 1), work("a", 2), work("b", 1))
    assert log.index("a1-") < log.index("a2+") and log.index("b1+") < log.index("a1-")
    assert len(locks) == 0
