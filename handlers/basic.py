"""/start, /join, /help, /lang, /cancel: what every user has."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import structlog
from sqlalchemy import func, select

from db.models import Household
from db.repo.invites import WRONG, ClaimResult, claim_invite
from db.repo.users import top_role
from handlers.context import Context
from handlers.i18n import LANGUAGE_NAMES, LOCALES, N_
from handlers.metrics import count_invite_failure
from handlers.router import EVERYONE, command, commands_for, dialog, out_of_date, payload
from handlers.types import Button, Reply

log = structlog.get_logger("gocua.invites")
VIETNAM = timezone(timedelta(hours=7))
INVITE_NOT_VALID = N_("This invite code is not valid: it may be mistyped, already used or expired. "
                      "Check it and send /join CODE again, or ask whoever gave it to you for a new one.")
TRY_LATER = N_("Too many wrong invite codes were tried. For safety, please wait: you can send "
               "/join CODE again after {time} (Vietnam time).")

ROLE_NAMES = {
    "resident": N_("resident"),
    "volunteer": N_("volunteer"),
    "leader": N_("leader"),
    "admin": N_("administrator"),
}


def role_name(ctx: Context, role: str) -> str:
    return ctx.t(ROLE_NAMES[role])


@command("/start", help=N_("start over and see what I can do"), order=1)
async def start(ctx: Context, args: str) -> list[Reply]:
    if args:
        return await _claim(ctx, args)
    return [await greeting(ctx)]


async def greeting(ctx: Context) -> Reply:
    t = ctx.t
    name = ctx.user.display_name
    role = ctx.role
    if role == "resident":
        return Reply(t(
            "Hello {name}! I am GoCua, the helper of your neighbourhood's youth-union volunteers. "
            "Ask me about VNeID, birth registration, residence confirmation, social pension and "
            "other public services, or type /help.",
            name=name,
        ))
    areas = ", ".join(sorted({g.area_name for g in ctx.grants if g.role == role}))
    if role == "volunteer":
        count = await ctx.session.scalar(
            select(func.count()).select_from(Household).where(Household.volunteer_id == ctx.user.id)
        )
        return Reply(t(
            "Hello {name}! You are a volunteer in {areas} and look after {count} households. "
            "Type /households to pick one, or /help.",
            name=name, areas=areas, count=count or 0,
        ))
    return Reply(t(
        "Hello {name}! You are a {role} in {areas}. Type /help to see your commands.",
        name=name, role=role_name(ctx, role), areas=areas,
    ))


@command("/join", help=N_("join with an invite code: /join CODE"), order=2)
async def join(ctx: Context, args: str) -> list[Reply]:
    if not args:
        ctx.set_state({"dialog": "join"})
        return [Reply(ctx.t("Send me the invite code you were given (or /cancel)."))]
    return await _claim(ctx, args)


@dialog("join")
async def join_code_typed(ctx: Context, text: str) -> list[Reply]:
    ctx.set_state(None)
    return await _claim(ctx, text)


async def _claim(ctx: Context, code: str) -> list[Reply]:
    t = ctx.t
    claim = await claim_invite(ctx.session, code, ctx.user.id, ctx.now)
    result, invite, area = claim.result, claim.invite, claim.area
    count_invite_failure(result)
    if result in WRONG:
        # The same answer for unknown, used and expired codes: a guesser learns nothing.
        return [Reply(t(INVITE_NOT_VALID))]
    if result in (ClaimResult.HELD_OFF, ClaimResult.BUSY):
        if result is ClaimResult.BUSY:
            log.warning("invite.ceiling_reached", user_id=ctx.user.id)
        assert claim.retry_at is not None
        return [Reply(t(TRY_LATER, time=vietnam_time(claim.retry_at)))]
    assert invite is not None and area is not None
    if result is ClaimResult.ALREADY_HELD:
        return [Reply(t("You are already a {role} in {area}.", role=role_name(ctx, invite.role),
                        area=area.name))]
    from db.repo.users import role_grants

    ctx.grants = await role_grants(ctx.session, ctx.user.id)
    return [
        Reply(t("Welcome! You are now a {role} in {area}.", role=role_name(ctx, invite.role),
                area=area.name)),
        await greeting(ctx),
    ]


def vietnam_time(at: datetime) -> str:
    """`at` as a person in Vietnam reads the time (UTC+7), rounded up to the minute: 14:05."""
    local = (at + timedelta(seconds=59)).astimezone(VIETNAM)
    return local.strftime("%H:%M")


@command("/help", help=N_("the commands you can use"), order=3)
async def help_(ctx: Context, args: str) -> list[Reply]:
    t = ctx.t
    lines = [t("You are using GoCua as a {role}. Commands:", role=role_name(ctx, ctx.role))]
    lines += [f"{c.name} — {t(c.help)}" for c in commands_for(ctx)]
    if top_role(ctx.grants) == "resident":
        lines.append(t("Or just type your question, for example: how do I get VNeID level 2?"))
    return [Reply("\n".join(lines))]


@command("/lang", help=N_("choose the language: Tiếng Việt or English"), order=4)
async def lang(ctx: Context, args: str) -> list[Reply]:
    choice = args.strip().lower()
    if choice in LOCALES:
        return await set_lang(ctx, choice)
    return [Reply(
        ctx.t("Choose your language:"),
        buttons=tuple(Button(LANGUAGE_NAMES[code], f"lang:{code}") for code in LOCALES),
        columns=2,
    )]


@payload("lang")
async def set_lang(ctx: Context, code: str) -> list[Reply]:
    if code not in LOCALES:
        return [out_of_date(ctx)]
    ctx.user.locale = code
    ctx.relocalise()
    return [Reply(ctx.t("Language set to {language}.", language=LANGUAGE_NAMES[code]))]


@command("/cancel", roles=EVERYONE, help=N_("stop what you are doing"), order=90)
async def cancel(ctx: Context, args: str) -> list[Reply]:
    from handlers.router import CANCEL_HOOKS

    for hook in CANCEL_HOOKS:
        replies = await hook(ctx, args)
        if replies:
            return replies
    if ctx.state.get("dialog"):
        ctx.set_state(None)
        return [Reply(ctx.t("Cancelled. Nothing was saved. Type /help to see what you can do."))]
    return [Reply(ctx.t("There is nothing to cancel."))]
