"""Guided procedure runs through the core: resume, stale and foreign buttons, duplicates,
concurrency, pinned versions, /cancel, blocked runs and retries, digital-ready residents."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

import handlers.flows
from bot.app import open_app
from bot.seed_demo import seed_demo
from db.models import AuditLog, FlowRun, FlowVersion, Household, Identity, Resident, StepRecord
from tests.chat import Talker, all_rows, count_rows, payload_of, stored_anywhere

SHIPPED_FLOWS = Path(__file__).resolve().parent.parent / "conversations" / "flows"
OUT_OF_DATE = "This button is out of date."
NOT_YOURS = "This household is not in your area, so you cannot open it."
RC = "Residence confirmation (CT07)"
# residence_confirmation answered through VNeID: (button, step id it answers)
RC_PATH = [("Continue", "intro"), ("In the VNeID app", "channel"), ("Done", "via_vneid"),
           ("Continue", "wait_result"), ("Done", "check_result")]


async def user_id(app, console_name: str) -> int:
    async with app.db.transaction() as session:
        return await session.scalar(select(Identity.user_id).where(
            Identity.channel == "console", Identity.external_id == console_name))


async def household_id(app, code: str) -> int:
    [found] = await all_rows(app, Household, Household.code == code)
    return found.id


async def start_flow(talker: Talker, code: str, flow_id: str, person: str | None = None) -> int:
    """Open the household by code, start `flow_id` (for `person`, else the household); the run id."""
    await talker.say(f"/household {code}")
    await talker.press(payload_of(talker, "Start a procedure"))
    await talker.press(next(p for _, p in talker.buttons() if p.endswith(f":flow:{flow_id}")))
    if "for whom?" in talker.text():
        await talker.press(payload_of(talker, person or "The household"))
    [run] = await all_rows(talker.app, FlowRun, FlowRun.flow_id == flow_id, FlowRun.status == "active",
                           FlowRun.household_id == await household_id(talker.app, code))
    return run.id


def run_of(talker: Talker) -> int:
    """The run id the last step buttons belong to."""
    steps = [p for _, p in talker.buttons() if p.startswith("f:")]
    assert steps, f"no step buttons in {talker.text()!r}"
    return int(steps[0].split(":")[1])


async def step(talker: Talker, label: str) -> None:
    await talker.press(next(p for shown, p in talker.buttons() if p.startswith("f:") and label in shown))


async def records(app, run_id: int) -> list[tuple[str, int, str]]:
    rows = await all_rows(app, StepRecord, StepRecord.run_id == run_id)
    return [(r.step_id, r.attempt, r.outcome) for r in rows]


async def the_run(app, run_id: int) -> FlowRun:
    [run] = await all_rows(app, FlowRun, FlowRun.id == run_id)
    return run


async def add_member(talker: Talker, code: str, name: str) -> int:
    await talker.say(f"/household {code}")
    await talker.press(payload_of(talker, "Add a member"))
    await talker.say(name)
    await talker.press("member:skip")
    await talker.press("member:skip")
    [member] = await all_rows(talker.app, Resident, Resident.name == name)
    return member.id


# -- leave and resume -------------------------------------------------------------------------

async def test_leaving_and_resuming_from_the_page_continues_the_same_run(app):
    """A run left mid-way is resumed from the household page at the same step, not started again."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    run_id = await start_flow(an, "HV-TL-001", "residence_confirmation")
    assert an.text().startswith(f"Step 1/5 · {RC}\n")
    await step(an, "Continue")
    await step(an, "In the VNeID app")
    assert "☑ How will the resident apply? → In the VNeID app (level 2)" in an.text()
    assert f"Step 3/5 · {RC}" in an.text()
    waiting = an.buttons()

    await an.say("/households")
    assert ("HV-TL-001 Alăng Văn Tư ⏳", f"hh:{await household_id(app, 'HV-TL-001')}") in an.buttons()
    await an.say("/household HV-TL-002")  # somewhere else in between
    assert "🏠 HV-TL-002" in an.text()
    await an.say("/household HV-TL-001")
    assert f"  ⏳ {RC}: in progress" in an.text()
    await an.press(payload_of(an, f"▶️ {RC}"))
    assert f"Step 3/5 · {RC}" in an.text()
    assert an.buttons() == waiting  # the same step and attempt: its buttons stay valid
    assert await count_rows(app, FlowRun) == 1

    await an.say("/household HV-TL-001")
    await an.press(payload_of(an, "Start a procedure"))
    await an.press(payload_of(an, "Residence confirmation"))  # the same procedure again
    assert f"Step 3/5 · {RC}" in an.text() and run_of(an) == run_id
    assert await count_rows(app, FlowRun) == 1

    for label, _ in RC_PATH[2:]:
        await step(an, label)
    assert "Procedure finished. Residence confirmation done. It is valid for 1 year." in an.text()
    run = await the_run(app, run_id)
    assert (run.status, run.flow_version, run.current_step) == ("completed", 1, None)
    assert run.finished_at is not None
    assert await records(app, run_id) == [(s, 1, "done") for _, s in RC_PATH]
    await an.say("/household HV-TL-001")
    assert f"  ✅ {RC}" in an.text() and "▶️" not in an.text() + str(an.buttons())


async def test_a_new_console_session_continues_the_run(app):
    """The same console user in a fresh session resumes the run and finishes it, each step recorded once."""
    await seed_demo(app)
    first = Talker(app, "an", lang="en")
    run_id = await start_flow(first, "HV-TL-002", "residence_confirmation")
    for label, _ in RC_PATH[:2]:
        await step(first, label)

    later = Talker(app, "an", lang="en")  # a new process: nothing in memory, new update ids
    await later.say("/households")
    await later.press(payload_of(later, "HV-TL-002"))
    await later.press(payload_of(later, "▶️"))
    assert f"Step 3/5 · {RC}" in later.text() and run_of(later) == run_id
    for label, _ in RC_PATH[2:]:
        await step(later, label)
    assert "Procedure finished." in later.text()
    assert await records(app, run_id) == [(s, 1, "done") for _, s in RC_PATH]
    assert await count_rows(app, FlowRun) == 1


async def test_the_same_user_on_another_channel_continues_the_run(app, clock):
    """A volunteer whose Telegram account belongs to the same user resumes the console run there."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    run_id = await start_flow(an, "HV-TL-003", "residence_confirmation")
    await step(an, "Continue")
    an_id = await user_id(app, "an")
    async with app.db.transaction() as session:  # the same person, linked on Telegram
        session.add(Identity(user_id=an_id, channel="telegram", external_id="7001", created_at=clock()))
    phone = Talker(app, "7001", channel="telegram", lang="en")
    await phone.say("/household HV-TL-003")
    await phone.press(payload_of(phone, "▶️"))
    assert f"Step 2/5 · {RC}" in phone.text() and run_of(phone) == run_id
    for label, _ in RC_PATH[1:]:
        await step(phone, label)
    assert "Procedure finished." in phone.text()
    rows = await all_rows(app, StepRecord, StepRecord.run_id == run_id)
    assert [(r.step_id, r.user_id) for r in rows] == [(s, an_id) for _, s in RC_PATH]
    assert [r.source_update.split(":")[0] for r in rows] == ["console"] + ["telegram"] * 4
    assert await count_rows(app, FlowRun) == 1


async def test_staff_of_the_area_can_carry_on_a_colleagues_run(app):
    """The ward's leader continues a run a volunteer started; each step is recorded under who answered it."""
    await seed_demo(app)
    an, lan = Talker(app, "an", lang="en"), Talker(app, "lan", lang="en")
    run_id = await start_flow(an, "HV-TL-001", "residence_confirmation")
    await step(an, "Continue")
    await lan.say("/household HV-TL-001")
    await lan.press(payload_of(lan, "▶️"))
    await step(lan, "At a commune police")
    rows = await all_rows(app, StepRecord, StepRecord.run_id == run_id)
    assert [(r.step_id, r.user_id, r.value) for r in rows] == [
        ("intro", await user_id(app, "an"), None), ("channel", await user_id(app, "lan"), "police")]
    assert "Go with the resident to any commune police" in lan.text()


# -- stale, foreign and duplicate presses -----------------------------------------------------

async def test_an_older_steps_button_is_out_of_date_and_shows_the_current_step(app):
    """An answered step's button is out of date: the current step is shown again and nothing recorded."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    run_id = await start_flow(an, "HV-TL-001", "residence_confirmation")
    intro_continue = payload_of(an, "Continue")
    await step(an, "Continue")
    police = payload_of(an, "At a commune police")
    await step(an, "In the VNeID app")
    current = an.buttons()
    before = await records(app, run_id)

    for old in (intro_continue, police):
        await an.press(old)
        assert an.text().startswith(OUT_OF_DATE + f"\nStep 3/5 · {RC}\nIn VNeID (level 2 account)")
        assert an.buttons() == current
    await an.press(f"f:{run_id}:via_vneid:7:d")  # right step, an attempt that never was
    assert an.text().startswith(OUT_OF_DATE) and an.buttons() == current
    await an.press(f"f:{run_id}:nonsense")
    assert an.text().startswith(OUT_OF_DATE)
    assert await records(app, run_id) == before == [("intro", 1, "done"), ("channel", 1, "done")]
    assert (await the_run(app, run_id)).current_step == "via_vneid"


async def test_buttons_of_a_finished_run_are_out_of_date(app):
    """After a run is completed, its old buttons say out of date and write nothing."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    run_id = await start_flow(an, "HV-TL-001", "residence_confirmation")
    pressed = []
    for label, _ in RC_PATH:
        pressed.append(payload_of(an, label))
        await step(an, label)
    assert (await the_run(app, run_id)).status == "completed"
    for old in (pressed[-1], pressed[0], f"run:{run_id}:resume"):
        await an.press(old)
        assert an.text().startswith(OUT_OF_DATE), old
    assert len(await records(app, run_id)) == 5
    assert (await the_run(app, run_id)).status == "completed"


async def test_a_volunteer_of_another_area_cannot_touch_a_run(app):
    """binh pressing an's step or resume button is refused as not his area, audited, and records nothing."""
    await seed_demo(app)
    an, binh = Talker(app, "an", lang="en"), Talker(app, "binh", lang="en")
    run_id = await start_flow(an, "HV-TL-001", "residence_confirmation")
    await step(an, "Continue")
    current = payload_of(an, "At a commune police")
    for forged in (current, f"run:{run_id}:resume"):
        await binh.press(forged)
        assert binh.text() == NOT_YOURS
    audits = await all_rows(app, AuditLog, AuditLog.action == "access.denied")
    assert [(a.actor_id, a.target, a.details["attempted"]) for a in audits] == [
        (await user_id(app, "binh"), f"run:{run_id}", "step"),
        (await user_id(app, "binh"), f"run:{run_id}", "run:resume")]
    assert await records(app, run_id) == [("intro", 1, "done")]
    await an.press(current)  # the owner's button still works
    assert "Go with the resident to any commune police" in an.text()
    assert await records(app, run_id) == [("intro", 1, "done"), ("channel", 1, "done")]


async def test_a_redelivered_step_press_is_recorded_once(app):
    """The same update id delivered twice for a step press writes one record and answers once."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    run_id = await start_flow(an, "HV-TL-001", "residence_confirmation")
    press = payload_of(an, "Continue")
    first = await an.press(press, update_id="tg-42")
    again = await an.press(press, update_id="tg-42")
    assert "Step 2/5" in "\n".join(r.text for r in first)
    assert again == []
    assert await records(app, run_id) == [("intro", 1, "done")]
    rows = await all_rows(app, StepRecord, StepRecord.run_id == run_id)
    assert rows[0].source_update == "console:tg-42"


# -- at the same time -------------------------------------------------------------------------

async def test_two_staff_on_one_household_at_once_lose_nothing(app):
    """A volunteer and the leader running two procedures on one household side by side keep every step."""
    await seed_demo(app)
    an, lan = Talker(app, "an", lang="en"), Talker(app, "lan", lang="en")
    rc = await start_flow(an, "HV-TL-001", "residence_confirmation")
    vneid = await start_flow(lan, "HV-TL-001", "vneid")
    lan_path = ["Yes, chip card", "Done", "Done", "Yes, it has NFC", "Done"]
    for (mine, _), theirs in zip(RC_PATH, lan_path, strict=True):
        results = await asyncio.gather(step(an, mine), step(lan, theirs), return_exceptions=True)
        assert results == [None, None]
    assert await records(app, rc) == [(s, 1, "done") for _, s in RC_PATH]
    lan_steps = ("has_chip", "phone_ready", "install_app", "has_nfc", "register_nfc")
    assert await records(app, vneid) == [(s, 1, "done") for s in lan_steps]
    assert (await the_run(app, rc)).status == "completed"
    assert (await the_run(app, vneid)).current_step == "portrait"
    assert "Procedure finished." in an.text() and "Check the details shown" in lan.text()


async def test_two_staff_pressing_the_same_step_at_once_record_it_once(app):
    """Volunteer and leader pressing the same step of one run at once: one record, the other told."""
    await seed_demo(app)
    an, lan = Talker(app, "an", lang="en"), Talker(app, "lan", lang="en")
    run_id = await start_flow(an, "HV-TL-001", "residence_confirmation")
    await lan.say("/household HV-TL-001")
    await lan.press(payload_of(lan, "▶️"))
    for label, step_id in RC_PATH:
        both = payload_of(an, label)
        assert payload_of(lan, label) == both
        results = await asyncio.gather(an.press(both), lan.press(both), return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)], results
        texts = sorted(t.text() for t in (an, lan))
        assert sum(t.startswith(OUT_OF_DATE) for t in texts) == 1, texts
        assert await count_rows(app, StepRecord, StepRecord.run_id == run_id,
                                StepRecord.step_id == step_id) == 1
        behind = an if an.text().startswith(OUT_OF_DATE) else lan
        ahead = lan if behind is an else an
        if label != RC_PATH[-1][0]:
            assert behind.buttons() == ahead.buttons()  # both now see the current step
    assert await records(app, run_id) == [(s, 1, "done") for _, s in RC_PATH]


async def test_two_staff_starting_the_same_procedure_at_once_share_one_run(app, monkeypatch, request):
    """Starting the same procedure for the same household at the same moment gives one run, not two."""
    await seed_demo(app)
    real_open_run = handlers.flows.open_run
    arrived: list[object] = []
    both_looked = asyncio.Event()

    async def open_run_side_by_side(*args, **kwargs):
        """Let both starts look for an open run before either goes on (as two workers may)."""
        found = await real_open_run(*args, **kwargs)
        arrived.append(found)
        if len(arrived) == 2:
            both_looked.set()
        with contextlib.suppress(TimeoutError):  # SQLite serialises writers: the other never comes
            await asyncio.wait_for(both_looked.wait(), 0.5)
        return found

    monkeypatch.setattr(handlers.flows, "open_run", open_run_side_by_side)
    an, lan = Talker(app, "an", lang="en"), Talker(app, "lan", lang="en")
    hid = await household_id(app, "HV-TL-001")
    start = f"hh:{hid}:flow:residence_confirmation"
    results = await asyncio.gather(an.press(start), lan.press(start), return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert f"Step 1/5 · {RC}" in an.text() and f"Step 1/5 · {RC}" in lan.text()
    assert run_of(an) == run_of(lan)
    assert await count_rows(app, FlowRun, FlowRun.household_id == hid) == 1


# -- versions ---------------------------------------------------------------------------------

RC_V2 = """\
id: residence_confirmation
version: 2
title: Residence confirmation (CT07)
steps:
  - id: ask_police
    kind: task
    text: Ask the commune police for the confirmation.
    reasons: [Police office closed or too busy]
    next: end
"""


async def test_a_run_keeps_its_version_when_a_new_one_is_registered(app):
    """A run started on version 1 goes on with version 1's steps; a run started after uses version 2."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    old = await start_flow(an, "HV-TL-001", "residence_confirmation")
    await step(an, "Continue")
    app.core.services.flows.add_yaml(RC_V2, "residence_confirmation.yaml")

    await step(an, "In the VNeID app")
    assert "In VNeID (level 2 account)" in an.text()
    lan = Talker(app, "lan", lang="en")
    new = await start_flow(lan, "HV-TL-002", "residence_confirmation")
    assert lan.text().startswith(f"Step 1/1 · {RC}\nAsk the commune police")
    await an.say("/household HV-TL-001")
    await an.press(payload_of(an, "▶️"))
    for label, _ in RC_PATH[2:]:
        await step(an, label)
    await step(lan, "Done")
    assert [(r.id, r.flow_version, r.status) for r in await all_rows(app, FlowRun)] == [
        (old, 1, "completed"), (new, 2, "completed")]
    assert await records(app, old) == [(s, 1, "done") for _, s in RC_PATH]
    assert await records(app, new) == [("ask_police", 1, "done")]


def copy_flows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped flow files that open_app reads from now on (to edit them)."""
    flows = tmp_path / "flows"
    shutil.copytree(SHIPPED_FLOWS, flows, ignore=shutil.ignore_patterns("*.mmd"))
    monkeypatch.setattr("bot.app.FLOWS_DIR", flows)
    return flows


async def restart_without_digital_signature(app, settings, clock, tmp_path, monkeypatch):
    """Start a digital signature run, then restart the app with that flow's file deleted."""
    await seed_demo(app)
    await app.close()
    flows = copy_flows(tmp_path, monkeypatch)
    before = await open_app(settings, migrate=False, clock=clock)
    try:
        an = Talker(before, "an", lang="en")
        run_id = await start_flow(an, "HV-TL-001", "digital_signature")
        await step(an, "Continue")
    finally:
        await before.close()
    (flows / "digital_signature.yaml").unlink()
    for archived in (flows / "archive").glob("digital_signature.*"):
        archived.unlink()
    return run_id, await open_app(settings, migrate=False, clock=clock)


async def test_a_run_of_a_removed_flow_can_still_be_finished(app, settings, clock, tmp_path, monkeypatch):
    """After its flow file is deleted, a run already under way resumes from the stored version."""
    run_id, after = await restart_without_digital_signature(app, settings, clock, tmp_path, monkeypatch)
    try:
        an = Talker(after, "an", lang="en")
        await an.say("/household HV-TL-001")
        await an.press(payload_of(an, "▶️"))
        assert "Step 2/" in an.text() and "Check that the resident has a chip ID card" in an.text()
        await step(an, "Done")
        assert await records(after, run_id) == [("intro", 1, "done"), ("card_phone", 1, "done")]
    finally:
        await after.close()


async def test_a_removed_flow_is_no_longer_offered(app, settings, clock, tmp_path, monkeypatch):
    """After its flow file is deleted, a procedure is no longer listed in /flows nor offered to start."""
    _, after = await restart_without_digital_signature(app, settings, clock, tmp_path, monkeypatch)
    try:
        an = Talker(after, "an", lang="en")
        await an.say("/flows")
        assert "Personal digital signature" not in an.text()
        await an.say("/household HV-TL-002")
        await an.press(payload_of(an, "Start a procedure"))
        assert "Personal digital signature" not in [label for label, _ in an.buttons()]
    finally:
        await after.close()


async def test_after_a_restart_with_a_changed_flow_file_runs_continue_on_their_version(
        app, settings, clock, tmp_path, monkeypatch):
    """A run survives a restart after its flow file became version 2: v1 is reloaded from flow_versions."""
    await seed_demo(app)
    await app.close()
    flows = copy_flows(tmp_path, monkeypatch)

    before = await open_app(settings, migrate=False, clock=clock)
    try:
        an = Talker(before, "an", lang="en")
        run_id = await start_flow(an, "HV-TL-001", "residence_confirmation")
        await step(an, "Continue")
    finally:
        await before.close()

    (flows / "residence_confirmation.yaml").write_text(RC_V2, encoding="utf-8")  # v1 is gone
    after = await open_app(settings, migrate=False, clock=clock)
    try:
        an = Talker(after, "an", lang="en")
        await an.say("/household HV-TL-001")
        await an.press(payload_of(an, "▶️"))
        assert f"Step 2/5 · {RC}\nHow will the resident apply?" in an.text()
        for label, _ in RC_PATH[1:]:
            await step(an, label)
        assert "Procedure finished." in an.text()
        lan = Talker(after, "lan", lang="en")
        await start_flow(lan, "HV-TL-002", "residence_confirmation")
        assert "Ask the commune police" in lan.text()
        assert await records(after, run_id) == [(s, 1, "done") for _, s in RC_PATH]
        stored = await all_rows(after, FlowVersion, FlowVersion.flow_id == "residence_confirmation")
        assert [(v.version, "ask_police" in v.source) for v in stored] == [(1, False), (2, True)]
    finally:
        await after.close()


# -- cancel, problems, retry ------------------------------------------------------------------

async def test_cancel_abandons_the_run_and_records_it(app):
    """/cancel during a run, then "Abandon it", marks it abandoned with an audit entry; the page
    no longer offers Resume."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    run_id = await start_flow(an, "HV-TL-001", "residence_confirmation")
    await step(an, "Continue")
    channel = payload_of(an, "In the VNeID app")
    await an.say("/cancel")
    await an.press(payload_of(an, "Abandon it"))
    assert an.text() == ("Procedure abandoned. What was done so far is kept; the household's page offers "
                         "to start it again.")
    run = await the_run(app, run_id)
    assert (run.status, run.current_step) == ("abandoned", "channel") and run.finished_at is not None
    [audit] = await all_rows(app, AuditLog, AuditLog.action == "run.abandon")
    assert (audit.actor_id, audit.target) == (await user_id(app, "an"), f"run:{run_id}")
    assert audit.details == {"step": "channel", "flow": "residence_confirmation"}
    assert await records(app, run_id) == [("intro", 1, "done")]

    await an.say("/household HV-TL-001")
    assert f"  ⏹ {RC}: abandoned on 20/11 at step 2" in an.text() and "in progress" not in an.text()
    assert not [label for label, _ in an.buttons() if "▶️" in label]
    await an.press(channel)
    assert an.text().startswith(OUT_OF_DATE)
    await an.press(f"run:{run_id}:resume")
    assert an.text().startswith(OUT_OF_DATE)
    assert await records(app, run_id) == [("intro", 1, "done")]
    again = await start_flow(an, "HV-TL-001", "residence_confirmation")
    assert again != run_id and f"Step 1/5 · {RC}" in an.text()


async def test_a_blocking_problem_stops_the_run_and_retry_is_a_second_attempt(app):
    """A Problem on a blocking step blocks the run, shown with its reason; Retry records attempt 2."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    member = await add_member(an, "HV-TL-001", "Alăng Thị Nga")
    run_id = await start_flow(an, "HV-TL-001", "smartphone_skills", "Alăng Thị Nga")
    await step(an, "Continue")
    await step(an, "Problem")
    assert "What is the problem?" in an.text()
    await step(an, "No smartphone")
    assert "⛔ Problem: Check the resident has a working smartphone" in an.text()
    assert "Stopped here because of a problem: No smartphone" in an.text()
    # When to come back (handlers/come_back.py), then the way back to the household.
    assert an.buttons()[-1] == ("Back to the household", f"hh:{await household_id(app, 'HV-TL-001')}::k")
    assert [label for label, _ in an.buttons()[:-1]] == [
        "Come back tomorrow", "In 3 days", "In a week", "On a date (dd/mm)"]
    run = await the_run(app, run_id)
    assert (run.status, run.current_step, run.resident_id) == ("blocked", "phone_ready", member)

    await an.say("/households")
    assert "HV-TL-001 Alăng Văn Tư ⛔1" in [label for label, _ in an.buttons()]
    await an.say("/household HV-TL-001")
    assert "  ⛔ Smartphone skills for e-services (Alăng Thị Nga): " in an.text()
    assert not [label for label, _ in an.buttons() if label.startswith("▶️")]
    await an.press(payload_of(an, "🔁"))
    assert an.text().startswith("Step 3/9 · Smartphone skills for e-services\nCheck the resident has")
    assert payload_of(an, "Done") == f"f:{run_id}:phone_ready:2:d"
    assert (await the_run(app, run_id)).status == "active"
    await step(an, "Done")
    assert await records(app, run_id) == [
        ("intro", 1, "done"), ("phone_ready", 1, "blocked"), ("phone_ready", 2, "done")]
    rows = await all_rows(app, StepRecord, StepRecord.run_id == run_id)
    assert rows[1].reason == "No smartphone"
    assert await count_rows(app, FlowRun) == 1




async def block_smartphone_skills(talker: Talker, code: str, member: str, reason: str | None) -> int:
    """Start smartphone skills for a new member and stop it at phone_ready with `reason` (typed if None)."""
    await add_member(talker, code, member)
    run_id = await start_flow(talker, code, "smartphone_skills", member)
    await step(talker, "Continue")
    await step(talker, "Problem")
    if reason is not None:
        await step(talker, reason)
    else:
        await step(talker, "Other reason")
        assert "Type the problem in a few words." in talker.text()
        await talker.say("Điện thoại hỏng màn hình")
    return run_id


async def test_a_typed_problem_is_recorded_with_the_volunteers_words(app):
    """Problem → Other reason takes the volunteer's words, says them back and records them."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    run_id = await block_smartphone_skills(an, "HV-TL-002", "Bríu Văn Sơn", None)
    assert "Stopped here because of a problem: Điện thoại hỏng màn hình" in an.text()
    rows = await all_rows(app, StepRecord, StepRecord.run_id == run_id)
    assert [(r.step_id, r.outcome, r.reason) for r in rows] == [
        ("intro", "done", None), ("phone_ready", "blocked", "Điện thoại hỏng màn hình")]


@pytest.mark.parametrize(("reason", "shown"), [("No smartphone", "No smartphone"),
                                                (None, "Điện thoại hỏng màn hình")])
async def test_the_household_page_says_why_a_run_is_blocked(app, reason, shown):
    """The household page shows a blocked run with the reason given, from the list or typed."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    await block_smartphone_skills(an, "HV-TL-002", "Bríu Văn Sơn", reason)
    await an.say("/household HV-TL-002")
    assert f"  ⛔ Smartphone skills for e-services (Bríu Văn Sơn): {shown}" in an.text()


async def test_smartphone_skills_makes_the_resident_digital_ready(app):
    """Finishing smartphone skills for a member marks that member, and only them, digital-ready."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    nga = await add_member(an, "HV-TL-001", "Alăng Thị Nga")
    other = await add_member(an, "HV-TL-001", "Alăng Văn Hai")
    run_id = await start_flow(an, "HV-TL-001", "smartphone_skills", "Alăng Thị Nga")
    answers = ["Continue", "Done", "Done", "Done", "Done", "Done", "Continue", "Done"]
    for n, label in enumerate(answers, start=1):
        assert f"Step {n}/" in an.text(), an.text()
        await step(an, label)
    assert "Procedure finished. The resident can now use e-services on a phone." in an.text()
    ready = {r.id: r.digital_ready for r in await all_rows(app, Resident)}
    assert ready == {nga: True, other: False}
    assert (await the_run(app, run_id)).status == "completed"
    await an.say("/household HV-TL-001")
    assert "  • Alăng Thị Nga, digital-ready" in an.text()
    assert "  ✅ Smartphone skills for e-services (Alăng Thị Nga)" in an.text()


async def test_smartphone_skills_asks_for_a_member_first(app):
    """A person-bound procedure on a household without members asks to add one and starts nothing."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    hid = await household_id(app, "HV-TL-003")
    await an.press(f"hh:{hid}:flow:smartphone_skills")
    assert an.text() == "First add the person this is for: press “Add a member”."
    assert an.buttons() == [("Add a member", f"hh:{hid}:add:smartphone_skills")]
    await an.press(f"hh:{hid}:flow:smartphone_skills:0")  # forged: "the household"
    assert an.text().startswith(OUT_OF_DATE)
    assert await count_rows(app, FlowRun) == 0


async def test_a_member_of_another_household_cannot_be_chosen(app):
    """A forged person button naming another household's member is refused and audited; no run starts."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    stranger = await add_member(an, "HV-TL-002", "Bríu Văn Sơn")
    hid = await household_id(app, "HV-TL-001")
    await an.press(f"hh:{hid}:flow:smartphone_skills:{stranger}")
    assert an.text().startswith(OUT_OF_DATE)
    assert await count_rows(app, FlowRun) == 0
    [audit] = await all_rows(app, AuditLog, AuditLog.action == "access.denied")
    assert audit.target == f"household:{hid}/resident:{stranger}"


# -- values typed into a run ------------------------------------------------------------------

ID_FLOW = """\
id: test_id_check
version: 1
title: ID check
steps:
  - id: card_number
    kind: input
    text: Type the citizen ID number.
    validator: cccd
    save_as: card
  - id: children
    kind: input
    text: How many children under 6?
    validator: number
    optional: true
    next: end
"""


async def test_a_citizen_id_typed_in_a_run_is_kept_only_masked(app):
    """A cccd input re-asks a bad number precisely and stores only the masked form, nowhere the digits."""
    await seed_demo(app)
    app.core.services.flows.add_yaml(ID_FLOW, "test_id_check.yaml")
    an = Talker(app, "an", lang="en")
    run_id = await start_flow(an, "HV-TL-001", "test_id_check")
    assert "Type the citizen ID number." in an.text()
    await an.say("04809000123")
    assert an.text().startswith("A citizen ID has 12 digits; you sent 11.\nStep 1/2 · ID check")
    await an.say("999090001234")
    assert an.text().startswith("The first three digits 999 are not a province code.")
    assert await records(app, run_id) == []
    await an.say("048090001234")
    assert "048090001234" not in an.text()
    assert "How many children under 6?" in an.text()
    [record] = await all_rows(app, StepRecord, StepRecord.run_id == run_id)
    assert (record.step_id, record.value) == ("card_number", "0480******34")
    run = await the_run(app, run_id)
    assert run.state["vars"]["card"] == "0480******34"
    assert await stored_anywhere(app, "048090001234") == []


async def test_a_number_typed_at_an_optional_input_is_the_answer(app):
    """On the console, typing “1” at an optional number question records 1 rather than pressing Skip."""
    await seed_demo(app)
    app.core.services.flows.add_yaml(ID_FLOW, "test_id_check.yaml")
    an = Talker(app, "an", lang="en")
    run_id = await start_flow(an, "HV-TL-001", "test_id_check")
    await an.say("048090001234")
    assert an.buttons() == [("Skip", f"f:{run_id}:children:1:k")]
    await an.say("1")
    assert "Procedure finished." in an.text()
    rows = await all_rows(app, StepRecord, StepRecord.run_id == run_id)
    assert [(r.step_id, r.outcome, r.value) for r in rows][-1] == ("children", "done", "1")


@pytest.mark.parametrize("typed", ["Xin chào", "/household HV-TL-002"])
async def test_text_typed_at_a_button_step_does_not_advance_the_run(app, typed):
    """Text typed where a button is expected, or a command in between, records nothing in the run."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    run_id = await start_flow(an, "HV-TL-001", "residence_confirmation")
    await an.say(typed)
    if typed.startswith("/"):
        assert "🏠 HV-TL-002" in an.text()
    else:
        assert an.text().startswith("Please answer with one of the buttons.\nStep 1/5")
    assert await records(app, run_id) == []


async def test_leaving_a_run_detaches_typed_text_and_cancel_from_it(app):
    """After opening /households mid-procedure, /cancel does not abandon the run left behind,
    and Resume on the page brings the chat back to it."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    run_id = await start_flow(an, "HV-TL-001", "vneid")
    await an.say("/households")
    await an.say("/cancel")
    assert "nothing to cancel" in an.text()
    assert (await the_run(app, run_id)).status == "active"
    await an.say("/household HV-TL-001")
    await an.press(payload_of(an, "▶️"))
    assert "Step 1/" in an.text()
    await an.say("/cancel")
    await an.press(payload_of(an, "Abandon it"))
    assert (await the_run(app, run_id)).status == "abandoned"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Resume: VNeID account", "Resume: VNeID account"),
        ("Làm tiếp: Xác nhận thông tin cư trú (CT07) cho bà", "Làm tiếp: Xác nhận thông tin cư trú…"),
        ("x" * 60, "x" * 39 + "…"),
    ],
)
def test_long_button_labels_end_with_an_ellipsis_at_a_word(text, shown):
    """A label too long for a phone button is cut at a word boundary and ends with “…”."""
    from handlers.types import button_label

    assert button_label(text) == shown
    assert len(button_label(text)) <= 40
