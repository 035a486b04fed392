"""Follow-ups on the injectable clock: come-back dates (the issue's "done when" on the console,
with the real `gocua jobs run-due`), quiet hours across midnight, the Monday digest, a visit
request's 2-working-hour escalation reaching the leader, a worker killed with claimed jobs,
bad dates, /reminders off, and the paused-run reminder."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.channels.console import run_console
from conversations.follow_up_time import (
    BadDate,
    ComeBackDate,
    add_working_hours,
    is_quiet,
    next_sendable,
    next_weekday_at,
    parse_come_back,
)
from conversations.local_time import VIETNAM
from db.models import FlowRun, Household, Notice, ScheduledJob
from db.repo.jobs import JOB_LEASE, claim_due
from handlers.follow_up_runner import run_due
from tests.chat import Talker, all_rows, count_rows, payload_of
from tests.process_env import clean_env
from tests.test_flows_console_e2e import choose

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2026, 11, 20)


def vn(*args: int) -> datetime:
    """A Vietnam wall-clock time as the aware UTC datetime the clock gives."""
    return datetime(*args, tzinfo=VIETNAM).astimezone(UTC)


# -- the pure time rules ------------------------------------------------------------------------

def test_quiet_hours_cross_midnight():
    assert not is_quiet(vn(2026, 11, 20, 20, 59))
    assert is_quiet(vn(2026, 11, 20, 21, 0)) and is_quiet(vn(2026, 11, 21, 0, 30))
    assert next_sendable(vn(2026, 11, 20, 23, 50)) == vn(2026, 11, 21, 7, 0)
    assert next_sendable(vn(2026, 11, 21, 3, 0)) == vn(2026, 11, 21, 7, 0)
    assert next_sendable(vn(2026, 11, 21, 7, 0)) == vn(2026, 11, 21, 7, 0)
    # Two working hours from 20:30: half an hour today, an hour and a half tomorrow.
    assert add_working_hours(vn(2026, 11, 20, 20, 30), 2) == vn(2026, 11, 21, 8, 30)
    assert add_working_hours(vn(2026, 11, 20, 23, 0), 2) == vn(2026, 11, 21, 9, 0)
    assert add_working_hours(vn(2026, 11, 20, 10, 0), 2) == vn(2026, 11, 20, 12, 0)
    # Monday 07:30 from a Friday afternoon, and from Monday 07:30 itself.
    assert next_weekday_at(vn(2026, 11, 20, 15, 0), 0, datetime.min.time().replace(hour=7, minute=30)) \
        == vn(2026, 11, 23, 7, 30)


@pytest.mark.parametrize(("typed", "expected"), [
    ("27/11", ComeBackDate(date(2026, 11, 27))),
    ("5/1", ComeBackDate(date(2027, 1, 5))),
    ("05/01/2027", ComeBackDate(date(2027, 1, 5))),
    ("19/11", BadDate("past")),  # yesterday, not next year
    ("20/11", BadDate("past")),  # today
    ("01/10/2026", BadDate("past")),
    ("31/02", BadDate("invalid")),
    ("31/04/2027", BadDate("invalid")),
    ("tomorrow", BadDate("format")),
    ("", BadDate("format")),
    ("20/11/2027", ComeBackDate(date(2027, 11, 20), far=True)),
])
def test_come_back_dates_typed(typed, expected):
    assert parse_come_back(typed, TODAY) == expected


# -- on the console -----------------------------------------------------------------------------

async def _blocked_vneid(an: Talker) -> None:
    """`an` takes HV-TL-001's new member through VNeID to the police step and marks it
    "Chip card not issued yet" (a blocking Problem)."""
    await an.say("/households")
    await choose(an, "HV-TL-001")
    await choose(an, "Add a member")
    await an.say("Alăng Thị Phấm")
    await an.say("1950")
    await an.say("skip")
    await choose(an, "Start a procedure")
    await choose(an, "VNeID")
    await choose(an, "Alăng Thị Phấm")
    await choose(an, "Yes, chip card")
    await choose(an, "Done")
    await choose(an, "Done")
    await choose(an, "No NFC")
    await an.press(payload_of(an, "Problem"))
    await an.press(payload_of(an, "QR code not read"))
    # A Problem the procedure goes on without: on the console (numbered options) no second list
    # of options before the next step's.
    assert "When will you come back to it?" not in an.text()
    await an.press(payload_of(an, "Problem"))  # the police step's
    await choose(an, "Chip card not issued yet")
    assert "When will you come back to it?" in an.text()


def gocua(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    env["GOCUA_DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


async def test_come_back_in_a_week_reminds_on_the_console(people, settings, clock, tmp_path):
    """The issue's "done when": "Chip card not issued yet" with "in a week"; `gocua jobs run-due`
    a week later at 08:00 sends the reminder; the next `gocua chat` shows it under "While you
    were away:" and its Resume works."""
    if not settings.database_url.startswith("sqlite"):
        pytest.skip("the CLI is run on the SQLite file")
    an, _lan, _admin = people
    await _blocked_vneid(an)
    await choose(an, "In a week")
    assert "I will remind you on 27/11/2026 at 08:00 about HV-TL-001." in an.text()
    await choose(an, "Back to the household")
    assert "come back on 27/11" in an.text()

    listed = gocua(settings.database_url, "jobs", "list", "--due-before", "2026-11-27T08:00")
    assert "come_back" in listed.stdout, listed.stderr
    early = gocua(settings.database_url, "jobs", "run-due", "--now", "2026-11-27T07:59", "--json")
    assert '"notices": 0' in early.stdout, early.stderr
    due = gocua(settings.database_url, "jobs", "run-due", "--now", "2026-11-27T08:00", "--json")
    assert '"notices": 1' in due.stdout, due.stderr
    again = gocua(settings.database_url, "jobs", "run-due", "--now", "2026-11-27T08:05", "--json")
    assert '"notices": 0' in again.stdout  # sent once

    clock.now = vn(2026, 11, 27, 8, 30)
    out = io.StringIO()
    await run_console(an.app, user="an", lang="en", stdin=io.StringIO("1\n"), stdout=out, out_dir=tmp_path)
    shown = out.getvalue()
    assert shown.startswith("While you were away:\n\nHousehold HV-TL-001 (Alăng Văn Tư): VNeID account "
                            "(level 1 / level 2) stopped at “Chip card not issued yet”."), shown
    assert "[1] Resume" in shown
    # "1" pressed Resume: the blocked step again, to retry.
    assert "Go with the resident to any commune or ward police" in shown.split("[1] Resume", 1)[1]


async def test_typed_come_back_dates_schedule_nothing_half_way(people, app):
    an, _lan, _admin = people
    await _blocked_vneid(an)
    await choose(an, "On a date")
    assert "dd/mm" in an.text()
    await an.say("31/02")
    assert an.text() == "There is no such date. Please type it as dd/mm, e.g. 15/01."
    await an.say("19/11")
    assert an.text() == "That date has passed. Please type a later date as dd/mm."
    await an.say("soon")
    assert an.text() == "Please type the date as dd/mm, e.g. 15/01."
    await an.say("20/11/2027")
    assert "20/11/2027 is more than six months away. Remind you then?" in an.text()
    assert await count_rows(app, ScheduledJob, ScheduledJob.kind == "come_back") == 0
    await choose(an, "Yes, on 20/11/2027")
    [job] = await all_rows(app, ScheduledJob, ScheduledJob.kind == "come_back")
    assert job.due_at == vn(2027, 11, 20, 8, 0)
    # Another choice moves the same reminder.
    await an.say("/households")
    await choose(an, "HV-TL-001")
    await choose(an, "🔁")  # retry the stopped run
    await an.press(payload_of(an, "Problem"))
    await choose(an, "Chip card not issued yet")
    await choose(an, "Come back tomorrow")
    [job] = await all_rows(app, ScheduledJob, ScheduledJob.kind == "come_back")
    assert job.due_at == vn(2026, 11, 21, 8, 0)
    # Sent, then a new problem on the same run and a new day: that reminder comes too.
    assert (await run_due(app.db, vn(2026, 11, 21, 8, 0), app.core.services.flows)).by_kind["come_back"] == 1
    await an.say("/households")
    await choose(an, "HV-TL-001")
    await choose(an, "🔁")
    await an.press(payload_of(an, "Problem"))
    await choose(an, "Chip card not issued yet")
    await choose(an, "In 3 days")
    assert (await run_due(app.db, vn(2026, 11, 23, 8, 0), app.core.services.flows)).by_kind["come_back"] == 1


async def test_reminders_off_stops_the_come_back(people, app, clock):
    an, _lan, _admin = people
    await _blocked_vneid(an)
    await choose(an, "Come back tomorrow")
    await an.say("/reminders off")
    assert "Reminders are off. Announcements from your leaders still arrive." in an.text()
    result = await run_due(app.db, vn(2026, 11, 21, 8, 0), app.core.services.flows)
    assert (result.jobs, result.notices) == (1, 0)
    await an.say("/reminders on")
    assert "Reminders are on" in an.text()


async def test_a_worker_killed_with_claimed_jobs_leaves_them_to_the_lease(people, app):
    """A worker claims the due reminder and dies before sending: nobody sends it during the
    lease; the next run after the lease sends it, once."""
    an, _lan, _admin = people
    await _blocked_vneid(an)
    await choose(an, "Come back tomorrow")
    due = vn(2026, 11, 21, 8, 0)
    async with app.db.transaction() as session:
        assert len(await claim_due(session, due)) == 1  # ...and the worker is killed here
    flows = app.core.services.flows
    assert (await run_due(app.db, due + timedelta(minutes=1), flows)).notices == 0
    assert (await run_due(app.db, due + JOB_LEASE + timedelta(seconds=1), flows)).notices == 1
    assert (await run_due(app.db, due + JOB_LEASE * 3, flows)).notices == 0
    [job] = await all_rows(app, ScheduledJob, ScheduledJob.kind == "come_back")
    assert (job.state, job.attempts) == ("done", 2)
    waiting = await app.channel_services.take_waiting("console", "an")
    assert [r.text.split(":")[0] for r in waiting] == ["Household HV-TL-001 (Alăng Văn Tư)"]


async def test_an_untaken_visit_request_reaches_the_leader_after_two_working_hours(people, app, clock):
    """Asked at 20:30: quiet from 21:00, so the two working hours end at 08:30 the next day;
    the leader lan gets it then with "Assign to…", and assigning gives it to an."""
    an, lan, _admin = people
    clock.now = vn(2026, 11, 20, 20, 30)
    resident = Talker(app, "ba-muoi", lang="en")
    await resident.say("/visit help with VNeID")
    await resident.press(payload_of(resident, "Hải Vân"))
    await resident.press(payload_of(resident, "Tà Lang"))
    await resident.say("0912345678")
    await resident.press(payload_of(resident, "Skip"))
    assert "Your request #1 was sent to" in resident.text()
    flows = app.core.services.flows
    assert (await run_due(app.db, vn(2026, 11, 20, 22, 30), flows)).quiet
    assert (await run_due(app.db, vn(2026, 11, 21, 8, 29), flows)).notices == 0
    assert (await run_due(app.db, vn(2026, 11, 21, 8, 30), flows)).notices == 1
    [notice] = await app.channel_services.take_waiting("console", "lan")
    assert notice.text.startswith("Visit request #1 · Thôn Tà Lang has waited 12 hours: nobody took it.")
    assert "Assign to…" in notice.text
    clock.now = vn(2026, 11, 21, 8, 40)
    lan.last = [notice]
    await lan.press(payload_of(lan, "Nguyễn Văn An"))
    assert lan.text().startswith("Request #1 is now Nguyễn Văn An's.")
    assert "gave you visit request #1" in lan.last[1].text and lan.last[1].to.chat_id == "an"
    # Taken but not closed: 3 days later the volunteer, 7 days later the leaders.
    assert (await run_due(app.db, vn(2026, 11, 24, 8, 40), flows)).by_kind == {"visit_open": 1}
    assert (await run_due(app.db, vn(2026, 11, 28, 8, 40), flows)).by_kind == {"visit_open": 1}
    texts = [n.reply["text"] for n in await all_rows(app, Notice, Notice.origin == "visit_open")]
    assert texts[0].startswith("You took visit request #1 3 days ago")
    assert "taken by Nguyễn Văn An 7 days ago, is still not closed" in texts[1]
    # A forged "assign" from a volunteer is refused.
    await an.press("asg:1:1")
    assert an.text() == "This request is not in your area."


async def test_monday_digest_once_and_not_to_a_volunteer_with_nothing_to_say(people, app, clock):
    an, _lan, _admin = people
    await an.say("/households")  # Friday: one step at HV-TL-002
    await choose(an, "HV-TL-002")
    await choose(an, "Start a procedure")
    await choose(an, "Residence confirmation")
    await an.press(an.last[-1].buttons[0].payload)
    async with app.db.transaction() as session:  # cuong's one household was reached long ago
        await session.execute(update(Household).where(Household.code == "AV-001")
                              .values(last_step_at=vn(2026, 10, 1, 9, 0)))
    flows = app.core.services.flows
    assert (await run_due(app.db, vn(2026, 11, 23, 7, 29), flows)).notices == 0  # Monday, too early
    result = await run_due(app.db, vn(2026, 11, 23, 7, 30), flows)
    assert result.by_kind.get("volunteer_digest") == 2  # an and binh; not cuong
    assert result.by_kind.get("leader_digest") == 1  # lan
    assert (await run_due(app.db, vn(2026, 11, 23, 9, 0), flows)).notices == 0  # once a week
    [digest] = await app.channel_services.take_waiting("console", "an")
    assert digest.text.startswith("Your week ahead:\nHouseholds not reached yet (4): HV-GB-001")
    assert "Last week: 1 step recorded." in digest.text
    assert await app.channel_services.take_waiting("console", "cuong") == []
    [leader] = await app.channel_services.take_waiting("console", "lan")
    assert leader.text.startswith("Weekly digest · Phường Hải Vân\nHouseholds reached: 1 (of 5 registered), "
                                  "+1 this week\nVisit requests waiting: 0"), leader.text


async def test_a_paused_run_reminds_once_then_weekly(people, app, clock):
    an, _lan, _admin = people
    await an.say("/households")
    await choose(an, "HV-TL-002")
    await choose(an, "Start a procedure")
    await choose(an, "Residence confirmation")
    await an.say("/cancel")
    await choose(an, "Keep it paused")
    flows = app.core.services.flows
    start = clock()

    async def paused(days: float) -> int:
        result = await run_due(app.db, start + timedelta(days=days, hours=1), flows)
        return result.by_kind.get("paused_look", 0)

    assert await paused(2) == 0
    assert await paused(3) == 1  # once
    assert await paused(4) == 0
    assert await paused(10) == 1  # then weekly
    first = next(r for r in await app.channel_services.take_waiting("console", "an")
                 if r.text.startswith("Procedures waiting"))
    assert first.text.startswith("Procedures waiting for you:\n• HV-TL-002 (Bríu Thị Hoa): ")
    assert [b.label for b in first.buttons] == ["Resume HV-TL-002"]
    [run] = await all_rows(app, FlowRun)
    assert run.paused_reminded_at is not None


async def test_finished_jobs_are_pruned_after_thirty_days(people, app):
    from db.repo.housekeeping import prune

    an, _lan, _admin = people
    await _blocked_vneid(an)
    await choose(an, "Come back tomorrow")
    flows = app.core.services.flows
    await run_due(app.db, vn(2026, 11, 21, 8, 0), flows)
    assert (await prune(app.db.transaction, vn(2026, 12, 20, 8, 0))).jobs == 0
    assert (await prune(app.db.transaction, vn(2026, 12, 21, 8, 1))).jobs == 1
    assert await count_rows(app, ScheduledJob) == 0


async def test_a_leader_sets_the_pause_threshold_of_their_areas(people, app):
    an, lan, _admin = people
    await lan.say("/reminders paused 0")
    assert "from 1 to 60" in lan.text()
    await lan.say("/reminders paused 5")
    assert lan.text() == "A procedure untouched for 5 days now reminds its volunteer (Phường Hải Vân)."
    from db.models import Area

    areas = {a.code: a.paused_after_days for a in await all_rows(app, Area)}
    assert areas["danang.hai-van.ta-lang"] == 5 and areas["danang.hoa-xuan"] == 3
    await an.say("/reminders paused 1")  # a volunteer cannot
    assert areas == {a.code: a.paused_after_days for a in await all_rows(app, Area)}


async def test_a_reminder_due_while_the_database_is_down_goes_when_it_is_back(people, app, monkeypatch):
    """The bot's minute tick finds the database gone at 08:00: nothing is lost; the next tick
    after it is back sends the reminder, once."""
    from contextlib import asynccontextmanager

    from sqlalchemy.exc import OperationalError

    from bot.scheduler import Scheduler

    an, _lan, _admin = people
    await _blocked_vneid(an)
    await choose(an, "Come back tomorrow")

    @asynccontextmanager
    async def gone():
        raise OperationalError("BEGIN", {}, Exception("database is gone"))
        yield

    now = [vn(2026, 11, 21, 8, 0)]
    scheduler = Scheduler(app.db, lambda: now[0], app.core.services.flows)
    working = app.db.transaction
    monkeypatch.setattr(app.db, "transaction", gone)
    assert await scheduler.tick() is None
    monkeypatch.setattr(app.db, "transaction", working)
    now[0] = vn(2026, 11, 21, 9, 30)
    assert (await scheduler.tick()).notices == 1
    assert (await scheduler.tick()).notices == 0


async def test_on_telegram_a_problem_the_procedure_goes_on_without_offers_the_date_too(people, app, clock):
    """Buttons can be pressed on Telegram: the come-back choice comes before the next step,
    whose buttons stay last."""
    from db.repo.areas import area_by_code
    from db.repo.invites import create_invite

    async with app.db.transaction() as session:
        area = await area_by_code(session, "danang.hai-van")
        code = (await create_invite(session, role="volunteer", area=area, now=clock())).code
    hoa = Talker(app, "7101", channel="telegram", lang="en")
    await hoa.say(f"/join {code}")
    await hoa.say("/household HV-TL-003")
    await hoa.press(payload_of(hoa, "Start a procedure"))
    await hoa.press(payload_of(hoa, "Residence confirmation"))
    for _ in range(6):
        if any(label.endswith("Problem") for label, _ in hoa.buttons()):
            break
        await hoa.press(hoa.last[-1].buttons[0].payload)
    await hoa.press(payload_of(hoa, "Problem"))
    await hoa.press(hoa.last[-1].buttons[0].payload)  # the first reason
    if "When will you come back to it?" not in hoa.text():
        pytest.skip("this step's Problem stops the procedure")
    offer = next(r for r in hoa.last if r.text.startswith("When will you come back"))
    assert [b.label for b in offer.buttons] == ["Come back tomorrow", "In 3 days", "In a week",
                                                "On a date (dd/mm)"]
    assert hoa.last[-1] is not offer and hoa.last[-1].buttons  # the next step's options stay last
    await hoa.press(offer.buttons[1].payload)
    assert "I will remind you on 23/11/2026 at 08:00 about HV-TL-003." in hoa.text()
    # "On a date" and a typed day: the procedure's dialog is still there for the next step.
    await hoa.press(offer.buttons[3].payload)
    await hoa.say("30/11")
    assert "I will remind you on 30/11/2026" in hoa.text()
    from db.models import Conversation

    async with app.db.transaction() as session:
        state = await session.scalar(select(Conversation.state).where(Conversation.chat_id == "7101"))
    assert state.get("dialog") == "flow_run"
