"""The words of /stats: a summary, a per-step drop-off and a volunteer table, for a phone screen.

Pure: figures in, translated text out. Numbers are written the local way (1.234 in Vietnamese).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

from babel.numbers import format_decimal

from conversations.flow_model import Flow
from conversations.flow_order import flow_order_key
from conversations.state import StepOutcome
from db.repo.households import VOLUNTEER_LOAD
from db.repo.stats import AreaStats, StepDropOff, Target, VolunteerStats
from handlers.i18n import N_, Translator
from handlers.types import button_label
from handlers.validation import VIETNAM
from reports.figures import percent

PERIODS: dict[str, int | None] = {"7d": 7, "30d": 30, "all": None}
DEFAULT_PERIOD = "30d"
DROP_WARNING_PERCENT = 20  # a step that loses this share of the runs reaching it gets ⚠️
PERIOD_LABELS = {
    "7d": N_("last 7 days"),
    "30d": N_("last 30 days"),
    "all": N_("all time"),
}
OUTCOME_LABELS = {
    StepOutcome.DONE: N_("done"),
    StepOutcome.SKIPPED: N_("skipped"),
    StepOutcome.BLOCKED: N_("problem"),
}

TitleOf = Callable[[str], str]  # flow id -> translated procedure title


def since_date(day: date) -> datetime:
    """Local midnight at the start of `day` (what `--since YYYY-MM-DD` means)."""
    return datetime(day.year, day.month, day.day, tzinfo=VIETNAM)


def since_of(period: str, now: datetime) -> datetime | None:
    """The start of a period, at local midnight so that "7 days" means seven calendar days."""
    days = PERIODS.get(period)
    if days is None:
        return None
    local = now.astimezone(VIETNAM).replace(hour=0, minute=0, second=0, microsecond=0)
    return local - timedelta(days=days - 1)


def number(t: Translator, value: int) -> str:
    return format_decimal(value, locale=t.locale)


def _with_percent(t: Translator, part: int, whole: int | None) -> str:
    share = percent(part, whole)
    return number(t, part) if share is None else f"{number(t, part)} ({share})"


SUM_OF_TARGETS = {  # the levels of the sub-areas summed -> how the sum is labelled
    ("ward",): N_("sum of the wards' targets"),
    ("commune",): N_("sum of the communes' targets"),
    ("village",): N_("sum of the villages' targets"),
}
SUM_OF_WARD_TARGETS = N_("sum of the wards' and communes' targets")
SUM_OF_SUB_AREA_TARGETS = N_("sum of the sub-areas' targets")
WARD_LEVELS = {"ward", "commune", "special_zone"}


def target_label(t: Translator, target: Target) -> str:
    """"target" for an area's own target; for a sum, what was summed (and how many had one)."""
    if target.source == "own":
        return t("target")
    levels = target.children_levels
    if levels in SUM_OF_TARGETS:
        label = t(SUM_OF_TARGETS[levels])
    elif set(levels) <= WARD_LEVELS:
        label = t(SUM_OF_WARD_TARGETS)
    else:
        label = t(SUM_OF_SUB_AREA_TARGETS)
    if target.children_set < target.children_all:
        label += " " + t("({n} of {total} set)", n=number(t, target.children_set),
                         total=number(t, target.children_all))
    return label


def labelled_with_target(t: Translator, label: str, target: Target | None) -> str:
    """`label` (translated), followed by what its target is when that is not the area's own
    (the sum of the sub-areas' targets): the chart's bars and the export's rows."""
    if target is None or target.source == "own":
        return label
    return f"{label} · {target_label(t, target)}"


def _target_note(t: Translator, value: int, target: Target | None) -> str:
    if target is None:
        return ""
    return f" · {target_label(t, target)} {number(t, target.value)}: {percent(value, target.value)}"


CHILD_LINES = 24  # sub-areas listed in /stats' text


def summary_text(t: Translator, stats: AreaStats, period_label: str, title_of: TitleOf) -> str:
    c = stats.counts
    # Formatted before the call: Babel's extractor loses a plural whose arguments call t again.
    load = {"assigned": number(t, c.assigned), "households": number(t, c.households),
            "capacity": number(t, stats.capacity)}
    lines = [
        "📊 " + t("{area} · {period}", area=stats.area.name, period=period_label),
        t("Households: {n}", n=number(t, c.households)),
        t("Reached: {n}", n=_with_percent(t, c.reached, c.households))
        + _target_note(t, c.reached, stats.households_target),
        t("With a member who can use e-services: {n}", n=_with_percent(t, c.digital_ready, c.households))
        + _target_note(t, c.digital_ready, stats.digital_ready_target),
        t("Residents supported: {n}", n=number(t, stats.residents_supported)),
        t("Volunteers: {n}, active in the last 7 days: {active}",
          n=number(t, stats.volunteers), active=number(t, stats.volunteers_active)),
        t.plural("1+20: {assigned} of {households} households assigned; {n} volunteer × 20 = "
                 "{capacity} households",
                 "1+20: {assigned} of {households} households assigned; {n} volunteers × 20 = "
                 "{capacity} households",
                 stats.volunteers, **load),
    ]
    if stats.capacity < c.households:
        missing = -(-(c.households - stats.capacity) // VOLUNTEER_LOAD)
        lines.append("⚠️ " + t.plural("{n} more volunteer needed for 1+20.",
                                      "{n} more volunteers needed for 1+20.", missing))
    active_flows = {k: v for k, v in stats.flows.items() if v.started}
    lines.append("")
    if not active_flows:
        lines.append(t("No procedures in this period yet."))
    else:
        lines.append(t("Procedures (started in the period / completed / blocked now):"))
        for flow_id, f in sorted(active_flows.items(), key=lambda kv: flow_order_key(kv[0])):
            lines.append(f"• {title_of(flow_id)}: {number(t, f.started)} / {number(t, f.completed)} / "
                         f"{number(t, f.blocked)}")
            if f.problems:
                lines.append("   " + t("Problems reported: {n} — {reasons}", n=number(t, f.problems),
                                       reasons=_reasons(t, f.problems, f.top_reasons)))
    if stats.children:
        lines.append("")
        lines.append(t("By area (households reached):"))
        for child in stats.children[:CHILD_LINES]:
            lines.append(f"• {child.area.name}: "
                         f"{_with_percent(t, child.counts.reached, child.counts.households)}")
        if len(stats.children) > CHILD_LINES:  # a city's list: say it is cut, and where the rest is
            lines.append("… " + t("{shown} / {total} areas — see them all in Excel",
                                  shown=number(t, CHILD_LINES), total=number(t, len(stats.children))))
        if stats.outside_children is not None:
            outside = stats.outside_children
            lines.append("• " + t("{area}, not in a sub-area", area=stats.area.name) + ": "
                         + _with_percent(t, outside.reached, outside.households))
    return "\n".join(lines)


def _reasons(t: Translator, problems: int, top: Sequence[tuple[str, int]]) -> str:
    """"No smartphone (3), No network (1), other reasons (2)": the top reasons add up to the total."""
    shown = [f"{t(r) if r else t('no reason given')} ({number(t, n)})" for r, n in top]
    rest = problems - sum(n for _, n in top)
    if rest > 0:
        shown.append(t("other reasons ({n})", n=number(t, rest)))
    return ", ".join(shown)


def ordered_steps(flow: Flow, steps: Sequence[StepDropOff]) -> list[StepDropOff]:
    """In the flow's order; steps only older versions had come last."""
    order = {step.id: i for i, step in enumerate(flow.steps)}
    return sorted(steps, key=lambda s: (order.get(s.step_id, len(order)), s.step_id))


def step_title(t: Translator, flow: Flow, step_id: str, limit: int = 48) -> str:
    step = flow.step(step_id)
    return button_label(t(step.text), limit) if step is not None and step.text else step_id


def drop_off_text(
    t: Translator, area_name: str, period_label: str, flow: Flow, steps: Sequence[StepDropOff]
) -> str:
    lines = ["🪜 " + t("{flow} · {area} · {period}", flow=t(flow.title), area=area_name, period=period_label)]
    if not steps:
        lines.append(t("No runs of this procedure in this period yet."))
        return "\n".join(lines)
    lines.append(t("Per step: reached → got past (with a problem reported, waiting)"))
    for i, step in enumerate(ordered_steps(flow, steps), 1):
        lost = step.reached - step.passed
        title = step_title(t, flow, step.step_id)
        line = f"{i}. {title}: {number(t, step.reached)} → {number(t, step.passed)}"
        extra = []
        if step.problems:
            extra.append(t("{n} with a problem", n=number(t, step.problems)))
        if step.waiting:
            extra.append(t("{n} waiting", n=number(t, step.waiting)))
        if step.abandoned:
            extra.append(t("{n} stopped", n=number(t, step.abandoned)))
        if extra:
            line += f" ({', '.join(extra)})"
        if lost and step.reached and lost * 100 >= DROP_WARNING_PERCENT * step.reached:
            line += " ⚠️"
        lines.append(line)
    return "\n".join(lines)


def volunteers_text(t: Translator, area_name: str, period_label: str, rows: Sequence[VolunteerStats],
                    now: datetime) -> str:
    lines = ["👥 " + t("Volunteers · {area} · {period}", area=area_name, period=period_label)]
    if not rows:
        lines.append(t("No households are assigned to volunteers here yet."))
        return "\n".join(lines)
    lines.append(t("households · reached · procedures completed · last active"))
    for row in rows:
        last = t("never") if row.last_active is None else _ago(t, now - row.last_active)
        flag = " ⚠️" if row.households > VOLUNTEER_LOAD else ""
        lines.append(f"• {row.name}: {number(t, row.households)}{flag} · {number(t, row.reached)} · "
                     f"{number(t, row.completed)} · {last}")
    return "\n".join(lines)


def _ago(t: Translator, delta: timedelta) -> str:
    days = delta.days
    if days <= 0:
        return t("today")
    if days == 1:
        return t("yesterday")
    return t("{n} days ago", n=days)
