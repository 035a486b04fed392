"""/link: a volunteer's Telegram and Zalo accounts become one user, with roles and households."""

from __future__ import annotations

import re

from bot.seed_demo import seed_demo
from db.models import AuditLog, Identity, SupportRequest, User
from tests.chat import Talker, all_rows, count_rows


def code_in(talker: Talker) -> str:
    match = re.search(r"/link ([A-Z0-9]{8})", talker.text())
    assert match, talker.text()
    return match.group(1)


async def test_linking_brings_roles_households_and_requests_to_the_other_app(app):
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    zalo = Talker(app, "8801", channel="zalo", lang="en")
    await zalo.say("/visit Cần giúp cài VNeID")  # as a resident, before linking
    for _ in range(5):  # area, village, phone, address: the first button each time
        if await count_rows(app, SupportRequest):
            break
        await zalo.press(zalo.buttons()[0][1])
    assert await count_rows(app, SupportRequest) == 1
    await zalo.say("/households")
    assert "not available to you" in zalo.text()
    users_before = await count_rows(app, User)

    await an.say("/link")
    code = code_in(an)
    await zalo.say(f"/link {code.lower()}")
    assert "Linked. This account is now Nguyễn Văn An" in zalo.text()
    await zalo.say("/households")
    assert any(label.startswith("HV-TL-001") for label, _ in zalo.buttons())
    [an_user] = await all_rows(app, Identity, Identity.channel == "console", Identity.external_id == "an")
    identities = await all_rows(app, Identity, Identity.user_id == an_user.user_id)
    assert {(i.channel, i.external_id) for i in identities} == {("console", "an"), ("zalo", "8801")}
    assert await count_rows(app, User) == users_before - 1
    [request] = await all_rows(app, SupportRequest)
    assert request.requester_id == an_user.user_id
    [audit] = await all_rows(app, AuditLog, AuditLog.action == "identity.link")
    assert audit.actor_id == an_user.user_id

    # The code is single-use: another account cannot take it again.
    other = Talker(app, "8802", channel="zalo", lang="en")
    await other.say(f"/link {code}")
    assert "wrong or has expired" in other.text()
    await zalo.say("/link")
    await an.say(f"/link {code_in(zalo)}")
    assert an.text() == "This account is already linked."


async def test_expired_and_guessed_codes_are_refused_and_limited(app, clock):
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    guesser = Talker(app, "9900", channel="zalo", lang="en")
    await an.say("/link")
    code = code_in(an)
    clock.advance(minutes=16)
    await guesser.say(f"/link {code}")
    assert "wrong or has expired" in guesser.text()
    for attempt in range(4):
        await guesser.say(f"/link ZZZZZZZ{attempt + 2}")
        assert "wrong or has expired" in guesser.text()
    await an.say("/link")
    await guesser.say(f"/link {code_in(an)}")  # even the right code, after five wrong ones
    assert guesser.text() == "Too many wrong codes. Try again in an hour."
    await guesser.say("/households")
    assert "not available to you" in guesser.text()
    assert await count_rows(app, AuditLog, AuditLog.action == "link.failed") == 5
    clock.advance(hours=1, minutes=1)
    await an.say("/link")
    await guesser.say(f"/link {code_in(an)}")
    assert "Linked." in guesser.text()
