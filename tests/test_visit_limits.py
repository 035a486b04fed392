"""A resident cannot flood the volunteers with visit requests: three open at most, and making
one counts more than a message in the flood limit."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.seed_demo import seed_demo
from db.models import Notice, SupportRequest
from handlers.flood import SLOW_DOWN
from tests.chat import Talker, count_rows, payload_of


async def _ask_for_visit(resident: Talker, question: str) -> list:
    """/visit QUESTION through the dialog (Hải Vân, village not sure, a phone, an address);
    the replies of the last step."""
    await resident.say(f"/visit {question}")
    if not any(p.startswith("visit:area:") for _, p in resident.buttons()):
        return resident.last
    await resident.press(payload_of(resident, "Hải Vân"))
    await resident.press("visit:skip")
    await resident.say("0905123456")
    if not any(r.to is not None for r in resident.last) and "#" not in resident.text():
        await resident.say("Nhà sàn cạnh suối")
    return resident.last


def _notices(replies: list) -> list:
    return [r for r in replies if r.to is not None]


async def test_a_fourth_open_request_is_refused_and_can_be_added_to_an_open_one(app, clock):
    """With three requests open, a fourth is not made nor pushed to any volunteer; the resident
    is told and can add it to an open request with one press, which tells nobody new."""
    await seed_demo(app)
    resident = Talker(app, "ba-muoi-mot", lang="en")
    for n in range(3):
        assert _notices(await _ask_for_visit(resident, f"giup viec so {n}"))
        clock.advance(minutes=2)
    replies = await _ask_for_visit(resident, "giup them viec nua")
    assert _notices(replies) == []
    assert await count_rows(app, SupportRequest) == 3
    assert "You already have 3 open visit requests" in resident.text()
    adds = [p for _, p in resident.buttons() if p.startswith("visitadd:")]
    assert len(adds) == 3
    await resident.press(adds[0])
    assert "Added to your request" in resident.text() and _notices(resident.last) == []
    async with app.db.transaction() as session:
        first = await session.scalar(select(SupportRequest).order_by(SupportRequest.id).limit(1))
    assert "giup viec so 0" in first.question and "giup them viec nua" in first.question


async def test_a_closed_request_makes_room_for_a_new_one(app, clock):
    """Once a volunteer closes one of the three open requests, the resident may ask again."""
    await seed_demo(app)
    resident = Talker(app, "ba-muoi-hai", lang="en")
    for n in range(3):
        await _ask_for_visit(resident, f"viec {n}")
        clock.advance(minutes=2)
    async with app.db.transaction() as session:
        first = await session.scalar(select(SupportRequest).order_by(SupportRequest.id).limit(1))
        first.status = "closed"
    assert _notices(await _ask_for_visit(resident, "viec moi"))
    assert await count_rows(app, SupportRequest) == 4


async def test_a_volunteer_who_took_a_request_is_told_what_was_added(app, clock):
    """Adding to a taken request, typed after pressing “Add to”, reaches the volunteer who took it."""
    await seed_demo(app)
    resident = Talker(app, "ba-muoi-ba", lang="en")
    request_id = None
    for n in range(3):
        replies = await _ask_for_visit(resident, f"viec {n}")
        notice = _notices(replies)[0]
        assert notice.buttons == ()  # the console numbers options: the notice is taken by its word
        request_id = request_id or re.search(r"(?:TAKE|NHẬN) (\d+)", notice.text).group(1)
        clock.advance(minutes=2)
    await Talker(app, "an").say(f"take {request_id}")
    await resident.say("/visit")
    await resident.press(f"visitadd:{request_id}")
    assert "What do you want to add" in resident.text()
    await resident.say("mang theo CCCD")
    [told] = _notices(resident.last)
    assert told.to.chat_id == "an" and "mang theo CCCD" in told.text
    assert told.buttons == () and re.search(rf"(?:CLOSE|ĐÓNG) {request_id}\b", told.text)


async def test_making_a_request_counts_more_than_a_message_in_the_flood_limit(app):
    """A Telegram chat that sent 30 messages this minute may still write, but a visit request
    (worth several messages) is refused with the polite slow-down instead of reaching volunteers."""
    await seed_demo(app)
    resident = Talker(app, "7001", channel="telegram", lang="en")
    for _ in range(30):
        await resident.say("/help")
    await _ask_for_visit(resident, "giup toi voi")
    assert await count_rows(app, SupportRequest) == 0 and await count_rows(app, Notice) == 0
    assert SLOW_DOWN in resident.text()
    await resident.say("/help")
    assert "/visit" in resident.text()


async def test_five_requests_in_one_second_reach_the_volunteers_at_most_three_times(app):
    """Five quick requests from one Telegram chat in the same second make at most three
    requests, and the area's volunteer is notified of at most three."""
    await seed_demo(app)
    resident = Talker(app, "7002", channel="telegram", lang="en")
    for n in range(5):
        await _ask_for_visit(resident, f"gap {n}")
    assert await count_rows(app, SupportRequest) <= 3
    assert await count_rows(app, Notice) <= 3


async def test_text_instead_of_a_press_shows_the_open_requests_again(app, clock):
    """Typing something instead of pressing “Add to” shows the open requests and buttons again."""
    await seed_demo(app)
    resident = Talker(app, "ba-muoi-bon", lang="en")
    for n in range(3):
        await _ask_for_visit(resident, f"viec {n}")
        clock.advance(minutes=2)
    await resident.say("/visit")
    await resident.say("toi can gap")
    assert "You already have 3 open visit requests" in resident.text()
    assert len([p for _, p in resident.buttons() if p.startswith("visitadd:")]) == 3
