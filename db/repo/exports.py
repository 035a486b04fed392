"""The rows of an export: one per step record, read page by page (keyset on the record id).

A city has millions of step records: they are never all in memory. No citizen ID is selected
from the households' members: an export names households by their code. A step's answer is the
one the step record keeps (an option id, or the typed value: a citizen ID only as its mask).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, true
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Area, FlowRun, Household, StepRecord, User
from db.repo.areas import within

PAGE = 5_000


@dataclass(frozen=True)
class ExportRow:
    area: str
    household: str
    flow_id: str
    flow_version: int
    step_id: str
    outcome: str
    value: str | None  # the option id chosen or the value typed (validated, masked), if any
    reason: str | None
    volunteer: str
    recorded_at: datetime


async def export_pages(
    session: AsyncSession, area: Area | None, since: datetime | None, page: int = PAGE
) -> AsyncGenerator[list[ExportRow], None]:
    """Step records of households in `area` (and below; None: all), oldest first, in pages."""
    in_area = true() if area is None else within(Area.code, area.code)
    after = 0
    while True:
        stmt = (
            select(StepRecord.id, Area.name, Household.code, FlowRun.flow_id, FlowRun.flow_version,
                   StepRecord.step_id, StepRecord.outcome, StepRecord.value, StepRecord.reason,
                   User.display_name, StepRecord.recorded_at)
            .join(FlowRun, FlowRun.id == StepRecord.run_id)
            .join(Household, Household.id == FlowRun.household_id)
            .join(Area, Area.id == Household.area_id)
            .join(User, User.id == StepRecord.user_id)
            .where(in_area, StepRecord.id > after)
            .order_by(StepRecord.id)
            .limit(page)
        )
        if since is not None:
            stmt = stmt.where(StepRecord.recorded_at >= since)
        rows = (await session.execute(stmt)).all()
        if not rows:
            return
        after = rows[-1][0]
        yield [ExportRow(*row[1:]) for row in rows]
        if len(rows) < page:
            return
