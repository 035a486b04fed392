"""Where a household counts: correcting its village, and archiving or restoring it (leaders).

A move carries the household's runs and step records to the new area, since reports count them
by the area they carry. An archived household is kept with its history and can be restored, but
leaves the lists and the statistics. Both are checked on the server and audited.
"""

from __future__ import annotations

from db.models import Area, Household
from db.repo.audit import audit
from db.repo.households import move_household
from handlers.access import can_reassign, covers, refuse, row_of_button
from handlers.buttons import EditButton, HouseholdButton
from handlers.context import Context
from handlers.i18n import N_
from handlers.router import STAFF
from handlers.types import Button, Reply, button_label
from handlers.validation import local_date

NOT_A_LEADER = N_("Only a leader or administrator of this area can archive or restore households.")


def back_button(ctx: Context, household_id: int) -> Button:
    return Button(ctx.t("Back to the household"), HouseholdButton(household_id))


# ---------------------------------------------------------------- the village

async def villages(ctx: Context) -> list[Area]:
    """The areas a volunteer may put a household in: as /new offers them."""
    from db.repo.areas import area_by_code, sub_areas

    found: dict[int, Area] = {}
    for code in sorted({g.area_code for g in ctx.grants if g.role in STAFF}):
        area = await area_by_code(ctx.session, code)
        if area is not None:
            for a in await sub_areas(ctx.session, area) or [area]:
                found[a.id] = a
    return sorted(found.values(), key=lambda a: a.name)


def offer_villages(ctx: Context, household: Household, areas: list[Area]) -> list[Reply]:
    choices = [a for a in areas if a.id != household.area_id][:20]
    buttons = [Button(button_label(a.name), EditButton(household.id, "to", str(a.id))) for a in choices]
    text = (ctx.t("Move {code} to which village or area?", code=household.code) if choices
            else ctx.t("There is no other area of yours to move {code} to.", code=household.code))
    return [Reply(text, buttons=(*buttons, back_button(ctx, household.id)))]


async def move_to(ctx: Context, household: Household, area: Area, raw_area: str) -> list[Reply]:
    from handlers.households import render_page

    target = await row_of_button(ctx.session, Area, raw_area)
    if target is None or not covers(ctx, target.code, STAFF):
        if target is not None:
            refuse(ctx, "edit:to", f"household:{household.id}->area:{target.code}")
        return [Reply(ctx.t("You can only move a household to one of your own areas."),
                      buttons=(back_button(ctx, household.id),))]
    if target.id != household.area_id:
        await move_household(ctx.session, household, target)
        audit(ctx.session, ctx.now, ctx.user.id, "household.edit", f"household:{household.code}",
              {"field": "area", "from": area.code, "to": target.code})
    return [Reply(ctx.t("Saved.")), await render_page(ctx, household)]


# ---------------------------------------------------------------- archive and restore (leaders)

async def archive(ctx: Context, household: Household, area: Area, verb: str) -> list[Reply]:
    from handlers.households import render_page

    t = ctx.t
    if not can_reassign(ctx, area):
        refuse(ctx, verb, f"household:{household.id}")
        return [Reply(t(NOT_A_LEADER), buttons=(back_button(ctx, household.id),))]
    if verb == "archive":
        return [Reply(t("Archive {code} ({head})? It is kept with its history and can be restored, "
                        "but leaves the lists and the statistics.", code=household.code,
                        head=household.head_name),
                      buttons=(Button(t("Yes, archive it"), EditButton(household.id, "archived")),
                               back_button(ctx, household.id)))]
    archiving = verb == "archived"
    if archiving == (household.archived_at is not None):  # pressed twice, or restored already
        return [await render_page(ctx, household)]
    household.archived_at = ctx.now if archiving else None
    audit(ctx.session, ctx.now, ctx.user.id, "household.archive" if archiving else "household.restore",
          f"household:{household.code}", {"area": area.code, "head": household.head_name})
    done = (t("{code} is archived. /household {code} shows it, to restore it.", code=household.code)
            if archiving else t("{code} is restored.", code=household.code))
    return [Reply(done), await render_page(ctx, household)]


def archived_line(ctx: Context, household: Household) -> str:
    day = local_date(household.archived_at).strftime("%d/%m/%Y") if household.archived_at else ""
    return "🗄 " + ctx.t("Archived on {day}: not in the lists or the statistics.", day=day)
