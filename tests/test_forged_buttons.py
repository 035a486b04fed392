"""Forged and replayed button data (issue 7): each kind is refused with a translated message,
changes nothing and is written to the audit log; a refusal never names another household.

Already covered elsewhere (not repeated here): another area's household by code and by button
(test_households: access.denied), another area's run, its step and resume buttons
(test_flow_runs: access.denied), another household's member (test_flow_runs), a leader's stats,
chart, export and target buttons for another area and a volunteer's stats button (test_stats:
access.denied), a volunteer's reassign buttons (test_households: access.denied), a used invite
claimed by another user (test_core_commands: invite.replay), a visit request taken by a
volunteer of another area (test_faq_chat: access.denied).
"""

from __future__ import annotations

import pytest

from db.models import Area, AuditLog, FlowRun, Household, Membership, Resident, StepRecord, SupportRequest
from tests.chat import Talker, all_rows, count_rows, payload_of
from tests.test_core_commands import _invite
from tests.test_flow_runs import RC_PATH, household_id, records, start_flow, step, the_run, user_id
from tests.test_stats import area_id

OUT_OF_DATE = "This button is out of date."
NOT_YOURS = "This household is not in your area, so you cannot open it."
NOT_YOUR_AREA = "This area is not among yours."
NOT_AVAILABLE = "The command /stats is not available to you. Type /help to see yours."
NOT_YOUR_REQUEST = "This request is not in your area."
INVITE_NOT_VALID = ("This invite code is not valid: it may be mistyped, already used or expired. "
                    "Check it and send /join CODE again, or ask whoever gave it to you for a new one.")
HEADS = ("Alăng Văn Tư", "Bríu Thị Hoa", "Phạm Văn Hùng")  # heads of the households forged at


async def audits(app, action: str, actor: str | None = None) -> list[tuple[str | None, str | None]]:
    """(target, attempted) of the audit entries of `action`, by `actor` if given, oldest first."""
    where = [AuditLog.action == action]
    if actor is not None:
        where.append(AuditLog.actor_id == await user_id(app, actor))
    return [(a.target, (a.details or {}).get("attempted")) for a in await all_rows(app, AuditLog, *where)]


def assert_no_leak(talker: Talker) -> None:
    for head in HEADS:
        assert head not in talker.text(), talker.text()


# -- a leader's buttons pressed by a resident or a volunteer ----------------------------------

async def test_a_resident_pressing_leader_buttons_is_refused_and_audited(demo):
    """A resident's forged stats, chart, export and target buttons get no figures and no file,
    are refused in their language and each is audited as access.denied."""
    ward = await area_id(demo, "danang.hai-van")
    guest = Talker(demo, "guest", lang="en")
    await guest.say("/start")
    for forged in (f"st:{ward}:30d", f"st:{ward}:all:c", f"st:{ward}:all:x:xlsx", f"st:{ward}:all:x:csv"):
        await guest.press(forged)
        assert guest.text() == NOT_AVAILABLE, forged
        assert not any(r.attachment for r in guest.last)
    for forged in (f"tg:{ward}", f"tg:{ward}:households"):
        await guest.press(forged)
        assert guest.text() == NOT_YOUR_AREA, forged
    await guest.say("/target households 5")  # the target dialog was never opened
    [area] = await all_rows(demo, Area, Area.id == ward)
    assert area.target_households is None
    assert await audits(demo, "access.denied", "guest") == [
        (f"area:{ward}", "st:"), (f"area:{ward}", "st:c"), (f"area:{ward}", "st:x"),
        (f"area:{ward}", "st:x"), (f"area:{ward}", "tg"), (f"area:{ward}", "tg")]
    assert await count_rows(demo, AuditLog, AuditLog.action == "export") == 0

    vi = Talker(demo, "khach", lang="vi")
    await vi.press(f"st:{ward}:all:x:csv")
    assert vi.text() == (
        "Lệnh /stats chỉ dành cho tình nguyện viên và cán bộ ạ. "
        "Ông/bà gõ /help để xem các lệnh ông/bà dùng được.")


async def test_a_volunteer_pressing_leader_or_admin_buttons_is_refused_and_audited(demo):
    """A volunteer's forged target and export buttons, and a ward leader's forged button for the
    city (the admin's area), are refused and audited; no target changes, no file is sent."""
    ward, city = await area_id(demo, "danang.hai-van"), await area_id(demo, "danang")
    an = Talker(demo, "an", lang="en")
    for forged, refusal in ((f"tg:{ward}", NOT_YOUR_AREA), (f"tg:{ward}:households", NOT_YOUR_AREA),
                            (f"st:{ward}:all:x:csv", NOT_AVAILABLE), (f"st:{ward}:all:v", NOT_AVAILABLE)):
        await an.press(forged)
        assert an.text() == refusal, forged
        assert not any(r.attachment for r in an.last)
    await an.say("500")  # had the target button opened its dialog, this would set the target
    assert await audits(demo, "access.denied", "an") == [
        (f"area:{ward}", "tg"), (f"area:{ward}", "tg"), (f"area:{ward}", "st:x"), (f"area:{ward}", "st:v")]

    lan = Talker(demo, "lan", lang="en")
    for forged in (f"st:{city}:all", f"st:{city}:all:x:xlsx", f"tg:{city}:digital"):
        await lan.press(forged)
        assert lan.text() == NOT_YOUR_AREA, forged
        assert not any(r.attachment for r in lan.last)
    assert await audits(demo, "access.denied", "lan") == [
        (f"area:{city}", "st:"), (f"area:{city}", "st:x"), (f"area:{city}", "tg")]
    areas = await all_rows(demo, Area)
    assert all(a.target_households is None and a.target_digital_ready is None for a in areas)
    assert await count_rows(demo, AuditLog, AuditLog.action.in_(("export", "target.set"))) == 0


# -- a volunteer's buttons pressed by a resident ----------------------------------------------

async def test_a_resident_pressing_volunteer_buttons_is_refused_and_audited(demo):
    """A resident's forged household, procedure, step, resume and visit-request buttons are
    refused without naming the household, change nothing and are each audited."""
    an, guest = Talker(demo, "an", lang="en"), Talker(demo, "guest", lang="en")
    run_id = await start_flow(an, "HV-TL-001", "residence_confirmation")
    step_button = payload_of(an, "Continue")
    hid = await household_id(demo, "HV-TL-001")
    await guest.say("/visit cần giúp đăng ký VNeID")
    await guest.press(payload_of(guest, "Hải Vân"))
    await guest.press("visit:skip")
    await guest.press("visit:skip")
    await guest.press("visit:known")  # no phone, no address
    [request] = await all_rows(demo, SupportRequest)

    forged = [f"hh:{hid}", f"hh:{hid}:start", f"hh:{hid}:flow:vneid:0", f"hh:{hid}:reassign",
              step_button, f"run:{run_id}:resume"]
    for payload in forged:
        await guest.press(payload)
        assert guest.text() == NOT_YOURS, payload
        assert_no_leak(guest)
    for payload in (f"req:{request.id}:take", f"req:{request.id}:close"):
        await guest.press(payload)
        assert guest.text() == NOT_YOUR_REQUEST, payload
    assert await audits(demo, "access.denied", "guest") == [
        (f"household:{hid}", "open"), (f"household:{hid}", "start"), (f"household:{hid}", "flow:vneid:0"),
        (f"household:{hid}", "reassign"), (f"run:{run_id}", "step"), (f"run:{run_id}", "run:resume"),
        (f"request:{request.id}", "request:take"), (f"request:{request.id}", "request:close")]
    assert await records(demo, run_id) == []
    assert await count_rows(demo, FlowRun) == 1
    [request] = await all_rows(demo, SupportRequest)
    assert (request.status, request.volunteer_id) == ("open", None)


# -- invites --------------------------------------------------------------------------------

async def test_a_replayed_or_expired_invite_grants_nothing_and_is_audited(demo, clock):
    """A claimed invite used again by its claimer and by someone else, and an expired invite,
    grant no role, answer why in the user's language and are audited."""
    code = await _invite(demo, "leader", "danang.hoa-xuan", clock)
    first, other = Talker(demo, "first", lang="en"), Talker(demo, "other", lang="vi")
    await first.say(f"/start {code}")
    assert "Welcome! You are now a leader" in first.text()
    await first.say(f"/join {code}")
    assert first.text() == INVITE_NOT_VALID
    await other.say(f"/start {code}")
    assert "đã được dùng" in other.text()
    await other.say("/help")
    assert "/stats" not in other.text()

    late_code = await _invite(demo, "admin", "danang", clock)
    clock.advance(days=8)
    late = Talker(demo, "late", lang="en")
    await late.say(f"/join {late_code}")
    assert late.text() == INVITE_NOT_VALID  # the same answer for used, expired and unknown codes
    await late.say("/stats")
    assert "not available to you" in late.text()

    first_id, other_id, late_id = [await user_id(demo, n) for n in ("first", "other", "late")]
    assert await count_rows(demo, Membership, Membership.invite_code.in_((code, late_code))) == 1
    replays = await all_rows(demo, AuditLog, AuditLog.action == "invite.replay")
    assert [(a.actor_id, a.target) for a in replays] == [
        (first_id, f"invite:{code}"), (other_id, f"invite:{code}")]
    [expired] = await all_rows(demo, AuditLog, AuditLog.action == "invite.expired")
    assert (expired.actor_id, expired.target) == (late_id, f"invite:{late_code}")


# -- visit requests -------------------------------------------------------------------------

async def ask_for_a_visit(app) -> tuple[SupportRequest, str]:
    """A resident of Hải Vân asks for a visit; the request and its “Take it” payload."""
    resident = Talker(app, "ba-tu", lang="en")
    await resident.say("/visit giúp tôi cài VNeID")
    await resident.press(payload_of(resident, "Hải Vân"))
    await resident.press("visit:skip")
    await resident.press("visit:skip")
    await resident.press("visit:known")  # no phone, no address
    assert any(r.to is not None for r in resident.last)  # the notices (taken by word on the console)
    [request] = await all_rows(app, SupportRequest)
    return request, f"req:{request.id}:take"


async def test_a_visit_request_taken_twice_or_closed_from_another_area(demo, clock):
    """A request already taken stays with its taker when a colleague presses “Take it” (told who
    has it, not audited: the notice went to both); a volunteer of another area can neither take
    nor close it (refused and audited)."""
    from tests.test_faq_chat import _grant_volunteer

    request, take = await ask_for_a_visit(demo)
    await _grant_volunteer(demo, "lan", "danang.hai-van")
    an, lan, binh = (Talker(demo, n, lang="en") for n in ("an", "lan", "binh"))
    await an.press(take)
    assert an.text().startswith(f"You took request #{request.id}.")
    await lan.press(take)
    assert lan.text() == f"Request #{request.id} was already taken by Nguyễn Văn An."
    await an.press(take)
    assert an.text() == f"You already took request #{request.id}."
    for payload in (take, take.replace(":take", ":close")):
        await binh.press(payload)
        assert binh.text() == NOT_YOUR_REQUEST, payload
    [request] = await all_rows(demo, SupportRequest)
    assert (request.status, request.volunteer_id) == ("taken", await user_id(demo, "an"))
    assert await audits(demo, "access.denied") == [
        (f"request:{request.id}", "request:take"), (f"request:{request.id}", "request:close")]
    assert await audits(demo, "access.denied", "binh") == await audits(demo, "access.denied")


# -- stale buttons of finished runs ---------------------------------------------------------

async def test_stale_buttons_of_a_cancelled_or_finished_run(demo):
    """The owner's old buttons of a cancelled run are out of date and write nothing (his own
    buttons: not audited); a stranger pressing a finished run's buttons is refused and audited."""
    an, binh = Talker(demo, "an", lang="en"), Talker(demo, "binh", lang="en")
    run_id = await start_flow(an, "HV-TL-002", "residence_confirmation")
    old = payload_of(an, "Continue")
    await an.say("/cancel")
    await an.press(payload_of(an, "Abandon it"))
    kept = await records(demo, run_id)
    assert (await the_run(demo, run_id)).status == "abandoned"
    for payload in (old, f"run:{run_id}:resume"):
        await an.press(payload)
        assert an.text().startswith(OUT_OF_DATE), payload
    assert await records(demo, run_id) == kept
    assert await audits(demo, "access.denied") == []

    done_id = await start_flow(an, "HV-TL-001", "residence_confirmation")
    pressed = []
    for label, _ in RC_PATH:
        pressed.append(payload_of(an, label))
        await step(an, label)
    for payload in (pressed[0], pressed[-1], f"run:{done_id}:resume", old):
        await binh.press(payload)
        assert binh.text() == NOT_YOURS, payload
        assert_no_leak(binh)
    assert await audits(demo, "access.denied", "binh") == [
        (f"run:{done_id}", "step"), (f"run:{done_id}", "step"), (f"run:{done_id}", "run:resume"),
        (f"run:{run_id}", "step")]
    assert len(await records(demo, done_id)) == len(RC_PATH)
    assert await count_rows(demo, StepRecord, StepRecord.user_id == await user_id(demo, "binh")) == 0


# -- numbers no database can hold ------------------------------------------------------------

@pytest.mark.parametrize("forged", [
    "hh:99999999999999999999999", "hh:99999999999999999999999:start", "run:99999999999999999999:resume",
    "f:99999999999999999999:intro:1:d", "req:99999999999999999999:take", "st:99999999999999999999:30d",
    "tg:99999999999999999999", "new:area:99999999999999999999", "visit:area:99999999999999999999",
    "hh:3000000000", "hh:-1", "hh:1e3", "hh:", "f:", "st:", "req:", "run:1:", ":", "hh:٣",
    "hh:1:flow:vneid:²", "hh:1:to:²", "hh:1:flow:vneid:99999999999999999999",
])
async def test_absurd_ids_in_buttons_are_out_of_date_not_errors(demo, forged):
    """Ids too large for any column, negative, empty or in other digits answer like a stale
    button (not “something went wrong”), for staff and residents alike."""
    for name in ("lan", "guest"):
        talker = Talker(demo, name, lang="en")
        await talker.press(forged)
        assert "went wrong" not in talker.text(), (name, forged, talker.text())
        assert talker.text() and talker.buttons() == [], (name, forged)
    assert await count_rows(demo, Household) == 8 and await count_rows(demo, Resident) == 0
