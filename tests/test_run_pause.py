"""/cancel inside a procedure: keep it paused (the default) or abandon it; an abandoned run
stays on the household page with the day and step it stopped at, and can be started again."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.seed_demo import seed_demo
from db.models import AuditLog, FlowRun
from tests.chat import Talker, all_rows, count_rows, payload_of
from tests.test_flow_runs import RC, household_id, start_flow, step, the_run

QUESTION = "Stop “Residence confirmation (CT07)” at step 3?"


async def _at_step_three(app) -> tuple[Talker, int]:
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    run_id = await start_flow(an, "HV-TL-001", "residence_confirmation")
    await step(an, "Continue")
    await step(an, "In the VNeID app")
    assert f"Step 3/5 · {RC}" in an.text()
    return an, run_id


async def test_cancel_in_a_procedure_asks_whether_to_pause_or_abandon(app):
    """/cancel mid-procedure asks, with "Keep it paused" first and "Abandon it" second, and
    changes nothing until answered."""
    an, run_id = await _at_step_three(app)
    await an.say("/cancel")
    assert an.text().startswith(QUESTION)
    assert [label for label, _ in an.buttons()] == ["Keep it paused", "Abandon it"]
    assert (await the_run(app, run_id)).status == "active"
    assert await count_rows(app, AuditLog, AuditLog.action == "run.abandon") == 0


async def test_keeping_it_paused_leaves_the_run_to_resume_from_the_page(app):
    """Answering 1 keeps the run active at its step; the reply offers to resume it, and typed
    text no longer goes to the run."""
    an, run_id = await _at_step_three(app)
    await an.say("/cancel")
    await an.say("1")
    assert an.text().startswith(f"Paused: {RC} at step 3.")
    assert (await the_run(app, run_id)).status == "active"
    await an.press(payload_of(an, "Resume now"))
    assert f"Step 3/5 · {RC}" in an.text()


async def test_cancel_at_the_question_keeps_the_run_paused(app):
    """/cancel typed again at the question takes the default: the run stays paused."""
    an, run_id = await _at_step_three(app)
    await an.say("/cancel")
    await an.say("/cancel")
    assert an.text().startswith(f"Paused: {RC} at step 3.")
    assert (await the_run(app, run_id)).status == "active"


async def test_anything_else_typed_at_the_question_asks_again_with_the_options(app):
    """Free text at the pause-or-abandon question repeats the question with both options."""
    an, run_id = await _at_step_three(app)
    await an.say("/cancel")
    asked = an.buttons()
    await an.say("hmm not sure")
    assert "Please choose one of the options." in an.text() and QUESTION in an.text()
    assert an.buttons() == asked
    assert (await the_run(app, run_id)).status == "active"


async def test_an_abandoned_run_shows_on_the_page_with_its_day_and_step_and_starts_again(app, clock):
    """Abandoning writes the audit entry; the page says "abandoned on 04/12 at step 3" (the
    Vietnam date) and "Start again" begins a new run at step 1."""
    clock.now = datetime(2026, 12, 3, 18, 30, tzinfo=UTC)  # 01:30 on 4 December in Vietnam
    an, run_id = await _at_step_three(app)
    await an.say("/cancel")
    await an.press(payload_of(an, "Abandon it"))
    assert an.text().startswith("Procedure abandoned.")
    run = await the_run(app, run_id)
    assert (run.status, run.current_step) == ("abandoned", "via_vneid")
    [audit] = await all_rows(app, AuditLog, AuditLog.action == "run.abandon")
    assert audit.target == f"run:{run_id}"

    await an.say("/household HV-TL-001")
    assert f"  ⏹ {RC}: abandoned on 04/12 at step 3" in an.text()
    await an.press(payload_of(an, "Start again"))
    assert f"Step 1/5 · {RC}" in an.text()
    runs = await all_rows(app, FlowRun, FlowRun.household_id == await household_id(app, "HV-TL-001"))
    assert [r.status for r in runs] == ["abandoned", "active"]
    await an.say("/household HV-TL-001")
    assert "abandoned on" not in an.text()  # superseded by the new run
    assert f"  ⏳ {RC}: in progress" in an.text()


async def test_the_page_says_abandoned_in_vietnamese(app, clock):
    """In Vietnamese the page reads "bỏ dở ngày 04/12 ở bước 3"."""
    clock.now = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
    an, run_id = await _at_step_three(app)
    await an.say("/cancel")
    await an.press(f"run:{run_id}:abandon")
    vi = Talker(app, "an", lang="vi")
    await vi.say("/lang vi")
    await vi.say("/household HV-TL-001")
    assert "bỏ dở ngày 04/12 ở bước 3" in vi.text()
    assert any("Làm lại từ đầu" in label for label, _ in vi.buttons())


async def test_an_old_abandon_button_does_not_abandon_a_resumed_run(app):
    """The Abandon button of an earlier question is out of date once the run was resumed."""
    an, run_id = await _at_step_three(app)
    await an.say("/cancel")
    abandon = payload_of(an, "Abandon it")
    await an.press(payload_of(an, "Keep it paused"))
    await an.press(payload_of(an, "Resume now"))
    await an.press(abandon)
    assert "out of date" in an.text()
    assert (await the_run(app, run_id)).status == "active"
