"""The area tree: lookup by dotted code, sub-areas."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from db.models import Area


def within(code_column: ColumnElement[str] | object, area_code: str) -> ColumnElement[bool]:
    """SQL condition: the area code is `area_code` or one of its descendants."""
    column = code_column  # type: ignore[assignment]
    return or_(column == area_code, column.like(area_code.replace("%", r"\%") + ".%"))  # type: ignore[attr-defined]


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
    area = await area_by_code(session, code)
    if area is None:
        area = Area(
            code=code, name=name, level=level, parent_id=parent.id if parent else None,
            official_code=official_code,
        )
        session.add(area)
        await session.flush()
    return area


async def sub_areas(session: AsyncSession, area: Area) -> list[Area]:
    rows = await session.scalars(select(Area).where(Area.parent_id == area.id).order_by(Area.name))
    return list(rows)
