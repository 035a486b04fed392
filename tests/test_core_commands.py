"""The commands every user has, through the core as the console sends them."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from bot.seed_demo import seed_demo
from db.models import AuditLog, Membership, ProcessedUpdate, User
from db.repo.areas import area_by_code
from db.repo.invites import create_invite
from tests.chat import Talker


async def _invite(app, role: str, area: str, clock) -> str:
    async with app.db.transaction() as session:
        found = await area_by_code(session, area)
        invite = await create_invite(session, role=role, area=found, now=clock())
        return invite.code


async def test_help_lists_households_for_volunteers_not_residents(app, clock):
    """/help shows /households to a volunteer and not to a resident."""
    await seed_demo(app)
    volunteer, resident = Talker(app, "an"), Talker(app, "someone-new")
    await volunteer.say("/help")
    await resident.say("/help")
    assert "/households" in volunteer.text()
    assert "/households" not in resident.text()
    assert "/help" in resident.text()


async def test_lang_is_remembered_per_user(app):
    """Choosing English with /lang keeps English for that user's next messages only."""
    en, vi = Talker(app, "u-en"), Talker(app, "u-vi")
    await en.say("/lang")
    assert [label for label, _ in en.buttons()] == ["Tiếng Việt", "English"]
    await en.say("2")  # the console answers with the option's number
    assert "English" in en.text()
    await en.say("/help")
    await vi.say("/help")
    assert en.text() != vi.text()
    assert "Commands" in en.text()


async def test_telegram_language_code_is_first_guess(app):
    """A user with an English client hint gets English until they choose otherwise."""
    guest = Talker(app, "hinted", lang="en")
    await guest.say("/help")
    assert "Commands" in guest.text()


async def test_invite_grants_role_once(app, clock):
    """An invite makes the claimer a volunteer; a second claim of the same code is refused."""
    await seed_demo(app)
    code = await _invite(app, "volunteer", "danang.hoa-xuan", clock)
    first, second = Talker(app, "new-vol"), Talker(app, "other")
    await first.say(f"/start {code}")
    assert "volunteer" in first.text().lower() or "tình nguyện" in first.text().lower()
    await first.say("/help")
    assert "/households" in first.text()
    await second.say(f"/join {code.lower()}")
    await second.say("/help")
    assert "/households" not in second.text()
    async with app.db.transaction() as session:
        grants = await session.scalar(
            select(func.count()).select_from(Membership).where(Membership.invite_code == code))
        replays = await session.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.action == "invite.replay"))
    assert grants == 1
    assert replays == 1


async def test_expired_invite_is_refused(app, clock):
    """A code past its expiry grants nothing and says it expired."""
    await seed_demo(app)
    code = await _invite(app, "leader", "danang.hai-van", clock)
    clock.advance(days=8)
    late = Talker(app, "late", lang="en")
    await late.say(f"/join {code}")
    assert "expired" in late.text()


async def test_duplicate_delivery_is_handled_once(app):
    """The same update id delivered twice gets one reply and writes one user and one record."""
    talker = Talker(app, "dup")
    first = await talker.say("/start", update_id="same-1")
    second = await talker.say("/start", update_id="same-1")
    assert first and second == []
    async with app.db.transaction() as session:
        users = await session.scalar(select(func.count()).select_from(User))
        updates = await session.scalar(select(func.count()).select_from(ProcessedUpdate))
    assert (users, updates) == (1, 1)


async def test_unsent_replies_are_resent_after_a_crash(app, clock):
    """If the process died after commit but before sending, the redelivery gets the replies.
    Within the sender's lease a redelivery is refused (the platform is asked to deliver it again
    later) rather than answered with nothing, which would drop the replies for good."""
    from handlers.pipeline import RepliesInFlight

    talker = Talker(app, "crashy", lang="en")
    incoming = talker.incoming(text="/help", update_id="crash-1")
    replies = await app.core.handle(incoming)  # committed, never sent, never marked
    with pytest.raises(RepliesInFlight):
        await app.core.handle(incoming)  # still within the sender's lease
    clock.advance(seconds=31)
    again = await app.core.handle(incoming)
    assert [r.text for r in again] == [r.text for r in replies]
    await app.core.mark_sent(incoming)
    clock.advance(seconds=60)
    assert await app.core.handle(incoming) == []


async def test_unknown_command_and_unsupported_update_get_help(app):
    """An unknown command and a sticker each get a short pointer to /help."""
    talker = Talker(app, "curious", lang="en")
    await talker.say("/frobnicate now")
    assert "/frobnicate" in talker.text() and "/help" in talker.text()
    await talker.send(talker.incoming())
    assert "text" in talker.text()


async def test_stale_button_payload_is_answered_not_crashing(app):
    """A button payload nobody handles is answered as out of date."""
    talker = Talker(app, "stale", lang="en")
    await talker.press("flow:999:nope")
    assert "out of date" in talker.text()


async def test_area_role_covers_sub_areas(app, clock):
    """A leader of a ward is a leader for the villages below it."""
    await seed_demo(app)
    from db.repo.users import role_grants

    async with app.db.transaction() as session:
        lan = await session.scalar(select(User).where(User.display_name == "Lê Thị Lan"))
        grants = await role_grants(session, lan.id)
    assert any(g.covers("danang.hai-van.ta-lang") for g in grants)
    assert not any(g.covers("danang.hoa-xuan") for g in grants)
    assert not any(g.covers("danang.hai-vanx") for g in grants)
