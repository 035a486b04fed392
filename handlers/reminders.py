"""/reminders on|off: whether GoCua may write first (come-back dates, paused procedures,
digests, escalations). Announcements from leaders still reach volunteers and leaders; a
resident with reminders off gets no announcements either.

Leaders: `/reminders paused N` — a procedure untouched for N days (1–60; default 3) reminds its
volunteer, in the areas they lead and every area below them."""

from __future__ import annotations

from sqlalchemy import or_, update

from db.models import Area
from db.repo.areas import within
from db.repo.audit import audit
from handlers.context import Context
from handlers.i18n import N_
from handlers.router import EVERYONE, LEADERS, Router
from handlers.types import Reply

MAX_PAUSED_DAYS = 60

router = Router("reminders")


@router.command("/reminders", roles=EVERYONE, help=N_("turn reminders on or off"), order=60)
async def reminders(ctx: Context, args: str) -> list[Reply]:
    t = ctx.t
    word = args.strip().lower()
    if word.startswith("paused") and ctx.has_role(*LEADERS):
        return await _paused_after(ctx, word.removeprefix("paused").strip())
    if word in ("on", "bật", "bat"):
        ctx.user.reminders_off = False
    elif word in ("off", "tắt", "tat"):
        ctx.user.reminders_off = True
    elif word:
        return [Reply(t("Write /reminders on or /reminders off."))]
    if word:
        audit(ctx.session, ctx.now, ctx.user.id, "reminders", f"user:{ctx.user.id}",
              {"off": ctx.user.reminders_off})
    if ctx.user.reminders_off:
        text = t("Reminders are off. Announcements from your leaders still arrive. Turn them on with "
                 "/reminders on.") if ctx.role != "resident" else t(
                 "Reminders and announcements are off. Turn them on with /reminders on.")
    else:
        text = t("Reminders are on: GoCua writes to you about dates you chose, paused procedures and "
                 "the weekly digest (never 21:00–07:00). Turn them off with /reminders off.")
    return [Reply(text)]


async def _paused_after(ctx: Context, raw: str) -> list[Reply]:
    t = ctx.t
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAUSED_DAYS:
        return [Reply(t("Write /reminders paused and a number of days from 1 to {max}, e.g. "
                        "/reminders paused 5.", max=MAX_PAUSED_DAYS))]
    days = int(raw)
    led = [g for g in ctx.grants if g.role in LEADERS]
    await ctx.session.execute(
        update(Area).where(or_(*(within(Area.code, g.area_code) for g in led)))
        .values(paused_after_days=days).execution_options(synchronize_session=False))
    for grant in led:
        audit(ctx.session, ctx.now, ctx.user.id, "area.paused_after_days", f"area:{grant.area_id}",
              {"days": days})
    names = ", ".join(sorted({g.area_name for g in led}))
    return [Reply(t.plural("A procedure untouched for {count} day now reminds its volunteer ({areas}).",
                           "A procedure untouched for {count} days now reminds its volunteer ({areas}).",
                           days, count=str(days), areas=names))]
