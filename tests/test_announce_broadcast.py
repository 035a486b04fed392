"""/announce: a leader's message to an area's volunteers, leaders or residents. Bad input is
refused clearly; quiet hours hold it until 07:00; and a broadcast to 2,000 Telegram volunteers
on the stand-in keeps to the rate limit (virtual time) and delivers each message exactly once
across a relay restart."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, insert, select

from bot.app import App
from bot.channels.notice_relay import NoticeRelay
from bot.channels.pacer import Pacer
from bot.channels.telegram import TelegramChannel, make_bot
from bot.config import Settings
from conversations.local_time import VIETNAM
from db.models import Announcement, Area, AuditLog, Identity, Membership, Notice, User
from db.repo.notices import NOTICE_LEASE
from handlers.follow_up_runner import run_due
from handlers.types import Address, Reply
from tests.chat import Talker, all_rows, count_rows, payload_of
from tests.fakes import FakeTelegramAPI

RECIPIENTS = 2000


def vn(*args: int) -> datetime:
    return datetime(*args, tzinfo=VIETNAM).astimezone(UTC)


async def _to_the_text(lan: Talker, audience: str = "Volunteers") -> None:
    await lan.say("/announce")
    await lan.press(payload_of(lan, "Phường Hải Vân"))
    assert "who is it for?" in lan.text()
    await lan.press(payload_of(lan, audience))
    assert lan.text() == "Type the announcement (at most 3,000 characters), or /cancel."


async def test_an_announcement_is_confirmed_sent_audited_and_counted(people, app):
    an, lan, _admin = people
    await _to_the_text(lan)
    await lan.say("   ")
    assert lan.text() == "The announcement is empty. Type its text, or /cancel."
    await lan.say("x" * 10_000)
    assert lan.text() == ("The announcement is longer than 3,000 characters. Shorten it and send it again, "
                          "or /cancel.")
    assert await count_rows(app, Announcement) == 0
    await lan.say("Thứ Bảy 8:00 ra quân ở nhà văn hóa Tà Lang.")
    assert lan.text().startswith("This goes to 1 volunteer in Phường Hải Vân.")
    assert [label for label, _ in lan.buttons()] == ["Send", "Cancel"]
    await lan.press(payload_of(lan, "Send"))
    assert lan.text() == "Sent to 1 person. /announce shows what was delivered."
    [announcement] = await all_rows(app, Announcement)
    assert (announcement.audience, announcement.recipients) == ("volunteers", 1)
    [entry] = await all_rows(app, AuditLog, AuditLog.action == "announce")
    assert entry.details["recipients"] == 1
    # an reads it at the start of his chat (reminders off does not stop a leader's announcement).
    await an.say("/reminders off")
    [shown] = await app.channel_services.take_waiting("console", "an")
    assert shown.text == "📢 Announcement · Phường Hải Vân\nThứ Bảy 8:00 ra quân ở nhà văn hóa Tà Lang."
    await lan.say("/announce")
    assert "Volunteers: “Thứ Bảy 8:00 ra quân ở nhà văn hóa Tà L…” — 1 delivered, 0 failed" in lan.text()
    # A volunteer cannot announce, nor press a leader's buttons.
    await an.say("/announce")
    assert "Send" not in an.text()
    await an.press("ann:send")
    assert await count_rows(app, Announcement) == 1
    # Housekeeping prunes sent notices after 30 days: the list still says how many it went to.
    async with app.db.transaction() as session:
        await session.execute(delete(Notice))
    await lan.say("/announce")
    assert "“Thứ Bảy 8:00 ra quân ở nhà văn hóa Tà L…” — sent to 1 (delivery figures" in lan.text()


async def test_a_typed_number_answers_send_or_cancel_and_a_longer_text_replaces(people, app):
    """On the console and Zalo the confirmation's options are numbers: "1" sends, "2" cancels;
    a typed text is the announcement again, not option 1."""
    _an, lan, _admin = people
    await _to_the_text(lan)
    await lan.say("Họp lúc 8 giờ.")
    await lan.say("Họp lúc 9 giờ, không phải 8 giờ.")
    assert "Họp lúc 9 giờ, không phải 8 giờ." in lan.text()
    await lan.say("7")
    assert "not one of the options" in lan.text() or "no option" in lan.text()
    await lan.say("1")
    assert lan.text() == "Sent to 1 person. /announce shows what was delivered."
    [announcement] = await all_rows(app, Announcement)
    assert announcement.text == "Họp lúc 9 giờ, không phải 8 giờ."
    await _to_the_text(lan)
    await lan.say("Không gửi tin này.")
    await lan.say("2")
    assert await count_rows(app, Announcement) == 1


async def test_residents_only_if_they_wrote_and_did_not_opt_out(people, app):
    _an, lan, _admin = people
    for name in ("ba-muoi", "ong-tam"):
        resident = Talker(app, name, lang="en")
        await resident.say("/visit help with VNeID")
        await resident.press(payload_of(resident, "Hải Vân"))
        await resident.press(payload_of(resident, "Tà Lang"))
        await resident.say("0912345678")
        await resident.press(payload_of(resident, "Skip"))
    await Talker(app, "ong-tam", lang="en").say("/reminders off")
    await Talker(app, "someone-else", lang="en").say("hello")  # never wrote from Hải Vân
    await _to_the_text(lan, "Residents")
    await lan.say("Mai có đoàn công an về cấp căn cước tại nhà văn hóa.")
    assert lan.text().startswith("This goes to 1 resident in Phường Hải Vân.")


async def test_in_quiet_hours_it_waits_for_seven(people, app, clock):
    _an, lan, _admin = people
    clock.now = vn(2026, 11, 20, 22, 15)
    await _to_the_text(lan)
    await lan.say("Nhắc: mai họp lúc 7:30.")
    assert "it will be sent at 07:00" in lan.text()
    await lan.press(payload_of(lan, "Send"))
    assert lan.text() == "Scheduled: it goes out at 07:00 to 1 person."
    assert await count_rows(app, Notice, Notice.origin.is_not(None)) == 0
    flows = app.core.services.flows
    assert (await run_due(app.db, vn(2026, 11, 21, 6, 59), flows)).notices == 0
    assert (await run_due(app.db, vn(2026, 11, 21, 7, 0), flows)).by_kind == {"announcement": 1}
    assert (await run_due(app.db, vn(2026, 11, 21, 7, 1), flows)).notices == 0


class VirtualTime:
    """Seconds that pass only when somebody sleeps: the pacer's clock and sleep, the relay's
    lease clock, and (moved along with them) the app's clock for the notices' leases."""

    def __init__(self, app_clock) -> None:
        self.now = 0.0
        self.app_clock = app_clock

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.app_clock.advance(seconds=seconds)
        await asyncio.sleep(0)


@pytest.fixture
async def tg_api() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI() as fake:
        yield fake


async def _many_volunteers(app: App, now: datetime, count: int = RECIPIENTS) -> None:
    async with app.db.transaction() as session:
        area_id = await session.scalar(select(Area.id).where(Area.code == "danang.hai-van"))
        first = int(await session.scalar(select(User.id).order_by(User.id.desc()).limit(1)) or 0) + 1
        ids = range(first, first + count)
        await session.execute(insert(User), [{"id": uid, "display_name": f"TNV {uid}", "locale": "vi",
                                              "created_at": now, "reminders_off": False} for uid in ids])
        await session.execute(insert(Identity), [{"user_id": uid, "channel": "telegram",
                                                  "external_id": str(900_000 + uid), "created_at": now}
                                                 for uid in ids])
        await session.execute(insert(Membership), [{"user_id": uid, "area_id": area_id, "role": "volunteer",
                                                    "granted_at": now} for uid in ids])


async def test_a_broadcast_to_two_thousand_keeps_the_rate_and_sends_each_once(
        people, app, clock, tg_api: FakeTelegramAPI) -> None:
    _an, lan, _admin = people
    await _many_volunteers(app, clock())
    await _to_the_text(lan)
    await lan.say("Chủ nhật này ra quân hỗ trợ VNeID tại tất cả các thôn.")
    assert lan.text().startswith(f"This goes to {RECIPIENTS + 1} volunteers in Phường Hải Vân.")
    await lan.press(payload_of(lan, "Send"))
    assert await count_rows(app, Notice, Notice.channel == "telegram") == RECIPIENTS

    vt = VirtualTime(clock)
    sent_at: list[float] = []
    channel = TelegramChannel(app, make_bot(Settings(telegram_bot_token=tg_api.token,
                                                     telegram_api_base=tg_api.base_url)))

    async def send(address: Address, reply: Reply) -> None:
        sent_at.append(vt())
        await channel.send_notice(address, reply)

    def relay() -> NoticeRelay:
        return NoticeRelay(app.channel_services, "telegram", send, interval=0.01, batch=50,
                           pacer=Pacer(25, clock=vt, sleep=vt.sleep), monotonic=vt)

    async def until(count: int) -> None:
        async with asyncio.timeout(60):
            while len(tg_api.calls_to("sendMessage")) < count:  # noqa: ASYNC110 - plain reads
                await asyncio.sleep(0.005)

    try:
        first = relay()
        first.start()
        await until(RECIPIENTS // 2)
        await first.stop()  # the worker restarts half-way
        vt.app_clock.advance(seconds=NOTICE_LEASE.total_seconds() + 1)  # what it had claimed is free again
        second = relay()
        second.start()
        await until(RECIPIENTS)
        await asyncio.sleep(0.1)
        await second.stop()
    finally:
        await channel.close()

    per_chat = Counter(call["chat_id"] for call in tg_api.calls_to("sendMessage"))
    assert len(per_chat) == RECIPIENTS and set(per_chat.values()) == {1}
    assert await count_rows(app, Notice, Notice.channel == "telegram", Notice.sent_at.is_(None)) == 0
    # At most 30 in any one-second window of (virtual) time.
    start = 0
    for end, at in enumerate(sent_at):
        while sent_at[start] <= at - 1.0:
            start += 1
        assert end - start + 1 <= 30, f"{end - start + 1} sends within one second at t={at:.2f}"
    assert sent_at[-1] >= (RECIPIENTS - 30) / 25  # paced, not bunched
    await lan.say("/announce")
    assert f"— {RECIPIENTS} delivered, 0 failed (1 waiting)" in lan.text()  # an reads his on the console


async def test_the_pacer_holds_everyone_after_a_429(clock) -> None:
    """Telegram's 429 says "retry after 3 s": nothing goes out for those 3 seconds."""
    vt = VirtualTime(clock)
    pacer = Pacer(25, clock=vt, sleep=vt.sleep)
    await pacer.acquire()
    assert 0 < vt() <= 0.05  # a new pacer starts empty: the first send waits one interval
    for _ in range(5):
        await pacer.acquire()
    assert abs(vt() - 6 / 25) < 1e-6  # then 25 a second
    pacer.back_off(3)
    await pacer.acquire()
    assert vt() >= 6 / 25 + 3.0


async def test_a_429_during_a_broadcast_is_waited_out_and_nothing_is_sent_twice(
        people, app, clock, tg_api: FakeTelegramAPI) -> None:
    """Telegram answers one send "429, retry after 1": the adapter waits it out, and every
    volunteer still gets the announcement exactly once."""
    _an, lan, _admin = people
    await _many_volunteers(app, clock(), 30)
    await _to_the_text(lan)
    await lan.say("Họp giao ban sáng thứ Hai.")
    await lan.press(payload_of(lan, "Send"))
    channel = TelegramChannel(app, make_bot(Settings(telegram_bot_token=tg_api.token,
                                                     telegram_api_base=tg_api.base_url)))
    vt = VirtualTime(clock)
    relay = NoticeRelay(app.channel_services, "telegram", channel.send_notice, interval=0.01,
                        pacer=Pacer(25, clock=vt, sleep=vt.sleep), monotonic=vt)
    tg_api.fail("sendMessage", status=429, retry_after=1)
    try:
        relay.start()
        async with asyncio.timeout(30):
            while await count_rows(app, Notice, Notice.channel == "telegram",  # noqa: ASYNC110
                                   Notice.sent_at.is_(None)):
                await asyncio.sleep(0.05)
        await relay.stop()
    finally:
        await channel.close()
    per_chat = Counter(call["chat_id"] for call in tg_api.calls_to("sendMessage"))
    assert len(per_chat) == 30 and set(per_chat.values()) == {1}
