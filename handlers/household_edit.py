"""Corrections to a household's record and its members, from the household page.

Volunteers correct the head's name, the address and the phone of a household they may work on,
and a member's name, year of birth, citizen ID and digital-ready flag (the village, and
archiving by a leader: household_place.py). Button data only names what to change: who may
change it is checked here on the server every time, and every change goes to the audit log
with its value before.

A value that is valid but doubtful (a name typed at random, a phone or citizen ID already
recorded in the ward, a citizen ID whose year of birth differs) is kept as pending in the
conversation and saved only when the volunteer confirms it; a citizen ID is pending only in its
masked and hashed forms, never in full.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from conversations.validators import cccd_year_conflict, name_looks_typed_at_random
from db.models import Area, Household, Resident
from db.repo.audit import audit
from db.repo.households import household_with_citizen_id, household_with_phone
from handlers import household_place
from handlers.access import can_reassign
from handlers.buttons import ButtonData, EditButton, MemberButton
from handlers.context import Context
from handlers.household_place import back_button
from handlers.i18n import N_
from handlers.router import Router, out_of_date
from handlers.types import Button, Reply, button_label
from handlers.validation import check, hash_citizen_id, mask_citizen_id

DIALOG = "edit_record"

router = Router("household_edit")

# field -> (validator, question); member fields start with "m_".
FIELDS: dict[str, tuple[str, str]] = {
    "head": ("name", N_("Head of household of {code} now: {value}. Send the new full name.")),
    "address": ("address", N_("Address of {code} now: {value}. Send the new address or landmark.")),
    "phone": ("phone", N_("Phone of {code} now: {value}. Send the new phone number.")),
    "m_name": ("name", N_("Name now: {value}. Send the new full name.")),
    "m_year": ("year", N_("Year of birth of {name} now: {value}. Send the new year, e.g. 1960.")),
    "m_cccd": ("cccd", N_("Citizen ID of {name} now: {value}. Send the 12 digits; only a masked "
                          "form is kept.")),
}
AUDIT_FIELDS = {"head": "head_name", "address": "address", "phone": "phone", "m_name": "name",
                "m_year": "birth_year", "m_cccd": "citizen_id", "m_ready": "digital_ready"}

ODD_NAME = N_("“{name}” does not look like a name (it looks typed at random).")
SAME_PHONE = N_("Household {code} in this ward already has the phone {phone}.")
SAME_CITIZEN_ID = N_("This citizen ID is already recorded for a member of household {code}.")
YEAR_CONFLICT = N_("The citizen ID says born in {card_year} (digits 4 to 6), but the year of birth "
                   "is {year}.")
SAVE_ANYWAY = N_("Save anyway")
USE_CARD_YEAR = N_("Use {year} as the year of birth")
TYPE_AGAIN = N_("Type it again")
ARCHIVED = N_("This household is archived. A leader of the area can restore it with /household {code}.")
NOTHING = N_("nothing")


def leave_edit(ctx: Context) -> None:
    """Showing a household page ends a correction or a new member left half way."""
    if ctx.state.get("dialog") in (DIALOG, "add_member"):
        ctx.set_state(None)


# ---------------------------------------------------------------- doubtful values

async def doubts(ctx: Context, household: Household, area: Area, field: str, value: Any, *,
                 birth_year: int | None = None, resident_id: int | None = None) -> list[str]:
    """Translated warnings about a valid `value` for `field` (empty: save it at once)."""
    t = ctx.t
    found: list[str] = []
    if field in ("head", "m_name") and name_looks_typed_at_random(str(value)):
        found.append(t(ODD_NAME, name=value))
    if field == "phone" and value:
        code = await household_with_phone(ctx.session, area, str(value), other_than=household.id)
        if code:
            found.append(t(SAME_PHONE, code=code, phone=value))
    if field == "m_cccd" and isinstance(value, dict):
        if value.get("card_year"):
            found.append(t(YEAR_CONFLICT, card_year=value["card_year"], year=birth_year))
        code = await household_with_citizen_id(ctx.session, area, value["hash"], other_than=resident_id)
        if code:
            found.append(t(SAME_CITIZEN_ID, code=code))
    return found


def citizen_id_value(ctx: Context, digits: str, birth_year: int | None) -> dict[str, Any]:
    """What is kept of a typed citizen ID: masked, keyed hash, and the card's year if it conflicts."""
    return {"masked": mask_citizen_id(digits),
            "hash": hash_citizen_id(digits, ctx.services.settings.secret_key),
            "card_year": cccd_year_conflict(digits, birth_year)}


def confirm_reply(ctx: Context, warnings: list[str], pack: Callable[[str], ButtonData], *,
                  card_year: int | None, cancel: Button) -> Reply:
    """The doubts, and the way on: save anyway, take the card's year, type again, or cancel;
    `pack(verb)`: the button data of `keep`, `cardyear` and `retype` of the dialog asking."""
    t = ctx.t
    buttons = [Button(t(SAVE_ANYWAY), pack("keep"))]
    if card_year:
        buttons.append(Button(button_label(t(USE_CARD_YEAR, year=card_year)), pack("cardyear")))
    buttons += [Button(t(TYPE_AGAIN), pack("retype")), cancel]
    return Reply("\n".join([*warnings, t("Save it anyway, or type it again?")]), buttons=tuple(buttons))


# ---------------------------------------------------------------- the menus

async def edit_menu(ctx: Context, household: Household, area: Area) -> list[Reply]:
    from db.repo.households import members_of

    t = ctx.t
    leave_edit(ctx)
    if household.archived_at is not None:
        return [Reply(t(ARCHIVED, code=household.code), buttons=(back_button(ctx, household.id),))]
    buttons = [Button(t("Head of household"), EditButton(household.id, "head")),
               Button(t("Address"), EditButton(household.id, "address")),
               Button(t("Phone"), EditButton(household.id, "phone")),
               Button(t("Village"), EditButton(household.id, "area"))]
    for member in await members_of(ctx.session, household.id):
        buttons.append(Button(button_label(t("Member: {name}", name=member.name)), MemberButton(member.id)))
    if can_reassign(ctx, area):
        buttons.append(Button(t("Archive this household"), EditButton(household.id, "archive")))
    buttons.append(back_button(ctx, household.id))
    return [Reply(t("Correct {code}: what is wrong?", code=household.code), buttons=tuple(buttons))]


async def member_menu(ctx: Context, household: Household, member: Resident) -> list[Reply]:
    t = ctx.t
    leave_edit(ctx)
    facts = [member.name, str(member.birth_year) if member.birth_year else t("year not known"),
             member.citizen_id_masked or t("no citizen ID"),
             t("digital-ready") if member.digital_ready else t("not digital-ready yet")]
    ready = (Button(t("Not digital-ready"), MemberButton(member.id, "ready", "0")) if member.digital_ready
             else Button(t("Mark digital-ready"), MemberButton(member.id, "ready", "1")))
    buttons = (Button(t("Name"), MemberButton(member.id, "name")),
               Button(t("Year of birth"), MemberButton(member.id, "year")),
               Button(t("Citizen ID"), MemberButton(member.id, "cccd")), ready,
               Button(t("Remove this member"), MemberButton(member.id, "remove")),
               back_button(ctx, household.id))
    return [Reply(t("Member of {code}: {facts}. What to correct?", code=household.code,
                    facts=", ".join(facts)), buttons=buttons)]


async def ask_value(ctx: Context, household: Household, field: str, member: Resident | None = None) -> Reply:
    t = ctx.t
    _, question = FIELDS[field]
    now: str | int | None
    if member is None:
        now = {"head": household.head_name, "address": household.address, "phone": household.phone}[field]
        text = t(question, code=household.code, value=now or t(NOTHING))
    else:
        now = {"m_name": member.name, "m_year": member.birth_year, "m_cccd": member.citizen_id_masked}[field]
        text = t(question, name=member.name, value=now or t(NOTHING))
    ctx.set_state({"dialog": DIALOG, "household_id": household.id, "field": field,
                   "resident_id": member.id if member else None,
                   # "12" is an address; for the other fields a short number picks an option.
                   "expects_text": field == "address"})
    buttons = []
    if field == "phone" and household.phone:
        buttons.append(Button(t("Remove the phone"), EditButton(household.id, "nophone")))
    buttons.append(back_button(ctx, household.id))
    return Reply(text, buttons=tuple(buttons))


# ---------------------------------------------------------------- buttons

async def _household_of(ctx: Context, ref: int | str, action: str) -> tuple[Household, Area] | Reply:
    from handlers.households import load_household

    loaded = await load_household(ctx, ref, action)
    if isinstance(loaded, Reply):
        return loaded
    household, _ = loaded
    if household.archived_at is not None and action != "restore":
        return Reply(ctx.t(ARCHIVED, code=household.code), buttons=(back_button(ctx, household.id),))
    return loaded


@router.button(EditButton)
async def edit_button(ctx: Context, data: EditButton) -> list[Reply]:
    verb, arg = data.verb, data.arg
    action = f"edit:{verb}"[:40] if verb != "restore" else "restore"
    loaded = await _household_of(ctx, data.household_id, action)
    if isinstance(loaded, Reply):
        return [loaded]
    household, area = loaded
    if verb in ("head", "address", "phone"):
        return [await ask_value(ctx, household, verb)]
    if verb == "nophone":
        return await save(ctx, household, area, "phone", None)
    if verb == "area":
        return household_place.offer_villages(ctx, household, await household_place.villages(ctx))
    if verb == "to":
        return await household_place.move_to(ctx, household, area, arg)
    if verb in ("archive", "archived", "restore"):
        return await household_place.archive(ctx, household, area, verb)
    if verb in ("keep", "cardyear", "retype"):
        return await settle(ctx, household, area, verb)
    return [out_of_date(ctx)]


@router.button(MemberButton)
async def member_button(ctx: Context, data: MemberButton) -> list[Reply]:
    verb, arg = data.verb, data.arg
    member = await ctx.session.get(Resident, data.resident_id)
    if member is None:
        return [out_of_date(ctx)]
    action = f"{verb}:{arg}" if arg else verb
    loaded = await _household_of(ctx, member.household_id, f"member:{action or 'open'}"[:40])
    if isinstance(loaded, Reply):
        return [loaded]
    household, area = loaded
    if verb == "":
        return await member_menu(ctx, household, member)
    if verb in ("name", "year", "cccd"):
        return [await ask_value(ctx, household, f"m_{verb}", member)]
    if verb == "ready" and arg in ("0", "1"):
        return await save(ctx, household, area, "m_ready", arg == "1", member=member)
    if verb in ("remove", "removed"):
        return await remove_member(ctx, household, member, confirmed=verb == "removed")
    return [out_of_date(ctx)]


async def remove_member(ctx: Context, household: Household, member: Resident, *,
                        confirmed: bool) -> list[Reply]:
    """A member added by mistake goes (audited, the citizen ID only masked); one that procedures
    were recorded for stays, to be corrected instead."""
    from sqlalchemy import func, select

    from db.models import FlowRun
    from handlers.households import render_page

    t = ctx.t
    runs = await ctx.session.scalar(select(func.count()).select_from(FlowRun)
                                    .where(FlowRun.resident_id == member.id)) or 0
    if runs:
        return [Reply(t("Procedures were recorded for {name}, so the member stays; correct the "
                        "details instead.", name=member.name), buttons=(back_button(ctx, household.id),))]
    if not confirmed:
        return [Reply(t("Remove {name} from {code}? Only do this for a member added by mistake.",
                        name=member.name, code=household.code),
                      buttons=(Button(t("Yes, remove"), MemberButton(member.id, "removed")),
                               back_button(ctx, household.id)))]
    audit(ctx.session, ctx.now, ctx.user.id, "member.remove",
          f"household:{household.code}/member:{member.id}",
          {"name": member.name, "birth_year": member.birth_year, "citizen_id": member.citizen_id_masked})
    await ctx.session.delete(member)
    await ctx.session.flush()
    return [Reply(t("{name} removed from {code}.", name=member.name, code=household.code)),
            await render_page(ctx, household)]


# ---------------------------------------------------------------- typed values

@router.dialog(DIALOG)
async def edit_text(ctx: Context, text: str) -> list[Reply]:
    state: Mapping[str, Any] = ctx.state
    loaded = await _household_of(ctx, str(state.get("household_id", "")), "edit:text")
    if isinstance(loaded, Reply):
        ctx.set_state(None)
        return [loaded]
    household, area = loaded
    field = str(state.get("field", ""))
    member = await _member(ctx, household, state)
    if field not in FIELDS or (field.startswith("m_") and member is None):
        ctx.set_state(None)
        return [out_of_date(ctx)]
    if state.get("pending") is not None:  # typed instead of pressing: treated as a new value
        state = {k: v for k, v in state.items() if k != "pending"}
        ctx.set_state(state)
    kind, _ = FIELDS[field]
    value: Any
    value, error = check(kind, text, ctx.now)
    if error:
        return [Reply(ctx.t(error.msgid, **error.values), buttons=(back_button(ctx, household.id),))]
    if field == "m_cccd":
        assert member is not None and isinstance(value, str)
        value = citizen_id_value(ctx, value, member.birth_year)
    warnings = await doubts(ctx, household, area, field, value,
                            birth_year=member.birth_year if member else None,
                            resident_id=member.id if member else None)
    if warnings:
        ctx.set_state({**state, "pending": value})
        card_year = value.get("card_year") if isinstance(value, dict) else None
        return [confirm_reply(ctx, warnings, lambda verb: EditButton(household.id, verb), card_year=card_year,
                              cancel=back_button(ctx, household.id))]
    return await save(ctx, household, area, field, value, member=member)


async def _member(ctx: Context, household: Household, state: Mapping[str, Any]) -> Resident | None:
    raw = state.get("resident_id")
    member = await ctx.session.get(Resident, int(raw)) if isinstance(raw, int) else None
    return member if member is not None and member.household_id == household.id else None


async def settle(ctx: Context, household: Household, area: Area, verb: str) -> list[Reply]:
    """Keep the pending value, keep it with the card's year of birth, or ask for it again."""
    state = ctx.state
    if state.get("dialog") != DIALOG or state.get("household_id") != household.id \
            or state.get("pending") is None:
        return [out_of_date(ctx)]
    field, value = str(state.get("field")), state["pending"]
    member = await _member(ctx, household, state)
    if field.startswith("m_") and member is None:
        ctx.set_state(None)
        return [out_of_date(ctx)]
    if verb == "retype":
        return [await ask_value(ctx, household, field, member)]
    if verb == "cardyear":
        if not (isinstance(value, dict) and value.get("card_year") and member is not None):
            return [out_of_date(ctx)]
        await _write_member(ctx, household, member, "m_year", int(value["card_year"]))
    return await save(ctx, household, area, field, value, member=member, overridden=True)


# ---------------------------------------------------------------- saving

async def save(ctx: Context, household: Household, area: Area, field: str, value: Any, *,
               member: Resident | None = None, overridden: bool = False) -> list[Reply]:
    from handlers.households import render_page

    if field.startswith("m_"):
        assert member is not None
        await _write_member(ctx, household, member, field, value, overridden=overridden)
    else:
        before = {"head": household.head_name, "address": household.address, "phone": household.phone}[field]
        setattr(household, {"head": "head_name", "address": "address", "phone": "phone"}[field], value)
        _audit_change(ctx, "household.edit", household, field, before, value, overridden)
    ctx.set_state(None)
    return [Reply(ctx.t("Saved.")), await render_page(ctx, household)]


async def _write_member(ctx: Context, household: Household, member: Resident, field: str, value: Any,
                        *, overridden: bool = False) -> None:
    if field == "m_cccd":
        before = member.citizen_id_masked
        member.citizen_id_masked = value["masked"] if value else None
        member.citizen_id_hash = value["hash"] if value else None
        shown = member.citizen_id_masked
    else:
        attribute = {"m_name": "name", "m_year": "birth_year", "m_ready": "digital_ready"}[field]
        before = getattr(member, attribute)
        setattr(member, attribute, value)
        shown = value
    _audit_change(ctx, "member.edit", household, field, before, shown, overridden, member_id=member.id)


def _audit_change(ctx: Context, action: str, household: Household, field: str, before: Any, after: Any,
           overridden: bool, *, member_id: int | None = None) -> None:
    """The audit entry of one field change; a citizen ID appears only masked."""
    target = f"household:{household.code}" + (f"/member:{member_id}" if member_id else "")
    details: dict[str, Any] = {"field": AUDIT_FIELDS[field], "from": before, "to": after}
    if overridden:
        details["confirmed"] = True
    audit(ctx.session, ctx.now, ctx.user.id, action, target, details)
