"""/announce: a leader (or admin) tells the volunteers, the leaders or the residents of an area.

/announce lists the last announcements with delivered / failed counts and asks for the area (in
the leader's scope), then the audience, then the text; "This goes to 68 volunteers in Phường
Hải Vân — Send / Cancel" before anything is sent. Sent: one notice per recipient (each to their
most recent account, handlers/follow_ups.py `recipients`), written with the announcement and its
audit entry in one transaction; the notice relays send them paced to each platform's limits
(bot/channels/pacer.py). In quiet hours (21:00–07:00) the announcement waits for 07:00 (a
scheduled job). Residents get announcements only if they have written to the bot from that area
(a visit request, or a household member linked to their account) and not turned them off with
/reminders off; staff get them even with reminders off.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, union
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.follow_up_kinds import Audience, JobKind
from conversations.follow_up_time import is_quiet, next_sendable
from conversations.local_time import VIETNAM
from db.models import Announcement, Area, Household, Membership, Resident, ScheduledJob, SupportRequest
from db.repo.areas import within
from db.repo.audit import audit
from db.repo.jobs import schedule
from db.repo.notices import origin_counts
from handlers.access import covers, refuse
from handlers.buttons import AnnounceButton, button_id
from handlers.choices import wrong_answer
from handlers.context import Context
from handlers.follow_ups import JobContext, Recipient, recipients, send_to
from handlers.i18n import N_
from handlers.router import LEADERS, Router, out_of_date
from handlers.types import Button, Reply, button_label

MAX_TEXT = 3000  # fits one Telegram message (4096) and two Zalo ones, with the header
SHOWN = 5  # last announcements listed
MAX_AREAS = 12

AUDIENCE_NAMES: dict[str, str] = {Audience.VOLUNTEERS: N_("Volunteers"), Audience.LEADERS: N_("Leaders"),
                  Audience.RESIDENTS: N_("Residents who wrote to GoCua")}

router = Router("announce")


async def audience_of(session: AsyncSession, area: Area, audience: str) -> list[int]:
    """The user ids an announcement to `audience` of `area` (and the areas under it) reaches."""
    if audience in (Audience.VOLUNTEERS, Audience.LEADERS):
        role = "volunteer" if audience == Audience.VOLUNTEERS else "leader"
        return list(await session.scalars(
            select(Membership.user_id).join(Area, Area.id == Membership.area_id)
            .where(within(Area.code, area.code), Membership.role == role).distinct()))
    wrote = union(
        select(SupportRequest.requester_id.label("uid")).join(Area, Area.id == SupportRequest.area_id)
        .where(within(Area.code, area.code)),
        select(Resident.user_id.label("uid")).join(Household, Household.id == Resident.household_id)
        .join(Area, Area.id == Household.area_id)
        .where(within(Area.code, area.code), Resident.user_id.is_not(None)),
    ).subquery()
    staff = select(Membership.user_id)
    return list(await session.scalars(select(wrote.c.uid).where(wrote.c.uid.not_in(staff)).distinct()))


async def deliver(session: AsyncSession, announcement: Announcement, now: datetime) -> int:
    """One notice per recipient now (in their language: the header; the text as written)."""
    area = await session.get(Area, announcement.area_id)
    if area is None:
        return 0
    people = await recipients(session, await audience_of(session, area, announcement.audience))
    residents = announcement.audience == Audience.RESIDENTS

    def build(person: Recipient) -> Reply:
        t = person.t()
        return Reply(t("📢 Announcement · {area}", area=area.name) + "\n" + announcement.text)

    return await send_to(session, people, build, now, f"announcement:{announcement.id}",
                         respect_opt_out=residents)


async def deliver_job(jc: JobContext, job: ScheduledJob) -> int:
    announcement = await jc.session.get(Announcement, int(job.payload.get("announcement_id", 0)))
    return await deliver(jc.session, announcement, jc.now) if announcement is not None else 0


def _areas_in_scope(ctx: Context) -> list[tuple[int, str, str]]:
    """(area id, code, name) of the areas the user leads (admins: theirs too)."""
    return sorted({(g.area_id, g.area_code, g.area_name) for g in ctx.grants if g.role in LEADERS},
                  key=lambda a: a[1])


async def _in_scope(ctx: Context, area_id: int | None) -> Area | None:
    area = await ctx.session.get(Area, area_id) if area_id is not None else None
    if area is None or not covers(ctx, area.code, LEADERS):
        return None
    return area


@router.command("/announce", roles=LEADERS, order=32,
                help=N_("send a message to an area's volunteers, leaders or residents"))
async def announce(ctx: Context, args: str) -> list[Reply]:
    t = ctx.t
    lines = await _history(ctx)
    areas = _areas_in_scope(ctx)
    subs: list[tuple[int, str, str]] = []
    for area_id, _code, _name in areas:
        subs += [(a.id, a.code, a.name) for a in await ctx.session.scalars(
            select(Area).where(Area.parent_id == area_id).order_by(Area.name))]
    choices = [*areas, *(s for s in subs if s not in areas)][:MAX_AREAS]
    ctx.set_state({"dialog": "announce", "step": "area"})
    lines.append(t("Which area is the announcement for?"))
    buttons = tuple(Button(button_label(name), AnnounceButton("area", str(area_id)))
                    for area_id, _, name in choices)
    return [Reply("\n".join(lines), buttons=(*buttons, Button(t("Cancel"), AnnounceButton("cancel"))))]


async def _history(ctx: Context) -> list[str]:
    t = ctx.t
    codes = [code for _, code, _ in _areas_in_scope(ctx)]
    if not codes:
        return []
    from sqlalchemy import or_

    rows = list(await ctx.session.execute(
        select(Announcement, Area.name).join(Area, Area.id == Announcement.area_id)
        .where(or_(*(within(Area.code, code) for code in codes)))
        .order_by(Announcement.id.desc()).limit(SHOWN)))
    if not rows:
        return []
    counts = await origin_counts(ctx.session, [f"announcement:{a.id}" for a, _ in rows])
    lines = [t("Last announcements:")]
    for announcement, area_name in rows:
        delivered, failed, waiting = counts[f"announcement:{announcement.id}"]
        day = announcement.created_at.astimezone(VIETNAM).strftime("%d/%m %H:%M")
        short = announcement.text if len(announcement.text) <= 40 else announcement.text[:39] + "…"
        audience = t(AUDIENCE_NAMES.get(announcement.audience, announcement.audience))
        if not (delivered or failed or waiting) and announcement.recipients:
            # Its notices are pruned after 30 days: what stays is how many it went to.
            line = t("{day} · {area} · {audience}: “{text}” — sent to {count} (delivery figures are "
                     "kept 30 days)", day=day, area=area_name, audience=audience, text=short,
                     count=t.number(announcement.recipients))
        else:
            line = t("{day} · {area} · {audience}: “{text}” — {delivered} delivered, {failed} failed",
                     day=day, area=area_name, audience=audience, text=short, delivered=delivered,
                     failed=failed)
            if waiting:
                line += " " + t("({n} waiting)", n=waiting)
        lines.append("• " + line)
    return [*lines, ""]


@router.button(AnnounceButton)
async def announce_button(ctx: Context, data: AnnounceButton) -> list[Reply]:
    t = ctx.t
    if not ctx.has_role(*LEADERS):
        refuse(ctx, f"announce:{data.verb}", "announce")
        return [out_of_date(ctx)]
    state = dict(ctx.state)
    if data.verb == "cancel":
        ctx.set_state(None)
        return [Reply(t("Cancelled: nothing was sent. /announce starts again."))]
    if state.get("dialog") != "announce":
        return [out_of_date(ctx)]
    if data.verb == "area":
        area = await _in_scope(ctx, button_id(data.arg))
        if area is None:
            refuse(ctx, "announce:area", f"area:{data.arg[:20]}")
            return [Reply(t("This area is not in your scope."))]
        ctx.set_state({"dialog": "announce", "step": "audience", "area_id": area.id})
        buttons = tuple(Button(t(name), AnnounceButton("to", str(kind)))
                        for kind, name in AUDIENCE_NAMES.items())
        return [Reply(t("{area}: who is it for?", area=area.name),
                      buttons=(*buttons, Button(t("Cancel"), AnnounceButton("cancel"))))]
    area = await _in_scope(ctx, state.get("area_id"))
    if area is None:
        return [out_of_date(ctx)]
    if data.verb == "to" and data.arg in set(Audience):
        ctx.set_state({"dialog": "announce", "step": "text", "area_id": area.id, "audience": data.arg,
                       "expects_text": True})
        return [Reply(t("Type the announcement (at most {n} characters), or /cancel.", n=MAX_TEXT))]
    if data.verb == "send" and state.get("step") == "confirm" and state.get("text"):
        return await _send(ctx, area, str(state["audience"]), str(state["text"]))
    return [out_of_date(ctx)]


def _count_text(ctx: Context, n: int, audience: str, area: str) -> str:
    t = ctx.t
    count = str(n)
    if audience == Audience.VOLUNTEERS:
        return t.plural("This goes to {count} volunteer in {area}.",
                        "This goes to {count} volunteers in {area}.", n, count=count, area=area)
    if audience == Audience.LEADERS:
        return t.plural("This goes to {count} leader in {area}.", "This goes to {count} leaders in {area}.",
                        n, count=count, area=area)
    return t.plural("This goes to {count} resident in {area}.", "This goes to {count} residents in {area}.",
                    n, count=count, area=area)


@router.dialog("announce", buttons=(AnnounceButton,))
async def announce_text(ctx: Context, text: str) -> list[Reply]:
    t = ctx.t
    state = dict(ctx.state)
    if state.get("step") in ("area", "audience"):  # a typed word where a button was asked for
        return wrong_answer(ctx)
    area = await _in_scope(ctx, state.get("area_id"))
    if area is None or state.get("step") not in ("text", "confirm") or not state.get("audience"):
        ctx.set_state(None)
        return [out_of_date(ctx)]
    body = text.strip()
    if state.get("step") == "confirm" and body.isdigit() and len(body) <= 2:
        # A lone number answers the numbered Send / Cancel (Zalo, console), never a new text.
        if body in ("1", "2"):
            return await announce_button(ctx, AnnounceButton("send" if body == "1" else "cancel"))
        return wrong_answer(ctx)
    if not body:
        return [Reply(t("The announcement is empty. Type its text, or /cancel."))]
    if len(body) > MAX_TEXT:
        # (The core keeps the first 4000 characters of a message: the length shown would be wrong.)
        return [Reply(t("The announcement is longer than {max} characters. Shorten it and send it again, "
                        "or /cancel.", max=MAX_TEXT))]
    audience = str(state["audience"])
    people = await recipients(ctx.session, await audience_of(ctx.session, area, audience))
    if audience == Audience.RESIDENTS:
        people = [p for p in people if not p.reminders_off]
    ctx.set_state({"dialog": "announce", "step": "confirm", "area_id": area.id, "audience": audience,
                   "text": body, "expects_text": True})
    lines = [_count_text(ctx, len(people), audience, area.name), "", body]
    if is_quiet(ctx.now):
        lines.append("")
        lines.append(t("It is quiet hours now (21:00–07:00): it will be sent at 07:00."))
    buttons = (Button(t("Send"), AnnounceButton("send")), Button(t("Cancel"), AnnounceButton("cancel")))
    return [Reply("\n".join(lines), buttons=buttons)]


async def _send(ctx: Context, area: Area, audience: str, text: str) -> list[Reply]:
    t = ctx.t
    ctx.set_state(None)
    send_at = next_sendable(ctx.now)
    announcement = Announcement(area_id=area.id, audience=audience, text=text, author_id=ctx.user.id,
                                created_at=ctx.now, send_at=send_at, recipients=0)
    ctx.session.add(announcement)
    await ctx.session.flush()
    details: dict[str, Any] = {"area": area.code, "audience": audience, "chars": len(text)}
    if send_at > ctx.now:
        people = await recipients(ctx.session, await audience_of(ctx.session, area, audience))
        announcement.recipients = len([p for p in people
                                       if audience != Audience.RESIDENTS or not p.reminders_off])
        await schedule(ctx.session, f"announcement:{announcement.id}", JobKind.ANNOUNCEMENT, send_at, ctx.now,
                       area_id=area.id, payload={"announcement_id": announcement.id})
        n = announcement.recipients
        answer = t.plural("Scheduled: it goes out at 07:00 to {count} person.",
                          "Scheduled: it goes out at 07:00 to {count} people.", n, count=str(n))
    else:
        announcement.recipients = await deliver(ctx.session, announcement, ctx.now)
        n = announcement.recipients
        answer = t.plural("Sent to {count} person. /announce shows what was delivered.",
                          "Sent to {count} people. /announce shows what was delivered.", n, count=str(n))
    details["recipients"] = announcement.recipients
    audit(ctx.session, ctx.now, ctx.user.id, "announce", f"announcement:{announcement.id}", details)
    return [Reply(answer)]
