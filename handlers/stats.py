"""/stats for leaders and admins: their area and below, drill-down, period, chart, drop-off.

Buttons carry `st:<area id>:<period>[:<view>[:<arg>]]` (buttons.StatsButton); none of it is
trusted: the area is looked up again and must lie inside one of the user's leader or admin
areas, else the press is refused and audited. Figures are read through the reports session
(db.Database.read_session: on SQLite a connection on a worker thread, so a long query never
holds the event loop).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import partial
from typing import Any

from conversations.flow_order import in_flow_order
from db.models import Area
from db.repo.stats import AreaStats, area_stats, step_drop_off, volunteer_count, volunteer_table
from handlers.access import covers, refuse
from handlers.buttons import StaleButton, StatsButton, TargetButton
from handlers.context import Context
from handlers.deferred import RenderContext, renderer
from handlers.exports import export_reply
from handlers.flows import title
from handlers.i18n import N_, translator
from handlers.leader_scope import area_for_command, report_session
from handlers.options import NUMBERED_CHANNELS
from handlers.router import LEADERS, OUT_OF_DATE, Router, out_of_date
from handlers.stats_text import (
    DEFAULT_PERIOD,
    PERIOD_LABELS,
    PERIODS,
    drop_off_text,
    labelled_with_target,
    number,
    percent,
    since_of,
    summary_text,
    volunteers_text,
)
from handlers.types import Attachment, Button, Reply, button_label, sentence_case
from handlers.validation import VIETNAM

router = Router("stats")

AREAS_PER_PAGE = 8  # sub-area buttons on one page of /stats; "More…" shows the next ones
AREA_LABEL_MAX = 24  # two a row: a sub-area's button keeps its name and share readable
VOLUNTEERS_SHOWN = 60  # lines of the volunteers view; the Excel export has them all


def _refused(ctx: Context, raw_area: str, view: str) -> list[Reply]:
    """A stats button of an area that is not among the user's (or none), audited: a resident's
    or volunteer's is not available to them at all."""
    refuse(ctx, f"st:{view}", f"area:{raw_area[:20]}")
    if not any(g.role in LEADERS for g in ctx.grants):
        return [Reply(ctx.t("The command {command} is not available to you. Type /help to see yours.",
                            command="/stats"))]
    return [Reply(ctx.t("This area is not among yours."))]


async def _stale(ctx: Context, stale: StaleButton) -> list[Reply]:
    """An area id no row can have: refused and audited like another leader's area."""
    raw = stale.raw
    if raw.get("period") not in PERIODS:
        return [out_of_date(ctx)]
    return _refused(ctx, raw.get("area_id", ""), raw.get("view", ""))


@router.command("/stats", roles=LEADERS, help=N_("progress of your area: /stats [AREA] [procedure]"),
                order=30)
async def stats_command(ctx: Context, args: str) -> list[Reply]:
    words = args.split()
    flows = ctx.services.flows
    flow_id = words.pop() if words and flows is not None and words[-1] in flows else None
    area = await area_for_command(ctx, words, lambda area_id: StatsButton(area_id, DEFAULT_PERIOD))
    if isinstance(area, Reply):
        return [area]
    if flow_id is not None:
        return [await _drop_off(ctx, area, DEFAULT_PERIOD, flow_id)]
    return [await _summary(ctx, area, DEFAULT_PERIOD)]


@router.button(StatsButton, stale=_stale)
async def stats_button(ctx: Context, data: StatsButton) -> list[Reply]:
    period, view, arg = data.period, data.view, data.arg
    if period not in PERIODS:
        return [out_of_date(ctx)]
    if not any(g.role in LEADERS for g in ctx.grants):
        return _refused(ctx, str(data.area_id), view)
    area = await ctx.session.get(Area, data.area_id)
    if area is None or not covers(ctx, area.code, LEADERS):
        return _refused(ctx, str(data.area_id), view)
    if view == "":
        page = int(arg) if arg.isdigit() and len(arg) <= 4 else 0
        return [await _summary(ctx, area, period, edit=True, page=page)]
    if view == "f" and arg:
        return [await _drop_off(ctx, area, period, arg)]
    if view == "fl":
        return [_flow_menu(ctx, area, period)]
    if view == "c":  # the chart comes as a photo below; the tapped keyboard goes (its Back returns)
        return [Reply("", toast=True), _chart(ctx, area, period)] if ctx.incoming.tapped \
            else [_chart(ctx, area, period)]
    if view == "v":
        return [await _volunteers(ctx, area, period)]
    if view == "x" and arg in ("csv", "xlsx"):
        return [await export_reply(ctx, area, period, arg)]
    return [out_of_date(ctx)]


async def _stats_for(ctx: Context, area: Area, period: str) -> AreaStats:
    async with report_session(ctx) as session:
        return await area_stats(session, area, now=ctx.now, since=since_of(period, ctx.now), tz=VIETNAM)


def _period_buttons(ctx: Context, area: Area, period: str, *, view: str = "", arg: str = "") -> list[Button]:
    """One button per period for the same view, the current one ticked."""
    return [Button(("✓ " if p == period else "") + sentence_case(ctx.t(PERIOD_LABELS[p])),
                   StatsButton(area.id, p, view, arg))
            for p in PERIODS]


def _back(ctx: Context, area: Area, period: str) -> Button:
    return Button("⬅️ " + ctx.t("Back"), StatsButton(area.id, period))


async def _summary(ctx: Context, area: Area, period: str, *, edit: bool = False, page: int = 0) -> Reply:
    """The area's figures; the keyboard in rows: its sub-areas two a row (AREAS_PER_PAGE at a
    time, "More…" for the next ones), the three periods in one row, then the actions."""
    stats = await _stats_for(ctx, area, period)
    text = summary_text(ctx.t, stats, ctx.t(PERIOD_LABELS[period]), partial(title, ctx))
    children = stats.children
    pages = max(1, -(-len(children) // AREAS_PER_PAGE))
    page = page % pages
    shown = children[page * AREAS_PER_PAGE:(page + 1) * AREAS_PER_PAGE]
    if ctx.incoming.channel in NUMBERED_CHANNELS:  # the channel pages its own numbered options
        pages, page, shown = 1, 0, children
    buttons: list[Button] = []
    for child in shown:
        share = percent(child.counts.reached, child.counts.households) or "0%"  # as in the text
        label = button_label(f"{child.area.name} ({share})", AREA_LABEL_MAX)
        buttons.append(Button(label, StatsButton(child.area_id, period)))
    rows = [2] * (len(shown) // 2) + [1] * (len(shown) % 2)
    if pages > 1:
        first, last = page * AREAS_PER_PAGE + 1, page * AREAS_PER_PAGE + len(shown)
        text += "\n" + ctx.t("Buttons: areas {first}–{last} of {total}.", first=number(ctx.t, first),
                             last=number(ctx.t, last), total=number(ctx.t, len(children)))
        buttons.append(Button(ctx.t("More…"), StatsButton(area.id, period, "", str((page + 1) % pages))))
        rows.append(1)
    buttons += _period_buttons(ctx, area, period)
    rows.append(len(PERIODS))
    buttons += [
        Button("📈 " + ctx.t("Chart"), StatsButton(area.id, period, "c")),
        Button("🪜 " + ctx.t("Steps"), StatsButton(area.id, period, "fl")),
        Button("👥 " + ctx.t("Volunteers"), StatsButton(area.id, period, "v")),
        Button("🎯 " + ctx.t("Targets"), TargetButton(area.id)),
        Button("⬇️ " + ctx.t("Excel"), StatsButton(area.id, period, "x", "xlsx")),
        Button("⬇️ " + ctx.t("CSV"), StatsButton(area.id, period, "x", "csv")),
    ]
    if area.parent_id is not None:
        parent = await ctx.session.get(Area, area.parent_id)
        if parent is not None and covers(ctx, parent.code, LEADERS):
            buttons.append(Button("⬆️ " + button_label(parent.name), StatsButton(parent.id, period)))
    if ctx.incoming.channel in NUMBERED_CHANNELS:  # numbers, paged by the channel (≤ 8 a message)
        return Reply(text, buttons=numbered_layout(ctx, area, buttons), columns=2, edit=edit)
    return Reply(text, buttons=tuple(buttons), columns=2, rows=tuple(rows), edit=edit)


def numbered_layout(ctx: Context, area: Area, buttons: list[Button]) -> tuple[Button, ...]:
    """On a channel that numbers options (Zalo): the periods and the actions of this area first,
    so each keeps its number on every level (1–3 the periods, then the same actions), the areas
    below after them, the way up always last. Elsewhere (buttons) the order is unchanged."""
    if ctx.incoming.channel not in NUMBERED_CHANNELS:
        return tuple(buttons)
    own = f":{area.id}:"
    up = [b for b in buttons if b.label.startswith(("⬆️", "⬅️"))]
    fixed = [b for b in buttons if b not in up and f"{b.payload}:".find(own) == b.payload.find(":")]
    below = [b for b in buttons if b not in up and b not in fixed]
    return (*fixed, *below, *up)


def _flow_menu(ctx: Context, area: Area, period: str) -> Reply:
    flows = ctx.services.flows
    ids = in_flow_order(set(flows.ids()) - ctx.services.retired_flows) if flows is not None else []
    buttons = tuple(Button(button_label(title(ctx, f)), StatsButton(area.id, period, "f", f)) for f in ids)
    return Reply(ctx.t("Drop-off per step: which procedure?"), buttons=(*buttons, _back(ctx, area, period)),
                 edit=True)


async def _drop_off(ctx: Context, area: Area, period: str, flow_id: str) -> Reply:
    flows = ctx.services.flows
    if flows is None or flow_id not in flows:
        return Reply(ctx.t("There is no procedure {flow}.", flow=flow_id[:40]))
    flow = flows.latest(flow_id)
    async with report_session(ctx) as session:
        steps = await step_drop_off(session, area, flow_id, since_of(period, ctx.now))
    text = drop_off_text(ctx.t, area.name, ctx.t(PERIOD_LABELS[period]), flow, steps)
    periods = _period_buttons(ctx, area, period, view="f", arg=flow_id)
    return Reply(text, buttons=(*periods, _back(ctx, area, period)), columns=3, edit=True)


async def _volunteers(ctx: Context, area: Area, period: str) -> Reply:
    async with report_session(ctx) as session:
        rows = await volunteer_table(session, area, since_of(period, ctx.now), limit=VOLUNTEERS_SHOWN)
        total = await volunteer_count(session, area) if len(rows) >= VOLUNTEERS_SHOWN else len(rows)
    text = volunteers_text(ctx.t, area.name, ctx.t(PERIOD_LABELS[period]), rows, ctx.now)
    if total > len(rows):
        text += "\n" + ctx.t("{shown} / {total} volunteers — see them all in Excel",
                             shown=number(ctx.t, len(rows)), total=number(ctx.t, total))
    return Reply(text, buttons=(_back(ctx, area, period),), edit=True)


def _chart(ctx: Context, area: Area, period: str) -> Reply:
    """The chart, drawn after the update's commit (`render_chart`): its figures and the drawing
    take a while and need no lock."""
    return Reply("", buttons=(_back(ctx, area, period),),
                 deferred={"kind": "chart", "area_id": area.id, "period": period,
                           "locale": ctx.t.locale, "now": ctx.now.isoformat()})


@renderer("chart", file="photo")
async def render_chart(rctx: RenderContext, spec: dict[str, Any]) -> Reply:
    # Imported here: matplotlib takes a second to import, and most processes never draw.
    from reports import chart
    from reports.chart import ChartText, TargetBar, WeekCount

    t, now, period = translator(spec["locale"]), datetime.fromisoformat(spec["now"]), spec["period"]
    async with rctx.reader() as session:
        area = await session.get(Area, int(spec["area_id"]))
        if area is None:
            return Reply(t(OUT_OF_DATE))
        stats = await area_stats(session, area, now=now, since=since_of(period, now), tz=VIETNAM)
    weeks = [WeekCount(week.strftime("%d/%m"), n) for week, n in stats.weekly_completed]
    period_label = t(PERIOD_LABELS[period])
    text = ChartText(
        title=area.name,
        weekly_title=t("Procedures completed per week · last {n} weeks ({first} – {last})",
                       n=len(weeks), first=weeks[0].label if weeks else "",
                       last=now.astimezone(VIETNAM).strftime("%d/%m")),
        weekly_axis=t("Procedures"),
        target_title=t("Progress against targets · {period}", period=period_label),
        no_target=t("no target set"),
        no_data=t("No procedure completed yet"),
    )
    bars = [
        TargetBar(labelled_with_target(t, t("Households reached"), stats.households_target),
                  stats.counts.reached, stats.target_households),
        TargetBar(labelled_with_target(t, t("Households with a member who can use e-services"),
                             stats.digital_ready_target),
                  stats.counts.digital_ready, stats.target_digital_ready),
    ]
    png = await asyncio.to_thread(chart.render_progress_chart, text, weeks, bars)
    caption = t("Procedures completed in the last 12 weeks and progress against targets: {area}.",
                area=area.name)
    return Reply(caption, attachment=Attachment("photo", f"gocua-{area.code}.png", png))
