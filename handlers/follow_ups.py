"""Follow-ups: what GoCua says first, built when due (handlers/follow_up_runner.py runs them).

Each message goes through the notices table (db/repo/notices.py) to the person's most recent
account (the channel they last joined from), in their language; the notice relay of that
channel sends it once (the console shows it when the person's chat opens). A person with
/reminders off gets none of these, except announcements (handlers/announce.py).

- come back (COME_BACK): a run with a Problem, on the day the volunteer chose, at 08:00;
- paused runs (PAUSED_LOOK): a run untouched for the area's `paused_after_days` (default 3)
  reminds its volunteer once, then weekly while it stays untouched;
- Monday 07:30: the volunteer's digest (nothing sent when there is nothing to say) and the
  leader's digest;
- visit requests: untaken after 2 working hours → the area's leaders, with "Assign to…";
  taken but not closed after 3 days → the volunteer, after 7 days → the leaders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.flow_model import FlowRegistry
from conversations.follow_up_kinds import JobKind
from conversations.follow_up_time import add_working_hours, next_sendable
from conversations.local_time import VIETNAM
from conversations.state import RunStatus
from db.models import (
    Area,
    FlowRun,
    Household,
    Identity,
    Membership,
    ScheduledJob,
    StepRecord,
    SupportRequest,
    User,
)
from db.repo.areas import within
from db.repo.audit import audit
from db.repo.jobs import schedule
from db.repo.notices import add_notices
from db.repo.support import addresses_of, take_request, volunteers_covering
from handlers.access import covers, refuse
from handlers.buttons import AssignButton, RequestButton, RunButton
from handlers.context import Context
from handlers.i18n import N_, RESIDENT, Translator, translator
from handlers.router import LEADERS, Router, out_of_date
from handlers.types import Address, Button, Reply, button_label

UNTAKEN_HOURS = 2  # working hours a visit request may wait for a volunteer
OPEN_DAYS_VOLUNTEER = 3
OPEN_DAYS_LEADERS = 7
PAUSED_AGAIN = timedelta(days=7)
INACTIVE_DAYS = 14
MAX_ASSIGN = 8  # volunteers offered under "Assign to…"

router = Router("follow_ups")


# -- delivery -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipient:
    user_id: int
    channel: str
    chat_id: str
    locale: str | None
    reminders_off: bool
    resident: bool = False

    def t(self) -> Translator:
        return translator(self.locale, RESIDENT if self.resident else None)


async def recipients(session: AsyncSession, user_ids: Iterable[int]) -> list[Recipient]:
    """Each user's most recent account (the last identity they joined from), with language and
    opt-out; users without any account are left out."""
    ids = sorted(set(user_ids))
    if not ids:
        return []
    latest = (select(Identity.user_id, func.max(Identity.id).label("identity_id"))
              .where(Identity.user_id.in_(ids)).group_by(Identity.user_id).subquery())
    staff = set(await session.scalars(
        select(Membership.user_id).where(Membership.user_id.in_(ids)).distinct()))
    rows = await session.execute(
        select(User.id, Identity.channel, Identity.external_id, User.locale, User.reminders_off)
        .join(latest, latest.c.user_id == User.id)
        .join(Identity, Identity.id == latest.c.identity_id)
        .order_by(User.id)
    )
    return [Recipient(uid, channel, chat_id, locale, bool(off), resident=uid not in staff)
            for uid, channel, chat_id, locale, off in rows]


async def send_to(
    session: AsyncSession, people: Sequence[Recipient], build: Callable[[Recipient], Reply | None],
    now: datetime, origin: str, *, respect_opt_out: bool = True,
) -> int:
    """Store one notice per person (built in their language); how many were stored."""
    rows = []
    for person in people:
        if respect_opt_out and person.reminders_off:
            continue
        reply = build(person)
        if reply is None:
            continue
        to = Address(person.channel, person.chat_id)
        rows.append((person.channel, person.chat_id, replace(reply, to=to).to_json()))
    return await add_notices(session, rows, now, origin=origin)


# -- scheduling, with the event ------------------------------------------------------------------

async def schedule_visit_untaken(session: AsyncSession, request: SupportRequest, now: datetime) -> None:
    await schedule(session, f"visit_untaken:{request.id}", JobKind.VISIT_UNTAKEN,
                   add_working_hours(now, UNTAKEN_HOURS), now, area_id=request.area_id,
                   payload={"request_id": request.id})


async def schedule_visit_open(session: AsyncSession, request: SupportRequest, now: datetime) -> None:
    for days in (OPEN_DAYS_VOLUNTEER, OPEN_DAYS_LEADERS):
        await schedule(session, f"visit_open:{request.id}:{days}", JobKind.VISIT_OPEN,
                       next_sendable(now + timedelta(days=days)), now, area_id=request.area_id,
                       payload={"request_id": request.id, "days": days})


# -- builders, one per kind -----------------------------------------------------------------------

@dataclass
class JobContext:
    session: AsyncSession
    now: datetime
    flows: FlowRegistry | None


def flow_title(flows: FlowRegistry | None, t: Translator, flow_id: str) -> str:
    if flows is None or flow_id not in flows:
        return flow_id
    return t(flows.title(flow_id))


async def run_come_back(jc: JobContext, job: ScheduledJob) -> int:
    """"Household HV-TL-004 (Nguyễn Thị Phấm): VNeID stopped at “Chip card not issued yet” —
    Resume", if the run is still open."""
    run = await jc.session.get(FlowRun, int(job.payload.get("run_id", 0)))
    if run is None or not RunStatus(run.status).open:
        return 0
    household = await jc.session.get(Household, run.household_id)
    if household is None or household.archived_at is not None:
        return 0
    reason = str(job.payload.get("reason") or "")

    def build(person: Recipient) -> Reply:
        t = person.t()
        shown = t(reason) if reason else "?"
        text = t("Household {code} ({name}): {flow} stopped at “{reason}”. You planned to come back today.",
                 code=household.code, name=household.head_name,
                 flow=flow_title(jc.flows, t, run.flow_id), reason=shown)
        return Reply(text, buttons=(Button(t("Resume"), RunButton(run.id, "resume")),))

    # Whoever chose the day (a colleague covering the household may have), else the run's volunteer.
    who = job.user_id if job.user_id is not None else run.volunteer_id
    return await send_to(jc.session, await recipients(jc.session, [who]), build, jc.now, JobKind.COME_BACK)


async def plan_paused(jc: JobContext, limit: int = 500) -> int:
    """Remind volunteers of runs untouched for their area's `paused_after_days`, once, then
    weekly while untouched: one message per volunteer with a Resume button per run."""
    now = jc.now
    due: dict[int, list[tuple[FlowRun, str, str]]] = {}
    # One query per threshold in use (a handful), so that only runs due now are read.
    for days in sorted(set(await jc.session.scalars(select(Area.paused_after_days).distinct()))):
        rows = (await jc.session.execute(
            select(FlowRun, Household.code, Household.head_name)
            .join(Area, Area.id == FlowRun.area_id).join(Household, Household.id == FlowRun.household_id)
            .where(FlowRun.status == RunStatus.ACTIVE, Area.paused_after_days == days,
                   FlowRun.updated_at <= now - timedelta(days=days), Household.archived_at.is_(None),
                   or_(FlowRun.paused_reminded_at.is_(None), FlowRun.paused_reminded_at < FlowRun.updated_at,
                       FlowRun.paused_reminded_at <= now - PAUSED_AGAIN))
            .order_by(FlowRun.volunteer_id, FlowRun.updated_at).limit(limit)
            # Two workers planning at once (PostgreSQL) remind of different runs.
            .with_for_update(skip_locked=True, of=FlowRun)
        )).all()
        for run, code, name in rows:
            due.setdefault(run.volunteer_id, []).append((run, code, name))
    sent = 0
    for volunteer_id, runs in due.items():
        def build(person: Recipient, runs: list[tuple[FlowRun, str, str]] = runs) -> Reply:
            t = person.t()
            lines = [t("Procedures waiting for you:")]
            buttons = []
            for run, code, name in runs[:5]:
                days = (now - run.updated_at).days
                title = flow_title(jc.flows, t, run.flow_id)
                lines.append("• " + t.plural("{code} ({name}): {flow}, untouched for {days} day",
                                             "{code} ({name}): {flow}, untouched for {days} days",
                                             days, code=code, name=name, flow=title, days=str(days)))
                label = button_label(t("Resume {code}", code=code))
                buttons.append(Button(label, RunButton(run.id, "resume")))
            if len(runs) > 5:
                lines.append(t("…and {n} more on /households.", n=len(runs) - 5))
            lines.append(t("Turn these reminders off with /reminders off."))
            return Reply("\n".join(lines), buttons=tuple(buttons))

        sent += await send_to(jc.session, await recipients(jc.session, [volunteer_id]), build, now,
                              JobKind.PAUSED_LOOK)
        await jc.session.execute(
            update(FlowRun).where(FlowRun.id.in_([r.id for r, _, _ in runs]))
            .values(paused_reminded_at=now).execution_options(synchronize_session=False))
    return sent


async def run_volunteer_digest(jc: JobContext, job: ScheduledJob) -> int:
    """Monday's digest for one volunteer; nothing when there is nothing to say."""
    session, now = jc.session, jc.now
    uid = job.user_id
    if uid is None:
        return 0
    households = list(await session.execute(
        select(Household.id, Household.code, Household.last_step_at)
        .where(Household.volunteer_id == uid, Household.archived_at.is_(None)).order_by(Household.code)))
    not_reached = [code for _, code, last in households if last is None]
    open_runs = list(await session.execute(
        select(FlowRun.id, FlowRun.flow_id, FlowRun.status, FlowRun.updated_at, Household.code)
        .join(Household, Household.id == FlowRun.household_id)
        .where(FlowRun.volunteer_id == uid, FlowRun.status.in_([RunStatus.ACTIVE, RunStatus.BLOCKED]),
               Household.archived_at.is_(None))
        .order_by(Household.code)))
    waiting = [row for row in open_runs
               if row.status == RunStatus.BLOCKED or row.updated_at <= now - timedelta(days=3)]
    come_backs = {int(j.payload.get("run_id", 0)): j.due_at for j in await session.scalars(
        select(ScheduledJob).where(ScheduledJob.kind == JobKind.COME_BACK, ScheduledJob.user_id == uid,
                                   ScheduledJob.state == "pending"))}
    steps = int(await session.scalar(
        select(func.count()).select_from(StepRecord)
        .where(StepRecord.user_id == uid, StepRecord.recorded_at >= now - timedelta(days=7))) or 0)
    if not not_reached and not waiting and not steps:
        return 0

    def build(person: Recipient) -> Reply:
        t = person.t()
        lines = [t("Your week ahead:")]
        if not_reached:
            lines.append(t("Households not reached yet ({n}): {codes}", n=len(not_reached),
                           codes=", ".join(not_reached[:10]) + ("…" if len(not_reached) > 10 else "")))
        if waiting:
            lines.append(t("Procedures blocked or paused ({n}):", n=len(waiting)))
            for row in waiting[:10]:
                state = t("blocked") if row.status == RunStatus.BLOCKED else t("paused")
                line = f"• {row.code}: {flow_title(jc.flows, t, row.flow_id)} ({state})"
                if row.id in come_backs:
                    day = come_backs[row.id].astimezone(VIETNAM).strftime("%d/%m")
                    line += " — " + t("come back on {day}", day=day)
                lines.append(line)
        lines.append(t.plural("Last week: {count} step recorded.", "Last week: {count} steps recorded.",
                              steps, count=str(steps)))
        lines.append(t("Turn these reminders off with /reminders off."))
        return Reply("\n".join(lines))

    return await send_to(session, await recipients(session, [uid]), build, now, JobKind.VOLUNTEER_DIGEST)


async def run_leader_digest(jc: JobContext, job: ScheduledJob) -> int:
    """Monday's digest for one leader and one of their areas."""
    session, now = jc.session, jc.now
    area = await session.get(Area, job.area_id) if job.area_id else None
    if area is None or job.user_id is None:
        return 0
    in_area = (Household.area_id == Area.id) & within(Area.code, area.code) & Household.archived_at.is_(None)
    total, reached = (await session.execute(
        select(func.count(), func.count(Household.last_step_at))
        .select_from(Household).join(Area, in_area))).one()
    # Households reached for the first time in the last 7 days: the change since last week.
    first_steps = (
        select(FlowRun.household_id)
        .join(StepRecord, StepRecord.run_id == FlowRun.id).join(Area, Area.id == FlowRun.area_id)
        .where(within(Area.code, area.code))
        .group_by(FlowRun.household_id)
        .having(func.min(StepRecord.recorded_at) >= now - timedelta(days=7))
    ).subquery()
    new = int(await session.scalar(select(func.count()).select_from(first_steps)) or 0)
    volunteers = set(await session.scalars(
        select(Membership.user_id).join(Area, Area.id == Membership.area_id)
        .where(within(Area.code, area.code), Membership.role == "volunteer")))
    active = set(await session.scalars(
        select(StepRecord.user_id).where(StepRecord.user_id.in_(volunteers),
                                         StepRecord.recorded_at >= now - timedelta(days=INACTIVE_DAYS))
        .distinct())) if volunteers else set()
    inactive_names = list(await session.scalars(
        select(User.display_name).where(User.id.in_(volunteers - active)).order_by(User.display_name)))
    waiting_requests = int(await session.scalar(
        select(func.count()).select_from(SupportRequest).join(Area, Area.id == SupportRequest.area_id)
        .where(within(Area.code, area.code), SupportRequest.status == "open")) or 0)

    def build(person: Recipient) -> Reply:
        t = person.t()
        target = f" / {area.target_households}" if area.target_households else ""
        lines = [t("Weekly digest · {area}", area=area.name),
                 t("Households reached: {reached}{target} (of {total} registered), +{new} this week",
                   reached=reached, target=target, total=total, new=new)]
        if inactive_names:
            lines.append(t("Volunteers inactive for {days} days ({n}): {names}", days=INACTIVE_DAYS,
                           n=len(inactive_names), names=", ".join(inactive_names[:10])))
        lines.append(t("Visit requests waiting: {n}", n=waiting_requests))
        lines.append(t("Turn these reminders off with /reminders off."))
        return Reply("\n".join(lines))

    return await send_to(session, await recipients(session, [job.user_id]), build, now, JobKind.LEADER_DIGEST)


async def leaders_of(session: AsyncSession, area: Area | None) -> list[int]:
    """Leaders of the area or an area above it (admins when the request names no area)."""
    if area is None:
        return list(await session.scalars(
            select(Membership.user_id).where(Membership.role == "admin").distinct()))
    parts = area.code.split(".")
    ancestors = [".".join(parts[: i + 1]) for i in range(len(parts))]
    return list(await session.scalars(
        select(Membership.user_id).join(Area, Area.id == Membership.area_id)
        .where(Area.code.in_(ancestors), Membership.role == "leader").distinct()))


async def run_visit_untaken(jc: JobContext, job: ScheduledJob) -> int:
    """Still open after 2 working hours: the leaders, with "Assign to…" the area's volunteers."""
    session = jc.session
    request = await session.get(SupportRequest, int(job.payload.get("request_id", 0)))
    if request is None or request.status != "open":
        return 0
    area = await session.get(Area, request.area_id) if request.area_id else None
    volunteer_ids = await volunteers_covering(session, area) if area is not None else []
    names: dict[int, str] = {uid: name for uid, name in await session.execute(
        select(User.id, User.display_name).where(User.id.in_(volunteer_ids)).order_by(User.display_name))}
    waited = jc.now - request.created_at

    def build(person: Recipient) -> Reply:
        t = person.t()
        hours = int(waited.total_seconds() // 3600)
        lines = [t.plural("Visit request #{id}{area} has waited {hours} hour: nobody took it.",
                          "Visit request #{id}{area} has waited {hours} hours: nobody took it.",
                          hours, id=request.id, area=f" · {area.name}" if area else "", hours=str(hours)),
                 f"“{request.question}”"]
        buttons = [Button(button_label(t("Assign to {name}", name=name)), AssignButton(request.id, uid))
                   for uid, name in list(names.items())[:MAX_ASSIGN]]
        if buttons:
            lines.append(t("Assign to…"))
        else:
            lines.append(t("No volunteer covers this area yet: take it yourself or invite one."))
        buttons.append(Button(t("Take it"), RequestButton(request.id, "take")))
        return Reply("\n".join(lines), buttons=tuple(buttons))

    return await send_to(session, await recipients(session, await leaders_of(session, area)), build, jc.now,
                         JobKind.VISIT_UNTAKEN)


async def run_visit_open(jc: JobContext, job: ScheduledJob) -> int:
    """Taken, not closed: after 3 days the volunteer who took it, after 7 days the leaders."""
    session = jc.session
    request = await session.get(SupportRequest, int(job.payload.get("request_id", 0)))
    if request is None or request.status != "taken" or request.volunteer_id is None:
        return 0
    days = int(job.payload.get("days", OPEN_DAYS_VOLUNTEER))
    taker = await session.get(User, request.volunteer_id)
    area = await session.get(Area, request.area_id) if request.area_id else None

    def build(person: Recipient) -> Reply:
        t = person.t()
        if days < OPEN_DAYS_LEADERS:
            text = t("You took visit request #{id} {days} days ago and it is not closed yet: “{question}”. "
                     "Close it when done.", id=request.id, days=days, question=request.question)
            return Reply(text, buttons=(Button(t("Close it"), RequestButton(request.id, "close")),))
        text = t("Visit request #{id}{area}, taken by {name} {days} days ago, is still not closed: "
                 "“{question}”.",
                 id=request.id, area=f" · {area.name}" if area else "",
                 name=taker.display_name if taker else "?", days=days, question=request.question)
        return Reply(text)

    people = [request.volunteer_id] if days < OPEN_DAYS_LEADERS else await leaders_of(session, area)
    return await send_to(session, await recipients(session, people), build, jc.now, JobKind.VISIT_OPEN)


# -- "Assign to…" --------------------------------------------------------------------------------

ASSIGNED = N_("Request #{id} is now {name}'s.")


@router.button(AssignButton)
async def assign(ctx: Context, data: AssignButton) -> list[Reply]:
    """A leader gives an open visit request to a volunteer of its area (checked here again)."""
    from handlers import visit_limits, visits  # they schedule follow-ups: imported here, not above
    request = await ctx.session.get(SupportRequest, data.request_id)
    if request is None:
        return [out_of_date(ctx)]
    area = await ctx.session.get(Area, request.area_id) if request.area_id else None
    allowed = covers(ctx, area.code, LEADERS) if area is not None else ctx.has_role("admin")
    if not allowed:
        refuse(ctx, "request:assign", f"request:{request.id}")
        return [Reply(ctx.t("This request is not in your area."))]
    volunteer = await ctx.session.get(User, data.user_id)
    if volunteer is None or area is None or data.user_id not in await volunteers_covering(ctx.session, area):
        return [out_of_date(ctx)]
    if request.status != "open" or not await take_request(ctx.session, request.id, volunteer.id, ctx.now):
        return [Reply(ctx.t("Request #{id} was already taken.", id=request.id))]
    await ctx.session.refresh(request)
    audit(ctx.session, ctx.now, ctx.user.id, "request.assign", f"request:{request.id}", {"to": volunteer.id})
    await schedule_visit_open(ctx.session, request, ctx.now)
    replies = [Reply(ctx.t(ASSIGNED, id=request.id, name=volunteer.display_name))]
    for person in await recipients(ctx.session, [volunteer.id]):
        t = person.t()
        lines = [t("{leader} gave you visit request #{id}: “{question}”", leader=ctx.user.display_name,
                   id=request.id, question=request.question)]
        if request.phone:
            lines.append(f"☎ {request.phone}")
        if request.address:
            lines.append(f"📍 {request.address}")
        how, close = visit_limits.close_offer(t, person.channel, request.id)  # a word where numbers are
        to = Address(person.channel, person.chat_id)
        replies.append(Reply("\n".join(lines + how), buttons=close, to=to))
    # Every copy of the request's notice (volunteers' Take it) says who has it now.
    replies += await visits.taken_edits(ctx, request, volunteer.display_name)
    for _, channel, chat_id in await addresses_of(ctx.session, [request.requester_id]):
        requester = await ctx.session.get(User, request.requester_id)
        t = translator(requester.locale if requester else None, RESIDENT)
        replies.append(Reply(t("Volunteer {name} will help you (request #{id}).", name=volunteer.display_name,
                               id=request.id), to=Address(channel, chat_id)))
    return replies


BUILDERS: dict[str, Callable[[JobContext, ScheduledJob], Any]] = {
    JobKind.COME_BACK: run_come_back,
    JobKind.VOLUNTEER_DIGEST: run_volunteer_digest,
    JobKind.LEADER_DIGEST: run_leader_digest,
    JobKind.VISIT_UNTAKEN: run_visit_untaken,
    JobKind.VISIT_OPEN: run_visit_open,
}
