"""Slow files never leave a tap spinning (issue 16 §1, §6 "Files"), on the Telegram and Zalo
stand-ins, which record every Bot API call with the time it arrived.

A tap on "⬇️ Excel" is answered at once with a toast, "sending a document" shows while the file
is built, the file's size is checked against the platform's limit before any upload (the limit
is injected small, so no 50 MB file is needed), and what does not fit is offered another way:
a shorter period, a sub-area, the CSV compressed, or a download link that expires.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from aiohttp import ClientSession

import handlers.exports as exports
from bot.app import App
from bot.channels.telegram import TelegramChannel
from bot.config import Settings
from bot.seed_demo import seed_demo
from handlers.deferred import NO_FILES_HERE, RenderContext
from handlers.file_limits import PREPARING, TOO_BIG_LIMIT, FileDelivery, FileLimits, discard, export_dir
from handlers.i18n import translator
from handlers.types import Reply
from tests.fakes import FakeTelegramAPI, FakeUser
from tests.fakes.base import Call
from tests.fakes.zalo_api import FakeZaloAPI
from tests.test_telegram import free_port, running, to
from tests.test_zalo import ask, number_of
from tests.test_zalo import running as zalo_running

VI, EN = translator("vi"), translator("en")
LINK = re.compile(r"https?://\S+")
TINY = FileLimits(document=2_000, photo=10 * 1024 * 1024)  # every export is over it


async def join_as_leader(app: App, api: FakeTelegramAPI, user: FakeUser) -> None:
    seeded = await seed_demo(app)
    code = next(i["code"] for i in seeded["invites"]
                if i["role"] == "leader" and i["area"] == "danang.hai-van")
    before = len(api.calls_to("sendMessage", to(user)))
    api.push(api.message(user, f"/join {code}"))
    await api.wait_for("sendMessage", count=before + 1, where=to(user))  # one message (issue 16 §4)


async def stats_menu(api: FakeTelegramAPI, user: FakeUser) -> dict[str, Any]:
    """/stats; the message with its keyboard (as the stand-in stores it)."""

    def menu(params: dict[str, Any]) -> bool:
        return params.get("chat_id") == user.id and "Excel" in str(params.get("reply_markup"))

    before = len(api.calls_to("sendMessage", menu))
    api.push(api.message(user, "/stats"))
    await api.wait_for("sendMessage", count=before + 1, where=menu)
    return api.last_message(user.id)


def button(message: dict[str, Any], label: str) -> str:
    for row in message["reply_markup"]["inline_keyboard"]:
        for b in row:
            if label in b["text"]:
                return str(b["callback_data"])
    raise AssertionError(f"no button {label!r}")


def labels(params: dict[str, Any]) -> list[str]:
    markup = params.get("reply_markup") or {"inline_keyboard": []}
    return [b["text"] for row in markup["inline_keyboard"] for b in row]


def calls(api: FakeTelegramAPI | FakeZaloAPI, method: str) -> list[Call]:
    return [c for c in api.calls if c.method == method]


@pytest.fixture
def slow_build(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """An export builder as slow as a city's (66 s seen): it holds the build until the stand-in
    (`seen["api"]`) has recorded the tap's answer and the chat action, for at most 2 s, then
    records what had been sent by then and builds the file."""
    seen: dict[str, Any] = {"api": None, "waits_for": ("answerCallbackQuery", "sendChatAction")}
    real = exports.write_export

    async def slow(*args: Any, **kwargs: Any) -> int:
        api = seen["api"]
        try:
            async with asyncio.timeout(2.0):  # the tap must be answered within 2 s
                for method in seen["waits_for"]:
                    await api.wait_for(method, timeout=2.0)
        except TimeoutError:
            pass
        seen["answered_while_building"] = bool(calls(api, "answerCallbackQuery"))
        seen["action_while_building"] = [c.params.get("action") for c in calls(api, "sendChatAction")]
        seen["uploads_while_building"] = len(calls(api, "sendDocument"))
        return await real(*args, **kwargs)

    monkeypatch.setattr(exports, "write_export", slow)
    return seen


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture
def tg_settings(settings: Settings, tg: FakeTelegramAPI) -> Settings:
    return settings.with_overrides(telegram_bot_token=tg.token, telegram_api_base=tg.base_url)


@pytest.fixture
async def leader_bot(tg_settings: Settings, app: App, tg: FakeTelegramAPI) -> AsyncIterator[FakeTelegramAPI]:
    async with running(tg_settings, app, tg.wait_for("getUpdates")):
        yield tg


async def test_a_city_size_export_tap_is_answered_before_the_build(
        leader_bot: FakeTelegramAPI, app: App, slow_build: dict[str, Any]) -> None:
    """The leader taps "⬇️ Excel": the button is answered with the toast "⏳ Đang tạo tệp…" and
    "sending a document" shows while the (slow) file is built, well within 2 s of the tap;
    the document follows, named for its area and period, and the tap is answered once."""
    api = leader_bot
    slow_build["api"] = api
    lan = FakeUser(7001, "Lan", language_code="vi")
    await join_as_leader(app, api, lan)
    menu = await stats_menu(api, lan)
    api.push(api.callback(lan, button(menu, "Excel"), menu["message_id"]))
    [document] = await api.wait_for("sendDocument", where=to(lan), timeout=10)
    await api.wait_for("getUpdates", count=len(calls(api, "getUpdates")) + 1)  # the update is done

    assert slow_build["answered_while_building"], "the tap waited for the build"
    assert slow_build["action_while_building"][:1] == ["upload_document"]
    assert slow_build["uploads_while_building"] == 0
    [answer] = calls(api, "answerCallbackQuery")  # answered once: not again after the build
    assert answer.params["text"] == VI(PREPARING) != PREPARING  # "⏳ Đang tạo tệp…"
    [upload] = calls(api, "sendDocument")
    first_action = calls(api, "sendChatAction")[0]
    assert answer.at <= first_action.at < upload.at
    name = document["document"]["filename"]
    assert re.fullmatch(r"gocua_phuong-hai-van_\d{4}-\d\d-\d\d_\d{4}-\d\d-\d\d\.xlsx", name), name
    assert not list(export_dir().iterdir())  # the temporary file is gone once sent


async def test_a_chart_tap_shows_upload_photo(leader_bot: FakeTelegramAPI, app: App) -> None:
    """A chart is answered at once too, with "sending a photo" while it is drawn."""
    api = leader_bot
    lan = FakeUser(7002, "Lan", language_code="en")
    await join_as_leader(app, api, lan)
    menu = await stats_menu(api, lan)
    api.push(api.callback(lan, button(menu, "Chart"), menu["message_id"]))
    await api.wait_for("sendPhoto", where=to(lan), timeout=15)
    [answer] = calls(api, "answerCallbackQuery")
    assert answer.params["text"] == EN(PREPARING)
    assert [c.params["action"] for c in calls(api, "sendChatAction")][:1] == ["upload_photo"]
    assert answer.at < calls(api, "sendPhoto")[0].at


async def test_a_chart_over_the_photo_limit_is_not_uploaded(
        tg_settings: Settings, app: App, tg: FakeTelegramAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chart over the photo limit (injected: 100 bytes) comes as its caption and a note with
    the size and the limit; nothing is uploaded."""
    api = tg
    monkeypatch.setattr(TelegramChannel, "default_file_limits", FileLimits(document=None, photo=100))
    lan = FakeUser(7005, "Lan", language_code="en")
    async with running(tg_settings, app, api.wait_for("getUpdates")):
        await join_as_leader(app, api, lan)
        menu = await stats_menu(api, lan)
        before = len(api.calls_to("sendMessage", to(lan)))
        api.push(api.callback(lan, button(menu, "Chart"), menu["message_id"]))
        sent = await api.wait_for("sendMessage", count=before + 1, where=to(lan), timeout=15)
    assert not calls(api, "sendPhoto")
    text = sent[-1]["text"]
    assert text.startswith("Procedures completed in the last 12 weeks")
    assert text.endswith(EN(TOO_BIG_LIMIT, size="1", limit="1"))


async def test_an_export_over_the_limit_offers_what_fits(
        tg_settings: Settings, app: App, tg: FakeTelegramAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """Over Telegram's limit (injected: 2 KB) nothing is uploaded: the leader is told the size
    and the limit, and offered a shorter period, each sub-area and the CSV compressed."""
    api = tg
    monkeypatch.setattr(TelegramChannel, "default_file_limits", TINY)
    lan = FakeUser(7003, "Lan", language_code="en")
    async with running(tg_settings, app, api.wait_for("getUpdates")):
        await join_as_leader(app, api, lan)
        menu = await stats_menu(api, lan)
        before = len(api.calls_to("sendMessage", to(lan)))
        api.push(api.callback(lan, button(menu, "Excel"), menu["message_id"]))
        sent = await api.wait_for("sendMessage", count=before + 1, where=to(lan), timeout=10)
    answer = sent[-1]
    assert not calls(api, "sendDocument")
    assert "This file is too big to send here (1 MB; at most 1 MB)." in answer["text"]
    assert "a shorter period or one sub-area" in answer["text"]
    offered = labels(answer)
    assert offered[:1] == ["⬇️ Last 7 days"]  # the tap was for the last 30 days
    assert "⬇️ Thôn Giàn Bí" in offered and "⬇️ Thôn Tà Lang" in offered
    assert "⬇️ CSV (compressed)" in offered and offered[-1] == "📊 Statistics"
    [toast] = calls(api, "answerCallbackQuery")
    assert toast.params["text"] == EN(PREPARING)


async def test_over_the_limit_with_a_public_url_the_export_is_a_link_that_expires(
        tg_settings: Settings, app: App, tg: FakeTelegramAPI, monkeypatch: pytest.MonkeyPatch,
        clock: Any) -> None:
    """With GOCUA_PUBLIC_BASE_URL, a file over the limit comes as a download link served by the
    bot (in polling mode too): unguessable, saved under the export's name, gone after 24 hours."""
    api = tg
    monkeypatch.setattr(TelegramChannel, "default_file_limits", TINY)
    lan = FakeUser(7004, "Lan", language_code="en")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with running(tg_settings, app, api.wait_for("getUpdates"), public_url=base,
                       host="127.0.0.1", port=port):
        await join_as_leader(app, api, lan)
        menu = await stats_menu(api, lan)
        before = len(api.calls_to("sendMessage", to(lan)))
        api.push(api.callback(lan, button(menu, "Excel"), menu["message_id"]))
        sent = await api.wait_for("sendMessage", count=before + 1, where=to(lan), timeout=10)
        text = sent[-1]["text"]
        assert not calls(api, "sendDocument")
        [url] = LINK.findall(text)
        assert re.fullmatch(rf"{base}/files/[0-9a-f]{{32}}/gocua_phuong-hai-van_[\d_-]+\.xlsx", url)
        assert "the link works for 24 hours" in text
        async with ClientSession() as http:
            async with http.get(url) as resp:
                assert resp.status == 200 and "no-store" in resp.headers["Cache-Control"]
                book = openpyxl.load_workbook(io.BytesIO(await resp.read()))
            assert "Step records" in book.sheetnames
            async with http.get(url.replace(url.split("/")[-2], "0" * 32)) as resp:
                assert resp.status == 404
            clock.advance(hours=25)
            async with http.get(url) as resp:
                assert resp.status == 404


def _big_csv(tmp_path: Path) -> tuple[Path, str]:
    """A 20,000-row CSV, and a copy of it where exports are built."""
    big = tmp_path / "x.csv"
    with big.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        for i in range(20_000):
            writer.writerow(["Phường Hải Vân", f"HV-TL-{i % 50:03}", "VNeID", "Bước 1", "Xong"])
    path = export_dir() / "export-test-x.csv"
    path.write_bytes(big.read_bytes())
    return big, str(path)


def _zipped(path: str) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


async def test_a_big_csv_goes_compressed(app: App, tmp_path: Path) -> None:
    """A CSV over the limit whose zip fits is sent as the zip, said so in the caption."""
    from db.models import Area
    from db.repo.areas import area_by_code

    await seed_demo(app)
    big, path = await asyncio.to_thread(_big_csv, tmp_path)
    size = (await asyncio.to_thread(big.stat)).st_size
    limits = FileLimits(document=size // 3, photo=None)
    rctx = RenderContext(app.core.services, app.db.transaction, delivery=FileDelivery(limits=limits))
    async with app.db.transaction() as session:
        hai_van = await area_by_code(session, "danang.hai-van")
    assert isinstance(hai_van, Area)
    reply: Reply = await exports.deliver(rctx, EN, path, "gocua_x.csv", "caption", area=hai_van,
                                         period="30d", fmt="csv", now=app.core.services.clock(),
                                         channel="telegram")
    assert reply.attachment is not None and reply.attachment.filename == "gocua_x.zip"
    assert reply.attachment.size <= size // 3
    assert "compressed (zip)" in reply.text
    assert not await asyncio.to_thread(Path(path).exists)  # the CSV is gone; the zip is the channel's
    zip_path = reply.attachment.path or ""
    assert await asyncio.to_thread(_zipped, zip_path) == {"gocua_x.csv": big.read_bytes()}
    discard(zip_path)


async def test_on_zalo_a_file_over_the_link_limit_is_declined_in_words(app: App, tmp_path: Path) -> None:
    """Over what a link may hold, a Zalo leader is told the size and what to ask for instead, in
    words (Zalo's numbered options were fixed when the file was asked for): no link, no file."""
    from db.repo.areas import area_by_code

    await seed_demo(app)
    _big, path = await asyncio.to_thread(_big_csv, tmp_path)
    delivery = FileDelivery(limits=FileLimits(document=None, photo=None, link=1_000),
                            public_base="https://bot.example.org")
    rctx = RenderContext(app.core.services, app.db.transaction, delivery=delivery)
    async with app.db.transaction() as session:
        hai_van = await area_by_code(session, "danang.hai-van")
    assert hai_van is not None
    reply = await exports.deliver(rctx, VI, path, "gocua_x.csv", "caption", area=hai_van,
                                  period="all", fmt="csv", now=app.core.services.clock(),
                                  channel="zalo")
    assert reply.attachment is None and reply.buttons == ()
    assert reply.text.startswith(VI("This file is too big to send here ({size} MB).", size="1"))
    assert "http" not in reply.text and "nút" not in reply.text
    assert not list(export_dir().iterdir())  # neither the CSV nor its zip is left behind


# -- Zalo ----------------------------------------------------------------------------------------

async def zalo_leader(app: App, api: FakeZaloAPI, user: str) -> str:
    seeded = await seed_demo(app)
    code = next(i["code"] for i in seeded["invites"]
                if i["role"] == "leader" and i["area"] == "danang.hai-van")
    await ask(api, user, f"/join {code}")
    await ask(api, user, "/lang en")
    menu = await ask(api, user, "/stats")
    return await ask(api, user, number_of(menu, "More"))  # 8 options a message: the downloads follow


async def test_a_zalo_leader_gets_the_excel_as_a_link(
        settings: Settings, app: App, slow_build: dict[str, Any]) -> None:
    """On Zalo the statistics' Excel option answers with a download link (after "typing" while
    it is built)."""
    async with FakeZaloAPI() as api:
        slow_build["api"], slow_build["waits_for"] = api, ("sendChatAction",)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        settings = settings.with_overrides(zalo_bot_token=api.token, zalo_api_base=api.base_url)
        async with zalo_running(settings, app, api.wait_for("getUpdates"), host="127.0.0.1",
                                port=port, public_url=base):
            menu = await zalo_leader(app, api, "lead")
            answer = await ask(api, "lead", number_of(menu, "Download the spreadsheet"))
            [url] = LINK.findall(answer)
            assert url.startswith(f"{base}/files/") and url.endswith(".xlsx")
            assert "the link works for 24 hours" in answer
            assert "typing" in slow_build["action_while_building"]
            async with ClientSession() as http, http.get(url) as resp:
                assert resp.status == 200


async def test_without_a_public_url_zalo_says_how_to_get_files_and_keeps_the_menu(
        settings: Settings, app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    """Zalo cannot receive files: without a public base URL the Excel and chart options say how
    to get them instead (nothing is built), with the way back."""

    async def never(*args: Any, **kwargs: Any) -> int:
        raise AssertionError("an export was built for a chat that cannot receive it")

    monkeypatch.setattr(exports, "write_export", never)
    async with FakeZaloAPI() as api:
        settings = settings.with_overrides(zalo_bot_token=api.token, zalo_api_base=api.base_url)
        async with zalo_running(settings, app, api.wait_for("getUpdates")):
            menu = await zalo_leader(app, api, "lead")
            answer = await ask(api, "lead", number_of(menu, "Download the spreadsheet"))
            assert answer.startswith(EN(NO_FILES_HERE))
            assert "1. 📊 Statistics" in answer
            chart = await ask(api, "lead", "/stats")
            answer = await ask(api, "lead", number_of(chart, "Chart"))
            assert answer.startswith(EN(NO_FILES_HERE))
            assert not api.calls_to("sendPhoto")
