"""Records a volunteer can correct (issue 12, section 4): validated edits of households and
members from the page, doubtful values confirmed or fixed, archiving by a leader, and every
change in the audit log; button data never decides who may change what."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.stats_json import area_stats_json
from db.models import Area, AuditLog, FlowRun, Household, Resident, StepRecord
from db.repo.areas import area_by_code
from db.repo.stats import area_stats
from handlers.validation import VIETNAM
from tests.chat import Talker, all_rows, count_rows, payload_of, stored_anywhere

NOT_YOURS = "This household is not in your area, so you cannot open it."
OUT_OF_DATE = "This button is out of date."
NOT_A_LEADER = "Only a leader or administrator of this area can archive or restore households."
SKILLS = "Smartphone skills for e-services"


async def the_household(app, code: str) -> Household:
    [found] = await all_rows(app, Household, Household.code == code)
    return found


async def audits(app, *actions: str) -> list[AuditLog]:
    return await all_rows(app, AuditLog, AuditLog.action.in_(actions))


async def new_household(talker: Talker, head: str, address: str = "Gần nhà văn hóa") -> None:
    await talker.say("/new")
    await talker.press(payload_of(talker, "Tà Lang"))
    await talker.say(head)
    if "Address or a landmark" in talker.text():
        await talker.say(address)


async def add_member(talker: Talker, code: str, name: str, year: str, cccd: str) -> None:
    await talker.say(f"/household {code}")
    await talker.press(payload_of(talker, "Add a member"))
    await talker.say(name)
    await talker.say(year)
    await talker.say(cccd)


async def open_correction(talker: Talker, code: str, what: str) -> None:
    await talker.say(f"/household {code}")
    await talker.press(payload_of(talker, "Correct details"))
    await talker.press(payload_of(talker, what))


async def households_in_stats(app, clock, area_code: str = "danang.hai-van") -> int:
    async with app.db.transaction() as session:
        area = await area_by_code(session, area_code)
        stats = await area_stats(session, area, now=clock(), since=None, tz=VIETNAM)
        return area_stats_json(stats)["households"]


# -- what /new accepts --------------------------------------------------------------------------

async def test_a_head_typed_at_random_is_confirmed_or_typed_again(demo):
    """/new with head "asdfghjkl qwerty" (seen accepted) asks to confirm; typing again replaces it."""
    an = Talker(demo, "an", lang="en")
    await new_household(an, "asdfghjkl qwerty")
    assert "“asdfghjkl qwerty” does not look like a name" in an.text()
    assert [label for label, _ in an.buttons()] == ["Save anyway", "Type it again", "Cancel"]
    await an.press(payload_of(an, "Type it again"))
    assert "Full name of the head of household?" in an.text()
    await an.say("Hồ Văn Tám")
    assert "Address or a landmark" in an.text()
    await an.say("Gần trạm y tế")
    await an.press("new:skip")
    assert (await the_household(demo, "HV-TL-004")).head_name == "Hồ Văn Tám"


async def test_a_random_looking_head_can_be_kept_on_purpose(demo):
    """A name that only looks random is saved when the volunteer presses “Save anyway”."""
    an = Talker(demo, "an", lang="en")
    await new_household(an, "Sdfgh Văn A")
    await an.press(payload_of(an, "Save anyway"))
    assert "Address or a landmark" in an.text()
    await an.say("Gần trạm y tế")
    await an.press("new:skip")
    assert (await the_household(demo, "HV-TL-004")).head_name == "Sdfgh Văn A"


async def test_an_address_of_symbols_is_refused_and_asked_again(demo):
    """Address "!!!" (seen accepted) is refused with the question again; nothing is saved."""
    an = Talker(demo, "an", lang="en")
    await new_household(an, "Hồ Văn Tám", address="!!!")
    assert an.text() == ("An address needs at least one letter or number, e.g. Thôn Tà Lang, "
                         "near the school.\nAddress or a landmark to find the house?")
    assert await count_rows(demo, Household, Household.head_name == "Hồ Văn Tám") == 0
    await an.say("Nhà số 7")
    assert "Phone number of the household?" in an.text()


async def test_a_landline_is_accepted_as_the_household_phone(demo):
    """A Da Nang landline (11 digits, seen refused) is saved as the household's phone."""
    an = Talker(demo, "an", lang="en")
    await new_household(an, "Hồ Văn Tám")
    await an.say("0236 3822 123")
    assert "Household HV-TL-004 added." in an.text() and "☎ 02363822123" in an.text()


async def test_a_phone_already_in_the_ward_is_a_warning_the_volunteer_can_override(demo):
    """A new household with the phone of another household of the ward warns; “Save anyway”
    saves it and the override is audited; “Cancel” saves nothing."""
    an = Talker(demo, "an", lang="en")
    await new_household(an, "Hồ Văn Tám")
    await an.say("0905123456")
    assert "Household HV-TL-004 added." in an.text()
    await new_household(an, "Hồ Thị Mười")
    await an.say("0905 123 456")
    assert "Household HV-TL-004 in this ward already has the phone 0905123456." in an.text()
    assert await count_rows(demo, Household, Household.head_name == "Hồ Thị Mười") == 0
    await an.press(payload_of(an, "Cancel"))
    assert an.text().startswith("Cancelled. Nothing was saved.")
    await new_household(an, "Hồ Thị Mười")
    await an.say("0905123456")
    await an.press(payload_of(an, "Save anyway"))
    assert "Household HV-TL-005 added." in an.text()
    [kept] = await audits(demo, "household.duplicate_kept")
    assert kept.target == "household:HV-TL-005"


# -- members ----------------------------------------------------------------------------------

async def test_a_citizen_id_of_another_birth_year_asks_to_confirm_or_fix(demo):
    """CCCD 048199123456 (born 1999) for a member born in 1985 (seen accepted) asks first; “Use
    1999” saves the card's year; the full number is stored nowhere."""
    an = Talker(demo, "an", lang="en")
    await add_member(an, "HV-TL-001", "Alăng Thị Nga", "1985", "048199123456")
    assert ("The citizen ID says born in 1999 (digits 4 to 6), but the year of birth is 1985."
            in an.text())
    assert [label for label, _ in an.buttons()] == [
        "Save anyway", "Use 1999 as the year of birth", "Type it again", "Back to the household"]
    assert await count_rows(demo, Resident) == 0
    await an.press(payload_of(an, "Use 1999"))
    assert "Alăng Thị Nga added to HV-TL-001." in an.text()
    assert "  • Alăng Thị Nga, 1999, 0481******56" in an.text()
    assert await stored_anywhere(demo, "048199123456") == []


async def test_a_citizen_id_mismatch_can_be_typed_again_or_kept(demo):
    """“Type it again” asks for the ID again; a kept mismatch is saved as typed and audited."""
    an = Talker(demo, "an", lang="en")
    await add_member(an, "HV-TL-001", "Alăng Thị Nga", "1985", "048199123456")
    await an.press(payload_of(an, "Type it again"))
    assert an.text().startswith("Citizen ID number (12 digits)?")
    await an.say("048199123456")
    await an.press(payload_of(an, "Save anyway"))
    [member] = await all_rows(demo, Resident)
    assert (member.birth_year, member.citizen_id_masked) == (1985, "0481******56")
    [kept] = await audits(demo, "member.doubt_kept")
    assert kept.details == {"citizen_id": "0481******56"}


async def test_a_year_written_nam_1960_is_accepted(demo):
    """The member's year of birth "năm 1960" (seen refused) is saved as 1960."""
    an = Talker(demo, "an", lang="vi")
    await an.say("/household HV-TL-002")
    await an.press(payload_of(an, "Thêm thành viên"))
    await an.say("Bríu Văn Sơn")
    await an.say("năm 1960")
    await an.press("member:skip")
    [member] = await all_rows(demo, Resident)
    assert member.birth_year == 1960


async def test_a_citizen_id_already_in_the_ward_is_a_warning(demo):
    """The same citizen ID for a member of another household of the ward warns before saving."""
    an = Talker(demo, "an", lang="en")
    await add_member(an, "HV-TL-001", "Alăng Thị Nga", "1985", "048185001234")
    assert "Alăng Thị Nga added" in an.text()
    await add_member(an, "HV-GB-001", "Alăng Thị Nga", "1985", "048185001234")
    assert "This citizen ID is already recorded for a member of household HV-TL-001." in an.text()
    assert await count_rows(demo, Resident) == 1
    await an.press(payload_of(an, "Save anyway"))
    assert await count_rows(demo, Resident) == 2


async def test_adding_a_member_from_a_procedure_goes_back_to_the_procedure(demo):
    """“Add a member” offered by a person-bound procedure starts that procedure for the new
    member once added, instead of leaving the volunteer on the household page."""
    an = Talker(demo, "an", lang="en")
    await an.say("/household HV-TL-003")
    await an.press(payload_of(an, "Start a procedure"))
    await an.press(payload_of(an, SKILLS))
    assert an.text() == "First add the person this is for: press “Add a member”."
    await an.press(payload_of(an, "Add a member"))
    await an.say("Pơloong Thị Hà")
    await an.press("member:skip")
    await an.press("member:skip")
    assert "Pơloong Thị Hà added to HV-TL-003." in an.text()
    assert SKILLS in an.text() and "Goal: the resident uses e-services" in an.text()
    [member] = await all_rows(demo, Resident)
    [run] = await all_rows(demo, FlowRun)
    assert (run.flow_id, run.resident_id, run.status) == ("smartphone_skills", member.id, "active")


async def test_the_for_whom_question_offers_to_add_a_member(demo):
    """A household with members offers “Add a member” among the people; the new one is chosen."""
    an = Talker(demo, "an", lang="en")
    await add_member(an, "HV-TL-001", "Alăng Thị Nga", "1985", "048185001234")
    await an.press(payload_of(an, "Start a procedure"))
    await an.press(payload_of(an, SKILLS))
    assert an.text() == f"{SKILLS}: for whom?"
    await an.press(payload_of(an, "Add a member"))
    await an.say("Alăng Văn Hai")
    await an.press("member:skip")
    await an.press("member:skip")
    [run] = await all_rows(demo, FlowRun)
    [hai] = await all_rows(demo, Resident, Resident.name == "Alăng Văn Hai")
    assert run.resident_id == hai.id


# -- corrections from the page ----------------------------------------------------------------

async def test_a_volunteer_corrects_head_address_and_phone_and_each_is_audited(demo):
    """Head, address and phone are corrected from the page, validated, and audited with before/after."""
    an = Talker(demo, "an", lang="en")
    await open_correction(an, "HV-TL-001", "Head of household")
    assert an.text() == "Head of household of HV-TL-001 now: Alăng Văn Tư. Send the new full name."
    await an.say("12345")
    assert an.text() == "A name has no digits."
    assert an.buttons() == [("Back to the household", f"hh:{(await the_household(demo, 'HV-TL-001')).id}")]
    await an.say("Alăng Văn Tứ")
    assert "Saved." in an.text() and "🏠 HV-TL-001 · Alăng Văn Tứ" in an.text()

    await an.press(payload_of(an, "Correct details"))
    await an.press(payload_of(an, "Address"))
    await an.say("!!!")
    assert an.text().startswith("An address needs at least one letter or number")
    await an.say("Nhà sàn thứ hai")
    await an.press(payload_of(an, "Correct details"))
    await an.press(payload_of(an, "Phone"))
    assert an.text() == "Phone of HV-TL-001 now: nothing. Send the new phone number."
    await an.say("02363 822 123")
    saved = await the_household(demo, "HV-TL-001")
    assert (saved.head_name, saved.address, saved.phone) == ("Alăng Văn Tứ", "Nhà sàn thứ hai", "02363822123")
    edits = await audits(demo, "household.edit")
    assert [(a.target, a.details) for a in edits] == [
        ("household:HV-TL-001", {"field": "head_name", "from": "Alăng Văn Tư", "to": "Alăng Văn Tứ"}),
        ("household:HV-TL-001", {"field": "address", "from": "Nhà sàn đầu thôn, gần nhà văn hóa",
                                 "to": "Nhà sàn thứ hai"}),
        ("household:HV-TL-001", {"field": "phone", "from": None, "to": "02363822123"}),
    ]


async def test_a_phone_edit_to_another_households_phone_asks_first(demo):
    """Correcting a phone to one another household of the ward has warns; kept, it is audited as confirmed."""
    an = Talker(demo, "an", lang="en")
    await open_correction(an, "HV-TL-001", "Phone")
    await an.say("0905123456")
    await open_correction(an, "HV-GB-002", "Phone")
    await an.say("0905123456")
    assert "Household HV-TL-001 in this ward already has the phone 0905123456." in an.text()
    assert (await the_household(demo, "HV-GB-002")).phone is None
    await an.press(payload_of(an, "Save anyway"))
    assert (await the_household(demo, "HV-GB-002")).phone == "0905123456"
    last = (await audits(demo, "household.edit"))[-1]
    assert last.details == {"field": "phone", "from": None, "to": "0905123456", "confirmed": True}


async def test_moving_a_household_to_another_village_moves_its_records(demo, clock):
    """Correcting the village moves the household, its runs and step records to the new area."""
    an = Talker(demo, "an", lang="en")
    await an.say("/household HV-TL-002")
    await an.press(payload_of(an, "Start a procedure"))
    await an.press(payload_of(an, "Residence confirmation"))
    if "for whom?" in an.text():
        await an.press(payload_of(an, "The household"))
    await an.press(payload_of(an, "Continue"))
    await open_correction(an, "HV-TL-002", "Village")
    assert [label for label, _ in an.buttons()] == ["Thôn Giàn Bí", "Back to the household"]
    await an.press(payload_of(an, "Giàn Bí"))
    assert "Saved." in an.text() and "Thôn Giàn Bí" in an.text()
    async with demo.db.transaction() as session:
        gian_bi = (await area_by_code(session, "danang.hai-van.gian-bi")).id
    assert (await the_household(demo, "HV-TL-002")).area_id == gian_bi
    assert {r.area_id for r in await all_rows(demo, FlowRun)} == {gian_bi}
    assert {r.area_id for r in await all_rows(demo, StepRecord)} == {gian_bi}
    [moved] = await audits(demo, "household.edit")
    assert moved.details == {"field": "area", "from": "danang.hai-van.ta-lang",
                             "to": "danang.hai-van.gian-bi"}


async def test_a_member_is_corrected_and_only_a_masked_citizen_id_is_kept(demo, settings):
    """A member's name, year, citizen ID and digital-ready flag are corrected and audited; the
    audit and the database hold only the masked ID; a mismatching ID asks first."""
    an = Talker(demo, "an", lang="en")
    await add_member(an, "HV-TL-001", "Alăng Thị Ngà", "1985", "048185001234")
    await an.press(payload_of(an, "Correct details"))
    await an.press(payload_of(an, "Member: Alăng Thị Ngà"))
    assert an.text() == ("Member of HV-TL-001: Alăng Thị Ngà, 1985, 0481******34, not digital-ready yet. "
                         "What to correct?")
    await an.press(payload_of(an, "Name"))
    await an.say("Alăng Thị Nga")
    await an.press(payload_of(an, "Correct details"))
    await an.press(payload_of(an, "Member: Alăng Thị Nga"))
    await an.press(payload_of(an, "Year of birth"))
    await an.say("năm 1986")
    await an.press(payload_of(an, "Correct details"))
    await an.press(payload_of(an, "Member: Alăng Thị Nga"))
    await an.press(payload_of(an, "Citizen ID"))
    await an.say("048199123456")
    assert "The citizen ID says born in 1999" in an.text()
    await an.press(payload_of(an, "Type it again"))
    await an.say("048186009876")
    await an.press(payload_of(an, "Correct details"))
    await an.press(payload_of(an, "Member: Alăng Thị Nga"))
    await an.press(payload_of(an, "Mark digital-ready"))
    assert "  • Alăng Thị Nga, 1986, 0481******76, digital-ready" in an.text()
    [member] = await all_rows(demo, Resident)
    assert (member.name, member.birth_year, member.citizen_id_masked, member.digital_ready) == (
        "Alăng Thị Nga", 1986, "0481******76", True)
    edits = await audits(demo, "member.edit")
    assert [(a.details["field"], a.details["from"], a.details["to"]) for a in edits] == [
        ("name", "Alăng Thị Ngà", "Alăng Thị Nga"), ("birth_year", 1985, 1986),
        ("citizen_id", "0481******34", "0481******76"), ("digital_ready", False, True)]
    for number in ("048185001234", "048199123456", "048186009876"):
        assert await stored_anywhere(demo, number) == []


# -- archive and restore -----------------------------------------------------------------------

async def test_a_leader_archives_a_junk_household_and_restores_it(demo, clock):
    """A leader archives a household: it leaves the volunteer's list and the stats, stays
    openable by code, and comes back when restored; both are audited."""
    an, lan = Talker(demo, "an", lang="en"), Talker(demo, "lan", lang="en")
    await new_household(an, "asdfghjkl qwerty")
    await an.press(payload_of(an, "Save anyway"))
    await an.say("Gần cầu")
    await an.press("new:skip")
    before = await households_in_stats(demo, clock)
    await lan.say("/household HV-TL-004")
    await lan.press(payload_of(lan, "Correct details"))
    await lan.press(payload_of(lan, "Archive this household"))
    assert lan.text().startswith("Archive HV-TL-004 (asdfghjkl qwerty)?")
    await lan.press(payload_of(lan, "Yes, archive it"))
    assert "HV-TL-004 is archived." in lan.text() and "🗄 Archived on" in lan.text()
    assert [label for label, _ in lan.buttons()] == ["Restore"]
    assert await households_in_stats(demo, clock) == before - 1
    await an.say("/households")
    assert "Your households (5):" in an.text() and "HV-TL-004" not in an.text()
    await an.say("/start")
    assert "look after 5 households" in an.text()
    await an.say("/household HV-TL-004")
    assert "A leader of the area can restore it." in an.text() and an.buttons() == []
    hid = (await the_household(demo, "HV-TL-004")).id
    for forged in (f"hh:{hid}:add", f"hh:{hid}:start", f"ed:{hid}:head", f"hh:{hid}:edit"):
        await an.press(forged)
        assert an.text().startswith("This household is archived."), forged

    await lan.say("/household HV-TL-004")
    await lan.press(payload_of(lan, "Restore"))
    assert "HV-TL-004 is restored." in lan.text()
    assert await households_in_stats(demo, clock) == before
    assert [a.action for a in await audits(demo, "household.archive", "household.restore")] == [
        "household.archive", "household.restore"]


# -- forged buttons ---------------------------------------------------------------------------

async def test_a_volunteer_cannot_archive_or_restore_even_with_forged_buttons(demo):
    """A volunteer's forged archive and restore buttons are refused and audited; nothing changes."""
    an = Talker(demo, "an", lang="en")
    hid = (await the_household(demo, "HV-TL-001")).id
    await an.say("/household HV-TL-001")
    await an.press(payload_of(an, "Correct details"))
    assert "Archive this household" not in [label for label, _ in an.buttons()]
    for forged in (f"ed:{hid}:archive", f"ed:{hid}:archived", f"ed:{hid}:restore"):
        await an.press(forged)
        assert an.text() == NOT_A_LEADER, forged
    assert (await the_household(demo, "HV-TL-001")).archived_at is None
    denied = await audits(demo, "access.denied")
    assert [(a.target, a.details["attempted"]) for a in denied] == [
        (f"household:{hid}", "archive"), (f"household:{hid}", "archived"), (f"household:{hid}", "restore")]


async def test_forged_correction_buttons_of_another_area_change_nothing(demo):
    """A volunteer of another ward and a resident pressing forged correction buttons are refused
    and audited; a village outside the volunteer's areas is refused; stale confirmations are out of date."""
    an = Talker(demo, "an", lang="en")
    await add_member(an, "HV-TL-001", "Alăng Thị Nga", "1985", "048185001234")
    [member] = await all_rows(demo, Resident)
    hid = member.household_id
    async with demo.db.transaction() as session:
        hoa_xuan = (await area_by_code(session, "danang.hoa-xuan")).id
    forged = [f"hh:{hid}:edit", f"ed:{hid}:head", f"ed:{hid}:nophone", f"ed:{hid}:area",
              f"ed:{hid}:to:{hoa_xuan}", f"ed:{hid}:archived", f"ed:{hid}:keep", f"mb:{member.id}",
              f"mb:{member.id}:name", f"mb:{member.id}:ready:1"]
    for name in ("binh", "guest"):
        talker = Talker(demo, name, lang="en")
        for payload in forged:
            await talker.press(payload)
            assert talker.text() == NOT_YOURS, (name, payload)
            assert "Alăng" not in talker.text()
        await talker.say("Kẻ Lạ")  # no correction dialog was opened
    denied = await audits(demo, "access.denied")
    assert len(denied) == 2 * len(forged)
    assert {a.target for a in denied} == {f"household:{hid}"}

    await an.press(f"ed:{hid}:to:{hoa_xuan}")
    assert an.text() == "You can only move a household to one of your own areas."
    await an.press(f"ed:{hid}:keep")  # nothing is waiting to be confirmed
    assert an.text().startswith(OUT_OF_DATE)
    await an.press(f"mb:{member.id}:ready:7")
    assert an.text().startswith(OUT_OF_DATE)
    saved = await the_household(demo, "HV-TL-001")
    assert (saved.head_name, saved.phone, saved.archived_at) == ("Alăng Văn Tư", None, None)
    async with demo.db.transaction() as session:
        assert (await session.get(Area, saved.area_id)).code == "danang.hai-van.ta-lang"
    [member] = await all_rows(demo, Resident)
    assert (member.name, member.digital_ready) == ("Alăng Thị Nga", False)
    assert await audits(demo, "household.edit", "member.edit", "household.archive") == []
    assert (await audits(demo, "access.denied"))[-1].target == f"household:{hid}->area:danang.hoa-xuan"


async def snapshot(app) -> list[tuple]:
    rows = await all_rows(app, Household)
    return [(h.head_name, h.address, h.phone, h.area_id, h.archived_at) for h in rows]


@pytest.mark.parametrize("forged", [
    "ed:99999999999999999999:head", "ed:-1:head", "ed::archive", "ed:1:to:99999999999999999999",
    "ed:1:to:²", "mb:99999999999999999999", "mb:-1:name", "mb:", "mb:٣:ready:1", "ed:1:unknown",
    "hh:1:add:no_such_flow:extra", "ed:1:keep", "ed:1:cardyear", "mb:1:ready:",
])
async def test_absurd_correction_buttons_are_out_of_date_not_errors(demo, forged):
    """Correction buttons with impossible ids or verbs answer sensibly (never “went wrong”) and
    change no household or member."""
    before = await snapshot(demo)
    for name in ("lan", "guest"):
        talker = Talker(demo, name, lang="en")
        await talker.press(forged)
        assert talker.text() and "went wrong" not in talker.text(), (name, forged, talker.text())
    assert await snapshot(demo) == before and await count_rows(demo, Resident) == 0


async def test_a_list_command_leaves_a_correction_half_way(demo):
    """/households typed while a correction waits for a value ends it: the next text changes nothing."""
    an = Talker(demo, "an", lang="en")
    await open_correction(an, "HV-TL-001", "Head of household")
    await an.say("/households")
    await an.say("Tên Gõ Nhầm")
    assert (await the_household(demo, "HV-TL-001")).head_name == "Alăng Văn Tư"
    assert await audits(demo, "household.edit") == []


async def test_a_member_added_by_mistake_can_be_removed_but_not_one_with_procedures(demo):
    """A member without procedures is removed after confirming (audited, ID masked); a member a
    procedure was recorded for stays."""
    an = Talker(demo, "an", lang="en")
    await add_member(an, "HV-TL-001", "Nhầm Người", "1985", "048185001234")
    [wrong] = await all_rows(demo, Resident)
    await an.press(f"mb:{wrong.id}:remove")
    assert an.text() == "Remove Nhầm Người from HV-TL-001? Only do this for a member added by mistake."
    assert await count_rows(demo, Resident) == 1
    await an.press(payload_of(an, "Yes, remove"))
    assert "Nhầm Người removed from HV-TL-001." in an.text() and "No members recorded yet." in an.text()
    assert await count_rows(demo, Resident) == 0
    [removed] = await audits(demo, "member.remove")
    assert removed.details == {"name": "Nhầm Người", "birth_year": 1985, "citizen_id": "0481******34"}
    await an.press(f"mb:{wrong.id}:removed")  # pressed again: the member is gone
    assert an.text().startswith(OUT_OF_DATE)

    await an.press(f"hh:{wrong.household_id}:flow:smartphone_skills")
    await an.press(payload_of(an, "Add a member"))
    await an.say("Alăng Thị Nga")
    await an.press("member:skip")
    await an.press("member:skip")
    [nga] = await all_rows(demo, Resident)
    await an.press(f"mb:{nga.id}:removed")
    assert an.text().startswith("Procedures were recorded for Alăng Thị Nga, so the member stays")
    assert await count_rows(demo, Resident) == 1

    binh = Talker(demo, "binh", lang="en")
    await binh.press(f"mb:{nga.id}:removed")
    assert binh.text() == NOT_YOURS
    assert await count_rows(demo, Resident) == 1


def test_every_audit_entry_is_written_by_the_one_helper():
    """db/repo/audit.py's `audit(session, at, who, action, target, details)` is the only writer of
    audit_log: no other module of ours builds an AuditLog row or inserts into the table."""
    root = Path(__file__).resolve().parent.parent
    writers = [
        str(path.relative_to(root)) for package in ("bot", "handlers", "db", "conversations", "reports")
        for path in sorted((root / package).rglob("*.py"))
        if re.search(r"(?<!class )AuditLog\(|insert\(AuditLog|insert into audit_log",
                     path.read_text(encoding="utf-8"), re.IGNORECASE)
    ]
    assert writers == ["db/repo/audit.py"], writers
