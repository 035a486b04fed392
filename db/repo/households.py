"""Households, their members and who looks after them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Select, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.state import RunStatus, StepOutcome
from db.models import Area, FlowRun, Household, Membership, Resident, StepRecord, User
from db.repo.areas import within

VOLUNTEER_LOAD = 20  # the "1+20" model: about twenty households per volunteer


@dataclass
class HouseholdProgress:
    household: Household
    area_name: str
    completed: int = 0
    blocked: int = 0
    active_flow: str | None = None
    active_run_id: int | None = None


@dataclass
class RunSummary:
    run_id: int
    flow_id: str
    flow_version: int
    status: str
    current_step: str | None
    resident_name: str | None
    updated_at: datetime
    blocked_reason: str | None = None


@dataclass
class HouseholdPage:
    household: Household
    area: Area
    volunteer_name: str | None
    members: list[Resident] = field(default_factory=list)
    runs: list[RunSummary] = field(default_factory=list)


def household_prefix(area_code: str) -> str:
    """'danang.hai-van.ta-lang' -> 'HV-TL': initials of each level below the city."""
    parts = area_code.split(".")[1:] or area_code.split(".")
    initials = ["".join(w[0] for w in re.split(r"[-_]", p) if w).upper() for p in parts]
    return "-".join(i for i in initials if i) or "HH"


async def next_household_code(session: AsyncSession, area: Area) -> str:
    prefix = household_prefix(area.code)
    codes = await session.scalars(select(Household.code).where(Household.code.like(f"{prefix}-%")))
    numbers = [int(c.rsplit("-", 1)[1]) for c in codes if c.rsplit("-", 1)[1].isdigit()]
    return f"{prefix}-{max(numbers, default=0) + 1:03d}"


async def household_by_code(session: AsyncSession, code: str) -> Household | None:
    return await session.scalar(select(Household).where(Household.code == code.strip().upper()))


CURRENT = Household.archived_at.is_(None)  # not archived: counted and listed


async def count_for_volunteer(session: AsyncSession, user_id: int) -> int:
    return await session.scalar(
        select(func.count()).select_from(Household).where(Household.volunteer_id == user_id, CURRENT)
    ) or 0


def _progress_query(volunteer_id: int) -> Select:
    runs = (
        select(
            FlowRun.household_id.label("hid"),
            func.sum(case((FlowRun.status == RunStatus.COMPLETED, 1), else_=0)).label("completed"),
            func.sum(case((FlowRun.status == RunStatus.BLOCKED, 1), else_=0)).label("blocked"),
            func.max(case((FlowRun.status == RunStatus.ACTIVE, FlowRun.id), else_=None)).label("active_id"),
        )
        .group_by(FlowRun.household_id)
        .subquery()
    )
    return (
        select(Household, Area.name, runs.c.completed, runs.c.blocked, runs.c.active_id, FlowRun.flow_id)
        .join(Area, Area.id == Household.area_id)
        .outerjoin(runs, runs.c.hid == Household.id)
        .outerjoin(FlowRun, FlowRun.id == runs.c.active_id)
        .where(Household.volunteer_id == volunteer_id, CURRENT)
        .order_by(Household.code)
    )


async def progress_of_volunteer(session: AsyncSession, volunteer_id: int) -> list[HouseholdProgress]:
    rows = await session.execute(_progress_query(volunteer_id))
    return [
        HouseholdProgress(hh, area_name, completed or 0, blocked or 0, active_flow, active_id)
        for hh, area_name, completed, blocked, active_id, active_flow in rows
    ]


async def members_of(session: AsyncSession, household_id: int) -> list[Resident]:
    """The household's members in the order they were added."""
    return list(await session.scalars(
        select(Resident).where(Resident.household_id == household_id).order_by(Resident.id)
    ))


async def household_page(session: AsyncSession, household: Household) -> HouseholdPage:
    area = await session.get(Area, household.area_id)
    assert area is not None
    volunteer = await session.get(User, household.volunteer_id) if household.volunteer_id else None
    members = await members_of(session, household.id)
    names = {m.id: m.name for m in members}
    runs = list(await session.scalars(
        select(FlowRun).where(FlowRun.household_id == household.id, FlowRun.status != RunStatus.ABANDONED)
        .order_by(FlowRun.started_at)
    ))
    blocked_ids = [r.id for r in runs if r.status == RunStatus.BLOCKED]
    reasons: dict[int, str | None] = {}
    if blocked_ids:  # the reason of each blocked run's latest Problem
        rows = await session.execute(
            select(StepRecord.run_id, StepRecord.reason)
            .where(StepRecord.run_id.in_(blocked_ids), StepRecord.outcome == StepOutcome.BLOCKED)
            .order_by(StepRecord.id)
        )
        reasons = {run_id: reason for run_id, reason in rows}
    summaries = [
        RunSummary(
            run_id=r.id, flow_id=r.flow_id, flow_version=r.flow_version, status=r.status,
            current_step=r.current_step, resident_name=names.get(r.resident_id or -1),
            updated_at=r.updated_at, blocked_reason=reasons.get(r.id),
        )
        for r in runs
    ]
    return HouseholdPage(household, area, volunteer.display_name if volunteer else None, members, summaries)


async def volunteers_of_area(session: AsyncSession, area_code: str) -> list[tuple[int, str, int]]:
    """(user id, name, households assigned) of everyone who may volunteer in the area."""
    load = (
        select(Household.volunteer_id.label("uid"), func.count().label("n"))
        .where(CURRENT)
        .group_by(Household.volunteer_id)
        .subquery()
    )
    ancestors = _ancestor_codes(area_code)
    rows = await session.execute(
        select(User.id, User.display_name, func.coalesce(load.c.n, 0))
        .join(Membership, Membership.user_id == User.id)
        .join(Area, Area.id == Membership.area_id)
        .outerjoin(load, load.c.uid == User.id)
        .where(
            Membership.role.in_(("volunteer", "leader")),
            Area.code.in_(ancestors) | within(Area.code, area_code),
        )
        .group_by(User.id, User.display_name, load.c.n)
        .order_by(User.display_name)
    )
    return [(uid, name, n) for uid, name, n in rows]


def _ancestor_codes(area_code: str) -> list[str]:
    parts = area_code.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def duplicate_scope(area: Area) -> str:
    """Where a duplicate is looked for: a village's ward or commune, else the area itself."""
    return area.code.rsplit(".", 1)[0] if area.level == "village" and "." in area.code else area.code


async def household_with_phone(
    session: AsyncSession, area: Area, phone: str, *, other_than: int | None = None
) -> str | None:
    """The code of another current household with this phone in the area's ward or commune."""
    return await session.scalar(
        select(Household.code).join(Area, Area.id == Household.area_id)
        .where(Household.phone == phone, CURRENT, Household.id != (other_than or -1),
               within(Area.code, duplicate_scope(area)))
        .order_by(Household.code).limit(1)
    )


async def household_with_citizen_id(
    session: AsyncSession, area: Area, citizen_id_hash: str, *, other_than: int | None = None
) -> str | None:
    """The code of a current household in the area's ward or commune with a member (other than
    resident `other_than`) whose citizen ID has this keyed hash."""
    return await session.scalar(
        select(Household.code).join(Resident, Resident.household_id == Household.id)
        .join(Area, Area.id == Household.area_id)
        .where(Resident.citizen_id_hash == citizen_id_hash, Resident.id != (other_than or -1), CURRENT,
               within(Area.code, duplicate_scope(area)))
        .order_by(Household.code).limit(1)
    )


async def move_household(session: AsyncSession, household: Household, area: Area) -> None:
    """Correct a household's village: its runs and step records count in the new area too (they
    carry a copy of the area for the reports)."""
    household.area_id = area.id
    run_ids = select(FlowRun.id).where(FlowRun.household_id == household.id)
    await session.execute(update(FlowRun).where(FlowRun.household_id == household.id).values(area_id=area.id))
    await session.execute(update(StepRecord).where(StepRecord.run_id.in_(run_ids)).values(area_id=area.id))
