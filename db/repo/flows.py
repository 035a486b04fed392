"""Flow versions, runs and their append-only step records."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.events import StepRecord as RecordedStep
from conversations.state import RunState, RunStatus, StepOutcome
from db.models import FlowRun, FlowVersion, Household, StepRecord


async def stored_flow_versions(session: AsyncSession) -> list[tuple[str, int, str]]:
    rows = await session.execute(select(FlowVersion.flow_id, FlowVersion.version, FlowVersion.source))
    return [(flow_id, version, source) for flow_id, version, source in rows]


async def store_flow_version(
    session: AsyncSession, flow_id: str, version: int, source: str, now: datetime
) -> None:
    """Keep the YAML of this version (the file wins if the same version was edited in place)."""
    row = await session.get(FlowVersion, (flow_id, version))
    if row is None:
        session.add(FlowVersion(flow_id=flow_id, version=version, source=source, loaded_at=now))
    elif row.source != source:
        row.source, row.loaded_at = source, now


async def run_for_update(session: AsyncSession, run_id: int, *, lock: bool) -> FlowRun | None:
    """The run, locked for this transaction where the database can (per-run order)."""
    stmt = select(FlowRun).where(FlowRun.id == run_id)
    if lock:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def open_run(
    session: AsyncSession, household_id: int, flow_id: str, resident_id: int | None
) -> FlowRun | None:
    """The household's unfinished (active or blocked) run of this flow for this person."""
    return await session.scalar(
        select(FlowRun).where(
            FlowRun.household_id == household_id, FlowRun.flow_id == flow_id,
            FlowRun.resident_id.is_(None) if resident_id is None else FlowRun.resident_id == resident_id,
            FlowRun.status.in_((RunStatus.ACTIVE, RunStatus.BLOCKED)),
        ).order_by(FlowRun.id.desc()).limit(1)
    )


async def abandoned_runs(session: AsyncSession, household_id: int) -> list[FlowRun]:
    """The household's abandoned runs that no later run of the same procedure for the same
    person has replaced (oldest first)."""
    runs = await session.scalars(
        select(FlowRun).where(FlowRun.household_id == household_id).order_by(FlowRun.id)
    )
    latest = {(run.flow_id, run.resident_id): run for run in runs}
    return [run for run in latest.values() if run.status == RunStatus.ABANDONED]


def run_state(run: FlowRun) -> RunState:
    """The run's stored state, typed (a new object: changing it changes nothing stored)."""
    return RunState.from_json(run.state)


def save_run_state(run: FlowRun, state: RunState, now: datetime) -> None:
    """Store a new state (a new JSON value, so the ORM sees the change) and its copies."""
    run.state = state.to_json()
    run.status = state.status.value
    run.current_step = state.step
    run.updated_at = now  # the flush counts `version` up, over the version loaded (FlowRun)
    if state.status.finished:
        run.finished_at = now


async def add_step_records(
    session: AsyncSession,
    run: FlowRun,
    records: Iterable[RecordedStep],
    *,
    user_id: int,
    now: datetime,
    source_update: str,
) -> None:
    """Append the records and mark the household reached now (same transaction)."""
    added = 0
    for record in records:
        added += 1
        session.add(StepRecord(
            run_id=run.id, flow_id=run.flow_id, area_id=run.area_id, step_id=record.step_id,
            attempt=record.attempt, outcome=StepOutcome(record.outcome).value,
            reason=(record.reason or None) and str(record.reason)[:300],
            value=None if record.value is None else str(record.value)[:300],
            user_id=user_id, recorded_at=now, source_update=source_update[:80],
        ))
    if added:
        await session.execute(
            update(Household).where(Household.id == run.household_id).values(last_step_at=now)
            .execution_options(synchronize_session=False)
        )
