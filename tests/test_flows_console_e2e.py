"""End to end on the console: a volunteer adds a household and a member, runs a procedure,
leaves, resumes, finishes; numbered answers as typed on the console; a real `python -m bot chat`
in two sessions."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from bot.seed_demo import seed_demo
from db.models import FlowRun, Household, Resident, StepRecord
from handlers.types import Reply
from tests.chat import Talker, all_rows, count_rows, payload_of, stored_anywhere
from tests.process_env import clean_env

ROOT = Path(__file__).resolve().parent.parent
SKILLS = "Smartphone skills for e-services"


async def choose(talker: Talker, label: str, *, update_id: str | None = None) -> list[Reply]:
    """Answer with the number of the option whose label contains `label`, as on the console."""
    labels = [shown for shown, _ in talker.buttons()]
    number = next((i for i, shown in enumerate(labels, start=1) if label in shown), None)
    assert number is not None, f"no option {label!r} in {labels}"
    return await talker.say(str(number), update_id=update_id)


async def test_a_volunteers_day_on_the_console(app):
    """Household → member → smartphone skills → leave → resume → finish: each step is stored once."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")

    await an.say("/new")
    await choose(an, "Tà Lang")
    await an.say("Hồ Văn Tám")
    await an.say("Nhà thứ ba sau trạm y tế")
    await an.say("0912 345 678")
    assert "Household HV-TL-004 added. You look after it." in an.text()
    [household] = await all_rows(app, Household, Household.code == "HV-TL-004")

    await choose(an, "Add a member")
    await an.say("Hồ Thị Mười")
    await an.say("1985")
    await an.say("048185000123")
    assert "  • Hồ Thị Mười, 1985, 0481******23" in an.text()

    await choose(an, "Start a procedure")
    await choose(an, SKILLS)
    assert an.text() == f"{SKILLS}: for whom?"
    await choose(an, "Hồ Thị Mười")
    assert an.text().startswith(f"Step 1/8 · {SKILLS}\nGoal: the resident uses e-services")
    await choose(an, "Continue")
    await choose(an, "Done")
    assert f"Step 3/8 · {SKILLS}\nCheck whose name the SIM is in" in an.text()
    await choose(an, "Done")
    assert f"Step 4/8 · {SKILLS}\nPractise the basics" in an.text()
    stale = payload_of(an, "Done")
    await choose(an, "Done")
    assert f"Step 5/8 · {SKILLS}\nPractise reading an SMS" in an.text()

    # Leave for another household, then come back through the list and the page.
    await an.say("/households")
    await choose(an, "HV-GB-001")
    assert "🏠 HV-GB-001 · Zơrâm Thị Mai" in an.text()
    await an.say("/households")
    await choose(an, "HV-TL-004")
    assert f"  ⏳ {SKILLS} (Hồ Thị Mười): in progress" in an.text()
    await choose(an, "▶️")
    assert f"Step 5/8 · {SKILLS}\nPractise reading an SMS" in an.text()

    await an.press(stale)  # the button of step 4, pressed late
    assert an.text().startswith(f"This button is out of date.\nStep 5/8 · {SKILLS}")
    answered = await choose(an, "Done", update_id="sms-1")
    assert await an.say("1", update_id="sms-1") == []  # the same line delivered twice
    an.last = answered  # what the volunteer still sees
    assert f"Step 6/8 · {SKILLS}\nOpen VNeID with the resident" in an.text()
    for label in ("Done", "Continue", "Done"):
        await choose(an, label)
    assert "Procedure finished. The resident can now use e-services on a phone." in an.text()

    [run] = await all_rows(app, FlowRun)
    assert (run.household_id, run.flow_id, run.status, run.flow_version) == (
        household.id, "smartphone_skills", "completed", 2)
    rows = await all_rows(app, StepRecord, StepRecord.run_id == run.id)
    assert [(r.step_id, r.attempt, r.outcome) for r in rows] == [
        (s, 1, "done")
        for s in ("intro", "phone_ready", "sim_owner", "basics", "sms_otp", "vneid_use", "scams", "solo")]
    [member] = await all_rows(app, Resident)
    assert member.digital_ready and run.resident_id == member.id
    assert await stored_anywhere(app, "048185000123") == []

    await an.say("/households")
    assert "HV-TL-004 Hồ Văn Tám ✅1" in [label for label, _ in an.buttons()]


async def test_a_numbered_answer_beyond_the_options_changes_nothing(app):
    """Typing an option number that was not offered in a run says so, shows the step again with
    its options and records nothing."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    await an.say("/household HV-TL-001")
    await choose(an, "Start a procedure")
    await choose(an, "Residence confirmation")
    await choose(an, "Continue")
    await an.say("7")
    assert an.text().startswith("There is no option 7; choose 1–3.\nStep 2/5")
    assert len(an.buttons()) == 3
    await an.say("at a commune police office")  # the label, typed in any case
    assert "Go with the resident to any commune police" in an.text()
    [run] = await all_rows(app, FlowRun)
    assert await count_rows(app, StepRecord, StepRecord.run_id == run.id) == 2


def _gocua(db: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env["GOCUA_DATABASE_URL"] = f"sqlite+aiosqlite:///{db}"
    result = subprocess.run([sys.executable, "-m", "bot", *args], input=stdin, capture_output=True,
                            text=True, cwd=ROOT, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return result


def test_two_console_sessions_share_one_run(tmp_path):
    """`python -m bot chat` (Vietnamese) left mid-procedure; a second session resumes and finishes it."""
    db = tmp_path / "gocua.db"
    _gocua(db, "seed", "demo")
    first = _gocua(db, "chat", "--user", "an", stdin="/household HV-TL-001\n1\n3\n1\n1\n")
    assert "Bước 1/5 · Xác nhận thông tin cư trú (CT07)" in first.stdout
    assert "Bước 3/5 · Xác nhận thông tin cư trú (CT07)" in first.stdout
    assert "[1] Làm tiếp" not in first.stdout

    second = _gocua(db, "chat", "--user", "an", stdin="/household HV-TL-001\n1\n1\n1\n1\n")
    assert "[1] ▶️ Xác nhận thông tin cư trú (CT07)" in second.stdout  # the run to resume
    assert "Bước 3/5 · Xác nhận thông tin cư trú (CT07)" in second.stdout
    assert "Đã hoàn thành thủ tục." in second.stdout
    assert "Step " not in first.stdout + second.stdout  # nothing left in English

    with sqlite3.connect(db) as conn:
        runs = conn.execute("SELECT id, status, flow_version FROM flow_runs").fetchall()
        steps = conn.execute("SELECT step_id, attempt, outcome, source_update FROM step_records "
                             "ORDER BY id").fetchall()
    assert [status for _, status, _ in runs] == ["completed"]
    assert [(s, a, o) for s, a, o, _ in steps] == [
        ("intro", 1, "done"), ("channel", 1, "done"), ("via_vneid", 1, "done"),
        ("wait_result", 1, "done"), ("check_result", 1, "done")]
    sessions = {source.rsplit("-", 1)[0] for *_, source in steps}
    assert len(sessions) == 2  # two console sessions, one run
