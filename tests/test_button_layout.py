"""Buttons you can tell apart (issue 16 §3): person-first resume labels that keep what tells
them apart, Done alone above Skip | Problem, Back on the procedure picker, the /stats keyboard in
rows (sub-areas paged with "More…", the three periods in one row, then actions), and lists
cut for length that say so, with numbers written the Vietnamese way."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.app import App
from bot.channels.telegram_render import keyboard as telegram_keyboard
from bot.channels.telegram_render import layout
from bot.config import Settings
from bot.seed_demo import seed_demo
from db.models import Identity
from db.repo.areas import area_by_code, get_or_create_area
from db.repo.invites import create_invite
from handlers.types import BUTTON_LABEL_MAX, Button, Reply, person_label, short_name
from tests.chat import Talker, payload_of
from tests.fakes import FakeTelegramAPI, FakeUser
from tests.test_flows_telegram_e2e import join_with_household, post, press
from tests.test_telegram import webhook_bot

RC = "Residence confirmation (CT07)"


@pytest.mark.parametrize(
    ("rows", "columns", "shape"),
    [
        ((), 1, [1, 1, 1]),
        ((1,), 2, [1, 2]),
        ((2, 1, 3), 2, [2, 1]),  # rows beyond the buttons are not made
        ((1,), 1, [1, 1, 1]),
    ],
)
def test_keyboard_rows_follow_the_layout(rows, columns, shape):
    """The first rows take the sizes asked for, the rest `columns` a row."""
    assert [len(row) for row in layout(["a", "b", "c"], rows, columns)] == shape


def test_a_step_keyboard_puts_done_alone_above_skip_and_problem():
    """Telegram draws a task's buttons as [Done] / [Skip | Problem]."""
    reply = Reply("Step", buttons=(Button("✅ Done", "f:1:a:1:d"), Button("⏭ Skip", "f:1:a:1:s"),
                                   Button("⚠️ Problem", "f:1:a:1:p")), rows=(1,), columns=2)
    markup = telegram_keyboard(reply)
    assert markup is not None
    assert [[b.text for b in row] for row in markup.inline_keyboard] == [
        ["✅ Done"], ["⏭ Skip", "⚠️ Problem"]]


@pytest.mark.parametrize(
    ("person", "what", "shown"),
    [
        ("Trần Văn Bảy", "VNeID", "▶️ Trần Văn Bảy · VNeID"),
        (None, "VNeID account", "▶️ VNeID account"),
        ("Trần Văn Bảy", "Residence confirmation (CT07)", "▶️ Trần Văn Bảy · Residence… (CT07)"),
        ("Alăng Thị Nga", "Xác nhận thông tin cư trú (CT07)", "▶️ Alăng Thị Nga · Xác nhận… (CT07)"),
        ("Nguyễn Thị Minh Khai Hoàng Anh", "Personal digital signature",
         "▶️ N. T. M. K. H. Anh · Personal…"),
    ],
)
def test_resume_labels_put_the_person_first_and_keep_what_tells_them_apart(person, what, shown):
    """The person comes first; a long procedure name is cut before the person's name is, and a
    long name keeps its given name."""
    label = person_label("▶️", person, what)
    assert label == shown
    assert len(label) <= BUTTON_LABEL_MAX


def test_short_names_keep_the_given_name():
    """The given name (the last word of a Vietnamese name) stays whole."""
    assert short_name("Trần Văn Bảy") == "T. V. Bảy"
    assert short_name("Bảy") == "Bảy"


@pytest.fixture
async def telegram(settings: Settings, app: App) -> AsyncIterator[FakeTelegramAPI]:
    async with webhook_bot(settings, app) as api:
        yield api


def rows_of(message: dict) -> list[list[str]]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [[b["text"] for b in row] for row in rows]


async def test_on_telegram_a_task_step_and_the_picker_are_laid_out_in_rows(telegram, app, clock):
    """The picker ends with Back; a task step shows [✅ Done] then [⏭ Skip | ⚠️ Problem]."""
    api = telegram
    await seed_demo(app)
    hanh = FakeUser(7301, "Hạnh", "Lê", language_code="en")
    await join_with_household(app, api, clock, hanh, "Hạnh Lê")
    await post(api, api.message(hanh, "/household HV-TL-002"))
    await press(api, hanh, "Start a procedure")
    assert rows_of(api.last_message(hanh.id))[-1] == ["↩️ Back"]
    for label in (RC, "Continue", "In the VNeID app"):
        await press(api, hanh, label)
    assert rows_of(api.last_message(hanh.id)) == [["✅ Done"], ["⏭ Skip", "⚠️ Problem"]]


async def test_the_page_names_the_person_on_a_resume_button(app):
    """A run for a member is resumed from a button that starts with the member's name."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    await an.say("/household HV-TL-001")
    await an.press(payload_of(an, "Add a member"))
    await an.say("Alăng Thị Nga")
    while any("Skip" in label for label, _ in an.buttons()):
        await an.press(payload_of(an, "Skip"))
    await an.say("/household HV-TL-001")
    await an.press(payload_of(an, "Start a procedure"))
    await an.press(payload_of(an, "VNeID"))
    await an.press(payload_of(an, "Alăng Thị Nga"))
    await an.say("/household HV-TL-001")
    labels = [label for label, _ in an.buttons()]
    assert any(label.startswith("▶️ Alăng Thị Nga · ") for label in labels), labels


async def _city_of_sub_areas(app: App, n: int) -> None:
    async with app.db.transaction() as session:
        ward = await area_by_code(session, "danang.hai-van")
        for i in range(1, n + 1):
            await get_or_create_area(session, code=f"danang.hai-van.to-{i}", name=f"Tổ dân phố {i}",
                                     level="village", parent=ward)


async def _on_telegram(app: App, name: str) -> None:
    async with app.db.transaction() as session:
        user_id = await session.scalar(select(Identity.user_id).where(
            Identity.channel == "console", Identity.external_id == name))
        session.add(Identity(user_id=user_id, channel="telegram", external_id=name,
                             created_at=app.core.services.clock()))


async def test_the_stats_keyboard_pages_sub_areas_and_keeps_periods_in_one_row(app):
    """Twelve sub-areas: eight buttons two a row and “More…”, then the three periods in one row
    with the current one ticked, then the actions; “More…” shows the rest."""
    await seed_demo(app)
    await _city_of_sub_areas(app, 10)  # and the demo's two villages: 12
    await _on_telegram(app, "lan")  # buttons: numbered channels page their options themselves
    lan = Talker(app, "lan", channel="telegram", lang="vi")
    [summary] = await lan.say("/stats")
    periods = [b.label for b in summary.buttons[9:12]]
    assert len([p for p in periods if p.startswith("✓ ")]) == 1
    assert summary.rows == (2, 2, 2, 2, 1, 3)
    assert summary.buttons[8].label == "Thêm…"
    assert "Nút: khu vực 1–8 / 12." in summary.text
    [more] = await lan.press(summary.buttons[8].payload)
    assert more.edit and more.rows == (2, 2, 1, 3)
    assert more.buttons[4].label == "Thêm…"


async def test_a_cut_list_of_areas_says_so(app):
    """A ward with 40 sub-areas lists 24 in /stats' text and says “24 / 40 khu vực”."""
    await seed_demo(app)
    await _city_of_sub_areas(app, 38)
    lan = Talker(app, "lan", lang="vi")
    [summary] = await lan.say("/stats")
    assert "… 24 / 40 khu vực — xem tất cả trong Excel" in summary.text


async def test_a_cut_list_of_volunteers_says_so_with_vietnamese_numbers(app, clock, monkeypatch):
    """Over the volunteers shown, the view says how many of how many (numbers as Vietnamese
    write them)."""
    from handlers import stats

    await seed_demo(app)
    async with app.db.transaction() as session:  # a second volunteer with a household
        area = await area_by_code(session, "danang.hai-van")
        code = (await create_invite(session, role="volunteer", area=area, now=clock())).code
    await Talker(app, "mai", lang="vi").say(f"/start {code}")
    lan = Talker(app, "lan", lang="vi")
    await lan.say("/household HV-TL-002")
    await lan.press(payload_of(lan, "Chuyển người phụ trách"))
    await lan.press(next(p for label, p in lan.buttons() if "Nguyễn Văn An" not in label))
    monkeypatch.setattr(stats, "VOLUNTEERS_SHOWN", 1)
    await lan.say("/stats")
    [view] = await lan.press(payload_of(lan, "👥"))
    assert "1 / 2 tình nguyện viên — xem tất cả trong Excel" in view.text


def test_numbers_are_written_the_vietnamese_way():
    """4850 reads 4.850 in Vietnamese, 4,850 in English."""
    from handlers.i18n import translator
    from handlers.stats_text import number

    assert number(translator("vi"), 4850) == "4.850"
    assert number(translator("en"), 4850) == "4,850"
