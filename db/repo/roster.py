"""The roster of an area's volunteers, handing their households over, and ending a role.

A volunteer of an area is whoever holds a `volunteer` membership in it (or an area below it)
or looks after one of its current households. Per volunteer: households assigned (current, in
the area), households reached (with a recorded step), steps recorded in the area this week
(Monday, Vietnam time) and when they last recorded a step there. Inactive volunteers (nothing
for INACTIVE_DAYS, or never) come first, longest idle first.

Handing over moves the volunteer's current households in the area to one volunteer, or spreads
them over the volunteers of each household's village (the least loaded first). Ending a role
removes the user's volunteer memberships in the area; it is refused while they still look after
households there. The user, their step records and runs stay: history is never rewritten. Every
change is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import ColumnElement, Select, delete, func, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.folding import natural_key
from conversations.local_time import VIETNAM
from db.models import Area, Household, Membership, StepRecord, User
from db.repo.areas import within
from db.repo.audit import audit
from db.repo.flows import hand_over_runs
from db.repo.households import CURRENT
from db.repo.stats import load_scope, week_start

INACTIVE_DAYS = 7


@dataclass(frozen=True)
class RosterLine:
    user_id: int
    name: str
    households: int
    reached: int
    steps_this_week: int
    last_active: datetime | None  # their last step recorded in the area; None: never

    def inactive(self, now: datetime) -> bool:
        return self.last_active is None or now - self.last_active >= timedelta(days=INACTIVE_DAYS)


def monday_of(now: datetime) -> datetime:
    """The start (00:00 Vietnam time) of the week `now` falls in, as an aware datetime."""
    day: date = week_start(now, VIETNAM)
    return datetime(day.year, day.month, day.day, tzinfo=VIETNAM)


def _sort_key(line: RosterLine) -> tuple[int, float, tuple[tuple[int, int | str], ...]]:
    # Never active first, then the longest idle; names break ties, as people read them
    # ("TNV 2" before "TNV 10", "Đặng" among the D's).
    return (0 if line.last_active is None else 1,
            line.last_active.timestamp() if line.last_active else 0.0, natural_key(line.name))


async def volunteer_ids(session: AsyncSession, area: Area) -> set[int]:
    """Who the roster of `area` lists: volunteer members of it or below, keepers of its households."""
    scope_areas = select(Area.id).where(within(Area.code, area.code))
    keepers = select(Household.volunteer_id.label("uid")).where(
        Household.area_id.in_(scope_areas), CURRENT, Household.volunteer_id.is_not(None))
    members = select(Membership.user_id.label("uid")).where(
        Membership.role == "volunteer", Membership.area_id.in_(scope_areas))
    return {int(uid) for uid in await session.scalars(select(union(keepers, members).subquery().c.uid))}


async def roster(session: AsyncSession, area: Area, now: datetime) -> list[RosterLine]:
    """Every volunteer of `area`, inactive ones first (see the module's docstring)."""
    ids = await volunteer_ids(session, area)
    if not ids:
        return []
    scope = await load_scope(session, area)
    areas = list(scope.areas)
    names = dict(list(await session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))))
    loads = {
        uid: (int(n), int(r or 0))
        for uid, n, r in await session.execute(
            select(Household.volunteer_id, func.count(),
                   func.count(Household.last_step_at))
            .where(Household.area_id.in_(areas), CURRENT, Household.volunteer_id.in_(ids))
            .group_by(Household.volunteer_id))
    }
    monday = monday_of(now)
    week = dict(list(await session.execute(
        select(StepRecord.user_id, func.count())
        .where(StepRecord.area_id.in_(areas), StepRecord.user_id.in_(ids), StepRecord.recorded_at >= monday)
        .group_by(StepRecord.user_id))))
    last = dict(list(await session.execute(
        select(StepRecord.user_id, func.max(StepRecord.recorded_at))
        .where(StepRecord.area_id.in_(areas), StepRecord.user_id.in_(ids))
        .group_by(StepRecord.user_id))))
    lines = [
        RosterLine(uid, names.get(uid, "?"), loads.get(uid, (0, 0))[0], loads.get(uid, (0, 0))[1],
                   int(week.get(uid, 0)), last.get(uid))
        for uid in ids
    ]
    return sorted(lines, key=_sort_key)


async def households_of(session: AsyncSession, user_id: int, area: Area) -> list[Household]:
    """The volunteer's current households in `area` and below, by code."""
    return list(await session.scalars(
        select(Household)
        .where(Household.volunteer_id == user_id, CURRENT,
               Household.area_id.in_(select(Area.id).where(within(Area.code, area.code))))
        .order_by(Household.code)))


@dataclass(frozen=True)
class Handover:
    moved: dict[int, int]  # receiving user id -> households given to them
    left: list[str]  # codes of households no other volunteer of their village could take


async def _reassign(session: AsyncSession, household: Household, to: int, *, actor: int | None,
                    now: datetime) -> None:
    before = household.volunteer_id
    household.volunteer_id = to
    await hand_over_runs(session, household.id, before, to)
    audit(session, now, actor, "household.reassign", f"household:{household.code}",
          {"from": before, "to": to, "by": "handover"})


async def hand_over_to(session: AsyncSession, user_id: int, to: int, area: Area, *,
                       actor: int | None, now: datetime) -> Handover:
    """All of the volunteer's households in `area` to volunteer `to` (the caller checked `to`)."""
    moved = 0
    for household in await households_of(session, user_id, area):
        await _reassign(session, household, to, actor=actor, now=now)
        moved += 1
    await session.flush()
    return Handover({to: moved} if moved else {}, [])


async def _village_volunteers(session: AsyncSession, code: str, area: Area, user_id: int) -> list[int]:
    """Volunteers (role `volunteer`) of the area `code`: members of it or below; if none, members
    of the areas above it up to `area` (a ward's volunteers cover its villages)."""
    def members(where: ColumnElement[bool]) -> Select[int]:
        return (select(Membership.user_id).join(Area, Area.id == Membership.area_id)
                .where(Membership.role == "volunteer", Membership.user_id != user_id, where).distinct())

    own = list(await session.scalars(members(within(Area.code, code))))
    if own:
        return own
    parts = code.split(".")
    above = [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]
    above = [c for c in above if c == area.code or c.startswith(area.code + ".")]
    return list(await session.scalars(members(Area.code.in_(above)))) if above else []


async def spread(session: AsyncSession, user_id: int, area: Area, *, actor: int | None,
                 now: datetime) -> Handover:
    """The volunteer's households in `area`, each to the least loaded other volunteer of the
    household's village (see _village_volunteers); those without one stay and are listed."""
    households = await households_of(session, user_id, area)
    codes = dict(list(await session.execute(
        select(Area.id, Area.code).where(Area.id.in_({h.area_id for h in households})))))
    candidates = {area_id: await _village_volunteers(session, code, area, user_id)
                  for area_id, code in codes.items()}
    everyone = {uid for people in candidates.values() for uid in people}
    load = {uid: 0 for uid in everyone}
    load.update(dict(list(await session.execute(
        select(Household.volunteer_id, func.count())
        .where(CURRENT, Household.volunteer_id.in_(everyone)).group_by(Household.volunteer_id)))))
    moved: dict[int, int] = {}
    left: list[str] = []
    for household in households:
        options = candidates.get(household.area_id) or []
        if not options:
            left.append(household.code)
            continue
        to = min(options, key=lambda uid: (load[uid], uid))
        await _reassign(session, household, to, actor=actor, now=now)
        load[to] += 1
        moved[to] = moved.get(to, 0) + 1
    await session.flush()
    return Handover(moved, left)


class StillAssigned(Exception):
    """Ending a role while the volunteer still looks after households in the area."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} households still assigned")
        self.count = count


async def end_role(session: AsyncSession, user_id: int, area: Area, *, actor: int | None,
                   now: datetime) -> list[str]:
    """Remove the user's volunteer memberships in `area` and below; the codes of the areas they
    held it in (empty: nothing to end). StillAssigned while they have households there."""
    remaining = len(await households_of(session, user_id, area))
    if remaining:
        raise StillAssigned(remaining)
    held = list(await session.execute(
        select(Membership.id, Area.code).join(Area, Area.id == Membership.area_id)
        .where(Membership.user_id == user_id, Membership.role == "volunteer", within(Area.code, area.code))
    ))
    if not held:
        return []
    await session.execute(delete(Membership).where(Membership.id.in_([mid for mid, _ in held])))
    for _, code in held:
        audit(session, now, actor, "role.end", f"user:{user_id}", {"role": "volunteer", "area": code})
    return [code for _, code in held]
