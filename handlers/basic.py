"""/start, /join, /help, /lang, /cancel: what every user has."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import structlog

from db.repo.households import count_for_volunteer
from db.repo.invites import WRONG, ClaimResult, claim_invite
from db.repo.users import top_role
from handlers.buttons import LanguageButton
from handlers.choices import ask_again
from handlers.context import Context
from handlers.i18n import LANGUAGE_NAMES, LOCALES, N_
from handlers.metrics import count_invite_failure
from handlers.router import EVERYONE, Router, out_of_date
from handlers.types import Button, Reply
from handlers.validation import VIETNAM

log = structlog.get_logger("gocua.invites")
router = Router("basic")
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


@router.command("/start", help=N_("start over and see what I can do"), order=1)
async def start(ctx: Context, args: str) -> list[Reply]:
    if args:
        return await _claim(ctx, args)
    return [await greeting(ctx)]


def salutation(ctx: Context) -> str:
    """ "Hello An!", or "Hello!" when the display name is empty or blank (no stray space)."""
    name = " ".join((ctx.user.display_name or "").split())
    return ctx.t("Hello {name}!", name=name) if name else ctx.t("Hello!")


async def greeting(ctx: Context) -> Reply:
    t = ctx.t
    role = ctx.role
    if role == "resident":
        return Reply(salutation(ctx) + " " + t(
            "I am GoCua, the helper of your neighbourhood's youth-union volunteers. Ask me about "
            "VNeID, birth registration, residence confirmation, social pension and other public "
            "services, type /visit to ask a volunteer to come to your home, or /help."))
    areas = ", ".join(sorted({g.area_name for g in ctx.grants if g.role == role}))
    if role == "volunteer":
        count = await count_for_volunteer(ctx.session, ctx.user.id)  # archived ones left out
        return Reply(salutation(ctx) + " " + t.plural(
            "You are a volunteer in {areas} and look after {n} household. "
            "Type /households to open it, or /help.",
            "You are a volunteer in {areas} and look after {n} households. "
            "Type /households to pick one, or /help.",
            count, areas=areas,
        ))
    return Reply(salutation(ctx) + " " + t(
        "You are a {role} in {areas}. Type /help to see your commands.",
        role=role_name(ctx, role), areas=areas,
    ))


@router.command("/join", help=N_("join with an invite code: /join CODE"), order=2)
async def join(ctx: Context, args: str) -> list[Reply]:
    if not args:
        ctx.set_state({"dialog": "join"})
        return [Reply(ctx.t("Send me the invite code you were given (or /cancel)."))]
    return await _claim(ctx, args)


@router.dialog("join", buttons=())
async def join_code_typed(ctx: Context, text: str) -> list[Reply]:
    """The code typed after /join; a code GoCua does not know is asked for again."""
    result, replies = await _claimed(ctx, text) if text.strip() else (ClaimResult.UNKNOWN, [])
    if result not in WRONG:  # joined, already held, or held off for a while: the dialog ends
        ctx.set_state(None)
        return replies
    return [*replies, Reply(ctx.t("Send me the invite code you were given (or /cancel)."))]


async def _claim(ctx: Context, code: str) -> list[Reply]:
    return (await _claimed(ctx, code))[1]


async def _claimed(ctx: Context, code: str) -> tuple[ClaimResult, list[Reply]]:
    t = ctx.t
    claim = await claim_invite(ctx.session, code, ctx.user.id, ctx.now)
    result, invite, area = claim.result, claim.invite, claim.area
    count_invite_failure(result)
    if result in WRONG:
        # The same answer for unknown, used and expired codes: a guesser learns nothing.
        return result, [Reply(t(INVITE_NOT_VALID))]
    if result in (ClaimResult.HELD_OFF, ClaimResult.BUSY):
        if result is ClaimResult.BUSY:
            log.warning("invite.ceiling_reached", user_id=ctx.user.id)
        assert claim.retry_at is not None
        return result, [Reply(t(TRY_LATER, time=vietnam_time(claim.retry_at)))]
    assert invite is not None and area is not None
    if result is ClaimResult.ALREADY_HELD:
        return result, [Reply(t("You are already a {role} in {area}.", role=role_name(ctx, invite.role),
                                area=area.name))]
    from db.repo.users import role_grants

    ctx.grants = await role_grants(ctx.session, ctx.user.id)
    # One message (the greeting would say the role and the area again): welcome, then what next.
    welcome = t("Welcome! You are now a {role} in {area}.", role=role_name(ctx, invite.role), area=area.name)
    return result, [Reply(welcome + "\n" + await _what_next(ctx))]


async def _what_next(ctx: Context) -> str:
    t = ctx.t
    if ctx.role == "volunteer":
        count = await count_for_volunteer(ctx.session, ctx.user.id)
        return t.plural("You look after {n} household. Type /households to open it, or /help.",
                        "You look after {n} households. Type /households to pick one, or /help.", count)
    if ctx.role in ("leader", "admin"):
        return t("Type /stats to see your area, or /help to see your commands.")
    return t("Type /help to see what I can do.")


def vietnam_time(at: datetime) -> str:
    """`at` as a person in Vietnam reads the time (UTC+7), rounded up to the minute: 14:05."""
    local = (at + timedelta(seconds=59)).astimezone(VIETNAM)
    return local.strftime("%H:%M")


@router.command("/help", help=N_("the commands you can use"), order=3)
async def help_(ctx: Context, args: str) -> list[Reply]:
    t = ctx.t
    lines = [t("You are using GoCua as a {role}. Commands:", role=role_name(ctx, ctx.role))]
    from handlers.dispatch import ROUTES  # the table of every router, built from this one too

    lines += [f"{c.name} — {t(c.help)}" for c in ROUTES.commands_for(ctx)]
    if top_role(ctx.grants) == "resident":
        lines.append(t("Or just type your question, for example: how do I get VNeID level 2?"))
    return [Reply("\n".join(lines))]


@router.command("/lang", help=N_("choose the language: Tiếng Việt or English"), order=4)
async def lang(ctx: Context, args: str) -> list[Reply]:
    choice = args.strip().lower()
    if choice in LOCALES:
        return await set_lang(ctx, choice)
    return [Reply(
        ctx.t("Choose your language:"),
        buttons=tuple(Button(LANGUAGE_NAMES[code], LanguageButton(code)) for code in LOCALES),
        columns=2,
    )]


@router.button(LanguageButton)
async def lang_button(ctx: Context, data: LanguageButton) -> list[Reply]:
    replies = await set_lang(ctx, data.code)
    return [replace(r, edit=True) if not r.toast else r for r in replies]  # the choice, in place


async def set_lang(ctx: Context, code: str) -> list[Reply]:
    if code not in LOCALES:
        return [out_of_date(ctx)]
    ctx.user.locale = code
    ctx.relocalise()
    return [Reply(ctx.t("Language set to {language}.", language=LANGUAGE_NAMES[code]) + "\n"
                  + ctx.t("Type /help to see what I can do."))]


@router.command("/cancel", roles=EVERYONE, help=N_("stop what you are doing"), order=90)
async def cancel(ctx: Context, args: str) -> list[Reply]:
    from handlers.dispatch import ROUTES  # the table of every router, built from this one too

    for hook in ROUTES.cancel_hooks:
        replies = await hook(ctx, args)
        if replies:
            return replies
    if ctx.state.get("dialog"):
        ctx.set_state(None)
        return [Reply(ctx.t("Cancelled. Nothing was saved. Type /help to see what you can do."))]
    # A menu the chat is on stays: it comes again under the note.
    return ask_again(ctx, ctx.t("There is nothing to cancel."))
