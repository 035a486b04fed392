"""The area tree: lookup by dotted code, sub-areas."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement, SQLCoreOperations

from conversations.folding import natural_key
from db.models import Area
from db.repo.audit import audit

MAX_TARGET = 1_000_000


def within(code_column: SQLCoreOperations[str], area_code: str) -> ColumnElement[bool]:
    """SQL condition: the area code is `area_code` or one of its descendants (`Area.code` or a
    column of area codes)."""
    return or_(code_column == area_code, code_column.like(area_code.replace("%", r"\%") + ".%"))


async def area_by_code(session: AsyncSession, code: str) -> Area | None:
    return await session.scalar(select(Area).where(Area.code == code.strip().lower()))


async def get_or_create_area(
    session: AsyncSession,
    *,
    code: str,
    name: str,
    level: str,
    parent: Area | None = None,
    official_code: str | None = None,
) -> Area:
    """The area with this official code, else with this code (its official code filled in when
    it had none), else a new one: a unit made by hand, by `seed demo` or by `areas import` is
    the same unit."""
    area, _ = await find_or_create_area(session, code=code, name=name, level=level, parent=parent,
                                        official_code=official_code)
    return area


async def find_or_create_area(
    session: AsyncSession, *, code: str, name: str, level: str, parent: Area | None = None,
    official_code: str | None = None,
) -> tuple[Area, bool]:
    """`get_or_create_area`, and whether the area is new."""
    area = None
    if official_code is not None:
        area = await session.scalar(select(Area).where(Area.official_code == official_code)
                                    .order_by(Area.id).limit(1))
    if area is None:
        area = await area_by_code(session, code)
        if area is not None and official_code is not None and area.official_code not in (None, official_code):
            # The code is another official unit's (two units of one name): this one gets its own.
            return await find_or_create_area(session, code=f"{code}-{official_code}", name=name, level=level,
                                             parent=parent, official_code=official_code)
        if area is not None and area.official_code is None and official_code is not None:
            area.official_code = official_code
    if area is not None:
        return area, False
    area = Area(
        code=code, name=name, level=level, parent_id=parent.id if parent else None,
        official_code=official_code,
    )
    session.add(area)
    await session.flush()
    return area, True


async def sub_areas(session: AsyncSession, area: Area) -> list[Area]:
    rows = await session.scalars(select(Area).where(Area.parent_id == area.id))
    return sorted(rows, key=lambda a: natural_key(a.name))  # "Tổ 2" before "Tổ 10"


def set_target(session: AsyncSession, area: Area, attr: str, value: int, *, actor_id: int | None,
               now: datetime, via: str | None = None) -> None:
    """Set one of the area's targets (`target_households`, `target_digital_ready`); 0 removes
    it. Written to the audit log with the value it replaced."""
    before = getattr(area, attr)
    setattr(area, attr, value or None)
    details = {"target": attr, "from": before, "to": value or None}
    if via is not None:
        details["via"] = via
    audit(session, now, actor_id, "target.set", f"area:{area.code}", details)
