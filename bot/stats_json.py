"""The JSON that `gocua stats --json` prints: a **contract** (docs/design.md §4) that scripts
outside rely on, so it lives here beside the command line, apart from the queries
(db/repo/stats.py computes the figures and knows nothing of how they are printed). A key renamed
or dropped here is a change for every user of the command line; tests/test_cli_reports.py runs
the command and checks the keys."""

from __future__ import annotations

from typing import Any

from conversations.flow_order import in_flow_order
from db.repo.stats import (
    AreaRef,
    AreaStats,
    ChildStats,
    FlowStats,
    HouseholdCounts,
    StepDropOff,
    Target,
)


def area_stats_json(stats: AreaStats) -> dict[str, Any]:
    """`gocua stats [--area CODE] [--since DAY] --json`."""
    return {
        "area": _area(stats.area),
        "since": stats.since.isoformat() if stats.since else None,
        "households": stats.counts.households,
        "households_reached": stats.counts.reached,
        "households_digital_ready": stats.counts.digital_ready,
        "households_assigned": stats.counts.assigned,
        "residents_supported": stats.residents_supported,
        "volunteers": stats.volunteers,
        "volunteers_active_7d": stats.volunteers_active,
        "volunteer_capacity": stats.capacity,
        "targets": {"households": stats.target_households, "digital_ready": stats.target_digital_ready},
        "target_source": {"households": _source(stats.households_target),
                          "digital_ready": _source(stats.digital_ready_target)},
        "flows": {flow_id: _flow(stats.flows[flow_id]) for flow_id in in_flow_order(stats.flows)},
        "weekly_completed": [{"week": w.isoformat(), "completed": n} for w, n in stats.weekly_completed],
        "children": [_child(c) for c in stats.children],
        "outside_children": _counts(stats.outside_children) if stats.outside_children else None,
    }


def drop_off_json(area_code: str | None, flow_id: str, steps: list[StepDropOff]) -> dict[str, Any]:
    """`gocua stats --flow ID --json`: the steps in the procedure's order."""
    return {"area": area_code, "flow": flow_id, "steps": [_step(s) for s in steps]}


def _area(area: AreaRef) -> dict[str, Any]:
    return {"code": area.code, "name": area.name, "level": area.level}


def _source(target: Target | None) -> str | None:
    return target.source if target is not None else None


def _flow(flow: FlowStats) -> dict[str, Any]:
    return {
        "started": flow.started, "completed": flow.completed, "blocked": flow.blocked,
        "active": flow.active, "problems_reported": flow.problems,
        "top_problem_reasons": [{"reason": r, "count": n} for r, n in flow.top_reasons],
    }


def _counts(counts: HouseholdCounts) -> dict[str, Any]:
    return {"households": counts.households, "households_reached": counts.reached,
            "households_digital_ready": counts.digital_ready, "households_assigned": counts.assigned}


def _child(child: ChildStats) -> dict[str, Any]:
    return {
        **_area(child.area), **_counts(child.counts),
        "target_households": child.target_households, "target_source": _source(child.target),
    }


def _step(step: StepDropOff) -> dict[str, Any]:
    return {"step": step.step_id, "reached": step.reached, "passed": step.passed,
            "problems_reported": step.problems, "waiting": step.waiting, "abandoned": step.abandoned}
