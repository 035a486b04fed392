"""Statistics never contradict themselves (issue 12 §3), on random synthetic cities: for every
area and period, the sub-areas add up to the area, no count exceeds the whole it is part of,
every share is within 0–100%, active volunteers are among the volunteers, runs completed or
blocked now are among those started, and a target summed from sub-areas is their sum.

Each example seeds a small Huế (`seed_synthetic`) in a fresh SQLite file, then changes it the
way real use does (households left unassigned, moved up to the ward, handed to a leader; roles
on a village; targets set and removed), and checks /stats for every area, everything, and each
period. Derandomised, so CI sees the same cities as a run here; a few small ones keep it fast.
"""

from __future__ import annotations

import itertools
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from bot.seed_synthetic import seed_synthetic
from bot.stats_json import area_stats_json
from conversations.flow_model import FlowRegistry, load_flows
from db.engine import Database
from db.models import Area, FlowRun, Household, Membership, StepRecord, User
from db.repo.stats import AreaStats, area_stats
from handlers.i18n import translator
from handlers.stats_text import percent, since_of, summary_text
from handlers.validation import VIETNAM

FLOWS_DIR = Path(__file__).resolve().parent.parent / "conversations" / "flows"
SEEDED_AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
SHARE = re.compile(r"\((<1|\d+)%\)")
_databases = itertools.count(1)


@pytest.fixture(scope="module")
def flows() -> FlowRegistry:
    return load_flows(FLOWS_DIR)


CHANGES = st.lists(
    st.one_of(
        st.tuples(st.just("unassign"), st.integers(0, 10_000)),
        st.tuples(st.just("to_ward"), st.integers(0, 10_000)),
        st.tuples(st.just("to_leader"), st.integers(0, 10_000)),
        st.tuples(st.just("village_role"), st.integers(0, 10_000)),
        st.tuples(st.just("target"), st.integers(0, 10_000), st.sampled_from(
            ["target_households", "target_digital_ready"]), st.sampled_from([None, 1, 7, 40, 300, 5000])),
    ),
    max_size=10,
)


async def change(db: Database, changes: list[tuple]) -> None:
    """Apply `changes`; households and areas are picked by index, modulo how many there are."""
    async with db.transaction() as session:
        households = list(await session.scalars(select(Household).order_by(Household.id)))
        areas = list(await session.scalars(select(Area).order_by(Area.id)))
        by_id = {a.id: a for a in areas}
        villages = [a for a in areas if a.level == "village"]
        leader = await session.scalar(select(Membership.user_id).where(Membership.role == "leader").limit(1))
        volunteers = list(await session.scalars(
            select(User.id).join(Membership, Membership.user_id == User.id)
            .where(Membership.role == "volunteer").order_by(User.id)))
        roles: set[tuple[int, int]] = set()  # (user, village) roles added (synthetic ones are on wards)
        for kind, index, *rest in changes:
            household = households[index % len(households)]
            if kind == "unassign":
                household.volunteer_id = None
            elif kind == "to_leader":
                household.volunteer_id = leader
            elif kind == "to_ward":  # a household of the ward not placed in any village
                ward = by_id[household.area_id].parent_id or household.area_id
                household.area_id = ward
                runs = select(FlowRun.id).where(FlowRun.household_id == household.id)
                # Runs and step records carry their household's area.
                await session.execute(update(FlowRun).where(FlowRun.id.in_(runs)).values(area_id=ward))
                await session.execute(
                    update(StepRecord).where(StepRecord.run_id.in_(runs)).values(area_id=ward))
            elif kind == "village_role":
                role = (volunteers[index % len(volunteers)], villages[index % len(villages)].id)
                if role not in roles:
                    roles.add(role)
                    session.add(Membership(user_id=role[0], area_id=role[1], role="volunteer",
                                           granted_at=SEEDED_AT))
            elif kind == "target":
                attr, value = rest
                setattr(areas[index % len(areas)], attr, value)


def check(stats: AreaStats, text: str) -> None:
    """Everything one /stats answer must hold on its own."""
    c = stats.counts
    assert 0 <= c.reached <= c.households and 0 <= c.digital_ready <= c.households
    assert 0 <= c.assigned <= c.households
    parts = [child.counts for child in stats.children]
    if stats.outside_children is not None:
        assert stats.children and stats.outside_children.households > 0
        parts.append(stats.outside_children)
    if stats.children:
        for field in ("households", "reached", "digital_ready", "assigned"):
            assert sum(getattr(p, field) for p in parts) == getattr(c, field), field
    for child in stats.children:
        cc = child.counts
        assert 0 <= cc.reached <= cc.households and cc.digital_ready <= cc.households
        share = percent(cc.reached, cc.households)
        assert share is None or share == "<1%" or 0 <= int(share[:-1]) <= 100
    assert 0 <= stats.volunteers_active <= stats.volunteers
    assert stats.capacity == 20 * stats.volunteers
    for figures in stats.flows.values():
        assert min(figures.completed, figures.blocked, figures.active, figures.problems) >= 0
        assert figures.completed + figures.blocked + figures.active <= figures.started
        assert sum(n for _, n in figures.top_reasons) <= figures.problems
        assert figures.problems == 0 or figures.started > 0
    for target in (stats.households_target, stats.digital_ready_target):
        assert target is None or (target.value >= 0 and target.source in ("own", "children"))
    summed = [child.target_households for child in stats.children if child.target_households is not None]
    if stats.households_target is not None and stats.households_target.source == "children":
        assert stats.households_target.value == sum(summed)
        assert stats.households_target.children_set == len(summed)
    for shown in SHARE.findall(text):
        assert shown == "<1" or 0 <= int(shown) <= 100, text
    figures = area_stats_json(stats)
    for flow in figures["flows"].values():
        assert {"started", "completed", "blocked", "problems_reported"} <= set(flow)
    for key in ("households", "digital_ready"):
        assert (figures["targets"][key] is None) == (figures["target_source"][key] is None)


def check_drill_down(parent: AreaStats, children: dict[str, AreaStats]) -> None:
    """A sub-area's own answer agrees with its row in the area's answer, and is part of the area."""
    for row in parent.children:
        below = children[row.area.code]
        assert below.counts == row.counts
        assert below.target_households == row.target_households
        assert below.volunteers <= parent.volunteers
        assert below.volunteers_active <= parent.volunteers_active
        for flow_id, figures in below.flows.items():
            assert figures.started <= parent.flows[flow_id].started
    for flow_id, figures in parent.flows.items():
        assert sum(children[r.area.code].flows[flow_id].started for r in parent.children
                   if flow_id in children[r.area.code].flows) <= figures.started


@settings(max_examples=4, deadline=None, derandomize=True, database=None, print_blob=False,
          phases=[Phase.explicit, Phase.generate],  # no shrinking: each example seeds a city
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(households=st.integers(50, 140), seed=st.integers(1, 1000), changes=CHANGES,
       days_later=st.sampled_from([0, 2, 25]))
async def test_stats_of_every_area_agree_with_each_other(
    sqlite_template: Path, tmp_path: Path, flows: FlowRegistry, households: int, seed: int,
    changes: list[tuple], days_later: int,
) -> None:
    """For every area and period of a random city, the figures add up and stay within their wholes."""
    target = tmp_path / f"city-{next(_databases)}.db"
    shutil.copy(sqlite_template, target)
    db = Database(f"sqlite+aiosqlite:///{target}")
    t = translator("en")
    try:
        await seed_synthetic(db, households, seed=seed, now=SEEDED_AT, flows=flows)
        await change(db, changes)
        now = SEEDED_AT + timedelta(days=days_later)
        async with db.read_session() as session:
            areas = list(await session.scalars(select(Area).order_by(Area.code)))
            for since in (None, since_of("7d", now), since_of("30d", now)):
                answers: dict[str | None, AreaStats] = {}
                for area in [None, *areas]:
                    stats = await area_stats(session, area, now=now, since=since, tz=VIETNAM, all_name="All")
                    check(stats, summary_text(t, stats, "period", lambda flow_id: flow_id))
                    answers[area.code if area else None] = stats
                by_code = {code: s for code, s in answers.items() if code is not None}
                for stats in answers.values():
                    check_drill_down(stats, by_code)
    finally:
        await db.dispose()
