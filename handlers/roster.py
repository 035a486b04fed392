"""/volunteers [AREA]: a leader's roster, and handing over or ending a volunteer's role.

The roster (db/repo/roster.py) lists each volunteer with households assigned and reached, steps
recorded this week and when they were last active, the inactive ones first and marked; PAGE_SIZE
a page, with buttons to page (numbered options on Zalo and the console). A volunteer's line
opens their card: hand their households over to one volunteer, spread them over their villages'
volunteers, or end their volunteer role (only once nothing is left assigned to them; the user
and their records stay). Every button re-checks on the server that the area is the user's and
that the volunteer (and the receiver) belong to it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from conversations.local_time import VIETNAM
from db.models import Area, Identity, User
from db.repo.households import VOLUNTEER_LOAD, volunteers_of_area
from db.repo.roster import (
    RosterLine,
    StillAssigned,
    end_role,
    hand_over_to,
    households_of,
    roster,
    spread,
    volunteer_ids,
)
from db.repo.users import role_grants, top_role
from handlers.access import button_id, covers, refuse
from handlers.buttons import RosterButton, StaleButton
from handlers.context import Context
from handlers.i18n import N_, Translator, translator
from handlers.leader_scope import area_for_command
from handlers.router import LEADERS, Router, out_of_date
from handlers.types import Address, Button, Reply, button_label

router = Router("roster")
PAGE_SIZE = 10
RECEIVERS = 12  # volunteers offered to receive households (the least loaded)
INACTIVE_MARK = "⚠️"


def last_active(t: Translator, when: datetime | None) -> str:
    return when.astimezone(VIETNAM).strftime("%d/%m/%Y") if when else t("never")


def line_text(t: Translator, line: RosterLine, now: datetime) -> str:
    mark = f"{INACTIVE_MARK} " if line.inactive(now) else ""
    return mark + t("{name}: {households} households, {reached} reached, {steps} steps this week, "
                    "last active {last}", name=line.name, households=line.households,
                    reached=line.reached, steps=line.steps_this_week, last=last_active(t, line.last_active))


async def roster_page(ctx: Context, area: Area, page: int) -> Reply:
    t = ctx.t
    lines = await roster(ctx.session, area, ctx.now)
    if not lines:
        return Reply(t("{area} has no volunteers yet. Invite some with /invite.", area=area.name))
    pages = -(-len(lines) // PAGE_SIZE)
    page = min(max(page, 0), pages - 1)
    shown = lines[page * PAGE_SIZE:(page + 1) * PAGE_SIZE]
    inactive = sum(1 for line in lines if line.inactive(ctx.now))
    head = [t("👥 Volunteers of {area}: {count}, of whom {inactive} inactive (⚠️: no step for 7 days).",
              area=area.name, count=len(lines), inactive=inactive)]
    if pages > 1:
        head.append(t("Page {page} of {pages}.", page=page + 1, pages=pages))
    # Bullets, not numbers: on Zalo and the console the buttons below are the numbered list.
    body = [f"• {line_text(t, line, ctx.now)}" for line in shown]
    buttons = [Button(button_label(("⚠️ " if line.inactive(ctx.now) else "👤 ") + line.name),
                      RosterButton(area.id, "u", str(line.user_id))) for line in shown]
    if page > 0:
        buttons.append(Button("◀ " + t("Previous page"), RosterButton(area.id, "p", str(page - 1))))
    if page < pages - 1:
        buttons.append(Button(t("Next page") + " ▶", RosterButton(area.id, "p", str(page + 1))))
    hint = t("Choose a volunteer to hand over their households or end their role.")
    return Reply("\n".join([*head, "", *body, "", hint]), buttons=tuple(buttons))


@router.command("/volunteers", roles=LEADERS, help=N_("your volunteers: /volunteers [AREA]"), order=33)
async def volunteers_command(ctx: Context, args: str) -> list[Reply]:
    area = await area_for_command(ctx, args.split(), lambda area_id: RosterButton(area_id, "p", "0"))
    if isinstance(area, Reply):
        return [area]
    return [await roster_page(ctx, area, 0)]


async def _not_yours(ctx: Context, what: str) -> list[Reply]:
    refuse(ctx, "vol", what[:60])
    return [Reply(ctx.t("This area is not among yours."))]


async def _stale(ctx: Context, stale: StaleButton) -> list[Reply]:
    return await _not_yours(ctx, f"area:{stale.raw.get('area_id', '')[:20]}")


async def _volunteer(ctx: Context, area: Area, raw: str) -> User | None:
    """The user `raw` names if they are a volunteer of `area` (else None, refusal audited)."""
    uid = button_id(raw)
    if uid is None or uid not in await volunteer_ids(ctx.session, area):
        refuse(ctx, "vol", f"area:{area.id}->user:{raw[:20]}")
        return None
    return await ctx.session.get(User, uid)


def _back(ctx: Context, area: Area, user: User | None = None) -> tuple[Button, ...]:
    buttons = [Button("👤 " + button_label(user.display_name), RosterButton(area.id, "u", str(user.id)))] \
        if user is not None else []
    buttons.append(Button(ctx.t("Back to the volunteers"), RosterButton(area.id, "p", "0")))
    return tuple(buttons)


@router.button(RosterButton, stale=_stale)
async def roster_button(ctx: Context, data: RosterButton) -> list[Reply]:
    area = await ctx.session.get(Area, data.area_id)
    if area is None or not covers(ctx, area.code, LEADERS):
        return await _not_yours(ctx, f"area:{data.area_id}")
    if data.verb == "p":
        page = button_id(data.arg)
        return [await roster_page(ctx, area, page or 0)]
    raw_user, _, raw_to = data.arg.partition(":")
    if data.verb not in ("u", "one", "to", "spread", "end", "endok"):
        return [out_of_date(ctx)]
    user = await _volunteer(ctx, area, raw_user)
    if user is None:
        return [Reply(ctx.t("This person is not a volunteer of {area}.", area=area.name),
                      buttons=_back(ctx, area))]
    if data.verb == "u":
        return [await _card(ctx, area, user)]
    if data.verb == "one":
        return [await _offer_receivers(ctx, area, user)]
    if data.verb == "to":
        return [await _hand_to(ctx, area, user, raw_to)]
    if data.verb == "spread":
        return [await _spread(ctx, area, user)]
    if data.verb == "end":
        return [await _ask_end(ctx, area, user)]
    return await _end(ctx, area, user)


async def _card(ctx: Context, area: Area, user: User) -> Reply:
    t = ctx.t
    line = next((x for x in await roster(ctx.session, area, ctx.now) if x.user_id == user.id), None)
    text = line_text(t, line, ctx.now) if line else user.display_name
    buttons = _handover_buttons(ctx, area, user) if line and line.households else ()
    end = Button(button_label(t("End the volunteer role")), RosterButton(area.id, "end", str(user.id)))
    return Reply(text, buttons=(*buttons, end, *_back(ctx, area)))


def _handover_buttons(ctx: Context, area: Area, user: User) -> tuple[Button, ...]:
    return (Button(button_label(ctx.t("Hand over to one volunteer")),
                   RosterButton(area.id, "one", str(user.id))),
            Button(button_label(ctx.t("Spread over the village's volunteers")),
                   RosterButton(area.id, "spread", str(user.id))))


async def _receivers(ctx: Context, area: Area, user: User) -> list[tuple[int, str, int]]:
    people = [p for p in await volunteers_of_area(ctx.session, area.code) if p[0] != user.id]
    return sorted(people, key=lambda p: (p[2], p[1]))


async def _offer_receivers(ctx: Context, area: Area, user: User) -> Reply:
    people = await _receivers(ctx, area, user)
    if not people:
        return Reply(ctx.t("There is no other volunteer in this area yet."), buttons=_back(ctx, area, user))
    buttons = tuple(Button(button_label(f"{name} ({n})"), RosterButton(area.id, "to", f"{user.id}:{uid}"))
                    for uid, name, n in people[:RECEIVERS])
    return Reply(ctx.t("Hand {name}'s households over to whom? (households they have now)",
                       name=user.display_name), buttons=buttons + _back(ctx, area, user))


async def _hand_to(ctx: Context, area: Area, user: User, raw_to: str) -> Reply:
    receivers = {uid: (name, n) for uid, name, n in await _receivers(ctx, area, user)}
    to = button_id(raw_to)
    if to is None or to not in receivers:
        refuse(ctx, "vol.to", f"area:{area.id}->user:{raw_to[:20]}")
        return out_of_date(ctx)
    handed = await hand_over_to(ctx.session, user.id, to, area, actor=ctx.user.id, now=ctx.now)
    moved = handed.moved.get(to, 0)
    name, load = receivers[to]
    lines = [ctx.t.plural("{n} household of {from_name} is now looked after by {to_name}.",
                          "{n} households of {from_name} are now looked after by {to_name}.",
                          moved, from_name=user.display_name, to_name=name)]
    if load + moved > VOLUNTEER_LOAD:
        lines.append(ctx.t("Note: {name} now has {count} households, more than 20.",
                           name=name, count=load + moved))
    return Reply("\n".join(lines), buttons=_back(ctx, area, user))


async def _spread(ctx: Context, area: Area, user: User) -> Reply:
    result = await spread(ctx.session, user.id, area, actor=ctx.user.id, now=ctx.now)
    names = {uid: name for uid, name, _ in await volunteers_of_area(ctx.session, area.code)}
    total = sum(result.moved.values())
    lines = [ctx.t.plural("{n} household of {name} handed over:", "{n} households of {name} handed over:",
                          total, name=user.display_name)]
    lines += [f"• {names.get(uid, '?')}: {n}" for uid, n in sorted(result.moved.items(), key=lambda x: -x[1])]
    if result.left:
        lines.append(ctx.t("No other volunteer in their village for: {codes}. Hand these to one volunteer.",
                           codes=", ".join(result.left[:20])))
    return Reply("\n".join(lines), buttons=_back(ctx, area, user))


def _still_assigned(ctx: Context, area: Area, user: User, count: int) -> Reply:
    text = ctx.t.plural("{name} still looks after {n} household in {area}: hand it over first.",
                        "{name} still looks after {n} households in {area}: hand them over first.",
                        count, name=user.display_name, area=area.name)
    return Reply(text, buttons=_handover_buttons(ctx, area, user) + _back(ctx, area, user))


async def _ask_end(ctx: Context, area: Area, user: User) -> Reply:
    remaining = len(await households_of(ctx.session, user.id, area))
    if remaining:
        return _still_assigned(ctx, area, user, remaining)
    buttons = (Button(ctx.t("Yes, end the role"), RosterButton(area.id, "endok", str(user.id))),
               Button(ctx.t("No"), RosterButton(area.id, "u", str(user.id))))
    return Reply(ctx.t("End {name}'s volunteer role in {area}? What they recorded stays.",
                       name=user.display_name, area=area.name), buttons=buttons)


async def _end(ctx: Context, area: Area, user: User) -> list[Reply]:
    try:
        ended = await end_role(ctx.session, user.id, area, actor=ctx.user.id, now=ctx.now)
    except StillAssigned as still:
        return [_still_assigned(ctx, area, user, still.count)]
    if not ended:
        return [Reply(ctx.t("{name} holds no volunteer role in {area} itself.", name=user.display_name,
                            area=area.name), buttons=_back(ctx, area))]
    return [Reply(ctx.t("{name} is no longer a volunteer in {area}. What they recorded stays.",
                        name=user.display_name, area=area.name), buttons=_back(ctx, area)),
            *await _tell_role_ended(ctx, area, user)]


ROLE_ENDED = N_("Your volunteer role in {area} has ended. Thank you for your work; what you recorded "
                "stays. Type /help to see what you can do now.")


async def _tell_role_ended(ctx: Context, area: Area, user: User) -> list[Reply]:
    """The person whose role ended is told in their own language, in each of their chats, and
    their command menu (Telegram's "/") becomes the one of the role they have left."""
    role = top_role(await role_grants(ctx.session, user.id))
    t = translator(user.locale)
    chats = await ctx.session.execute(
        select(Identity.channel, Identity.external_id).where(Identity.user_id == user.id))
    return [Reply(t(ROLE_ENDED, area=area.name), to=Address(channel, chat_id), menu=(role, t.locale))
            for channel, chat_id in chats]
