"""Campaign statistics for an area and everything below it, as aggregate queries.

Every figure is counted by the database (GROUP BY over indexed columns), never by looping over
rows in Python: at city scale there are about 100,000 households and 2,000,000 step records.
Per-area figures are grouped by the household's area and rolled up the area tree here, which
has hundreds of rows, not millions.

The period (`since`) applies to activity: households reached and residents supported in it,
and the procedures started in it (of those runs: how many are completed, how many stand blocked
now, how many Problems were reported on them and why). Households, digital-ready households,
volunteers and targets are counts as of now. "Active volunteers" always means the last 7 days.

Figures that must never contradict each other (tests/test_stats_properties.py checks them on
random data): the sub-areas (and the households outside them) add up to the area; no count
exceeds the whole it is part of; runs completed / blocked now / in progress are among those
started; active volunteers are among the volunteers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from itertools import pairwise
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    distinct,
    exists,
    func,
    literal_column,
    select,
    text,
    true,
    union,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import SQLCoreOperations

from conversations.folding import natural_key
from conversations.state import RunStatus, StepOutcome
from db.models import Area, FlowRun, Household, Membership, Resident, StepRecord, User
from db.repo.areas import within
from db.repo.households import VOLUNTEER_LOAD

ACTIVE_DAYS = 7
TOP_REASONS = 3
CHART_WEEKS = 12
LARGE_SCOPE_HOUSEHOLDS = 20_000
# Written as SQL text, not a bound parameter, so that the planner can prove the query matches
# the partial index ix_step_records_blocked (a bound value is unknown when the plan is made).
BLOCKED_RECORD = text(f"step_records.outcome = '{StepOutcome.BLOCKED}'")
COMPLETED_RUN = text(f"flow_runs.status = '{RunStatus.COMPLETED}'")


@dataclass(frozen=True)
class AreaRef:
    code: str | None  # None: every area (the whole database)
    name: str
    level: str


@dataclass
class FlowStats:
    """One procedure's runs started in the period (all time: every run), as they stand now."""

    started: int = 0
    completed: int = 0
    blocked: int = 0  # standing now on a Problem the procedure cannot go on without
    active: int = 0  # in progress now
    problems: int = 0  # every Problem answered on these runs (a run may report several)
    top_reasons: list[tuple[str, int]] = field(default_factory=list)  # of the problems, most first


@dataclass(frozen=True)
class Target:
    """A target as shown for an area: its own, or (none of its own) the sum of its sub-areas'."""

    value: int
    source: str  # "own" | "children"
    children_set: int = 0  # source "children": sub-areas that have a target (their own or summed)
    children_all: int = 0  # source "children": all the sub-areas
    children_levels: tuple[str, ...] = ()  # source "children": the sub-areas' levels


def _value(target: Target | None) -> int | None:
    return target.value if target is not None else None


@dataclass
class HouseholdCounts:
    households: int = 0
    reached: int = 0
    digital_ready: int = 0
    assigned: int = 0

    def add(self, other: HouseholdCounts) -> None:
        self.households += other.households
        self.reached += other.reached
        self.digital_ready += other.digital_ready
        self.assigned += other.assigned


@dataclass
class ChildStats:
    area_id: int
    area: AreaRef
    counts: HouseholdCounts
    target: Target | None  # households to reach

    @property
    def target_households(self) -> int | None:
        return _value(self.target)


@dataclass
class AreaStats:
    area: AreaRef
    since: datetime | None
    now: datetime
    counts: HouseholdCounts
    residents_supported: int
    volunteers: int  # look after households here or hold a volunteer role here
    volunteers_active: int  # of those, with a run here that moved in the last 7 days
    households_target: Target | None
    digital_ready_target: Target | None
    flows: dict[str, FlowStats]
    children: list[ChildStats]
    # Households in the area itself rather than in one of its sub-areas (None: no sub-areas, or
    # no such household): with the children they add up to the area.
    outside_children: HouseholdCounts | None
    weekly_completed: list[tuple[date, int]]

    @property
    def capacity(self) -> int:
        """Households the area's volunteers can look after at twenty each."""
        return self.volunteers * VOLUNTEER_LOAD

    @property
    def target_households(self) -> int | None:
        return _value(self.households_target)

    @property
    def target_digital_ready(self) -> int | None:
        return _value(self.digital_ready_target)


@dataclass(frozen=True)
class StepDropOff:
    step_id: str
    reached: int  # runs that got to this step (answered it or are waiting at it)
    passed: int  # runs that answered Done / Skip or a choice/input here, or went on after a Problem
    problems: int  # runs that reported a Problem here (some then got past it: not "blocked now")
    waiting: int  # runs in progress, waiting at this step now
    abandoned: int  # runs cancelled at this step


@dataclass
class VolunteerStats:
    user_id: int
    name: str
    households: int
    reached: int
    completed: int
    last_active: datetime | None


class Scope:
    """The areas a query covers: one area and its descendants, or everything (area None)."""

    def __init__(self, area: Area | None, areas: list[Area]) -> None:
        self.area = area
        self.areas = {a.id: a for a in areas}
        self.households = 0  # known after household_counts; decides how runs are read

    @property
    def large(self) -> bool:
        """A city rather than a ward: counting through whole indexes beats area-by-area lookups."""
        return self.households > LARGE_SCOPE_HOUSEHOLDS

    @property
    def everything(self) -> bool:
        return self.area is None

    def households_in(self) -> ColumnElement[bool]:
        """Current (not archived) households of the scope."""
        current = Household.archived_at.is_(None)
        return current if self.area is None else and_(Household.area_id.in_(list(self.areas)), current)

    def runs_in(self) -> ColumnElement[bool]:
        return true() if self.area is None else FlowRun.area_id.in_(list(self.areas))

    def records_in(self) -> ColumnElement[bool]:
        return true() if self.area is None else StepRecord.area_id.in_(list(self.areas))

    def runs_in_without_area_index(self) -> ColumnElement[bool]:
        """The same filter written `+area_id IN (…)`: the unary plus keeps the planner from
        looking runs up area by area (SQLite always prefers that for an IN list), so that for a
        large scope it reads an index ordered by the column being counted instead."""
        if self.area is None:
            return true()
        return literal_column("+flow_runs.area_id").in_(list(self.areas))

    def ref(self, all_name: str) -> AreaRef:
        if self.area is None:
            return AreaRef(None, all_name, "all")
        return AreaRef(self.area.code, self.area.name, self.area.level)

    def children(self) -> list[Area]:
        parent_id = self.area.id if self.area else None
        # "Tổ dân phố 2" before "Tổ dân phố 10"
        return sorted((a for a in self.areas.values() if a.parent_id == parent_id),
                      key=lambda a: natural_key(a.name))

    def child_of(self, area_id: int) -> int | None:
        """The direct child of the scope's area that contains `area_id` (None: the area itself)."""
        top = self.area.id if self.area else None
        current = self.areas.get(area_id)
        while current is not None and current.parent_id != top:
            current = self.areas.get(current.parent_id) if current.parent_id is not None else None
        return current.id if current is not None else None


async def load_scope(session: AsyncSession, area: Area | None) -> Scope:
    stmt = select(Area)
    if area is not None:
        stmt = stmt.where(within(Area.code, area.code))
    return Scope(area, list(await session.scalars(stmt)))


def _since(column: SQLCoreOperations[datetime | None], since: datetime | None) -> ColumnElement[bool]:
    return true() if since is None else column >= since


def _count_if(condition: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _runs_in(scope: Scope, *columns: Any) -> Select[Any]:
    """`columns` of the flow runs in the scope (runs carry their household's area)."""
    return select(*columns).select_from(FlowRun).where(scope.runs_in())


async def household_counts(
    session: AsyncSession, scope: Scope, since: datetime | None
) -> dict[int, HouseholdCounts]:
    """Per area id: households, reached in the period, with a digital-ready member, assigned."""
    reached = Household.last_step_at.is_not(None) if since is None else Household.last_step_at >= since
    digital = exists().where(Resident.household_id == Household.id, Resident.digital_ready)
    rows = await session.execute(
        select(
            Household.area_id, func.count(), _count_if(reached), _count_if(digital),
            func.count(Household.volunteer_id),
        ).where(scope.households_in()).group_by(Household.area_id)
    )
    return {area_id: HouseholdCounts(n, r, d, a) for area_id, n, r, d, a in rows}


async def flow_counts(session: AsyncSession, scope: Scope, since: datetime | None) -> dict[str, FlowStats]:
    """Per procedure, the runs started in the period by their status now, and the Problems
    reported on those runs with their reasons."""
    # Grouped by area first, in the order of the runs' report index, so the database streams
    # through that index instead of sorting every run; the few hundred groups are added up here.
    flows: dict[str, FlowStats] = {}
    by_status = _runs_in(scope, FlowRun.flow_id, FlowRun.status, func.count()).where(
        _since(FlowRun.started_at, since)).group_by(FlowRun.area_id, FlowRun.flow_id, FlowRun.status)
    for flow_id, status, n in await session.execute(by_status):
        total = flows.setdefault(flow_id, FlowStats())
        total.started += int(n)
        if status in (RunStatus.COMPLETED, RunStatus.BLOCKED, RunStatus.ACTIVE):
            setattr(total, status, getattr(total, status) + int(n))
    reasons = (
        select(StepRecord.flow_id, StepRecord.reason, func.count())
        .where(BLOCKED_RECORD, scope.records_in())
        .group_by(StepRecord.flow_id, StepRecord.reason)
    )
    if since is not None:
        # The Problems of the runs started in the period: all recorded since then, so the few
        # blocked records of the period are read from their index and each run looked up by
        # its key (far cheaper than listing the period's runs first).
        run_started = select(FlowRun.started_at).where(FlowRun.id == StepRecord.run_id).scalar_subquery()
        reasons = reasons.where(StepRecord.recorded_at >= since, run_started >= since)
    by_flow: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for flow_id, reason, n in await session.execute(reasons):
        by_flow[flow_id].append((reason or "", int(n)))
    for flow_id, pairs in by_flow.items():
        pairs.sort(key=lambda p: (-p[1], p[0]))
        figures = flows.setdefault(flow_id, FlowStats())
        figures.problems = sum(n for _, n in pairs)
        figures.top_reasons = pairs[:TOP_REASONS]
    return flows


def _large_runs(scope: Scope, *columns: Any) -> Select[Any]:
    """Like _runs_in, but for a large scope the area is only checked, not used to look up runs."""
    where = scope.runs_in_without_area_index() if scope.large else scope.runs_in()
    return select(*columns).select_from(FlowRun).where(where)


async def residents_supported(session: AsyncSession, scope: Scope, since: datetime | None) -> int:
    """Residents with a procedure run of their own that moved in the period."""
    return int(await session.scalar(
        _large_runs(scope, func.count(distinct(FlowRun.resident_id)))
        .where(FlowRun.resident_id.is_not(None), _since(FlowRun.updated_at, since))
    ) or 0)


def _volunteers_of(scope: Scope) -> Select[Any]:
    """The ids of the area's volunteers: those who look after its households, and those who hold a
    volunteer role in it (the area or one below it)."""
    keepers = select(Household.volunteer_id.label("user_id")).where(
        scope.households_in(), Household.volunteer_id.is_not(None))
    members = select(Membership.user_id.label("user_id")).where(Membership.role == "volunteer")
    if not scope.everything:
        members = members.where(Membership.area_id.in_(list(scope.areas)))
    return select(union(keepers, members).subquery().c.user_id)


async def volunteer_counts(session: AsyncSession, scope: Scope, now: datetime) -> tuple[int, int]:
    """(the area's volunteers, those of them whose runs there moved in the last 7 days)."""
    volunteers = select(func.count()).select_from(_volunteers_of(scope).subquery())
    active = _large_runs(scope, func.count(distinct(FlowRun.volunteer_id))).where(
        FlowRun.updated_at >= now - timedelta(days=ACTIVE_DAYS),
        FlowRun.volunteer_id.in_(_volunteers_of(scope)),
    )
    return int(await session.scalar(volunteers) or 0), int(await session.scalar(active) or 0)


def week_start(moment: datetime, tz: tzinfo) -> date:
    """The Monday (local calendar) of the week `moment` falls in."""
    day = moment.astimezone(tz).date()
    return day - timedelta(days=day.weekday())


async def weekly_completed(
    session: AsyncSession, scope: Scope, now: datetime, tz: tzinfo, weeks: int = CHART_WEEKS
) -> list[tuple[date, int]]:
    """Completed procedures per local week, the last `weeks` weeks (oldest first, zeros kept).

    One count per week over a range of the completed-runs index: no date arithmetic per run."""
    first = week_start(now, tz) - timedelta(weeks=weeks - 1)
    starts = [datetime(d.year, d.month, d.day, tzinfo=tz)
              for d in (first + timedelta(weeks=i) for i in range(weeks + 1))]
    counts = [
        _large_runs(scope, func.count())
        .where(COMPLETED_RUN, FlowRun.finished_at >= start, FlowRun.finished_at < end)
        .scalar_subquery()
        for start, end in pairwise(starts)
    ]
    row = (await session.execute(select(*counts))).one()
    return [(first + timedelta(weeks=i), int(n or 0)) for i, n in enumerate(row)]


def area_target(scope: Scope, area_id: int | None, attr: str) -> Target | None:
    """The target `attr` of an area of the scope (None: the scope's top, e.g. everything): its
    own, else the sum of its sub-areas' targets (each their own, else summed in turn)."""
    below: dict[int | None, list[Area]] = defaultdict(list)
    for a in scope.areas.values():
        below[a.parent_id].append(a)

    def target(node: int | None) -> Target | None:
        own = getattr(scope.areas[node], attr) if node is not None else None
        if own is not None:
            return Target(own, "own")
        children = below.get(node, [])
        summed = [(c, t) for c in children if (t := target(c.id)) is not None]
        if not summed:
            return None
        return Target(sum(t.value for _, t in summed), "children", len(summed), len(children),
                      tuple(sorted({c.level for c in children})))

    return target(area_id)


async def area_stats(
    session: AsyncSession, area: Area | None, *, now: datetime, since: datetime | None, tz: tzinfo,
    all_name: str = "",
) -> AreaStats:
    """Everything /stats and `gocua stats` show for `area` (None: the whole database)."""
    scope = await load_scope(session, area)
    per_area = await household_counts(session, scope, since)
    scope.households = sum(c.households for c in per_area.values())
    total = HouseholdCounts()
    outside = HouseholdCounts()
    per_child: dict[int, HouseholdCounts] = defaultdict(HouseholdCounts)
    for area_id, counts in per_area.items():
        total.add(counts)
        child = scope.child_of(area_id)
        per_child[child].add(counts) if child is not None else outside.add(counts)
    children = scope.children()
    supported = await residents_supported(session, scope, since)
    volunteers, active = await volunteer_counts(session, scope, now)
    top = scope.area.id if scope.area is not None else None
    return AreaStats(
        area=scope.ref(all_name), since=since, now=now, counts=total,
        residents_supported=supported,
        volunteers=volunteers, volunteers_active=active,
        households_target=area_target(scope, top, "target_households"),
        digital_ready_target=area_target(scope, top, "target_digital_ready"),
        flows=await flow_counts(session, scope, since),
        children=[
            ChildStats(c.id, AreaRef(c.code, c.name, c.level), per_child.get(c.id, HouseholdCounts()),
                       area_target(scope, c.id, "target_households"))
            for c in children
        ],
        outside_children=outside if children and outside.households else None,
        weekly_completed=await weekly_completed(session, scope, now, tz),
    )


async def step_drop_off(
    session: AsyncSession, area: Area | None, flow_id: str, since: datetime | None
) -> list[StepDropOff]:
    """Per step of one procedure: runs that reached it and runs that got past it.

    Runs are those started in the period. A run reached a step when it has a record there or is
    waiting there now. Steps come back in no particular order; the caller orders them as the
    flow does."""
    scope = await load_scope(session, area)
    records = select(StepRecord.step_id, StepRecord.outcome, StepRecord.run_id).where(
        StepRecord.flow_id == flow_id, scope.records_in()
    )
    if since is not None:  # the cohort: runs started in the period
        records = records.where(StepRecord.run_id.in_(
            _runs_in(scope, FlowRun.id).where(FlowRun.flow_id == flow_id, FlowRun.started_at >= since)
        ))
    rows = records.subquery()
    # A Problem the procedure goes on without (or one retried) is got past too: only runs
    # standing at the step now did not get past it.
    standing = exists().where(FlowRun.id == rows.c.run_id, FlowRun.current_step == rows.c.step_id)
    got_past = case((rows.c.outcome.in_((StepOutcome.DONE, StepOutcome.SKIPPED)), rows.c.run_id),
                    (and_(rows.c.outcome == StepOutcome.BLOCKED, ~standing), rows.c.run_id))
    counted = await session.execute(
        select(
            rows.c.step_id,
            func.count(distinct(rows.c.run_id)),
            func.count(distinct(got_past)),
            func.count(distinct(case((rows.c.outcome == StepOutcome.BLOCKED, rows.c.run_id)))),
        ).group_by(rows.c.step_id)
    )
    per_step = {step: (int(r), int(p), int(b)) for step, r, p, b in counted}
    # Runs waiting at a step now, and runs stopped there (/cancel writes no record): those with
    # no record at that step add to the runs that reached it.
    answered_here = exists().where(StepRecord.run_id == FlowRun.id,
                                   StepRecord.step_id == FlowRun.current_step)
    resting_rows = await session.execute(
        _runs_in(scope, FlowRun.current_step, FlowRun.status, func.count(), _count_if(~answered_here))
        .where(FlowRun.flow_id == flow_id, FlowRun.status.in_((RunStatus.ACTIVE, RunStatus.ABANDONED)),
               FlowRun.current_step.is_not(None), _since(FlowRun.started_at, since))
        .group_by(FlowRun.current_step, FlowRun.status)
    )
    waiting: dict[str, int] = defaultdict(int)
    stopped: dict[str, int] = defaultdict(int)
    unrecorded: dict[str, int] = defaultdict(int)
    for step, status, n, new in resting_rows:
        (waiting if status == RunStatus.ACTIVE else stopped)[step] += int(n)
        unrecorded[step] += int(new)
    return [
        StepDropOff(
            step_id=step,
            reached=per_step.get(step, (0, 0, 0))[0] + unrecorded.get(step, 0),
            passed=per_step.get(step, (0, 0, 0))[1],
            problems=per_step.get(step, (0, 0, 0))[2],
            waiting=waiting.get(step, 0),
            abandoned=stopped.get(step, 0),
        )
        for step in set(per_step) | set(waiting) | set(stopped)
    ]


async def volunteer_table(
    session: AsyncSession, area: Area | None, since: datetime | None, limit: int = 200
) -> list[VolunteerStats]:
    """Per volunteer looking after households in the scope: households, reached, completed."""
    scope = await load_scope(session, area)
    reached = Household.last_step_at.is_not(None) if since is None else Household.last_step_at >= since
    households = (
        select(Household.volunteer_id.label("uid"), func.count().label("n"), _count_if(reached).label("r"))
        .where(scope.households_in(), Household.volunteer_id.is_not(None))
        .group_by(Household.volunteer_id).subquery()
    )
    completed = (
        _runs_in(scope,
            FlowRun.volunteer_id.label("uid"),
            _count_if(and_(FlowRun.status == RunStatus.COMPLETED,
                           _since(FlowRun.finished_at, since))).label("c"),
            func.max(FlowRun.updated_at).label("last"),
        ).group_by(FlowRun.volunteer_id).subquery()
    )
    rows = await session.execute(
        select(User.id, User.display_name, households.c.n, households.c.r, completed.c.c, completed.c.last)
        .join(households, households.c.uid == User.id)
        .outerjoin(completed, completed.c.uid == User.id)
        .order_by(households.c.n.desc(), User.display_name)
        .limit(limit)
    )
    return [
        VolunteerStats(uid, name, int(n or 0), int(r or 0), int(c or 0), last)
        for uid, name, n, r, c, last in rows
    ]


async def volunteer_count(session: AsyncSession, area: Area | None) -> int:
    """How many volunteers look after households in the scope (the rows `volunteer_table`
    would give without a limit)."""
    scope = await load_scope(session, area)
    count = await session.scalar(
        select(func.count(func.distinct(Household.volunteer_id)))
        .where(scope.households_in(), Household.volunteer_id.is_not(None)))
    return int(count or 0)


async def open_runs_by_status(session: AsyncSession) -> dict[str, int]:
    """Runs in progress or blocked now, per status (for /metrics)."""
    rows = await session.execute(
        select(FlowRun.status, func.count()).where(FlowRun.status.in_((RunStatus.ACTIVE, RunStatus.BLOCKED)))
        .group_by(FlowRun.status)
    )
    return {status: int(n) for status, n in rows}
