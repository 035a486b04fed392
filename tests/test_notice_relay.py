"""Notices to a chat on another channel: stored with the update, sent by that channel's workers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.app import App, open_app
from bot.channels import telegram
from bot.channels.notice_relay import NoticeRelay
from bot.channels.telegram import TelegramChannel, make_bot
from bot.channels.zalo import ZaloChannel
from bot.channels.zalo_api import ZaloAPI
from bot.config import Settings
from bot.seed_demo import seed_demo
from db.models import Notice, ProcessedUpdate
from db.repo.areas import area_by_code
from db.repo.invites import create_invite
from db.repo.notices import MAX_ATTEMPTS, NOTICE_LEASE, add_notices
from handlers.types import Address, Button, Reply
from tests.chat import all_rows, count_rows
from tests.fakes import FakeTelegramAPI, FakeUser
from tests.fakes.zalo_api import FakeZaloAPI

INTERVAL = 0.05  # seconds between a relay's looks at the table


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - the conditions are plain reads
            await asyncio.sleep(0.01)


def to(chat_id: int | str) -> Callable[[dict[str, Any]], bool]:
    return lambda params: params.get("chat_id") == chat_id


@pytest.fixture
async def tg_api() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture
async def zalo_api() -> AsyncIterator[FakeZaloAPI]:
    async with FakeZaloAPI() as fake:
        yield fake


@asynccontextmanager
async def telegram_channel(app: App, api: FakeTelegramAPI) -> AsyncIterator[TelegramChannel]:
    """A Telegram channel of `app` with its notice relay running (as a worker serving)."""
    channel = TelegramChannel(app, make_bot(Settings(telegram_bot_token=api.token,
                                                     telegram_api_base=api.base_url)),
                              notice_interval=INTERVAL)
    channel.start_relay()
    try:
        yield channel
    finally:
        await channel.close()


async def store_notices(app: App, channel: str, chat_ids: list[str], **reply: Any) -> None:
    async with app.db.transaction() as session:
        await add_notices(session, [(channel, chat_id, Reply(f"notice for {chat_id}", **reply,
                                                             to=Address(channel, chat_id)).to_json())
                                    for chat_id in chat_ids], app.core.services.clock())


def option_number(text: str, label: str) -> str:
    """The number Zalo shows before the option whose label contains `label`."""
    match = re.search(rf"^(\d+)\. [^\n]*{label}", text, re.MULTILINE)
    assert match, text
    return match.group(1)


async def test_zalo_visit_request_reaches_the_telegram_volunteer_once(
        app: App, clock: Any, tg_api: FakeTelegramAPI, zalo_api: FakeZaloAPI) -> None:
    """A Zalo resident's /visit reaches the area's Telegram volunteer once, with a "take it" button
    that works, and the resident hears back on Zalo who took it."""
    await seed_demo(app)
    async with app.db.transaction() as session:
        area = await area_by_code(session, "danang.hoa-xuan")
        code = (await create_invite(session, role="volunteer", area=area, now=clock())).code
    hoa = FakeUser(7101, "Hoa", language_code="en")
    zalo = ZaloChannel(app, ZaloAPI(zalo_api.token, zalo_api.base_url), notice_interval=INTERVAL)
    tg = TelegramChannel(app, make_bot(Settings(telegram_bot_token=tg_api.token,
                                                telegram_api_base=tg_api.base_url)),
                         notice_interval=INTERVAL)
    stop = asyncio.Event()
    polling = asyncio.create_task(tg.start_polling(stop=stop, poll_timeout=1))
    try:
        tg_api.push(tg_api.message(hoa, f"/start {code}"))
        await tg_api.wait_for("sendMessage", where=to(hoa.id))

        async def resident(text: str, message_id: str | None = None) -> str:
            before = len(zalo_api.sent_texts("z-ha"))
            await zalo.feed(zalo_api.text("z-ha", text, message_id=message_id, display_name="Hà"))
            return "\n\n".join(zalo_api.sent_texts("z-ha")[before:])

        shown = await resident("/visit Cần giúp cài VNeID")
        shown = await resident(option_number(shown, "Hòa Xuân"))  # no villages: the phone step
        await resident("1")  # skip the phone
        told = await resident("1", message_id="last")  # skip the address: the request is made
        assert re.search(r"#\d+", told)

        def is_notice(params: dict[str, Any]) -> bool:
            return params.get("chat_id") == hoa.id and "Cần giúp cài VNeID" in params.get("text", "")

        [notice] = await tg_api.wait_for("sendMessage", where=is_notice)
        [[take]] = notice["reply_markup"]["inline_keyboard"]
        assert re.fullmatch(r"req:\d+:take", take["callback_data"])
        assert take["text"] == "Take it"  # Hoa's app is in English, and so is her notice
        await resident("1", message_id="last")  # Zalo delivers the last message again
        await asyncio.sleep(INTERVAL * 6)
        assert len(tg_api.calls_to("sendMessage", is_notice)) == 1
        assert zalo_api.calls_to("sendMessage", to(str(hoa.id))) == []
        [stored] = await all_rows(app, Notice, Notice.channel == "telegram")
        assert stored.sent_at is not None and stored.attempts == 1
        [outbox] = await all_rows(app, ProcessedUpdate, ProcessedUpdate.update_id == "z-ha:last")
        assert all("to" not in r or r["to"][0] == "zalo" for r in outbox.replies or [])

        zalo.start_relay()  # the resident hears back through a Zalo worker
        message_id = tg_api.last_message(hoa.id)["message_id"]
        tg_api.push(tg_api.callback(hoa, take["callback_data"], message_id))
        [back] = await zalo_api.wait_for("sendMessage", where=lambda p: p["chat_id"] == "z-ha"
                                         and "Hoa" in p["text"])
        assert re.search(r"#\d+", back["text"])
    finally:
        stop.set()
        await asyncio.wait_for(polling, 10)
        await tg.close()
        await zalo.close()
        await zalo.api.close()


async def test_two_workers_send_each_notice_once(app: App, settings: Settings, clock: Any,
                                                 tg_api: FakeTelegramAPI) -> None:
    """Two workers' relays on one database, running at once, send each of 30 notices exactly once."""
    chats = [str(7200 + i) for i in range(30)]
    await store_notices(app, "telegram", chats)
    other = await open_app(settings, migrate=False, clock=clock)
    channels = [TelegramChannel(a, make_bot(Settings(telegram_bot_token=tg_api.token,
                                                     telegram_api_base=tg_api.base_url)))
                for a in (app, other)]
    relays = [NoticeRelay(c.app.channel_services, "telegram", c.send_notice, interval=INTERVAL, batch=4)
              for c in channels]
    try:
        for relay in relays:
            relay.start()
        await tg_api.wait_for("sendMessage", count=30)
        await asyncio.sleep(INTERVAL * 6)
    finally:
        for relay in relays:
            await relay.stop()
        for channel in channels:
            await channel.close()
        await other.close()
    sent = sorted(str(call["chat_id"]) for call in tg_api.calls_to("sendMessage"))
    assert sent == sorted(chats)
    assert await count_rows(app, Notice, Notice.sent_at.is_(None)) == 0


async def test_telegram_down_then_back_sends_the_notice_later_once(
        app: App, clock: Any, tg_api: FakeTelegramAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """While Telegram answers 502 the notice waits for its lease to end, then goes out once."""
    monkeypatch.setattr(telegram, "SEND_RETRY_DELAYS", (0.01,))
    tg_api.fail("sendMessage", status=502, times=2)  # the call and its one quick retry
    await store_notices(app, "telegram", ["7301"], buttons=(Button("Take it", "req:1:take"),))
    async with telegram_channel(app, tg_api):
        await until(lambda: len(tg_api.failed) == 2)
        await asyncio.sleep(INTERVAL * 6)
        assert tg_api.calls_to("sendMessage") == []  # leased: not hammered, not lost
        clock.advance(seconds=NOTICE_LEASE.total_seconds() + 1)
        [sent] = await tg_api.wait_for("sendMessage")
        await asyncio.sleep(INTERVAL * 6)
    assert sent["text"] == "notice for 7301" and sent["reply_markup"]["inline_keyboard"]
    assert len(tg_api.calls_to("sendMessage")) == 1 and len(tg_api.failed) == 2
    [row] = await all_rows(app, Notice)
    assert row.sent_at is not None and row.attempts == 2


async def test_blocked_chat_is_given_up_at_once(app: App, clock: Any,
                                                tg_api: FakeTelegramAPI) -> None:
    """A notice to a chat that blocked the bot (403) is tried once and never again."""
    tg_api.blocked.add(7401)
    await store_notices(app, "telegram", ["7401", "7402"])
    async with telegram_channel(app, tg_api):
        await tg_api.wait_for("sendMessage", where=to(7402))
        for _ in range(3):
            clock.advance(seconds=NOTICE_LEASE.total_seconds() + 1)
            await asyncio.sleep(INTERVAL * 4)
    assert [c.params["chat_id"] for c in tg_api.failed] == [7401]
    assert await count_rows(app, Notice, Notice.sent_at.is_(None)) == 0
    blocked, ok = await all_rows(app, Notice)
    assert blocked.send_lease_until is not None and ok.send_lease_until is None  # given up / sent


async def test_a_notice_that_keeps_failing_stops_after_max_attempts(
        app: App, clock: Any, tg_api: FakeTelegramAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """A notice Telegram keeps failing (5xx) is tried MAX_ATTEMPTS times, then given up."""
    monkeypatch.setattr(telegram, "SEND_RETRY_DELAYS", ())
    tg_api.fail("sendMessage", status=502, times=1000)
    await store_notices(app, "telegram", ["7501"])
    async with telegram_channel(app, tg_api):
        for attempt in range(1, MAX_ATTEMPTS + 3):
            tried = min(attempt, MAX_ATTEMPTS)
            await until(lambda tried=tried: len(tg_api.failed) >= tried)
            await asyncio.sleep(INTERVAL * 2)
            clock.advance(seconds=NOTICE_LEASE.total_seconds() + 1)
        await asyncio.sleep(INTERVAL * 4)
    assert len(tg_api.failed) == MAX_ATTEMPTS
    [row] = await all_rows(app, Notice)
    assert row.sent_at is not None and row.attempts == MAX_ATTEMPTS
