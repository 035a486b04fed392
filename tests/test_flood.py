"""Flood control: a chat sending hundreds of messages a minute gets its first FLOOD_LIMIT answered,
one polite slow-down and then nothing until it has been quiet for a minute; other chats are
answered all along; the limit holds across workers sharing the database."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from bot.app import open_app
from bot.seed_demo import seed_demo
from db.models import Conversation, FaqMiss, ProcessedUpdate, StepRecord
from db.repo.areas import area_by_code
from db.repo.invites import create_invite
from handlers.flood import FLOOD_LIMIT, flood_verdict
from handlers.types import Reply
from tests.chat import Talker, count_rows
from tests.test_flow_runs import start_flow
from tests.test_metrics import scrape

SLOW_DOWN = {
    "en": "You are sending messages very fast. Please wait a minute, then I will answer again.",
    "vi": "Tin nhắn đến nhanh quá. Xin chờ một phút, GoCua sẽ trả lời tiếp ạ.",
}
FLOOD = 300
STEP = 0.2  # seconds between two messages of the flood: 300 of them within a minute


def texts(replies: list[Reply]) -> list[str]:
    return [r.text for r in replies]


def misses(answers: list[list[Reply]]) -> int:
    """How many of the answers are the FAQ's "not found" (each stores a miss)."""
    def is_miss(replies: list[Reply]) -> bool:
        payloads = [b.payload for r in replies for b in r.buttons]
        return "visit:start" in payloads and not any(p.startswith("faq:ok:") for p in payloads)
    return sum(is_miss(a) for a in answers)


def assert_flood_answers(answers: list[list[Reply]], lang: str, answered: int = FLOOD_LIMIT) -> None:
    """The first `answered` got normal answers, the next one only the slow-down, the rest nothing."""
    assert all(a and texts(a) != [SLOW_DOWN[lang]] for a in answers[:answered])
    assert texts(answers[answered]) == [SLOW_DOWN[lang]]
    assert all(a == [] for a in answers[answered + 1:])


async def conversation_of(app, channel: str, chat_id: str) -> tuple[dict, int]:
    async with app.db.transaction() as session:
        row = await session.scalar(select(Conversation).where(
            Conversation.channel == channel, Conversation.chat_id == chat_id))
        return row.state, row.version


def delta(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0) - before.get(key, 0)


@pytest.mark.parametrize(("recent", "verdict"), [
    (0, "allow"), (FLOOD_LIMIT - 1, "allow"), (FLOOD_LIMIT, "warn"), (FLOOD_LIMIT + 1, "drop"),
    (10 * FLOOD_LIMIT, "drop"),
])
def test_flood_verdict(recent: int, verdict: str) -> None:
    """Below the limit an update is answered, the first over it warned, the ones after dropped."""
    assert flood_verdict(recent) == verdict


@pytest.mark.parametrize("lang", ["en", "vi"])
async def test_a_flooding_chat_is_slowed_down_politely_while_others_are_answered(app, clock, lang):
    """300 questions in a minute: 40 answers, one slow-down in the sender's language, then
    silence with nothing stored; another chat is answered throughout; a quiet minute later the
    chat is answered again."""
    flooder = Talker(app, "flooder", channel="telegram", lang=lang)
    other = Talker(app, "other", channel="telegram", lang=lang)
    before = await scrape(app)
    answers, state_at_limit = [], None
    for n in range(FLOOD):
        answers.append(await flooder.say(f"gia vang hom nay bao nhieu {n}"))
        if n + 1 == FLOOD_LIMIT:
            state_at_limit = await conversation_of(app, "telegram", "flooder")
        if n % 10 == 5:
            assert texts(await other.say("/help")) and other.text() != SLOW_DOWN[lang]
        clock.advance(seconds=STEP)
    after = await scrape(app)

    assert_flood_answers(answers, lang)
    assert await conversation_of(app, "telegram", "flooder") == state_at_limit
    assert state_at_limit[0] == {"last_question": f"gia vang hom nay bao nhieu {FLOOD_LIMIT - 1}"}
    assert await count_rows(app, FaqMiss) == misses(answers) > 0
    assert await count_rows(app, ProcessedUpdate, ProcessedUpdate.chat_id == "flooder") == FLOOD
    assert delta(before, after, "gocua_updates_total", channel="telegram",
                 outcome="flood_limited") == FLOOD - FLOOD_LIMIT
    assert delta(before, after, "gocua_updates_total", channel="telegram",
                 outcome="handled") == FLOOD_LIMIT + FLOOD // 10

    clock.advance(seconds=61)
    assert await flooder.say("gia vang hom nay bao nhieu") and flooder.text() != SLOW_DOWN[lang]
    assert await count_rows(app, FaqMiss) == misses(answers) + 1


async def test_a_flood_of_step_presses_records_no_steps(app, clock):
    """A volunteer's step button pressed hundreds of times past the limit records no step and
    leaves the chat as it was; after a quiet minute the same press records the step once."""
    await seed_demo(app)
    async with app.db.transaction() as session:
        area = await area_by_code(session, "danang.hai-van")
        code = (await create_invite(session, role="volunteer", area=area, now=clock())).code
    volunteer = Talker(app, "hanh", channel="telegram", lang="en")
    await volunteer.say(f"/join {code}")
    await start_flow(volunteer, "HV-TL-001", "vneid")
    first_step = next(p for _, p in volunteer.buttons() if p.startswith("f:"))
    sent = await count_rows(app, ProcessedUpdate, ProcessedUpdate.chat_id == "hanh")
    for _ in range(FLOOD_LIMIT - sent):
        assert await volunteer.say("/help")
        clock.advance(seconds=STEP)
    chat_before = await conversation_of(app, "telegram", "hanh")

    answers = []
    for _ in range(FLOOD - FLOOD_LIMIT):
        answers.append(await volunteer.press(first_step))
        clock.advance(seconds=STEP)
    assert texts(answers[0]) == [SLOW_DOWN["en"]] and all(a == [] for a in answers[1:])
    assert await count_rows(app, StepRecord) == 0
    assert await conversation_of(app, "telegram", "hanh") == chat_before

    clock.advance(seconds=61)
    await volunteer.press(first_step)
    assert await count_rows(app, StepRecord) == 1


async def test_two_workers_on_one_database_share_the_limit(app, settings, clock):
    """Two workers taking turns with one chat's flood: one slow-down in all, 40 answers."""
    second = await open_app(settings, migrate=False, clock=clock)
    try:
        workers = [Talker(app, "flooder", channel="zalo", lang="vi"),
                   Talker(second, "flooder", channel="zalo", lang="vi")]
        answers = []
        for n in range(FLOOD):
            answers.append(await workers[n % 2].say(f"thoi tiet {n}"))
            clock.advance(seconds=STEP)
    finally:
        await second.close()
    assert_flood_answers(answers, "vi")
    assert await count_rows(app, FaqMiss) == misses(answers)


async def test_concurrent_deliveries_to_two_workers_still_hold_the_limit(app, settings, clock):
    """60 updates of one chat handled at once by two workers: exactly 40 answers and one
    slow-down (the conversation's row lock makes each count see the ones before it)."""
    second = await open_app(settings, migrate=False, clock=clock)
    try:
        workers = [Talker(app, "flooder", channel="telegram", lang="en"),
                   Talker(second, "flooder", channel="telegram", lang="en")]
        first = await workers[0].say("gia vang")  # the chat and its conversation exist
        answers = await asyncio.gather(*(workers[n % 2].say(f"gia vang {n}") for n in range(59)))
    finally:
        await second.close()
    answers = [first, *answers]
    assert sum(texts(a) == [SLOW_DOWN["en"]] for a in answers) == 1
    assert sum(bool(a) and texts(a) != [SLOW_DOWN["en"]] for a in answers) == FLOOD_LIMIT
    assert await count_rows(app, FaqMiss) == misses(answers)


async def test_a_redelivered_dropped_update_is_silent_and_not_counted_again(app, clock):
    """The platform delivering a dropped update again gets nothing and adds no row, even after
    the chat may speak again."""
    flooder = Talker(app, "flooder", channel="telegram", lang="en")
    answers = []
    for n in range(FLOOD_LIMIT + 5):
        answers.append(await flooder.say(f"gia vang {n}", update_id=f"fl-{n}"))
        clock.advance(seconds=STEP)
    dropped = f"fl-{FLOOD_LIMIT + 2}"
    assert await flooder.say("gia vang again", update_id=dropped) == []
    assert await count_rows(app, ProcessedUpdate) == FLOOD_LIMIT + 5
    clock.advance(seconds=61)
    assert await flooder.say("gia vang again", update_id=dropped) == []
    assert await count_rows(app, ProcessedUpdate) == FLOOD_LIMIT + 5
    assert await count_rows(app, FaqMiss) == misses(answers)
    assert await flooder.say("gia vang again") and flooder.text() != SLOW_DOWN["en"]


async def test_the_console_is_not_limited(app, clock):
    """The local console user is answered however fast they type."""
    local = Talker(app, "local", lang="en")
    for _ in range(FLOOD_LIMIT + 20):
        assert await local.say("/help") and local.text() != SLOW_DOWN["en"]
        clock.advance(seconds=STEP)
