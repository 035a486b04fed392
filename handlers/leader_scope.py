"""Which areas a leader or admin may see, and where reports read from."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Area
from db.places import new_ward_for
from handlers.access import covers
from handlers.buttons import ButtonData
from handlers.context import Context
from handlers.i18n import N_
from handlers.options import fold
from handlers.router import LEADERS
from handlers.types import Button, Reply, button_label

NOT_YOUR_AREA = N_("There is no area {code} among yours. Type /stats to see your areas.")


@asynccontextmanager
async def report_session(ctx: Context) -> AsyncIterator[AsyncSession]:
    """Where reports read: the read-only reports session when the app has one."""
    reader = ctx.services.read_session
    if reader is None:
        yield ctx.session
        return
    async with reader() as session:
        yield session


def leader_areas(ctx: Context) -> list[tuple[int, str, str]]:
    """(area id, code, name) of the user's leader/admin areas, minus those inside another."""
    grants = [g for g in ctx.grants if g.role in LEADERS]
    tops = {g.area_id: (g.area_id, g.area_code, g.area_name) for g in grants
            if not any(o.area_code != g.area_code and o.covers(g.area_code) for o in grants)}
    return sorted(tops.values(), key=lambda a: a[1])


# Words that name an area's level, left out when matching a typed name ("ta lang" finds
# "Thôn Tà Lang"); folded, longest first.
LEVEL_WORDS = ("thanh pho", "thi tran", "to dan pho", "khu pho", "dac khu", "phuong", "tinh",
               "thon", "ban", "xa", "ap", "to", "khu")


def _without_level(name: str) -> str:
    for word in LEVEL_WORDS:
        if name.startswith(word + " "):
            return name[len(word) + 1:]
    return name


def match_areas(wanted: str, areas: list[Area]) -> list[Area]:
    """The areas `wanted` names, best first: its code, the last part of its code, or its name,
    with or without diacritics, case and the level word; then names that start with it."""
    folded = fold(wanted)
    if not folded:
        return []
    slug = folded.replace(" ", "-")
    exact = [a for a in areas if a.code == wanted.strip().lower()]
    if exact:
        return exact
    named = [a for a in areas if folded in (fold(a.name), _without_level(fold(a.name)))
             or a.code.rsplit(".", 1)[-1] == slug]
    if named:
        return sorted(named, key=lambda a: len(a.code))
    return sorted((a for a in areas if _without_level(fold(a.name)).startswith(folded)
                   or fold(a.name).startswith(folded)), key=lambda a: len(a.code))


async def find_area(ctx: Context, text: str) -> Area | None:
    """An area inside the user's scope named by its code, the last part of its code or its name
    (without diacritics or the level word too)."""
    if not text.strip():
        return None
    tops = [code for _, code, _ in leader_areas(ctx)]
    if not tops:
        return None
    scope = or_(*(Area.code == code for code in tops), *(Area.code.like(code + ".%") for code in tops))
    areas = list(await ctx.session.scalars(select(Area).where(scope).limit(5000)))
    inside = [a for a in match_areas(text, areas) if covers(ctx, a.code, LEADERS)]
    if not inside:  # an old name ("xã Hòa Bắc, huyện Hòa Vang"): the 2025 ward it became
        province = next((a.name for a in areas if a.level in ("city", "province")), None)
        ward = new_ward_for(text, province)
        if ward is not None:
            inside = [a for a in match_areas(ward, areas) if covers(ctx, a.code, LEADERS)]
    return inside[0] if inside else None


async def area_for_command(
    ctx: Context, words: list[str], choice_payload: Callable[[int], ButtonData], *,
    several: Reply | None = None,
) -> Area | Reply:
    """The area a leader's command names (words), else their only area; with several, a reply
    asking which (buttons carrying `choice_payload(area id)`, or `several` instead)."""
    if words:
        area = await find_area(ctx, " ".join(words))
        return area if area is not None else Reply(ctx.t(NOT_YOUR_AREA, code=" ".join(words)[:60]))
    mine = leader_areas(ctx)
    if len(mine) > 1:
        if several is not None:
            return several
        buttons = tuple(Button(button_label(name), choice_payload(area_id)) for area_id, _, name in mine)
        return Reply(ctx.t("Which area?"), buttons=buttons, columns=2)
    area = await ctx.session.get(Area, mine[0][0]) if mine else None
    return area if area is not None else Reply(ctx.t("You have no area to show yet."))
