"""Residents' questions and visit requests, through the core as the console sends them."""

from __future__ import annotations

import asyncio
import re

from sqlalchemy import select

from bot.seed_demo import seed_demo
from db.models import AuditLog, FaqMiss, SupportRequest
from tests.chat import Talker, count_rows, payload_of


async def test_question_without_diacritics_gets_the_answer_and_buttons(app):
    """“lam khai sinh can gi” gets the birth-registration answer with the three buttons."""
    resident = Talker(app, "ba-nam")
    await resident.say("lam khai sinh can gi")
    assert "giấy chứng sinh" in resident.text()
    assert [p for _, p in resident.buttons()] == [
        "faq:ok:birth.documents", "faq:no:birth.documents", "visit:start"]


async def test_out_of_scope_question_is_not_answered_and_is_kept_as_a_miss(app):
    """A question about the gold price gets no FAQ answer, an offer of a volunteer and a stored miss."""
    resident = Talker(app, "ong-sau", lang="en")
    await resident.say("gia vang hom nay bao nhieu")
    assert "faq:ok:" not in " ".join(p for _, p in resident.buttons())
    assert ("Ask a volunteer", "visit:start") in resident.buttons()
    assert await count_rows(app, FaqMiss, FaqMiss.kind == "unanswered") == 1


async def test_greeting_gets_a_greeting_not_a_miss(app):
    """“xin chào” is greeted, not answered from the FAQ nor stored as a miss."""
    resident = Talker(app, "chi-hai")
    await resident.say("xin chào")
    assert "GoCua" in resident.text()
    assert await count_rows(app, FaqMiss) == 0


async def test_not_what_i_asked_is_stored_and_offers_other_topics(app):
    """“Not what I asked” stores the question as a miss and offers a volunteer."""
    resident = Talker(app, "co-ba", lang="en")
    await resident.say("quen mat khau vneid")
    await resident.press(payload_of(resident, "Not what I asked"))
    async with app.db.transaction() as session:
        miss = await session.scalar(select(FaqMiss))
    assert (miss.kind, miss.question, miss.faq_id) == (
        "not_helpful", "quen mat khau vneid", "vneid.forgot_password")
    assert ("Ask a volunteer", "visit:start") in resident.buttons()


async def test_leader_lists_most_frequent_misses(app):
    """/misses shows a leader the unanswered questions, most frequent first; a resident cannot."""
    await seed_demo(app)
    for who in ("r1", "r2", "r3"):
        await Talker(app, who).say("thoi tiet da nang ngay mai")
    await Talker(app, "r4").say("gia vang hom nay")
    lan = Talker(app, "lan")
    await lan.say("/misses")
    lines = lan.text().splitlines()
    assert lines[1].startswith("3×") and "thoi tiet" in lines[1]
    resident = Talker(app, "r5", lang="en")
    await resident.say("/misses")
    assert "not available" in resident.text()


async def test_visit_request_goes_to_the_area_volunteers_and_is_taken_once(app):
    """A resident's request reaches the ward's volunteer, only one volunteer can take it, the
    resident is told who took it, and closing it with a note tells the resident."""
    await seed_demo(app)
    resident = Talker(app, "ba-bay", lang="en")
    await resident.say("lam the nao de dang ky vneid muc 2")
    await resident.press("visit:start")
    assert "Which ward or commune" in resident.text()
    await resident.press(payload_of(resident, "Hải Vân"))
    await resident.press(payload_of(resident, "Tà Lang"))
    await resident.say("0905123456")
    await resident.say("Nhà sàn cạnh suối")
    notices = [r for r in resident.last if r.to is not None]
    assert {r.to.chat_id for r in notices} == {"an"}  # the ward's volunteer, on the console
    assert "dang ky vneid muc 2" in notices[0].text and "0905123456" in notices[0].text
    assert notices[0].buttons == ()  # the console numbers options: a notice is taken by its word
    request_id = re.search(r"#(\d+)", notices[0].text).group(1)
    take = f"req:{request_id}:take"

    an, binh = Talker(app, "an"), Talker(app, "binh", lang="en")
    await binh.press(take)
    assert "not in your area" in binh.text()
    await an.press(take)
    told = [r for r in an.last if r.to is not None and r.to.chat_id == "ba-bay"]
    assert told and "Nguyễn Văn An" in told[0].text
    # In the language the resident's app was set to (she never chose one with /lang).
    assert "will help you" in told[0].text
    await an.press(take)
    assert "Bạn đã nhận yêu cầu" in an.text()
    await an.press(take.replace(":take", ":close"))
    await an.say("Đã hướng dẫn bà đăng ký mức 2 tại công an phường")
    async with app.db.transaction() as session:
        request = await session.scalar(select(SupportRequest))
        denied = await session.scalar(select(AuditLog).where(AuditLog.action == "access.denied"))
    assert request.status == "closed"
    assert request.close_note == "Đã hướng dẫn bà đăng ký mức 2 tại công an phường"
    assert denied is not None
    assert any(r.to is not None and r.to.chat_id == "ba-bay" and "công an phường" in r.text for r in an.last)


async def test_two_volunteers_taking_at_once_one_wins(app):
    """When two volunteers of the area press “Take it” together, exactly one gets the request."""
    await seed_demo(app)
    resident = Talker(app, "ong-chin")
    await resident.say("/visit can giup dang ky chu ky so")
    await resident.press(payload_of(resident, "Hải Vân"))
    await resident.press(payload_of(resident, "Không rõ"))
    await resident.press("visit:skip")
    await resident.press("visit:known")  # no phone, no address
    notice = next(r for r in resident.last if r.to is not None)
    take = f"req:{re.search(r'#([0-9]+)', notice.text).group(1)}:take"
    lan = Talker(app, "lan")
    await _grant_volunteer(app, "lan", "danang.hai-van")
    await asyncio.gather(Talker(app, "an").press(take), lan.press(take))
    async with app.db.transaction() as session:
        request = await session.scalar(select(SupportRequest))
    assert request.status == "taken" and request.volunteer_id is not None


async def _grant_volunteer(app, console_name: str, area_code: str) -> None:
    from db.models import Identity, Membership
    from db.repo.areas import area_by_code

    async with app.db.transaction() as session:
        identity = await session.scalar(select(Identity).where(
            Identity.channel == "console", Identity.external_id == console_name))
        area = await area_by_code(session, area_code)
        session.add(Membership(user_id=identity.user_id, area_id=area.id, role="volunteer",
                               granted_at=app.core.services.clock()))


async def test_requests_lists_open_requests_of_the_area(app):
    """/requests shows a volunteer the open requests of their area with a Take button."""
    await seed_demo(app)
    resident = Talker(app, "co-tam")
    await resident.say("/visit nho giup lam CT07")
    await resident.press(payload_of(resident, "Hòa Xuân"))
    await resident.press("visit:skip")
    await resident.press("visit:known")  # no phone, no address
    binh, an = Talker(app, "binh"), Talker(app, "an")
    await binh.say("/requests")
    assert "CT07" in binh.text() and any(p.endswith(":take") for _, p in binh.buttons())
    await an.say("/requests")
    assert "CT07" not in an.text()


async def test_console_volunteer_takes_a_notice_by_its_word(app):
    """A volunteer on the console with a list on screen keeps “1” for that list under a visit
    notice, and takes the request with the notice's word (“take 1”)."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    await an.say("/households")  # an has a console chat with other options on screen
    resident = Talker(app, "ba-muoi")
    await resident.say("/visit nho giup cai VNeID")
    await resident.press(payload_of(resident, "Hải Vân"))
    await resident.press(payload_of(resident, "Không rõ"))
    await resident.press("visit:skip")
    await resident.press("visit:known")  # no phone, no address
    [notice] = [r for r in resident.last if r.to is not None and r.to.chat_id == "an"]
    request_id = re.search(r"(?:TAKE|NHẬN) ([0-9]+)", notice.text).group(1)
    await an.say("1")
    assert "You took request" not in an.text()
    await an.say(f"TAKE {request_id}")
    assert "You took request" in an.text()
    async with app.db.transaction() as session:
        request = await session.scalar(select(SupportRequest))
    assert request.status == "taken"


async def test_unsure_answer_says_so_and_points_to_a_volunteer_and_the_one_stop_office(app):
    """A motorbike question sharing the words of a VNeID entry is not answered: the resident is told
    GoCua has no reliable information, and offered a volunteer (/visit) and the one-stop office."""
    resident = Talker(app, "ba-bay")
    await resident.say("Chào các bạn. Tôi vừa mua lại chiếc xe máy cũ. Cho tôi hỏi sang tên xe "
                       "máy trên VNeID có phải đổi số điện thoại không?")
    text = resident.text()
    assert "faq:ok:" not in " ".join(p for _, p in resident.buttons())
    assert "Tôi chưa có thông tin chắc chắn về việc này" in text
    assert "/visit" in text and "bộ phận một cửa" in text and "Ông/bà" in text
    assert ("Nhờ tình nguyện viên" in [label for label, _ in resident.buttons()]
            or "visit:start" in [p for _, p in resident.buttons()])
    assert "faq:show:vneid.change_phone" not in [p for _, p in resident.buttons()]
