"""Numbers that mean what an elderly Zalo user expects (issue 16 §6), on the Zalo stand-in
(tests/fakes/zalo_api.py): only options are numbered, a notice never takes over "1", everyday
replies are understood, the wording says no "nút" and no English labels."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from aiogram.types import Update
from babel.messages.pofile import read_po
from sqlalchemy import select

from bot.app import App
from bot.channels.telegram_render import incoming_from_update as telegram_incoming
from bot.channels.zalo import letter_content, render_parts, zalo_wording
from conversations.folding import natural_key
from conversations.validators import MAX_TEXT
from db.models import FaqMiss, SupportRequest
from handlers.choices import NOT_AN_OPTION_BUTTONS
from handlers.i18n import RESIDENT, translator
from handlers.options import Picked, read_answer
from handlers.types import Button, Reply
from tests import test_zalo
from tests.chat import all_rows
from tests.fakes.zalo_api import FakeZaloAPI
from tests.test_zalo import invite, number_of, say

# The Zalo stand-in and the bot serving its webhooks, as tests/test_zalo.py makes them.
_no_public_url, api, zalo_settings, webhook = (
    test_zalo._no_public_url, test_zalo.api, test_zalo.zalo_settings, test_zalo.webhook)

VI = translator("vi")
RESIDENT_VI = translator("vi", RESIDENT)
OPTION = re.compile(r"^(\d+)\. ")


def options_of(text: str) -> list[str]:
    """The numbered lines of a message: its options."""
    return [line for line in text.splitlines() if OPTION.match(line)]


async def volunteer_at_a_step(api: FakeZaloAPI, app: App, user: str = "vol") -> str:
    """A Zalo volunteer of Hải Vân (Vietnamese) at step 3/5 of CT07: "1. Xong 2. Bỏ qua 3. Gặp vướng"."""
    code = await invite(app, "volunteer")
    await say(api, user, f"/join {code}")
    page = await say(api, user, "/household HV-TL-001")
    procedures = await say(api, user, number_of(page, VI("Start a procedure")))
    step = await say(api, user, number_of(procedures, "CT07"))
    step = await say(api, user, "1")
    step = await say(api, user, number_of(step, "dichvucong"))
    assert "3/5" in step and len(options_of(step)) == 3
    return step


async def resident_asks_for_a_visit(api: FakeZaloAPI, user: str = "res") -> None:
    areas = await say(api, user, "/visit nhờ cài VNeID giúp")
    villages = await say(api, user, number_of(areas, "Hải Vân"))
    await say(api, user, number_of(villages, "Tà Lang"))
    await say(api, user, "0905123456")
    await say(api, user, "Nhà sàn cạnh suối")


async def test_a_visit_notice_mid_procedure_does_not_take_over_1(webhook: FakeZaloAPI, app: App) -> None:
    """A volunteer at a step with numbered options receives a visit notice: "1" presses the step's
    option 1, not the request; "NHẬN <số>" takes the request and the step comes back with its options."""
    api = webhook
    await volunteer_at_a_step(api, app)
    before = len(api.sent_texts("vol"))
    await resident_asks_for_a_visit(api)
    [notice] = api.sent_texts("vol")[before:]
    assert options_of(notice) == []  # the notice has no numbered option
    [request] = await all_rows(app, SupportRequest)
    assert f"NHẬN {request.id}" in notice and "1, 2, 3" in notice

    step = await say(api, "vol", "1")  # the step's "Xong"
    assert "4/5" in step
    [request] = await all_rows(app, SupportRequest)
    assert request.status == "open"

    taken = await say(api, "vol", f"nhận {request.id}")
    assert taken.startswith(VI("You took request #{id}. Contact the resident soon.", id=request.id))
    assert f"ĐÓNG {request.id}" in taken and "4/5" in taken.split("ĐÓNG")[1]
    [request] = await all_rows(app, SupportRequest)
    assert request.status == "taken"
    assert "5/5" in await say(api, "vol", "1") or "✅" in api.sent_texts("vol")[-1]


async def test_everyday_replies_where_options_make_them_clear(webhook: FakeZaloAPI, app: App) -> None:
    """"xong" and "số 1" press Done at a step, "cảm ơn" is answered warmly with the options again,
    and a lone number or "số 2" with nothing to choose never reaches the FAQ."""
    api = webhook
    await volunteer_at_a_step(api, app)
    thanks = await say(api, "vol", "cảm ơn")
    assert thanks.startswith(VI("You're welcome! To go on, choose one of the options below."))
    assert "3/5" in thanks and len(options_of(thanks)) == 3
    assert "4/5" in await say(api, "vol", "xong")
    assert "5/5" in await say(api, "vol", "số 1")

    for stray in ("5", "số 2", "so 2"):
        answer = await say(api, "res", stray)
        assert answer == RESIDENT_VI("There is nothing to choose here. Write your question in words, "
                                     "or type /help."), stray
    # Outside any question: a warm answer, never a question for the FAQ.
    assert await say(api, "res", "cảm ơn") == RESIDENT_VI(
        "You're welcome! Ask me anything else, or type /visit to ask a volunteer to come to your home.")
    for everyday in ("khong", "xong", "ok"):
        assert await say(api, "res", everyday) == RESIDENT_VI(
            "Good. If you have another question, just type it, or type /visit to ask a volunteer to "
            "come to your home."), everyday
    assert await all_rows(app, FaqMiss) == []


def test_everyday_words_pick_the_one_option_that_means_them() -> None:
    """"ok"/"có" pick the yes (or done) option, "không"/"khong" the no option, "số 2" the second;
    where no single option means it, nothing is picked."""
    step = ["✅ Xong", "⏭ Bỏ qua", "⚠️ Gặp vướng"]
    nfc = ["Có NFC", "Không có NFC"]
    assert read_answer("ok", step, numbered=True) == Picked(0)
    assert read_answer("Xong rồi ạ", step, numbered=True) == Picked(0)
    assert read_answer("so 2", step, numbered=True) == Picked(1)
    assert read_answer("co", nfc, numbered=True) == Picked(0)
    assert read_answer("khong", nfc, numbered=True) == Picked(1)
    assert read_answer("không", nfc, numbered=True) == Picked(1)
    assert not isinstance(read_answer("không", step, numbered=True), Picked)
    assert not isinstance(read_answer("xong", nfc, numbered=True), Picked)


async def test_faq_steps_are_lettered_and_only_options_numbered(webhook: FakeZaloAPI) -> None:
    """An FAQ answer that lists steps 1.–4. shows them as a)–d) on Zalo; only the options after
    it are numbered, from 1."""
    api = webhook
    answer = await say(api, "res2", "đăng ký tài khoản định danh điện tử mức 1 như thế nào")
    body, _, options = answer.rpartition("\n\n")
    assert re.search(r"^a\) ", body, re.MULTILINE) and re.search(r"^b\) ", body, re.MULTILINE)
    assert options_of(body) == [] and options_of(options)[0].startswith("1. ")
    assert " nút" not in answer and "passcode" not in answer.replace("mã bảo vệ (passcode)", "")


def test_content_numbers_become_letters() -> None:
    """Numbered lines become letters in order; other lines and a number inside a line stay; a
    drop-off list of steps 1–11 reads a)–k) above options numbered from 1."""
    text = "Các bước:\n1. Mở VNeID.\n2) Nhập số.\n  3. Nhận OTP.\nGọi 1. lần"
    assert letter_content(text) == "Các bước:\na) Mở VNeID.\nb) Nhập số.\n  c) Nhận OTP.\nGọi 1. lần"
    drop_off = Reply("🪜 CT07 · Phường Hải Vân\n" + "\n".join(f"{i}. Bước {i}: 5 → 4" for i in range(1, 12)),
                     buttons=(Button("7 ngày qua", "a"), Button("⬅️ Quay lại", "b")))
    [text] = render_parts(drop_off)
    assert "\nk) Bước 11: 5 → 4\n\n1. 7 ngày qua\n2. ⬅️ Quay lại" in text
    assert len(options_of(text)) == 2


async def test_leader_menu_numbers_hold_on_every_level(webhook: FakeZaloAPI, app: App) -> None:
    """A Zalo leader's /stats: at most 8 options, the periods 1–3 and the same actions at the same
    numbers at the ward and in a village, "Thêm" (more) before the way up, which is last; "Thêm"
    shows the rest under the repeated heading, with Vietnamese labels for the downloads."""
    api = webhook
    code = await invite(app, "leader")
    await say(api, "boss", f"/join {code}")
    ward = await say(api, "boss", "/stats")
    more = await say(api, "boss", number_of(ward, VI("More")))
    assert more.startswith("📊 Phường Hải Vân · 30 ngày qua " + VI("(continued)"))
    assert number_of(more, VI("Download the spreadsheet")) and not re.search(r"Excel|CSV", more)
    village = await say(api, "boss", number_of(more, "Tà Lang"))
    for menu in (ward, village):
        options = options_of(menu)
        assert len(options) <= 8
        assert [number_of(menu, VI(label)) for label in ("Chart", "Steps", "Volunteers", "More")] == \
            ["4", "5", "6", "7"]
        assert "30 ngày qua" in options[1] and "7 ngày qua" in options[0]
    assert "⬆️" in options_of(village)[-1] and len(options_of(village)) == 8
    back_more = await say(api, "boss", number_of(village, VI("More")))
    assert "⬆️" in options_of(back_more)[-1]  # Back stays last on every page


def test_a_long_menu_goes_on_in_a_message_with_its_heading() -> None:
    """Options past 8 go on in the next message, numbers continuing, under the repeated heading."""
    reply = Reply("📊 Phường Hải Vân · 7 ngày qua\n12 hộ",
                  buttons=tuple(Button(f"Tổ {i}", str(i)) for i in range(1, 12)))
    parts = render_parts(reply, continued="(tiếp)")
    assert len(parts) == 2 and len(options_of(parts[0])) == 8
    assert parts[1].startswith("📊 Phường Hải Vân · 7 ngày qua (tiếp)\n\n9. Tổ 9")


def test_areas_sort_naturally() -> None:
    """"Tổ dân phố 2" comes before "Tổ dân phố 10", whatever the marks."""
    names = ["Tổ dân phố 10", "Tổ dân phố 2", "Thôn Giàn Bí", "tổ dân phố 1"]
    assert sorted(names, key=natural_key) == ["Thôn Giàn Bí", "tổ dân phố 1", "Tổ dân phố 2", "Tổ dân phố 10"]


async def test_an_over_long_visit_question_is_kept_cut(webhook: FakeZaloAPI, app: App) -> None:
    """A /visit question over the limit is kept, cut, and the resident told; the next message
    answers the next question instead of becoming the question."""
    api = webhook
    await invite(app, "volunteer")  # the demo areas
    await say(api, "res3", "/visit")
    told = await say(api, "res3", "nhờ giúp " * 120)
    assert str(MAX_TEXT) in told and number_of(told, "Hải Vân")
    [] = await all_rows(app, SupportRequest)


async def test_a_photo_with_a_caption_is_read_as_text(webhook: FakeZaloAPI) -> None:
    """A Zalo photo with a caption is answered as the caption's text; without one, the text-only note."""
    api = webhook
    status, _ = await api.post_webhook(api.image("res4", caption="/help"))
    assert status == 200 and "/visit" in api.sent_texts("res4")[-1]


@pytest.mark.parametrize("caption, text", [("/help", "/help"), (None, None)])
def test_a_telegram_photo_caption_is_the_text(caption: str | None, text: str | None) -> None:
    """A Telegram photo's caption is the message's text."""
    update = Update.model_validate({"update_id": 1, "message": {
        "message_id": 5, "date": 0, "chat": {"id": 7, "type": "private"},
        "from": {"id": 7, "is_bot": False, "first_name": "Hoa"},
        "photo": [{"file_id": "a", "file_unique_id": "b", "width": 1, "height": 1}],
        **({"caption": caption} if caption else {})}})
    incoming = telegram_incoming(update)
    assert incoming is not None and incoming.text == text


# Texts shown only where options are buttons: the numbered channels page their own options.
BUTTONS_ONLY = {NOT_AN_OPTION_BUTTONS, "Buttons: areas {first}–{last} of {total}."}


def test_no_text_says_button_on_zalo() -> None:
    """No Vietnamese text, as Zalo shows it, says “nút” (button), except the one only shown on
    channels with buttons; “passcode” always comes as “mã bảo vệ (passcode)”."""
    with open("locales/vi/LC_MESSAGES/messages.po", "rb") as po:
        catalog = read_po(po)
    said = []
    for message in catalog:
        if message.id in BUTTONS_ONLY or not message.string:
            continue
        text = message.string if isinstance(message.string, str) else " ".join(message.string)
        said.append(zalo_wording(text))
    assert [t for t in said if re.search(r"\bnút\b", t, re.IGNORECASE)] == []
    assert [t for t in said if "passcode" in t.replace("mã bảo vệ (passcode)", "")] == []


async def _relayed(api: FakeZaloAPI, app: App, user: str, reply: Reply) -> str:
    """A follow-up notice with buttons for `user`, sent by the running channel's notice relay."""
    import asyncio

    from db.models import Identity
    from db.repo.notices import add_notices
    from handlers.types import Address

    async with app.db.transaction() as session:
        chat_id = await session.scalar(select(Identity.external_id).where(
            Identity.channel == "zalo", Identity.external_id == user))
        assert chat_id is not None
        await add_notices(session, [("zalo", chat_id, replace(reply, to=Address("zalo", chat_id)).to_json())],
                          app.core.services.clock(), origin="come_back")
    before = len(api.sent_texts(user))
    for _ in range(100):
        if len(api.sent_texts(user)) > before:
            return api.sent_texts(user)[-1]
        await asyncio.sleep(0.05)
    raise AssertionError("the notice was not relayed")


async def test_a_follow_up_notice_never_takes_over_a_step_s_numbers(webhook: FakeZaloAPI, app: App) -> None:
    """A reminder with choices reaching a volunteer mid-procedure comes without numbers and says
    so; "2" still answers the step (Skip is not pressed by the notice's second choice)."""
    from db.models import FlowRun, StepRecord
    from handlers.buttons import RunButton

    api = webhook
    await volunteer_at_a_step(api, app)
    [run] = await all_rows(app, FlowRun)
    notice = await _relayed(api, app, "vol", Reply("Nhắc việc", buttons=(
        Button("Làm tiếp", RunButton(run.id, "resume")), Button("Tạm dừng", RunButton(run.id, "pause")))))
    assert options_of(notice) == [] and "các số vẫn dành cho việc đó" in notice
    records = len(await all_rows(app, StepRecord))
    await say(api, "vol", "1")  # the step's Done
    done = await all_rows(app, StepRecord)
    assert len(done) == records + 1 and done[-1].outcome == "done"


async def test_a_follow_up_notice_outside_a_dialog_is_answered_by_its_numbers(webhook: FakeZaloAPI,
                                                                              app: App) -> None:
    from db.models import FlowRun
    from handlers.buttons import RunButton

    api = webhook
    await volunteer_at_a_step(api, app)
    [run] = await all_rows(app, FlowRun)
    asked = await say(api, "vol", "/cancel")
    await say(api, "vol", number_of(asked, "Tạm dừng"))  # paused: no dialog any more
    notice = await _relayed(api, app, "vol", Reply("Nhắc việc", buttons=(
        Button("Làm tiếp", RunButton(run.id, "resume")),)))
    assert len(options_of(notice)) == 1
    step = await say(api, "vol", "1")
    assert "3/5" in step
