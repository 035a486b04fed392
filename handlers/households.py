"""Households for volunteers: /households, /household CODE, /new, members, reassignment."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from conversations.local_time import VIETNAM
from conversations.state import RunStatus
from conversations.validators import name_looks_typed_at_random
from db.models import Area, Household, Resident
from db.repo.audit import audit
from db.repo.flows import hand_over_runs
from db.repo.households import (
    VOLUNTEER_LOAD,
    HouseholdProgress,
    count_for_volunteer,
    household_by_code,
    household_page,
    household_with_phone,
    next_household_code,
    progress_of_volunteer,
    volunteers_of_area,
)
from handlers import come_back, flows, household_edit, household_place
from handlers.access import button_id, can_reassign, can_work_on, covers, refuse, row_of_button
from handlers.buttons import AddMemberButton, EditButton, HouseholdButton, NewHouseholdButton, RunButton
from handlers.choices import numbered, wrong_answer
from handlers.context import Context
from handlers.i18n import N_
from handlers.router import STAFF, Router, out_of_date
from handlers.types import Button, Reply, button_label, person_label
from handlers.validation import check

MAX_LIST_BUTTONS = 30

router = Router("households")


# ---------------------------------------------------------------- listing and the page

@router.command("/households", roles=STAFF, help=N_("the households you look after"), order=10)
async def list_households(ctx: Context, args: str) -> list[Reply]:
    t = ctx.t
    rows = await progress_of_volunteer(ctx.session, ctx.user.id)
    if not rows:
        return [Reply(t("You have no households yet. Add one with /new."))]
    lines = [t("Your households ({count}):", count=len(rows)),
             t("✅ procedures done · ⏳ in progress · ⛔ blocked. Pick one:")]
    if len(rows) > VOLUNTEER_LOAD:
        lines.append(t("You look after {count} households, more than the 20 of 1+20. "
                       "Ask your leader to share some.", count=len(rows)))
    buttons = tuple(Button(_progress_label(p), HouseholdButton(p.household.id))
                    for p in rows[:MAX_LIST_BUTTONS])
    if len(rows) > MAX_LIST_BUTTONS:
        lines.append(t("Showing the first {shown}; open others with /household CODE.",
                       shown=MAX_LIST_BUTTONS))
    return [Reply("\n".join(lines), buttons=buttons, columns=1)]


def _progress_label(p: HouseholdProgress) -> str:
    marks = "".join(
        f" {mark}{n}" if n else ""
        for mark, n in (("✅", p.completed), ("⛔", p.blocked))
    ) + (" ⏳" if p.active_flow else "")
    name = p.household.head_name
    room = 48 - len(p.household.code) - len(marks) - 1
    return f"{p.household.code} {name if len(name) <= room else name[: room - 1] + '…'}{marks}"


@router.command("/household", roles=STAFF, help=N_("open a household: /household CODE"), order=11)
async def open_household(ctx: Context, args: str) -> list[Reply]:
    if not args:
        return [Reply(ctx.t("Which household? Send /household CODE, e.g. /household HV-TL-001, "
                            "or pick one in /households."))]
    household = await household_by_code(ctx.session, args.split()[0])
    if household is None:
        return [Reply(ctx.t("There is no household {code}. Check the code in /households.",
                            code=args.split()[0][:20]))]
    return await show_household(ctx, household)


async def load_household(
    ctx: Context, household_id: int | str, action: str
) -> tuple[Household, Area] | Reply:
    """The household a button (its id) or the chat's state names, if this user may work on it;
    else the reply to send."""
    household = (await ctx.session.get(Household, household_id) if isinstance(household_id, int)
                 else await row_of_button(ctx.session, Household, household_id))
    area = await ctx.session.get(Area, household.area_id) if household else None
    if household is None or area is None:
        return out_of_date(ctx)
    if not can_work_on(ctx, household, area):
        refuse(ctx, action, f"household:{household.id}")
        return Reply(ctx.t("This household is not in your area, so you cannot open it."))
    return household, area


async def show_household(ctx: Context, household: Household) -> list[Reply]:
    area = await ctx.session.get(Area, household.area_id)
    assert area is not None
    if not can_work_on(ctx, household, area):
        refuse(ctx, "open", f"household:{household.id}")
        return [Reply(ctx.t("This household is not in your area, so you cannot open it."))]
    return [await render_page(ctx, household)]


async def render_page(ctx: Context, household: Household) -> Reply:
    t = ctx.t
    page = await household_page(ctx.session, household)
    hh = page.household
    lines = [f"🏠 {hh.code} · {hh.head_name}", f"{hh.address} · {page.area.name}"]
    if hh.archived_at is not None:
        lines.append(household_place.archived_line(ctx, hh))
    if hh.phone:
        lines.append(f"☎ {hh.phone}")
    lines.append(t("Volunteer: {name}", name=page.volunteer_name or t("nobody yet")))
    if page.members:
        lines.append(t("Members ({count}):", count=len(page.members)))
        for m in page.members:
            bits = [m.name]
            if m.birth_year:
                bits.append(str(m.birth_year))
            if m.citizen_id_masked:
                bits.append(m.citizen_id_masked)
            if m.digital_ready:
                bits.append(t("digital-ready"))
            lines.append("  • " + ", ".join(bits))
    else:
        lines.append(t("No members recorded yet."))
    buttons: list[Button] = []
    stopped, restart = await flows.abandoned_section(ctx, hh.id, {m.id: m.name for m in page.members})
    if page.runs or stopped:
        lines.append(t("Procedures:"))
        dates = await come_back.come_back_dates(ctx.session, [r.run_id for r in page.runs])
        for run in page.runs:
            who = f" ({run.resident_name})" if run.resident_name else ""
            title = flows.title(ctx, run.flow_id)
            if run.status == RunStatus.COMPLETED:
                lines.append(f"  ✅ {title}{who}")
            elif run.status == RunStatus.BLOCKED:
                reason = run.blocked_reason or t("no reason given")
                lines.append(f"  ⛔ {title}{who}: {flows.reason(ctx, reason)}"
                             + _come_back(ctx, dates, run.run_id))
                label = person_label("🔁", run.resident_name, title)
                buttons.append(Button(label, RunButton(run.run_id, "resume")))
            else:
                lines.append("  ⏳ " + t("{flow}{who}: in progress", flow=title, who=who)
                             + _come_back(ctx, dates, run.run_id))
                label = person_label("▶️", run.resident_name, title)
                buttons.append(Button(label, RunButton(run.run_id, "resume")))
    lines += stopped
    if hh.archived_at is not None:
        if can_reassign(ctx, page.area):
            return Reply("\n".join(lines), buttons=(Button(t("Restore"), EditButton(hh.id, "restore")),))
        lines.append(t("A leader of the area can restore it. Your households: /households"))
        return Reply("\n".join(lines))
    buttons += restart
    return Reply("\n".join(lines), buttons=(*buttons, *_page_actions(ctx, hh, page.area)))


def _page_actions(ctx: Context, hh: Household, area: Area) -> list[Button]:
    t = ctx.t
    buttons = [Button(t("Start a procedure"), HouseholdButton(hh.id, "start")),
               Button(t("Add a member"), HouseholdButton(hh.id, "add")),
               Button(t("Correct details"), HouseholdButton(hh.id, "edit"))]
    if can_reassign(ctx, area):
        buttons.append(Button(t("Reassign"), HouseholdButton(hh.id, "reassign")))
    if not numbered(ctx):  # where the page replaced the list, the way back to it
        buttons.append(Button("↩️ " + t("Your households"), HouseholdButton(hh.id, "list")))
    return buttons


def _come_back(ctx: Context, dates: dict[int, datetime], run_id: int) -> str:
    """" · come back on 12/12" when a come-back reminder is set for the run."""
    if run_id not in dates:
        return ""
    return " · " + ctx.t("come back on {day}", day=dates[run_id].astimezone(VIETNAM).strftime("%d/%m"))


@router.button(HouseholdButton)
async def household_button(ctx: Context, data: HouseholdButton) -> list[Reply]:
    verb, arg = data.verb, data.arg
    # A refusal audits what was pressed, as the button carried it.
    action = ":".join((data.verb, data.arg, data.person)).rstrip(":") or "open"
    loaded = await load_household(ctx, data.household_id, action)
    if isinstance(loaded, Reply):
        return [loaded]
    household, area = loaded
    if verb in ("", "list"):
        return await _page_or_list(ctx, household, verb, arg)
    if household.archived_at is not None:
        return [Reply(ctx.t(household_edit.ARCHIVED, code=household.code),
                      buttons=(household_edit.back_button(ctx, household.id),))]
    if verb == "edit":
        return await household_edit.edit_menu(ctx, household, area)
    if verb == "add":
        # Started from a procedure (arg: its flow id): once added, the member's run starts.
        then_flow = arg if arg and ctx.services.flows is not None and arg in ctx.services.flows else None
        ctx.set_state({"dialog": "add_member", "step": "name", "household_id": household.id,
                       "then_flow": then_flow})
        return [Reply(ctx.t("New member of {code}: send their full name (or /cancel).", code=household.code),
                      buttons=(household_edit.back_button(ctx, household.id),))]
    if verb == "reassign":
        return await offer_reassign(ctx, household, area)
    if verb == "to":
        return await reassign_to(ctx, household, area, f"{arg}:{data.person}" if data.person else arg)
    if verb == "start":
        return await flows.offer_flows(ctx, household)
    if verb == "flow":
        return flows.in_place(await flows.choose_person(ctx, household, arg, data.person))
    return [out_of_date(ctx)]


async def _page_or_list(ctx: Context, household: Household, verb: str, arg: str) -> list[Reply]:
    """The page (or the list, from the page) in place of the message pressed on; from a
    procedure's last message (`arg` KEEP), that message stays and loses its keyboard."""
    if verb == "list":
        return flows.in_place(await list_households(ctx, ""))
    household_edit.leave_edit(ctx)
    page = await render_page(ctx, household)
    if arg == flows.KEEP:
        return [Reply("", toast=True), page] if ctx.incoming.tapped else [page]
    return flows.in_place([page])


# ---------------------------------------------------------------- reassignment (leaders, admins)

async def offer_reassign(ctx: Context, household: Household, area: Area) -> list[Reply]:
    if not can_reassign(ctx, area):
        refuse(ctx, "reassign", f"household:{household.id}")
        return [Reply(ctx.t("Only a leader or administrator of this area can reassign households."))]
    people = [p for p in await volunteers_of_area(ctx.session, area.code) if p[0] != household.volunteer_id]
    if not people:
        return [Reply(ctx.t("There is no other volunteer in this area yet."))]
    buttons = tuple(
        Button(button_label(f"{name} ({n})"), HouseholdButton(household.id, "to", str(uid)))
        for uid, name, n in people[:20]
    )
    return [Reply(ctx.t("Reassign {code} to which volunteer? (households they have now)",
                        code=household.code), buttons=buttons)]


async def reassign_to(ctx: Context, household: Household, area: Area, raw_uid: str) -> list[Reply]:
    if not can_reassign(ctx, area):
        refuse(ctx, "reassign", f"household:{household.id}")
        return [Reply(ctx.t("Only a leader or administrator of this area can reassign households."))]
    candidates = {uid: (name, n) for uid, name, n in await volunteers_of_area(ctx.session, area.code)}
    uid = button_id(raw_uid)
    if uid not in candidates:
        refuse(ctx, "reassign_to", f"household:{household.id}->user:{raw_uid[:20]}")
        return [out_of_date(ctx)]
    before = household.volunteer_id
    household.volunteer_id = uid
    await hand_over_runs(ctx.session, household.id, before, uid)
    audit(ctx.session, ctx.now, ctx.user.id, "household.reassign", f"household:{household.code}",
          {"from": before, "to": uid})
    name, load = candidates[uid]
    lines = [ctx.t("{code} is now looked after by {name}.", code=household.code, name=name)]
    if load + 1 > VOLUNTEER_LOAD:
        lines.append(ctx.t("Note: {name} now has {count} households, more than 20.",
                           name=name, count=load + 1))
    back = (Button(ctx.t("Back to the household"), HouseholdButton(household.id)),)
    return [Reply("\n".join(lines), buttons=back)]


# ---------------------------------------------------------------- /new household

def _areas_to_offer(ctx: Context) -> list[tuple[str, str]]:
    return sorted({(g.area_code, g.area_name) for g in ctx.grants if g.role in STAFF})


@router.command("/new", roles=STAFF, help=N_("add a household"), order=12)
async def new_household(ctx: Context, args: str) -> list[Reply]:
    from db.repo.areas import area_by_code, sub_areas

    choices: list[Area] = []
    for code, _ in _areas_to_offer(ctx):
        area = await area_by_code(ctx.session, code)
        if area is None:
            continue
        children = await sub_areas(ctx.session, area)
        choices.extend(children or [area])
    if not choices:
        return [Reply(ctx.t("You have no area to add households to."))]
    ctx.set_state({"dialog": "new_household", "step": "area", "data": {}})
    buttons = tuple(Button(button_label(a.name), NewHouseholdButton("area", str(a.id))) for a in choices[:20])
    return [Reply(ctx.t("New household (1/4). Which village or area?"), buttons=buttons)]


@router.button(NewHouseholdButton)
async def new_household_button(ctx: Context, button: NewHouseholdButton) -> list[Reply]:
    state = ctx.state
    if state.get("dialog") != "new_household":
        return [out_of_date(ctx)]
    verb, arg = button.verb, button.arg
    if verb == "area" and state.get("step") == "area":
        area = await row_of_button(ctx.session, Area, arg)
        if area is None or not covers(ctx, area.code, STAFF):
            if area is not None:
                refuse(ctx, "new_household", f"area:{area.code}")
            return [Reply(ctx.t("You can only add households in your own area."))]
        ctx.set_state({**state, "step": "head", "data": {"area_id": area.id}})
        return [Reply(ctx.t("New household (2/4). Full name of the head of household?"))]
    if verb == "skip" and state.get("step") == "phone":
        return await _create_household(ctx, state["data"], None)
    pending = state.get("pending")
    if verb == "keep" and pending is not None:
        data = dict(state.get("data") or {})
        if state.get("step") == "head":
            data["head_name"] = pending
            ctx.set_state({**state, "step": "address", "pending": None, "data": data})
            return [Reply(ctx.t("New household (3/4). Address or a landmark to find the house?"))]
        if state.get("step") == "phone":
            return await _create_household(ctx, data, pending, confirmed=True)
    if verb == "retype" and pending is not None:
        ctx.set_state({**state, "pending": None})
        if state.get("step") == "head":
            return [Reply(ctx.t("New household (2/4). Full name of the head of household?"))]
        return [Reply(ctx.t("New household (4/4). Phone number of the household? (optional)"),
                      buttons=(Button(ctx.t("Skip"), NewHouseholdButton("skip")),))]
    if verb == "stop":
        ctx.set_state(None)
        return [Reply(ctx.t("Cancelled. Nothing was saved. Type /help to see what you can do."))]
    return [out_of_date(ctx)]


def _new_doubt(ctx: Context, warnings: list[str]) -> Reply:
    return household_edit.confirm_reply(ctx, warnings, lambda verb: NewHouseholdButton(verb),
                                        card_year=None,
                                        cancel=Button(ctx.t("Cancel"), NewHouseholdButton("stop")))


@router.dialog("new_household", buttons=(NewHouseholdButton,))
async def new_household_text(ctx: Context, text: str) -> list[Reply]:
    t = ctx.t
    state = ctx.state
    step, data = state.get("step"), dict(state.get("data") or {})
    if step == "area":
        return wrong_answer(ctx)
    if step == "head":
        value, error = check("name", text, ctx.now)
        if error:
            if state.get("pending") is not None:  # still answering "does not look like a name"
                return [Reply(t(error.msgid, **error.values)),
                        _new_doubt(ctx, [t(household_edit.ODD_NAME, name=state["pending"])])]
            return [Reply(t(error.msgid, **error.values) + "\n" + t("Full name of the head of household?"))]
        if name_looks_typed_at_random(str(value)):
            ctx.set_state({**state, "pending": value})
            return [_new_doubt(ctx, [t(household_edit.ODD_NAME, name=value)])]
        ctx.set_state({**state, "step": "address", "pending": None, "data": {**data, "head_name": value}})
        return [Reply(t("New household (3/4). Address or a landmark to find the house?"))]
    if step == "address":
        value, error = check("address", text, ctx.now)
        if error:
            again = t("Address or a landmark to find the house?")
            return [Reply(t(error.msgid, **error.values) + "\n" + again)]
        ctx.set_state({**state, "step": "phone", "data": {**data, "address": value}})
        return [Reply(t("New household (4/4). Phone number of the household? (optional)"),
                      buttons=(Button(t("Skip"), NewHouseholdButton("skip")),))]
    if step == "phone":
        value, error = check("phone", text, ctx.now)
        if error:
            return [Reply(t(error.msgid, **error.values),
                          buttons=(Button(t("Skip"), NewHouseholdButton("skip")),))]
        area = await ctx.session.get(Area, int(data.get("area_id", 0)))
        same = await household_with_phone(ctx.session, area, str(value)) if area else None
        if same:
            ctx.set_state({**state, "pending": value})
            return [_new_doubt(ctx, [t(household_edit.SAME_PHONE, code=same, phone=value)])]
        return await _create_household(ctx, data, str(value))
    ctx.set_state(None)
    return [out_of_date(ctx)]


async def _create_household(
    ctx: Context, data: dict, phone: str | None, *, confirmed: bool = False
) -> list[Reply]:
    area = await ctx.session.get(Area, int(data["area_id"]))
    if area is None or not covers(ctx, area.code, STAFF):
        ctx.set_state(None)
        return [Reply(ctx.t("You can only add households in your own area."))]
    household = None
    for _ in range(5):  # another volunteer may take the same next code at the same moment
        code = await next_household_code(ctx.session, area)
        try:
            async with ctx.session.begin_nested():
                household = Household(
                    code=code, area_id=area.id, head_name=data["head_name"], address=data["address"],
                    phone=phone, volunteer_id=ctx.user.id, created_at=ctx.now,
                )
                ctx.session.add(household)
            break
        except IntegrityError:
            household = None
    if household is None:
        return [Reply(ctx.t("Sorry, something went wrong and nothing was saved. Please try again."))]
    ctx.set_state(None)
    if confirmed:  # saved although another household of the ward has this phone
        audit(ctx.session, ctx.now, ctx.user.id, "household.duplicate_kept", f"household:{household.code}",
              {"field": "phone"})
    replies = [Reply(ctx.t("Household {code} added. You look after it.", code=household.code))]
    count = await count_for_volunteer(ctx.session, ctx.user.id)
    if count > VOLUNTEER_LOAD:
        replies.append(Reply(ctx.t("You now look after {count} households, more than the 20 of 1+20. "
                                   "That is allowed; tell your leader if it is too many.", count=count)))
    replies.append(await render_page(ctx, household))
    return replies


# ---------------------------------------------------------------- members

CCCD_QUESTION = N_("Citizen ID number (12 digits)? Optional; only a masked form is kept.")


async def _member_household(ctx: Context) -> tuple[Household, Area] | None:
    """The household the add-member dialog adds to, if this user may still work on it."""
    household = await row_of_button(ctx.session, Household, str(ctx.state.get("household_id", "")))
    area = await ctx.session.get(Area, household.area_id) if household else None
    if household is None or area is None or not can_work_on(ctx, household, area) \
            or household.archived_at is not None:
        return None
    return household, area


def _member_doubt(ctx: Context, household: Household, warnings: list[str], card_year: int | None) -> Reply:
    return household_edit.confirm_reply(ctx, warnings, lambda verb: AddMemberButton(verb),
                                        card_year=card_year,
                                        cancel=household_edit.back_button(ctx, household.id))


@router.dialog("add_member", buttons=(AddMemberButton,))
async def add_member_text(ctx: Context, text: str) -> list[Reply]:
    t = ctx.t
    state = {**ctx.state, "pending": None}  # a typed answer replaces a value waiting to be confirmed
    loaded = await _member_household(ctx)
    if loaded is None:
        ctx.set_state(None)
        return [out_of_date(ctx)]
    household, area = loaded
    step = state.get("step")
    skip = (Button(t("Skip"), AddMemberButton("skip")),)
    if step == "name":
        value, error = check("name", text, ctx.now)
        if error:
            return [Reply(t(error.msgid, **error.values) + "\n" + t("Send their full name (or /cancel)."),
                          buttons=(household_edit.back_button(ctx, household.id),))]
        if name_looks_typed_at_random(str(value)):
            ctx.set_state({**state, "pending": value})
            return [_member_doubt(ctx, household, [t(household_edit.ODD_NAME, name=value)], None)]
        return _ask_year(ctx, state, str(value))
    if step == "year":
        value, error = check("year", text, ctx.now)
        if error:
            return [Reply(t(error.msgid, **error.values), buttons=skip)]
        assert value is not None  # no error: a value
        ctx.set_state({**state, "step": "cccd", "year": int(value), "expects_text": False})
        return [Reply(t(CCCD_QUESTION), buttons=skip)]
    if step == "cccd":
        value, error = check("cccd", text, ctx.now)
        if error:
            return [Reply(t(error.msgid, **error.values), buttons=skip)]
        cccd = household_edit.citizen_id_value(ctx, str(value), state.get("year"))
        warnings = await household_edit.doubts(ctx, household, area, "m_cccd", cccd,
                                               birth_year=state.get("year"))
        if warnings:
            ctx.set_state({**state, "pending": cccd})
            return [_member_doubt(ctx, household, warnings, cccd["card_year"])]
        return await _save_member(ctx, household, cccd)
    ctx.set_state(None)
    return [out_of_date(ctx)]


def _ask_year(ctx: Context, state: Mapping[str, Any], name: str) -> list[Reply]:
    # A year is a number: "85" is an answer here, not option 85.
    ctx.set_state({**state, "step": "year", "name": name, "pending": None, "expects_text": True})
    return [Reply(ctx.t("Year of birth of {name}? (optional)", name=name),
                  buttons=(Button(ctx.t("Skip"), AddMemberButton("skip")),))]


@router.button(AddMemberButton)
async def member_button(ctx: Context, data: AddMemberButton) -> list[Reply]:
    state = ctx.state
    if data.verb in ("resume", "drop") and state.get("dialog") == "add_member" and state.get("interrupted"):
        return await _after_interruption(ctx, state, keep=data.verb == "resume")
    return await _member_press(ctx, data)


async def _member_press(ctx: Context, data: AddMemberButton) -> list[Reply]:
    rest = data.verb
    state = ctx.state
    if state.get("dialog") != "add_member":
        return [out_of_date(ctx)]
    loaded = await _member_household(ctx)
    if loaded is None:
        ctx.set_state(None)
        return [out_of_date(ctx)]
    household, _ = loaded
    step, pending = state.get("step"), state.get("pending")
    skip = (Button(ctx.t("Skip"), AddMemberButton("skip")),)
    if rest == "skip" and step == "year":
        ctx.set_state({**state, "step": "cccd", "year": None, "expects_text": False})
        return [Reply(ctx.t(CCCD_QUESTION), buttons=skip)]
    if rest == "skip" and step == "cccd":
        return await _save_member(ctx, household, None)
    if rest == "keep" and pending is not None:
        if step == "name":
            return _ask_year(ctx, state, str(pending))
        if step == "cccd":
            return await _save_member(ctx, household, pending, confirmed=True)
    if rest == "cardyear" and step == "cccd" and isinstance(pending, dict) and pending.get("card_year"):
        ctx.set_state({**state, "year": int(pending["card_year"])})
        return await _save_member(ctx, household, {**pending, "card_year": None}, confirmed=True)
    if rest == "retype" and pending is not None:
        ctx.set_state({**state, "pending": None})
        if step == "name":
            return [Reply(ctx.t("New member of {code}: send their full name (or /cancel).",
                                code=household.code),
                          buttons=(household_edit.back_button(ctx, household.id),))]
        return [Reply(ctx.t(CCCD_QUESTION), buttons=skip)]
    if step == "name":
        return [Reply(ctx.t("Please send the name (or /cancel)."))]
    return [out_of_date(ctx)]


def interrupted_member(ctx: Context, command: str) -> list[Reply] | None:
    """A command typed while adding a member whose name is typed already: instead of dropping
    what was typed, ask whether to keep it (handlers/dispatch.py asks before the command runs);
    None when there is nothing to lose."""
    state = ctx.state
    if state.get("dialog") != "add_member" or not state.get("name"):
        return None
    # Options now, not typed text: "1" keeps the member even at the year question.
    ctx.set_state({**state, "interrupted": command[:200], "expects_text": False})
    name = str(state["name"])
    return [Reply(ctx.t("You were adding {name} as a member. Keep the member you were adding?", name=name),
                  buttons=(Button(ctx.t("▶️ Keep adding {name}", name=button_label(name, 28)),
                                  AddMemberButton("resume")),
                           Button(ctx.t("🗑 Drop it and go on to {command}", command=command.split()[0][:20]),
                                  AddMemberButton("drop"))))]


async def _after_interruption(ctx: Context, state: Mapping[str, Any], *, keep: bool) -> list[Reply]:
    """Keep adding the member (their question again), or drop it and run the command typed."""
    command = str(state.get("interrupted"))
    rest = {k: v for k, v in state.items() if k != "interrupted"}
    if keep:
        if state.get("step") == "year":
            return _ask_year(ctx, rest, str(state.get("name")))
        ctx.set_state({**rest, "expects_text": False})
        return [Reply(ctx.t(CCCD_QUESTION), buttons=(Button(ctx.t("Skip"), AddMemberButton("skip")),))]
    ctx.set_state(None)
    from handlers import dispatch  # here: dispatch imports this module's router
    return [Reply(ctx.t("The member was not added.")), *await dispatch.route_command(ctx, command)]


async def _save_member(ctx: Context, household: Household, cccd: dict | None, *,
                       confirmed: bool = False) -> list[Reply]:
    """Add the member (a citizen ID only masked and hashed); when the dialog was started from a
    procedure, go on with that procedure for the new member."""
    state = ctx.state
    resident = Resident(
        household_id=household.id, name=state["name"], birth_year=state.get("year"),
        citizen_id_masked=cccd["masked"] if cccd else None,
        citizen_id_hash=cccd["hash"] if cccd else None,
        digital_ready=False, created_at=ctx.now,
    )
    ctx.session.add(resident)
    await ctx.session.flush()
    ctx.set_state(None)
    if confirmed:
        audit(ctx.session, ctx.now, ctx.user.id, "member.doubt_kept",
              f"household:{household.code}/member:{resident.id}", {"citizen_id": resident.citizen_id_masked})
    added = Reply(ctx.t("{name} added to {code}.", name=resident.name, code=household.code))
    then_flow = state.get("then_flow")
    if then_flow and ctx.services.flows is not None and then_flow in ctx.services.flows:
        return [added, *await flows.choose_person(ctx, household, then_flow, str(resident.id))]
    return [added, await render_page(ctx, household)]
