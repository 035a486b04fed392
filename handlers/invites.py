"""/invite: leaders and admins make invite codes for their areas, with a sheet to print.

The dialog asks the role (volunteers, or leaders of an area below one's own), the area (within
one's leader/admin areas; a button, or its name typed) and how many (1 to 100). It makes that
many single-use, expiring invites (db/repo/invites.py) and answers with the codes, each with its
Telegram deep link (`https://t.me/<bot>?start=CODE`) and, for Zalo, `/start CODE`; then the sheet
to print (reports/invite_sheet.py): a PNG and a PDF with one QR code per invite, made after the
commit (handlers/deferred.py). Every step re-checks the user's scope on the server.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select

from conversations.local_time import VIETNAM
from db.models import Area
from db.repo.invites import DEFAULT_VALIDITY, MAX_BATCH, create_invites, plain_code
from handlers.access import covers, refuse
from handlers.buttons import InviteButton
from handlers.choices import ask_again
from handlers.context import Context
from handlers.deferred import RenderContext, renderer
from handlers.i18n import N_, Translator, translator
from handlers.leader_scope import find_area, leader_areas
from handlers.options import NUMBERED_CHANNELS
from handlers.router import LEADERS, Router, out_of_date
from handlers.types import Attachment, Button, Reply, button_label
from reports.invite_sheet import CARDS_PER_PAGE, InviteSheet, SheetInvite, render

router = Router("invites")
ROLES = {"volunteer": N_("Volunteer"), "leader": N_("Leader")}
AREA_BUTTONS = 12
COUNT_CHOICES = (1, 5, 10, 20, 50)
SHOWN_CODES = 10  # codes listed in the chat; all of them are on the sheet


def deep_link(bot_username: str | None, code: str) -> str | None:
    """The Telegram link that opens the bot with `/start CODE`, or None without a username."""
    return f"https://t.me/{bot_username}?start={plain_code(code)}" if bot_username else None


def sheet_for(t: Translator, *, area: Area, role: str, codes: list[str], expires_at: datetime,
              bot_username: str | None) -> InviteSheet:
    """The printable sheet of `codes`, its texts in `t`'s language."""
    steps = [t("Telegram: scan the QR code with the camera, press Start.")] if bot_username \
        else []
    steps.append(t("Zalo: send /start {code} to GoCua.", code="{code}"))
    return InviteSheet(
        title=t("Join GoCua"), area=area.name, role=t(ROLES[role]),
        expires=expires_at.astimezone(VIETNAM).strftime("%d/%m/%Y"), expires_label=t("Valid until"),
        instructions=tuple(steps),
        invites=tuple(SheetInvite(code, deep_link(bot_username, code)) for code in codes),
        area_code=area.code, expires_iso=expires_at.isoformat(),
    )


def _may_invite(ctx: Context, role: str, area: Area) -> bool:
    """Volunteers: the user's leader/admin areas and below; leaders: strictly below them."""
    if role == "volunteer":
        return covers(ctx, area.code, LEADERS)
    return role == "leader" and any(g.role in LEADERS and g.covers(area.code) and g.area_code != area.code
                                    for g in ctx.grants)


async def _areas_for(ctx: Context, role: str) -> list[Area]:
    tops = [code for _, code, _ in leader_areas(ctx)]
    if not tops:
        return []
    scope = or_(*(Area.code == code for code in tops), *(Area.code.like(code + ".%") for code in tops))
    areas = list(await ctx.session.scalars(select(Area).where(scope).limit(5000)))
    areas = [a for a in areas if _may_invite(ctx, role, a)]
    return sorted(areas, key=lambda a: (a.code.count("."), a.code))


@router.command("/invite", roles=LEADERS, help=N_("invite volunteers or leaders, with a sheet to print"),
                order=35)
async def invite_command(ctx: Context, args: str) -> list[Reply]:
    ctx.set_state({"dialog": "invite"})
    buttons = [Button(ctx.t("Volunteers"), InviteButton("role", "volunteer"))]
    if await _areas_for(ctx, "leader"):
        buttons.append(Button(button_label(ctx.t("Leaders of an area below yours")),
                              InviteButton("role", "leader")))
    return [Reply(ctx.t("Whom do you want to invite? (/cancel to stop)"), buttons=tuple(buttons))]


async def _ask_area(ctx: Context, role: str) -> list[Reply]:
    areas = await _areas_for(ctx, role)
    if not areas:
        ctx.set_state(None)
        return [Reply(ctx.t("There is no area below yours to invite leaders for."))]
    ctx.set_state({"dialog": "invite", "role": role})
    if len(areas) == 1:
        return await _ask_count(ctx, role, areas[0])
    buttons = tuple(Button(button_label(a.name), InviteButton("area", str(a.id)))
                    for a in areas[:AREA_BUTTONS])
    text = ctx.t("For which area?")
    if len(areas) > AREA_BUTTONS:
        text += "\n" + ctx.t("Or type the name of the area.")
    return [Reply(text, buttons=buttons, columns=2)]


async def _ask_count(ctx: Context, role: str, area: Area) -> list[Reply]:
    ctx.set_state({"dialog": "invite", "role": role, "area_id": area.id, "expects_text": True})
    who = ctx.t(ROLES[role]).lower()
    if ctx.incoming.channel in NUMBERED_CHANNELS:
        # Numbered options would read "[2] 5": a typed 2 would be two invites or five. The number
        # typed is the count.
        return [Reply(ctx.t("How many invites for {role} in {area}? Type a number from 1 to {max}.",
                            role=who, area=area.name, max=MAX_BATCH))]
    buttons = tuple(Button(str(n), InviteButton("n", str(n))) for n in COUNT_CHOICES)
    return [Reply(ctx.t("How many invites for {role} in {area}? Choose or type a number from 1 to {max}.",
                        role=who, area=area.name, max=MAX_BATCH),
                  buttons=buttons, columns=len(buttons))]


async def _make(ctx: Context, role: str, area: Area, count: int) -> list[Reply]:
    ctx.set_state(None)
    invites = await create_invites(ctx.session, role=role, area=area, now=ctx.now, count=count,
                                   created_by=ctx.user.id)
    expires = invites[0].expires_at
    bot = ctx.services.bot_username
    t = ctx.t
    lines = [t.plural("{n} invite for {role} in {area}, valid until {day}; each can be used once.",
                      "{n} invites for {role} in {area}, valid until {day}; each can be used once.",
                      count, role=t(ROLES[role]).lower(), area=area.name,
                      day=expires.astimezone(VIETNAM).strftime("%d/%m/%Y"))]
    for invite in invites[:SHOWN_CODES]:
        link = deep_link(bot, invite.code)
        lines.append(f"• {invite.code}" + (f" — {link}" if link else ""))
    if count > SHOWN_CODES:
        lines.append(t("… and the others on the sheet."))
    lines.append(t("On Zalo, the person sends /start CODE to GoCua; on Telegram they open the link "
                   "or scan the QR code on the sheet."))
    spec: dict[str, Any] = {"kind": "invite_sheet", "locale": ctx.locale, "area_id": area.id,
                            "role": role, "codes": [i.code for i in invites],
                            "expires_at": expires.isoformat(), "bot": bot}
    return [Reply("\n".join(lines)),
            Reply("", deferred={**spec, "format": "png"}),
            Reply("", deferred={**spec, "format": "pdf"})]


def _refused(ctx: Context, what: str) -> list[Reply]:
    refuse(ctx, "invite", what[:60])
    ctx.set_state(None)
    return [Reply(ctx.t("You cannot invite for this area."))]


@router.button(InviteButton)
async def invite_button(ctx: Context, data: InviteButton) -> list[Reply]:
    state = ctx.state if ctx.state.get("dialog") == "invite" else {}
    if data.verb == "role" and data.arg in ROLES:
        return await _ask_area(ctx, data.arg)
    role = state.get("role")
    if role not in ROLES:
        return [out_of_date(ctx)]
    if data.verb == "area":
        area = await ctx.session.get(Area, int(data.arg)) if data.arg.isascii() and data.arg.isdigit() \
            and len(data.arg) < 10 else None
        if area is None or not _may_invite(ctx, role, area):
            return _refused(ctx, f"area:{data.arg}")
        return await _ask_count(ctx, role, area)
    if data.verb == "n":
        return await _count(ctx, data.arg)
    return [out_of_date(ctx)]


async def _count(ctx: Context, text: str) -> list[Reply]:
    state = ctx.state
    role = state.get("role")
    area = await ctx.session.get(Area, int(state.get("area_id") or 0))
    if role not in ROLES or area is None:
        ctx.set_state(None)
        return [out_of_date(ctx)]
    if not _may_invite(ctx, role, area):  # the user's role may have ended meanwhile
        return _refused(ctx, f"area:{area.id}")
    digits = text.strip()
    if not (digits.isascii() and digits.isdigit() and 1 <= int(digits[:4]) <= MAX_BATCH):
        return ask_again(ctx, ctx.t("Please write a number from 1 to {max}.", max=MAX_BATCH))
    return await _make(ctx, role, area, int(digits))


@router.dialog("invite", buttons=(InviteButton,))
async def invite_text(ctx: Context, text: str) -> list[Reply]:
    state = ctx.state
    role = state.get("role")
    if role not in ROLES:
        return await invite_command(ctx, "")
    if state.get("area_id"):
        return await _count(ctx, text)
    area = await find_area(ctx, text)
    if area is None or not _may_invite(ctx, role, area):
        return ask_again(ctx, ctx.t("There is no area {name} you can invite for. Type its name again, "
                                    "or /cancel.", name=text.strip()[:60]))
    return await _ask_count(ctx, role, area)


@renderer("invite_sheet")
async def render_invite_sheet(rctx: RenderContext, spec: dict[str, Any]) -> Reply:
    t = translator(spec["locale"])
    async with rctx.reader() as session:
        area = await session.get(Area, int(spec["area_id"]))
    if area is None:
        return Reply(t("This button is out of date. Type /help to see what you can do now."))
    sheet = sheet_for(t, area=area, role=spec["role"], codes=list(spec["codes"]),
                      expires_at=datetime.fromisoformat(spec["expires_at"]), bot_username=spec.get("bot"))
    fmt = spec["format"]
    import asyncio

    data = await asyncio.to_thread(render, sheet, fmt)
    name = f"gocua-invites-{area.code.rsplit('.', 1)[-1]}-{len(sheet.invites)}.{fmt}"
    # One printed page fits a photo; a longer sheet goes as a file, not shrunk by the messenger.
    kind = "photo" if fmt == "png" and len(sheet.invites) <= CARDS_PER_PAGE else "document"
    caption = t("Invite sheet to print ({format}).", format=fmt.upper())
    return Reply(caption, attachment=Attachment(kind, name, data))


__all__ = ["DEFAULT_VALIDITY", "deep_link", "router", "sheet_for"]
