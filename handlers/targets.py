"""/target: leaders set their areas' targets (households to reach, digital-ready households).

`/target` shows the targets with buttons to change them; `/target [AREA] households N` and
`/target [AREA] digital N` set one at once; 0 removes it. The area must be one of the user's
leader or admin areas or lie below one. Every change is written to the audit log.
"""

from __future__ import annotations

import re

from db.models import Area
from db.repo.areas import MAX_TARGET, set_target
from db.repo.stats import area_target, load_scope
from handlers.access import covers, refuse
from handlers.buttons import StaleButton, StatsButton, TargetButton
from handlers.context import Context
from handlers.i18n import N_
from handlers.leader_scope import area_for_command, leader_areas
from handlers.router import LEADERS, Router, out_of_date
from handlers.stats_text import DEFAULT_PERIOD, number, target_label
from handlers.types import Button, Reply, button_label

KINDS = {
    "households": ("target_households", N_("households to reach")),
    "digital": ("target_digital_ready", N_("households with a member who can use e-services")),
}
KIND_WORDS = {"households": "households", "hh": "households", "ho": "households", "hộ": "households",
              "digital": "digital", "so": "digital", "số": "digital"}
router = Router("targets")
USAGE = N_("Write: /target households 500 or /target digital 300 (0 removes a target).")


async def _show(ctx: Context, area: Area) -> Reply:
    """The area's own targets; where it has none, what /stats compares with instead (the sum of
    its sub-areas' targets), said as such."""
    scope = await load_scope(ctx.session, area)
    lines = [ctx.t("🎯 Targets of {area}:", area=area.name)]
    for attr, label in KINDS.values():
        value = getattr(area, attr)
        shown = ctx.t("not set") if value is None else number(ctx.t, value)
        summed = area_target(scope, area.id, attr) if value is None else None
        if summed is not None:
            shown += f" · {target_label(ctx.t, summed)}: {number(ctx.t, summed.value)}"
        lines.append(f"• {ctx.t(label)}: {shown}")
    buttons = (
        Button(button_label(ctx.t("Set: households to reach")), TargetButton(area.id, "households")),
        Button(button_label(ctx.t("Set: digital-ready households")), TargetButton(area.id, "digital")),
        Button("📊 " + ctx.t("Statistics"), StatsButton(area.id, DEFAULT_PERIOD)),
    )
    return Reply("\n".join(lines), buttons=buttons)


def _set(ctx: Context, area: Area, kind: str, value: int) -> Reply:
    attr, label = KINDS[kind]
    set_target(ctx.session, area, attr, value, actor_id=ctx.user.id, now=ctx.now)
    ctx.set_state(None)
    if not value:
        text = ctx.t("Target removed: {label} in {area}.", label=ctx.t(label), area=area.name)
    else:
        text = ctx.t("Target set: {label} in {area}: {value}.", label=ctx.t(label), area=area.name,
                     value=number(ctx.t, value))
    return Reply(text, buttons=(Button("📊 " + ctx.t("Statistics"), StatsButton(area.id, DEFAULT_PERIOD)),))


def _parse_number(text: str) -> int | None:
    digits = re.sub(r"[.,\s]", "", text.strip())
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 7:  # "²" is a digit to isdigit
        return None
    value = int(digits)
    return value if value <= MAX_TARGET else None


@router.command("/target", roles=LEADERS, help=N_("set your area's targets"), order=32)
async def target_command(ctx: Context, args: str) -> list[Reply]:
    words = args.split()
    value = _parse_number(words.pop()) if words and re.fullmatch(r"[\d.,]+", words[-1]) else None
    kind = KIND_WORDS.get(words.pop().lower()) if words and words[-1].lower() in KIND_WORDS else None
    if (value is None) != (kind is None):
        return [Reply(ctx.t(USAGE))]
    several = None
    if kind is not None:  # a value typed for one of several areas: ask to name it, not to pick
        mine = leader_areas(ctx)
        several = Reply(ctx.t("You lead several areas: name one, e.g. /target {code} households 500.",
                              code=mine[0][1] if mine else ""))
    area = await area_for_command(ctx, words, lambda area_id: TargetButton(area_id), several=several)
    if isinstance(area, Reply):
        return [area]
    if kind is not None and value is not None:
        return [_set(ctx, area, kind, value)]
    return [await _show(ctx, area)]


async def _not_yours(ctx: Context, raw_id: str) -> list[Reply]:
    refuse(ctx, "tg", f"area:{raw_id[:20]}")
    return [Reply(ctx.t("This area is not among yours."))]


async def _stale(ctx: Context, stale: StaleButton) -> list[Reply]:
    """An area id no row can have: refused and audited like another leader's area."""
    return await _not_yours(ctx, stale.raw.get("area_id", ""))


@router.button(TargetButton, stale=_stale)
async def target_button(ctx: Context, data: TargetButton) -> list[Reply]:
    kind = data.kind
    area = await ctx.session.get(Area, data.area_id)
    if area is None or not covers(ctx, area.code, LEADERS):
        return await _not_yours(ctx, str(data.area_id))
    if not kind:
        return [await _show(ctx, area)]
    if kind not in KINDS:
        return [out_of_date(ctx)]
    ctx.set_state({"dialog": "target", "area_id": area.id, "kind": kind, "expects_text": True})
    return [Reply(ctx.t("New target for {area}: how many {label}? (0 removes it, /cancel to stop)",
                        area=area.name, label=ctx.t(KINDS[kind][1])))]


@router.dialog("target", buttons=(TargetButton,))
async def target_text(ctx: Context, text: str) -> list[Reply]:
    state = ctx.state
    area = await ctx.session.get(Area, int(state.get("area_id") or 0))
    kind = state.get("kind")
    if area is None or kind not in KINDS or not covers(ctx, area.code, LEADERS):
        ctx.set_state(None)
        return [out_of_date(ctx)]
    value = _parse_number(text)
    if value is None:
        return [Reply(ctx.t("Please write a whole number from 0 to {max}, e.g. 500.",
                            max=number(ctx.t, MAX_TARGET)))]
    return [_set(ctx, area, kind, value)]
