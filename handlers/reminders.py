"""/reminders on|off: whether GoCua may write first (come-back dates, paused procedures,
digests, escalations). Announcements from leaders still reach volunteers and leaders; a
resident with reminders off gets no announcements either."""

from __future__ import annotations

from db.repo.audit import audit
from handlers.context import Context
from handlers.i18n import N_
from handlers.router import EVERYONE, Router
from handlers.types import Reply

router = Router("reminders")


@router.command("/reminders", roles=EVERYONE, help=N_("turn reminders on or off"), order=60)
async def reminders(ctx: Context, args: str) -> list[Reply]:
    t = ctx.t
    word = args.strip().lower()
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
