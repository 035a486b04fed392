"""Households through the core as the console sends them: /new, members, 1+20, reassignment."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
from hashlib import sha256

from sqlalchemy import select

import handlers.households
from bot.seed_demo import seed_demo
from db.models import (
    Area,
    AuditLog,
    Household,
    Identity,
    Resident,
)
from db.repo.areas import area_by_code
from tests.chat import Talker, all_rows, count_rows, payload_of, stored_anywhere

CITIZEN_ID = "048090001234"  # Da Nang (048), male born 1990: valid
OUT_OF_DATE = "This button is out of date."
NOT_YOURS = "This household is not in your area, so you cannot open it."


async def user_id(app, console_name: str) -> int:
    async with app.db.transaction() as session:
        return await session.scalar(select(Identity.user_id).where(
            Identity.channel == "console", Identity.external_id == console_name))


async def household(app, code: str) -> Household:
    [found] = await all_rows(app, Household, Household.code == code)
    return found


async def area_id(app, code: str) -> int:
    async with app.db.transaction() as session:
        return (await area_by_code(session, code)).id


async def denied(app, actor: str) -> list[AuditLog]:
    return await all_rows(app, AuditLog, AuditLog.action == "access.denied",
                          AuditLog.actor_id == await user_id(app, actor))


async def open_new_household(talker: Talker, village: str = "Thôn Tà Lang") -> None:
    await talker.say("/new")
    await talker.press(payload_of(talker, village))


async def add_household(talker: Talker, head: str, *, village: str = "Thôn Tà Lang") -> None:
    await open_new_household(talker, village)
    await talker.say(head)
    await talker.say("Gần nhà văn hóa")
    await talker.press("new:skip")


async def test_new_household_checks_each_answer_and_is_assigned_to_its_volunteer(app):
    """/new offers the volunteer's villages, re-asks a bad name or phone precisely, saves HV-TL-004."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    before = await count_rows(app, Household)
    await an.say("/new")
    assert "New household (1/4)" in an.text()
    assert [label for label, _ in an.buttons()] == ["Thôn Giàn Bí", "Thôn Tà Lang"]
    await an.press(payload_of(an, "Tà Lang"))
    assert "Full name of the head of household?" in an.text()

    await an.say("Nguyen 2")
    assert an.text() == "A name has no digits.\nFull name of the head of household?"
    assert await count_rows(app, Household) == before
    await an.say("Nguyễn Thị Hằng")
    assert "Address or a landmark" in an.text()
    await an.say("Cạnh cầu treo, nhà mái xanh")
    assert "Phone number of the household? (optional)" in an.text()
    assert payload_of(an, "Skip") == "new:skip"

    await an.say("090512345")
    assert an.text() == "A Vietnamese mobile number has 10 digits; you sent 9."
    assert await count_rows(app, Household) == before
    await an.say("+84 905 123 456")
    assert "Household HV-TL-004 added. You look after it." in an.text()
    assert "🏠 HV-TL-004 · Nguyễn Thị Hằng" in an.text() and "☎ 0905123456" in an.text()
    assert "Volunteer: Nguyễn Văn An" in an.text()

    saved = await household(app, "HV-TL-004")
    assert (saved.head_name, saved.address, saved.phone) == (
        "Nguyễn Thị Hằng", "Cạnh cầu treo, nhà mái xanh", "0905123456")
    assert saved.volunteer_id == await user_id(app, "an")
    assert saved.area_id == await area_id(app, "danang.hai-van.ta-lang")
    assert await count_rows(app, Household) == before + 1

    await an.say("/households")
    assert "Your households (6):" in an.text()
    assert ("HV-TL-004 Nguyễn Thị Hằng", f"hh:{saved.id}") in an.buttons()


async def test_phone_can_be_skipped_and_a_stale_area_button_changes_nothing(app):
    """Skip saves a household without a phone; an area button pressed after the area step is out of date."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    await an.say("/new")
    village = payload_of(an, "Giàn Bí")
    await an.press(village)
    await an.press(village)  # pressed again, once the dialog has moved on
    assert OUT_OF_DATE in an.text()
    await an.say("Zơrâm Văn Ba")
    await an.say("Đầu cầu treo")
    await an.press("new:skip")
    assert "Household HV-GB-003 added." in an.text()
    saved = await household(app, "HV-GB-003")
    assert saved.phone is None and saved.head_name == "Zơrâm Văn Ba"
    await an.press("new:skip")  # the dialog is over: nothing more is created
    assert OUT_OF_DATE in an.text()
    assert await count_rows(app, Household, Household.code.like("HV-GB-%")) == 3


async def test_new_household_in_another_area_is_refused_and_audited(app):
    """A forged area button for a ward the volunteer does not serve creates nothing and is audited."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    await an.say("/new")
    await an.press(f"new:area:{await area_id(app, 'danang.hoa-xuan')}")
    assert an.text() == "You can only add households in your own area."
    await an.say("Phạm Văn Lạ")
    assert "Household" not in an.text()
    assert await count_rows(app, Household, Household.head_name == "Phạm Văn Lạ") == 0
    [audit] = await denied(app, "an")
    assert audit.target == "area:danang.hoa-xuan"


async def test_a_resident_cannot_add_households(app):
    """/new is not available to someone without a role, and their forged household buttons are refused."""
    await seed_demo(app)
    guest = Talker(app, "guest", lang="en")
    await guest.say("/new")
    assert "not available to you" in guest.text()
    hv = await household(app, "HV-TL-001")
    await guest.press(f"hh:{hv.id}:add")
    assert guest.text() == NOT_YOURS
    await guest.say("Kẻ Lạ")
    assert await count_rows(app, Resident) == 0


async def test_add_member_keeps_only_a_masked_citizen_id(app, settings):
    """A bad citizen ID is re-asked precisely; a good one is stored masked and hashed, never in full."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    hv = await household(app, "HV-TL-001")
    await an.press(f"hh:{hv.id}")
    await an.press(payload_of(an, "Add a member"))
    assert an.text() == "New member of HV-TL-001: send their full name (or /cancel)."
    await an.say("Alăng Thị 3")
    assert an.text() == "A name has no digits.\nSend their full name (or /cancel)."
    await an.say("Alăng Thị Nga")
    assert an.text() == "Year of birth of Alăng Thị Nga? (optional)"
    await an.say("1990")
    assert "Citizen ID number (12 digits)?" in an.text()

    await an.say(CITIZEN_ID[:11])
    assert an.text() == "A citizen ID has 12 digits; you sent 11."
    await an.say("999090001234")
    assert an.text() == "The first three digits 999 are not a province code."
    await an.say("0480 9000 12ab")
    assert an.text() == "A citizen ID has only digits (0–9)."
    assert await count_rows(app, Resident) == 0

    await an.say(CITIZEN_ID)
    assert "Alăng Thị Nga added to HV-TL-001." in an.text()
    assert "  • Alăng Thị Nga, 1990, 0480******34" in an.text()
    [member] = await all_rows(app, Resident)
    assert (member.household_id, member.name, member.birth_year) == (hv.id, "Alăng Thị Nga", 1990)
    assert member.citizen_id_masked == "0480******34"
    key = settings.secret_key.encode()
    assert member.citizen_id_hash == hmac.new(key, CITIZEN_ID.encode(), sha256).hexdigest()
    assert await stored_anywhere(app, CITIZEN_ID) == []


async def test_member_year_and_citizen_id_can_be_skipped(app):
    """Skip on the year and the citizen ID saves a member with only a name."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    hv = await household(app, "HV-TL-002")
    await an.press(f"hh:{hv.id}:add")
    await an.say("Bríu Văn Sơn")
    await an.say("3000")
    # Years are written as years, never grouped like counts ("2,026").
    assert re.match(r"The year must be between \d{4} and \d{4}\.", an.text())
    await an.press("member:skip")
    await an.press("member:skip")
    assert "Bríu Văn Sơn added to HV-TL-002." in an.text()
    [member] = await all_rows(app, Resident)
    assert (member.birth_year, member.citizen_id_masked, member.citizen_id_hash) == (None, None, None)


async def test_a_household_of_another_area_is_refused_and_audited(app):
    """A volunteer of another ward cannot open, add to or start on a household by code or button."""
    await seed_demo(app)
    binh = Talker(app, "binh", lang="en")
    hv = await household(app, "HV-TL-001")
    await binh.say("/household HV-TL-001")
    assert binh.text() == NOT_YOURS
    for forged in (f"hh:{hv.id}", f"hh:{hv.id}:add", f"hh:{hv.id}:start",
                   f"hh:{hv.id}:flow:vneid:0"):
        await binh.press(forged)
        assert binh.text() == NOT_YOURS, forged
    assert len(await denied(app, "binh")) == 5
    assert {a.target for a in await denied(app, "binh")} == {f"household:{hv.id}"}
    await binh.say("/households")
    shown = [label for label, _ in binh.buttons()]
    assert "Your households (2):" in binh.text()
    assert [label.split()[0] for label in shown] == ["HX-001", "HX-002"]


async def test_a_leader_covers_the_households_of_their_ward(app):
    """The ward's leader opens a volunteer's household in a village below and sees Reassign."""
    await seed_demo(app)
    lan = Talker(app, "lan", lang="en")
    await lan.say("/household hv-tl-003")
    assert "🏠 HV-TL-003 · Pơloong Văn Dũng" in lan.text()
    assert "Volunteer: Nguyễn Văn An" in lan.text()
    hv = await household(app, "HV-TL-003")
    assert ("Reassign", f"hh:{hv.id}:reassign") in lan.buttons()
    an = Talker(app, "an", lang="en")
    await an.say("/household HV-TL-003")
    assert "Reassign" not in [label for label, _ in an.buttons()]


async def test_a_volunteer_past_twenty_households_is_warned_not_refused(app, clock):
    """1+20: the 21st household is created with a warning, and /households repeats the note."""
    await seed_demo(app)
    an_id = await user_id(app, "an")
    ta_lang = await area_id(app, "danang.hai-van.ta-lang")
    async with app.db.transaction() as session:
        for n in range(4, 19):  # an has 5 from the seed: 15 more make 20
            session.add(Household(code=f"HV-TL-{n:03d}", area_id=ta_lang, head_name=f"Hộ {n}",
                                  address="Tà Lang", volunteer_id=an_id, created_at=clock()))
    an = Talker(app, "an", lang="en")
    await add_household(an, "Hộ Hai Mươi Mốt")
    assert "Household HV-TL-019 added. You look after it." in an.text()
    assert ("You now look after 21 households, more than the 20 of 1+20. "
            "That is allowed; tell your leader if it is too many.") in an.text()
    assert (await household(app, "HV-TL-019")).volunteer_id == an_id
    await an.say("/households")
    assert "Your households (21):" in an.text()
    assert "more than the 20 of 1+20" in an.text()


async def test_twenty_households_get_no_warning(app, clock):
    """A volunteer reaching exactly 20 households is not warned."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    an_id, ta_lang = await user_id(app, "an"), await area_id(app, "danang.hai-van.ta-lang")
    async with app.db.transaction() as session:
        for n in range(4, 18):
            session.add(Household(code=f"HV-TL-{n:03d}", area_id=ta_lang, head_name=f"Hộ {n}",
                                  address="Tà Lang", volunteer_id=an_id, created_at=clock()))
    await add_household(an, "Hộ Hai Mươi")
    assert "Household HV-TL-018 added." in an.text()
    assert "more than" not in an.text()


async def join_as_volunteer(app, name: str, area: str, clock) -> Talker:
    from db.repo.invites import create_invite

    async with app.db.transaction() as session:
        invite = await create_invite(session, role="volunteer", area=await area_by_code(session, area),
                                     now=clock())
    talker = Talker(app, name, lang="en")
    await talker.say(f"/join {invite.code}")
    assert "volunteer" in talker.text()
    return talker


async def test_a_leader_reassigns_a_household_through_the_page(app, clock):
    """Reassign lists the other volunteers of the area with their load; choosing one moves the household."""
    await seed_demo(app)
    dung = await join_as_volunteer(app, "dung", "danang.hai-van", clock)
    await join_as_volunteer(app, "xuan", "danang.hoa-xuan", clock)
    lan = Talker(app, "lan", lang="en")
    hv = await household(app, "HV-TL-002")
    await lan.press(f"hh:{hv.id}")
    await lan.press(payload_of(lan, "Reassign"))
    assert lan.text() == "Reassign HV-TL-002 to which volunteer? (households they have now)"
    dung_id, lan_id = await user_id(app, "dung"), await user_id(app, "lan")
    assert lan.buttons() == [("Lê Thị Lan (0)", f"hh:{hv.id}:to:{lan_id}"),
                             ("dung (0)", f"hh:{hv.id}:to:{dung_id}")]

    await lan.press(f"hh:{hv.id}:to:{dung_id}")
    assert lan.text() == "HV-TL-002 is now looked after by dung."
    assert (await household(app, "HV-TL-002")).volunteer_id == dung_id
    [audit] = await all_rows(app, AuditLog, AuditLog.action == "household.reassign")
    assert audit.actor_id == lan_id and audit.target == "household:HV-TL-002"
    assert audit.details == {"from": await user_id(app, "an"), "to": dung_id}

    await dung.say("/households")
    assert "Your households (1):" in dung.text()
    assert dung.buttons() == [("HV-TL-002 Bríu Thị Hoa", f"hh:{hv.id}")]
    an = Talker(app, "an", lang="en")
    await an.say("/households")
    assert "Your households (4):" in an.text()
    assert f"hh:{hv.id}" not in [p for _, p in an.buttons()]


async def test_a_volunteer_cannot_reassign_even_with_forged_buttons(app, clock):
    """A volunteer pressing hh:<id>:reassign or hh:<id>:to:<uid> is refused and audited; nothing moves."""
    await seed_demo(app)
    await join_as_volunteer(app, "dung", "danang.hai-van", clock)
    an = Talker(app, "an", lang="en")
    hv = await household(app, "HV-TL-001")
    dung_id = await user_id(app, "dung")
    await an.press(f"hh:{hv.id}:reassign")
    assert an.text() == "Only a leader or administrator of this area can reassign households."
    await an.press(f"hh:{hv.id}:to:{dung_id}")
    assert an.text() == "Only a leader or administrator of this area can reassign households."
    assert (await household(app, "HV-TL-001")).volunteer_id == await user_id(app, "an")
    assert [(a.details["attempted"], a.target) for a in await denied(app, "an")] == [
        ("reassign", f"household:{hv.id}"), ("reassign", f"household:{hv.id}")]
    assert await count_rows(app, AuditLog, AuditLog.action == "household.reassign") == 0


async def test_a_leader_cannot_reassign_to_someone_outside_the_area(app, clock):
    """A forged target outside the household's area (binh of Hòa Xuân) is refused and audited."""
    await seed_demo(app)
    lan = Talker(app, "lan", lang="en")
    hv = await household(app, "HV-TL-001")
    binh_id = await user_id(app, "binh")
    await lan.press(f"hh:{hv.id}:to:{binh_id}")
    assert OUT_OF_DATE in lan.text()
    await lan.press(f"hh:{hv.id}:to:abc")
    assert OUT_OF_DATE in lan.text()
    assert (await household(app, "HV-TL-001")).volunteer_id == await user_id(app, "an")
    assert [a.target for a in await denied(app, "lan")] == [
        f"household:{hv.id}->user:{binh_id}", f"household:{hv.id}->user:abc"]
    hx = await household(app, "HX-001")
    await lan.press(f"hh:{hx.id}:reassign")
    assert lan.text() == NOT_YOURS


async def test_an_admin_of_the_city_reassigns_and_the_load_warning_shows(app, clock):
    """An admin reassigns to a volunteer who already has 20 households and is told it is more than 20."""
    await seed_demo(app)
    an_id = await user_id(app, "an")
    lan_id = await user_id(app, "lan")
    ta_lang = await area_id(app, "danang.hai-van.ta-lang")
    async with app.db.transaction() as session:
        for n in range(4, 24):
            session.add(Household(code=f"HV-TL-{n:03d}", area_id=ta_lang, head_name=f"Hộ {n}",
                                  address="Tà Lang", volunteer_id=lan_id, created_at=clock()))
    admin = Talker(app, "admin", lang="en")
    hv = await household(app, "HV-TL-001")
    await admin.press(f"hh:{hv.id}:reassign")
    assert ("Lê Thị Lan (20)", f"hh:{hv.id}:to:{lan_id}") in admin.buttons()
    await admin.press(f"hh:{hv.id}:to:{lan_id}")
    assert "HV-TL-001 is now looked after by Lê Thị Lan." in admin.text()
    assert "Note: Lê Thị Lan now has 21 households, more than 20." in admin.text()
    assert (await household(app, "HV-TL-001")).volunteer_id == lan_id != an_id


async def test_a_redelivered_last_answer_creates_one_household(app):
    """The phone answer delivered twice (same update id) creates the household once."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    await open_new_household(an)
    await an.say("Hộ Giao Hai Lần")
    await an.say("Tà Lang")
    first = await an.say("0905123456", update_id="phone-1")
    again = await an.say("0905123456", update_id="phone-1")
    assert "Household HV-TL-004 added." in "\n".join(r.text for r in first)
    assert again == []
    assert await count_rows(app, Household, Household.head_name == "Hộ Giao Hai Lần") == 1


async def test_two_volunteers_adding_households_at_once_get_distinct_codes(app, monkeypatch):
    """Two staff finishing /new in one village at the same moment both get a household, distinct codes."""
    await seed_demo(app)
    real_next_code = handlers.households.next_household_code
    picked: list[str] = []
    both_picked = asyncio.Event()

    async def next_code_side_by_side(session, area):
        """Both pick the next code before either saves (SQLite lets only one writer in: no wait)."""
        code = await real_next_code(session, area)
        picked.append(code)
        if len(picked) == 2:
            both_picked.set()
        if len(picked) <= 2:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(both_picked.wait(), 0.5)
        return code

    monkeypatch.setattr(handlers.households, "next_household_code", next_code_side_by_side)
    an, lan = Talker(app, "an", lang="en"), Talker(app, "lan", lang="en")
    for talker, head in ((an, "Hộ Của An"), (lan, "Hộ Của Lan")):
        await open_new_household(talker)
        await talker.say(head)
        await talker.say("Tà Lang")
    await asyncio.gather(an.press("new:skip"), lan.press("new:skip"))
    assert "added" in an.text() and "added" in lan.text()
    made = await all_rows(app, Household, Household.head_name.in_(["Hộ Của An", "Hộ Của Lan"]))
    assert sorted(h.code for h in made) == ["HV-TL-004", "HV-TL-005"]
    if not app.db.is_sqlite:
        assert picked == ["HV-TL-004", "HV-TL-004", "HV-TL-005"]  # the loser took the next one
    assert {h.head_name: h.volunteer_id for h in made} == {
        "Hộ Của An": await user_id(app, "an"), "Hộ Của Lan": await user_id(app, "lan")}


async def test_area_choice_is_limited_to_the_staff_areas(app):
    """An admin of the city is offered the city's wards; a volunteer of a commune gets that commune."""
    await seed_demo(app)
    admin, cuong = Talker(app, "admin", lang="en"), Talker(app, "cuong", lang="en")
    await admin.say("/new")
    async with app.db.transaction() as session:
        wards = set(await session.scalars(select(Area.name).where(Area.level.in_(("ward", "commune")))))
    assert {label for label, _ in admin.buttons()} == wards
    await cuong.say("/new")
    assert [label for label, _ in cuong.buttons()] == [
        (await all_rows(app, Area, Area.code == "danang.a-vuong"))[0].name]
