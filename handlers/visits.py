"""Visit requests: a resident asks for a volunteer; volunteers take and close requests.

A request goes to the volunteer of the resident's household when GoCua knows it, else to every
volunteer of the area the resident names. Volunteers are told at once, on every channel they use,
with a button to take it; the first to press gets it and the resident is told who.

A request always carries a way to find the resident: their household (known to GoCua), a
phone number (mobile, or a landline 02…), an address or landmark, or the resident's explicit
"the volunteer knows where I live". Without a phone the address step has no Skip.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select

from conversations.folding import natural_key
from conversations.redact import redact_citizen_ids
from conversations.validators import MAX_TEXT
from db.models import Area, Household, Identity, SupportRequest, User
from db.repo.notices import messages_about
from db.repo.support import (
    addresses_of,
    household_of_user,
    requests_for_volunteer,
    take_request,
    volunteers_covering,
)
from handlers import follow_ups, visit_limits
from handlers.access import covers, refuse, row_of_button
from handlers.buttons import RequestButton, VisitButton
from handlers.choices import wrong_answer
from handlers.context import Context
from handlers.i18n import N_, translator
from handlers.options import NUMBERED_CHANNELS, fold
from handlers.router import EVERYONE, STAFF, Router, out_of_date
from handlers.types import Address, Button, Reply, button_label
from handlers.validation import check

SKIP = N_("Skip")
KNOWN = N_("The volunteer knows where I live")
ADDRESS_NEEDS_WORDS = N_("Please write the address or a landmark in words or numbers, e.g. “next to the "
                         "Tà Lang school”.")

router = Router("visits")


@router.command("/visit", roles=EVERYONE, help=N_("ask a volunteer to come and help at home"), order=20)
async def visit(ctx: Context, args: str) -> list[Reply]:
    return await begin_visit(ctx, args.strip())


async def begin_visit(ctx: Context, question: str) -> list[Reply]:
    question = redact_citizen_ids(question)
    refused = await visit_limits.refusal(ctx, question)
    if refused is not None:
        return refused
    if not question:
        ctx.set_state({"dialog": "visit", "step": "question", "data": {}})
        return [Reply(ctx.t("What do you need help with? Write it in a few words (or /cancel)."))]
    question, cut = _kept(question)
    return _told_cut(ctx, cut) + await _after_question(ctx, {"question": question})


def _kept(question: str) -> tuple[str, bool]:
    """The question as kept: at most MAX_TEXT characters, cut at a word; whether it was cut."""
    question = question.strip()
    if len(question) <= MAX_TEXT:
        return question, False
    cut = question[:MAX_TEXT - 1]
    if " " in cut[MAX_TEXT // 2:]:
        cut = cut[:cut.rindex(" ")]
    return cut.rstrip() + "…", True


def _told_cut(ctx: Context, cut: bool) -> list[Reply]:
    """An over-long question is kept, cut, rather than refused (the resident's next message
    would otherwise become the question): they are told."""
    if not cut:
        return []
    return [Reply(ctx.t("Your message was long, so I kept its first {max} characters for the "
                        "volunteer. You can tell them the rest when they call.", max=MAX_TEXT))]


async def _after_question(ctx: Context, data: dict) -> list[Reply]:
    household = await household_of_user(ctx.session, ctx.user.id)
    if household is not None:
        data = {**data, "household_id": household.id, "area_id": household.area_id}
        return _ask_phone(ctx, data)
    areas = sorted(await ctx.session.scalars(
        select(Area).where(Area.level.in_(("ward", "commune", "special_zone"))).order_by(Area.name).limit(40)
    ), key=lambda a: natural_key(a.name))
    if not areas:
        return await _create(ctx, data)
    ctx.set_state({"dialog": "visit", "step": "area", "data": data})
    buttons = tuple(Button(button_label(a.name), VisitButton("area", str(a.id))) for a in areas)
    return [Reply(ctx.t("Which ward or commune do you live in?"), buttons=buttons, columns=2)]


def _ask_phone(ctx: Context, data: dict) -> list[Reply]:
    ctx.set_state({"dialog": "visit", "step": "phone", "data": data})
    return [_phone_question(ctx)]


def _phone_question(ctx: Context, error: str | None = None) -> Reply:
    lines = [error] if error else []
    lines.append(ctx.t("Your phone number, so the volunteer can call you? (optional)"))
    lines.append(ctx.t("A mobile number, or a landline with its area code (e.g. 0236 3822 123)."))
    return Reply("\n".join(lines), buttons=(Button(ctx.t(SKIP), VisitButton("skip")),))


def _after_phone(ctx: Context, data: dict) -> list[Reply] | None:
    """The address question when GoCua does not know the household; None: nothing more to ask."""
    if "household_id" in data:
        return None
    return _ask_address(ctx, data)


def _ask_address(ctx: Context, data: dict, error: str | None = None) -> list[Reply]:
    ctx.set_state({"dialog": "visit", "step": "address", "data": data})
    lines = [error] if error else []
    buttons: tuple[Button, ...]
    if data.get("phone"):
        lines.append(ctx.t("Your address or a landmark near your house? (optional)"))
        buttons = (Button(ctx.t(SKIP), VisitButton("skip")),)
    else:
        # Without a phone the volunteer has to find the house: no Skip here.
        lines.append(ctx.t("Without a phone number the volunteer must find your house: your address "
                           "or a landmark near it?"))
        buttons = (Button(ctx.t(KNOWN), VisitButton("known")),
                   Button(ctx.t("Give a phone number instead"), VisitButton("phone")))
    return [Reply("\n".join(lines), buttons=buttons)]


@router.button(VisitButton)
async def visit_button(ctx: Context, button: VisitButton) -> list[Reply]:
    verb, arg = button.verb, button.arg
    if verb == "start":  # "Ask a volunteer" under a FAQ answer: the question asked is carried over
        return await begin_visit(ctx, str(ctx.state.get("last_question") or ""))
    state = ctx.state
    if state.get("dialog") != "visit":
        return [out_of_date(ctx)]
    data = dict(state.get("data") or {})
    step = state.get("step")
    if verb == "area" and step in ("area", "village"):
        area = await row_of_button(ctx.session, Area, arg)
        if area is None:
            return [out_of_date(ctx)]
        data["area_id"] = area.id
        villages = list(await ctx.session.scalars(
            select(Area).where(Area.parent_id == area.id).order_by(Area.name).limit(30)))
        villages.sort(key=lambda a: natural_key(a.name))
        if step == "area" and villages:
            ctx.set_state({"dialog": "visit", "step": "village", "data": data})
            buttons = tuple(Button(button_label(v.name), VisitButton("area", str(v.id))) for v in villages)
            return [Reply(ctx.t("Which village or residential group?"),
                          buttons=(*buttons, Button(ctx.t("Not sure"), VisitButton("skip"))), columns=2)]
        return _ask_phone(ctx, data)
    if verb == "skip" and step == "village":
        return _ask_phone(ctx, data)
    if verb == "skip" and step == "phone":
        data.pop("phone", None)
        return _after_phone(ctx, data) or await _create(ctx, data)
    if verb == "skip" and step == "address":
        return await _create(ctx, data) if data.get("phone") else _ask_address(ctx, data)
    if verb == "known" and step == "address":
        return await _create(ctx, {**data, "known": True})
    if verb == "phone" and step == "address":
        return _ask_phone(ctx, data)
    return [out_of_date(ctx)]


@router.dialog("visit", buttons=(VisitButton,))
async def visit_text(ctx: Context, text: str) -> list[Reply]:
    state = ctx.state
    data = dict(state.get("data") or {})
    step = state.get("step")
    if step == "question":
        kept, cut = _kept(redact_citizen_ids(text))
        value, error = check("text", kept, ctx.now)
        if error:
            return [Reply(ctx.t(error.msgid, **error.values))]
        return _told_cut(ctx, cut) + await _after_question(ctx, {**data, "question": str(value)})
    if step == "phone":
        value, error = check("phone", text, ctx.now)
        if error:
            return [_phone_question(ctx, ctx.t(error.msgid, **error.values))]
        data["phone"] = str(value)
        return _after_phone(ctx, data) or await _create(ctx, data)
    if step == "address":
        value, error = check("text", text, ctx.now)
        if error:
            return _ask_address(ctx, data, ctx.t(error.msgid, **error.values))
        if not any(ch.isalnum() for ch in str(value)):
            return _ask_address(ctx, data, ctx.t(ADDRESS_NEEDS_WORDS))
        data["address"] = str(value)[:300]
        return await _create(ctx, data)
    return wrong_answer(ctx)


async def _create(ctx: Context, data: dict) -> list[Reply]:
    ctx.set_state(None)
    refused = await visit_limits.refusal(ctx, str(data.get("question") or ""))
    if refused is not None:  # e.g. a request made on another app meanwhile
        return refused
    household_id, area_id = data.get("household_id"), data.get("area_id")
    household = await ctx.session.get(Household, int(household_id)) if household_id else None
    area = await ctx.session.get(Area, int(area_id)) if area_id else None
    request = SupportRequest(
        requester_id=ctx.user.id, household_id=household.id if household else None,
        area_id=area.id if area else None, question=data.get("question") or "-",
        phone=data.get("phone"), address=data.get("address"), status="open", created_at=ctx.now,
    )
    ctx.session.add(request)
    await ctx.session.flush()
    # Nobody took it within 2 working hours: the area's leaders are told (handlers/follow_ups.py).
    await follow_ups.schedule_visit_untaken(ctx.session, request, ctx.now)
    if household is not None and household.volunteer_id:
        targets = [household.volunteer_id]
    elif area is not None:
        targets = await volunteers_covering(ctx.session, area)
    else:
        targets = []
    notices = await _notify_volunteers(ctx, request, area, household, targets)
    if not notices:
        text = ctx.t("Your request #{id} is saved. No volunteer is registered for your area yet; "
                     "a leader will see it.", id=request.id)
    else:
        told = len({uid for uid, _reply in notices})
        text = ctx.t.plural(
            "Your request #{id} was sent to {n} volunteer. I will tell you when they take it.",
            "Your request #{id} was sent to {n} volunteers. I will tell you who takes it.",
            told, id=request.id)
    # The way on (a visit notice for a numbered chat carries no option for the resident to see
    # either way): /help.
    return [Reply(text + "\n" + ctx.t("Type /help to see what I can do.")), *(reply for _, reply in notices)]


def _where_to_find(t: Callable[..., str], request: SupportRequest, household: Household | None) -> list[str]:
    """How the volunteer finds the resident: phone, address, household, or the resident's word."""
    lines = []
    if request.phone:
        lines.append(f"☎ {request.phone}")
    if request.address:
        lines.append(f"📍 {request.address}")
    if household is not None:
        lines.append(f"🏠 {household.code} · {household.address}")
    if not lines:
        lines.append(t("The resident says you know where they live."))
    return lines


async def _notify_volunteers(
    ctx: Context, request: SupportRequest, area: Area | None, household: Household | None,
    user_ids: list[int],
) -> list[tuple[int, Reply]]:
    users = {u.id: u for u in await ctx.session.scalars(select(User).where(User.id.in_(user_ids)))}
    notices = []
    for uid, channel, chat_id in await addresses_of(ctx.session, user_ids):
        t = translator(users[uid].locale if uid in users else None)
        lines = [t("New visit request #{id}{area}:", id=request.id,
                   area=f" · {area.name}" if area else ""), f"“{request.question}”"]
        lines += _where_to_find(t, request, household)
        take: tuple[Button, ...] = (Button(t("Take it"), RequestButton(request.id, "take")),)
        if channel in NUMBERED_CHANNELS:
            # Numbers belong to what the volunteer is doing (a procedure's step): the notice is
            # taken with its own word, and its options never become the chat's.
            lines.append(t(TAKE_BY_WORD, id=request.id))
            take = ()
        notices.append((uid, Reply("\n".join(lines), buttons=take, to=Address(channel, chat_id),
                                   key=notice_key(request.id))))
    return notices


# Words that take or close a request by its number on channels without buttons ("NHẬN 12"):
# they work in any chat, mid-procedure too, and the server checks who may (request_button).
TAKE_BY_WORD = N_("To take it, type TAKE {id} (the numbers 1, 2, 3 … stay for what you are doing).")
_REQUEST_WORD = re.compile(r"^\s*(nhan|take|dong|close)\s*#?\s*(\d{1,9})\s*[.!]?\s*$")
_WORD_VERBS = {"nhan": "take", "take": "take", "dong": "close", "close": "close"}


def request_word(text: str) -> RequestButton | None:
    """The request a typed "NHẬN 12" / "take 12" / "ĐÓNG 12" / "close 12" means, or None."""
    found = _REQUEST_WORD.match(fold(text)) if len(text) <= 40 else None
    return RequestButton(int(found.group(2)), _WORD_VERBS[found.group(1)]) if found else None


def notice_key(request_id: int) -> str:
    """What a request's notices are recorded under (db/repo/notices.py record_message)."""
    return f"request:{request_id}"


async def taken_edits(ctx: Context, request: SupportRequest, taker: str) -> list[Reply]:
    """Every other volunteer's copy of the request's notice, edited to say who took it (`taker`,
    on channels that can edit a sent message; the Take button goes with it)."""
    recorded = [(channel, chat_id, ref) for channel, chat_id, ref in
                await messages_about(ctx.session, notice_key(request.id))
                if (channel, chat_id) != (ctx.incoming.channel, ctx.incoming.chat_id)]
    if not recorded:
        return []
    locales = dict(((channel, chat), locale) for channel, chat, locale in await ctx.session.execute(
        select(Identity.channel, Identity.external_id, User.locale).join(User, User.id == Identity.user_id)
        .where(Identity.external_id.in_({chat for _, chat, _ in recorded}))))
    edits = []
    for channel, chat_id, ref in recorded:
        t = translator(locales.get((channel, chat_id)))
        text = "\n".join(["✅ " + t("Taken by {name}: request #{id}", name=taker,
                                     id=request.id), f"“{request.question}”"])
        edits.append(Reply(text, to=Address(channel, chat_id), edit_ref=ref))
    return edits


async def _requester_replies(
    ctx: Context, request: SupportRequest, msgid: str, **values: object
) -> list[Reply]:
    requester = await ctx.session.get(User, request.requester_id)
    t = translator(requester.locale if requester else None)
    return [Reply(t(msgid, **values), to=Address(channel, chat_id))
            for _, channel, chat_id in await addresses_of(ctx.session, [request.requester_id])]


def _may_handle(ctx: Context, request: SupportRequest, area: Area | None) -> bool:
    if request.volunteer_id == ctx.user.id:
        return True
    if area is not None:
        return covers(ctx, area.code, STAFF)
    return ctx.has_role("leader", "admin")


@router.button(RequestButton)
async def request_button(ctx: Context, data: RequestButton) -> list[Reply]:
    verb = data.verb
    request = await ctx.session.get(SupportRequest, data.request_id)
    if request is None:
        return [out_of_date(ctx)]
    area = await ctx.session.get(Area, request.area_id) if request.area_id else None
    household = await ctx.session.get(Household, request.household_id) if request.household_id else None
    assigned = household is not None and household.volunteer_id == ctx.user.id
    if not ctx.has_role(*STAFF) or not (_may_handle(ctx, request, area) or assigned):
        refuse(ctx, f"request:{verb}", f"request:{request.id}")
        return [Reply(ctx.t("This request is not in your area."))]
    if verb == "take":
        if request.status != "open":
            taker = await ctx.session.get(User, request.volunteer_id) if request.volunteer_id else None
            if taker is not None and taker.id == ctx.user.id:
                return [Reply(ctx.t("You already took request #{id}.", id=request.id))]
            return [Reply(ctx.t("Request #{id} was already taken by {name}.", id=request.id,
                                name=taker.display_name if taker else "?"), edit=True)]
        if not await take_request(ctx.session, request.id, ctx.user.id, ctx.now):
            return [Reply(ctx.t("Request #{id} was already taken.", id=request.id), edit=True)]
        await ctx.session.refresh(request)
        await follow_ups.schedule_visit_open(ctx.session, request, ctx.now)
        details = [ctx.t("You took request #{id}. Contact the resident soon.", id=request.id),
                   f"“{request.question}”", *_where_to_find(ctx.t, request, household)]
        how, close = visit_limits.close_offer(ctx.t, ctx.incoming.channel, request.id)
        # The taker's notice becomes the request's card; everyone else's says who took it.
        return [Reply("\n".join(details + how), buttons=close, edit=True),
                *await taken_edits(ctx, request, ctx.user.display_name),
                *await _requester_replies(ctx, request, N_("Volunteer {name} will help you (request #{id})."),
                                          name=ctx.user.display_name, id=request.id)]
    if verb == "close":
        if request.status == "closed":
            return [Reply(ctx.t("Request #{id} is already closed.", id=request.id))]
        ctx.set_state({"dialog": "close_request", "request_id": request.id})
        return [Reply(ctx.t("Closing request #{id}: write a short note on what was done.", id=request.id))]
    return [out_of_date(ctx)]


@router.dialog("close_request", buttons=(RequestButton,))
async def close_note(ctx: Context, text: str) -> list[Reply]:
    request = await ctx.session.get(SupportRequest, int(ctx.state.get("request_id", 0)))
    ctx.set_state(None)
    if request is None or request.status == "closed":
        return [out_of_date(ctx)]
    area = await ctx.session.get(Area, request.area_id) if request.area_id else None
    if not _may_handle(ctx, request, area):
        refuse(ctx, "request:close", f"request:{request.id}")
        return [Reply(ctx.t("This request is not in your area."))]
    value, error = check("text", text, ctx.now)
    if error:
        ctx.set_state({"dialog": "close_request", "request_id": request.id})
        return [Reply(ctx.t(error.msgid, **error.values))]
    request.status, request.closed_at, request.close_note = "closed", ctx.now, str(value)
    if request.volunteer_id is None:
        request.volunteer_id, request.taken_at = ctx.user.id, ctx.now
    return [Reply(ctx.t("Request #{id} closed. Thank you!", id=request.id)),
            *await _requester_replies(ctx, request, N_("Your request #{id} is done: {note}"),
                                      id=request.id, note=request.close_note)]


@router.command("/requests", roles=STAFF, help=N_("visit requests in your area"), order=14)
async def list_requests(ctx: Context, args: str) -> list[Reply]:
    codes = [g.area_code for g in ctx.grants if g.role in STAFF]
    rows = await requests_for_volunteer(ctx.session, ctx.user.id, codes)
    if not rows:
        return [Reply(ctx.t("No open visit requests. Good work! Type /households to see your households."))]
    lines = [ctx.t("Visit requests ({count}):", count=len(rows))]
    buttons = []
    for request, area_name, requester in rows:
        mine = request.volunteer_id == ctx.user.id
        status = ctx.t("yours") if mine else ctx.t("open")
        lines.append(f"#{request.id} · {area_name or '—'} · {requester} · {status}: {request.question[:80]}")
        if mine:
            buttons.append(Button(ctx.t("Close #{id}", id=request.id), RequestButton(request.id, "close")))
        elif request.status == "open":
            buttons.append(Button(ctx.t("Take #{id}", id=request.id), RequestButton(request.id, "take")))
    return [Reply("\n".join(lines), buttons=tuple(buttons[:20]), columns=2)]
