"""Come back on a date: after a Problem at a step, the volunteer picks when to come back
(tomorrow, in 3 days, in a week, or a date typed dd/mm) and GoCua reminds them that day at
08:00 (handlers/follow_ups.py `run_come_back`). One reminder per run: a new choice moves it.
The household page shows the date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations import engine
from conversations.follow_up_kinds import JobKind, JobState
from conversations.follow_up_time import BadDate, come_back_at, parse_come_back
from conversations.local_time import VIETNAM
from conversations.state import RunStatus, StepOutcome
from db.models import Area, FlowRun, Household, ScheduledJob, StepRecord
from db.repo.jobs import come_back_key, schedule
from handlers.access import button_id, can_work_on, refuse
from handlers.buttons import ComeBackButton, HouseholdButton
from handlers.context import Context
from handlers.i18n import N_
from handlers.options import NUMBERED_CHANNELS
from handlers.router import STAFF, Router, out_of_date
from handlers.types import Button, Reply

router = Router("come_back")

DAYS = {"1": 1, "3": 3, "7": 7}
BAD_DATE = {
    "format": N_("Please type the date as dd/mm, e.g. 15/01."),
    "invalid": N_("There is no such date. Please type it as dd/mm, e.g. 15/01."),
    "past": N_("That date has passed. Please type a later date as dd/mm."),
}


def job_key(run_id: int) -> str:
    return come_back_key(run_id)


def offer_buttons(ctx: Context, run_id: int) -> tuple[Button, ...]:
    t = ctx.t
    return (Button(t("Come back tomorrow"), ComeBackButton(run_id, "1")),
            Button(t("In 3 days"), ComeBackButton(run_id, "3")),
            Button(t("In a week"), ComeBackButton(run_id, "7")),
            Button(t("On a date (dd/mm)"), ComeBackButton(run_id, "date")))


def with_offer(
    ctx: Context, run: FlowRun, transition: engine.Transition, replies: list[Reply]
) -> list[Reply]:
    """After a step got a Problem: the come-back choice. A blocked run's last message gets the
    buttons (before its own); a run that goes on gets them on a message of their own before the
    next step, where buttons can be pressed (Telegram; not on the numbered console and Zalo,
    where a typed number answers the next step)."""
    if not any(r.outcome == StepOutcome.BLOCKED for r in transition.records) or not replies:
        return replies
    question = ctx.t("When will you come back to it? I will remind you that day at 08:00.")
    buttons = offer_buttons(ctx, run.id)
    if run.status == RunStatus.BLOCKED:
        last = replies[-1]
        rows = (2, 2, *last.rows) if last.rows else ()
        return [*replies[:-1], replace(last, text=last.text + "\n" + question,
                                       buttons=buttons + last.buttons, rows=rows)]
    if ctx.incoming.channel in NUMBERED_CHANNELS:
        # Typed numbers answer the next step's options: a second numbered list before them
        # could not be chosen (and would read as if it could). Telegram shows it.
        return replies
    return [*replies[:-1], Reply(question, buttons=buttons), replies[-1]]


async def come_back_dates(session: AsyncSession, run_ids: Sequence[int]) -> dict[int, datetime]:
    """The pending come-back reminder of each of these runs."""
    if not run_ids:
        return {}
    jobs = await session.scalars(select(ScheduledJob).where(
        ScheduledJob.key.in_([job_key(r) for r in run_ids]), ScheduledJob.state == JobState.PENDING))
    return {int(job.payload["run_id"]): job.due_at for job in jobs}


async def _load(ctx: Context, run_id: int | None) -> tuple[FlowRun, Household] | Reply:
    run = await ctx.session.get(FlowRun, run_id) if run_id is not None else None
    if run is None or not RunStatus(run.status).open:
        return out_of_date(ctx)
    household = await ctx.session.get(Household, run.household_id)
    area = await ctx.session.get(Area, household.area_id) if household else None
    if household is None or area is None or not can_work_on(ctx, household, area):
        refuse(ctx, "come_back", f"run:{run.id}")
        return Reply(ctx.t("This household is not in your area, so you cannot open it."))
    return run, household


async def _set(ctx: Context, run: FlowRun, household: Household, day: date) -> list[Reply]:
    problem = await ctx.session.scalar(
        select(StepRecord).where(StepRecord.run_id == run.id, StepRecord.outcome == StepOutcome.BLOCKED)
        .order_by(StepRecord.id.desc()).limit(1))
    # A reason from the flow's list is a msgid, translated for the reader when the reminder is
    # made; a typed one is not in the catalogue and comes back unchanged (as on the page).
    reason = problem.reason if problem is not None and problem.reason else ""
    await schedule(ctx.session, job_key(run.id), JobKind.COME_BACK, come_back_at(day), ctx.now,
                   user_id=ctx.user.id, area_id=run.area_id,
                   payload={"run_id": run.id, "reason": reason}, rearm=True)
    if ctx.state.get("dialog") == "come_back":
        _leave(ctx)
    t = ctx.t
    return [Reply(t("I will remind you on {day} at 08:00 about {code}.", day=day.strftime("%d/%m/%Y"),
                    code=household.code),
                  buttons=(Button(t("Back to the household"), HouseholdButton(household.id)),))]


@router.button(ComeBackButton)
async def come_back_button(ctx: Context, data: ComeBackButton) -> list[Reply]:
    if not ctx.has_role(*STAFF):
        refuse(ctx, "come_back", f"run:{data.run_id}")
        return [out_of_date(ctx)]
    loaded = await _load(ctx, data.run_id)
    if isinstance(loaded, Reply):
        return [loaded]
    run, household = loaded
    today = ctx.now.astimezone(VIETNAM).date()
    if data.when in DAYS:
        return await _set(ctx, run, household, today + timedelta(days=DAYS[data.when]))
    if data.when == "date":
        # The procedure may go on past the problem: its dialog comes back after the date.
        resume = ctx.state.get("resume") if ctx.state.get("dialog") == "come_back" else dict(ctx.state)
        ctx.set_state({"dialog": "come_back", "run_id": run.id, "expects_text": True,
                       "resume": resume or None})
        return [Reply(ctx.t("Type the day to come back as dd/mm (or /cancel)."))]
    if data.when.startswith("ok:"):
        raw = data.when[3:]
        try:
            day = datetime.strptime(raw, "%Y%m%d").date()
        except ValueError:
            return [out_of_date(ctx)]
        if day <= today:
            return [out_of_date(ctx)]
        return await _set(ctx, run, household, day)
    return [out_of_date(ctx)]


@router.dialog("come_back", buttons=(ComeBackButton,))
async def come_back_text(ctx: Context, text: str) -> list[Reply]:
    loaded = await _load(ctx, button_id(str(ctx.state.get("run_id", ""))))
    if isinstance(loaded, Reply):
        ctx.set_state(None)
        return [loaded]
    run, household = loaded
    today = ctx.now.astimezone(VIETNAM).date()
    parsed = parse_come_back(text, today)
    if isinstance(parsed, BadDate):
        return [Reply(ctx.t(BAD_DATE[parsed.reason]))]
    if parsed.far:
        t = ctx.t
        # "1" now answers the confirmation (another date may still be typed).
        ctx.set_state({"dialog": "come_back", "run_id": run.id, "expects_text": False,
                       "resume": ctx.state.get("resume")})
        shown = parsed.day.strftime("%d/%m/%Y")
        return [Reply(t("{day} is more than six months away. Remind you then?", day=shown),
                      buttons=(Button(t("Yes, on {day}", day=shown),
                                      ComeBackButton(run.id, "ok:" + parsed.day.strftime("%Y%m%d"))),))]
    return await _set(ctx, run, household, parsed.day)


@router.cancel
async def cancel_come_back(ctx: Context, args: str) -> list[Reply]:
    if ctx.state.get("dialog") != "come_back":
        return []
    _leave(ctx)
    return [Reply(ctx.t("No reminder set."))]


def _leave(ctx: Context) -> None:
    """Out of the date dialog, back to what it interrupted (a procedure that went on), if any."""
    resume = ctx.state.get("resume")
    ctx.set_state(resume if isinstance(resume, dict) and resume.get("dialog") else None)
