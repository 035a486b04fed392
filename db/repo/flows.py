"""Flow versions, runs and their append-only step records."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import JSON, CursorResult, Table, TextClause, bindparam, insert, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from conversations.events import StepRecord as RecordedStep
from conversations.state import RunState, RunStatus, StepOutcome
from db import fast_sql
from db.models import Area, FlowRun, FlowVersion, Household, StepRecord
from db.types import UTCDateTime

_M = TypeVar("_M")


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


# The flow step's statements (issue 19), built once from table columns: a step reads its run,
# household and area in one statement and writes with plain INSERT/UPDATEs, instead of three
# ORM loads and a unit-of-work flush.
def _attrs(model: type) -> list[tuple[str, Any]]:
    """(attribute name, column) of every mapped column of `model`."""
    return [(prop.key, prop.columns[0]) for prop in inspect(model).column_attrs]  # type: ignore[var-annotated]


_RUN_ATTRS, _HOUSEHOLD_ATTRS, _AREA_ATTRS = _attrs(FlowRun), _attrs(Household), _attrs(Area)
_runs, _households, _areas, _step_records = (
    cast(Table, model.__table__) for model in (FlowRun, Household, Area, StepRecord)
)
_LOAD_RUN = (
    select(*(c for _, c in _RUN_ATTRS), *(c for _, c in _HOUSEHOLD_ATTRS), *(c for _, c in _AREA_ATTRS))
    .select_from(_runs)
    .outerjoin(_households, _households.c.id == _runs.c.household_id)
    .outerjoin(_areas, _areas.c.id == _households.c.area_id)
    .where(_runs.c.id == bindparam("run_id"))
)
_LOAD_RUN_LOCKED = _LOAD_RUN.with_for_update(of=_runs)
_INSERT_STEP_RECORD = insert(_step_records)
_RECORD_COLUMNS = ("run_id", "flow_id", "area_id", "step_id", "attempt", "outcome", "reason", "value",
                   "user_id", "recorded_at", "source_update")
_NEW_STEP_RECORD = insert(_step_records).values(
    {name: bindparam(name, type_=UTCDateTime() if name == "recorded_at" else _step_records.c[name].type)
     for name in _RECORD_COLUMNS})
_HOUSEHOLD_REACHED = (
    update(_households).where(_households.c.id == bindparam("household_id"))
    .values(last_step_at=bindparam("reached_at", type_=_households.c.last_step_at.type))
)
_SAVE_RUN = (
    update(_runs)
    .where(_runs.c.id == bindparam("run_id"), _runs.c.version == bindparam("loaded_version"))
    .values(
        state=bindparam("new_state", type_=_runs.c.state.type),
        status=bindparam("new_status", type_=_runs.c.status.type),
        current_step=bindparam("new_current_step", type_=_runs.c.current_step.type),
        updated_at=bindparam("new_updated_at", type_=_runs.c.updated_at.type),
        finished_at=bindparam("new_finished_at", type_=_runs.c.finished_at.type),
        version=_runs.c.version + 1,
    )
)


# PostgreSQL: a flow step's run state (over its loaded version), its step records and the
# household's last_step_at in one statement, per number of records; the count says whether the
# run matched (the records are written either way, as separate statements would: a stale run
# rolls the whole transaction back).
_WRITE_STEP_PG: dict[int, TextClause] = {}


def _write_step_pg(records: int) -> TextClause:
    statement = _WRITE_STEP_PG.get(records)
    if statement is None:
        columns = ", ".join(_RECORD_COLUMNS)
        values = ", ".join("(" + ", ".join(f":{name}_{i}" for name in _RECORD_COLUMNS) + ")"
                           for i in range(records))
        statement = text(f"""
WITH r AS (
    UPDATE flow_runs SET state = :new_state, status = :new_status, current_step = :new_current_step,
        updated_at = :new_updated_at, finished_at = :new_finished_at, version = version + 1
    WHERE id = :run_id AND version = :loaded_version RETURNING 1
), s AS (
    INSERT INTO step_records ({columns}) VALUES {values}
), h AS (
    UPDATE households SET last_step_at = :reached_at WHERE id = :household_id
)
SELECT count(*) FROM r
""").bindparams(
            bindparam("new_state", type_=JSON()), bindparam("new_updated_at", type_=UTCDateTime()),
            bindparam("new_finished_at", type_=UTCDateTime()), bindparam("reached_at", type_=UTCDateTime()),
            *(bindparam(f"recorded_at_{i}", type_=UTCDateTime()) for i in range(records)),
        )
        _WRITE_STEP_PG[records] = statement
    return statement


def _as_loaded(session: AsyncSession, model: type[_M], attrs: list[tuple[str, Any]],
               values: Sequence[Any]) -> _M | None:
    """The entity of a row read with Core, in the session as if the ORM had loaded it (the one
    already there if it was): later changes to it are flushed as usual."""
    if values[0] is None:  # its primary key: an outer join found nothing
        return None
    mapper = inspect(model)
    existing = session.identity_map.get(mapper.identity_key_from_primary_key((values[0],)))
    if existing is not None:
        return cast(_M, existing)
    # Filled in directly, as the ORM's loading does: the constructor's per-attribute events
    # cost more than the statement.
    obj = mapper.class_manager.new_instance()
    obj.__dict__.update(zip((key for key, _ in attrs), values, strict=True))
    make_transient_to_detached(obj)
    session.add(obj)
    return obj


async def load_run_for_step(
    session: AsyncSession, run_id: int, *, lock: bool
) -> tuple[FlowRun | None, Household | None, Area | None]:
    """The run (locked FOR UPDATE with `lock`, per-run order on PostgreSQL), its household and the
    household's area, in one statement."""
    statement = _LOAD_RUN_LOCKED if lock else _LOAD_RUN
    row: Any
    if (direct := fast_sql.direct(session)) is not None:
        rows = await direct.fetch(statement, {"run_id": run_id})
        row = rows[0] if rows else None
    else:
        row = (await session.execute(statement, {"run_id": run_id})).first()
    if row is None:
        return None, None, None
    n_run, n_household = len(_RUN_ATTRS), len(_RUN_ATTRS) + len(_HOUSEHOLD_ATTRS)
    return (_as_loaded(session, FlowRun, _RUN_ATTRS, row[:n_run]),
            _as_loaded(session, Household, _HOUSEHOLD_ATTRS, row[n_run:n_household]),
            _as_loaded(session, Area, _AREA_ATTRS, row[n_household:]))


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


async def write_run_state(session: AsyncSession, run: FlowRun, state: RunState, now: datetime) -> None:
    """`save_run_state` written at once with one UPDATE over the version the run was loaded at
    (StaleDataError, nothing written, if another transaction wrote it since), the run object
    left with no pending change: the same optimistic lock as the ORM's, without its flush."""
    values, params = _run_values(run, state, now)
    if (direct := fast_sql.direct(session)) is not None:
        count = await direct.run(_SAVE_RUN, params)
    else:
        count = cast(CursorResult[Any], await session.execute(_SAVE_RUN, params)).rowcount
    _run_written(run, values, count)


def _run_values(run: FlowRun, state: RunState, now: datetime) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the run's new values, the parameters of its UPDATE over the loaded version)."""
    finished_at = now if state.status.finished else run.finished_at
    values: dict[str, Any] = {"state": state.to_json(), "status": state.status.value,
                              "current_step": state.step, "updated_at": now, "finished_at": finished_at}
    return values, {"run_id": run.id, "loaded_version": run.version,
                    **{f"new_{key}": value for key, value in values.items()}}


def _run_written(run: FlowRun, values: dict[str, Any], count: int) -> None:
    """After the run's UPDATE matched `count` rows: StaleDataError unless one; else the run object
    takes the values as stored."""
    if count != 1:
        raise StaleDataError(f"flow run {run.id} changed since version {run.version}")
    values["version"] = run.version + 1
    for key, value in values.items():
        set_committed_value(run, key, value)  # as stored: nothing for the unit of work to write


async def _add_record_rows(session: AsyncSession, run: FlowRun, rows: list[dict[str, Any]],
                           now: datetime) -> None:
    """Append the records and mark the household reached now (same transaction; plain INSERT
    and UPDATE, not the unit of work)."""
    if not rows:
        return
    reached = {"household_id": run.household_id, "reached_at": now}
    if (direct := fast_sql.direct(session)) is not None:
        if len(rows) == 1:
            await direct.run(_NEW_STEP_RECORD, rows[0])
        else:
            await direct.run_many(_NEW_STEP_RECORD, rows)
        await direct.run(_HOUSEHOLD_REACHED, reached)
        return
    await session.execute(_INSERT_STEP_RECORD, rows)
    await session.execute(_HOUSEHOLD_REACHED, reached)


def _record_rows(run: FlowRun, records: Iterable[RecordedStep], user_id: int, now: datetime,
                 source_update: str) -> list[dict[str, Any]]:
    return [{
        "run_id": run.id, "flow_id": run.flow_id, "area_id": run.area_id, "step_id": record.step_id,
        "attempt": record.attempt, "outcome": StepOutcome(record.outcome).value,
        "reason": (record.reason or None) and str(record.reason)[:300],
        "value": None if record.value is None else str(record.value)[:300],
        "user_id": user_id, "recorded_at": now, "source_update": source_update[:80],
    } for record in records]


async def write_step(
    session: AsyncSession,
    run: FlowRun,
    records: Sequence[RecordedStep],
    state: RunState,
    *,
    user_id: int,
    now: datetime,
    source_update: str,
) -> None:
    """What a flow step writes: its records, the household's last step (the records' time) and
    the run's state over its loaded version (`write_run_state`). On PostgreSQL's driver-level
    path, one statement."""
    direct = fast_sql.direct(session)
    rows = _record_rows(run, records, user_id, now, source_update)
    if direct is None or direct.is_sqlite or not rows:
        await _add_record_rows(session, run, rows, now)
        await write_run_state(session, run, state, now)
        return
    values, params = _run_values(run, state, now)
    params.update(household_id=run.household_id, reached_at=now)
    for i, row in enumerate(rows):
        params.update({f"{name}_{i}": value for name, value in row.items()})
    ((count,),) = await direct.fetch(_write_step_pg(len(rows)), params)
    _run_written(run, values, count)


async def hand_over_runs(session: AsyncSession, household_id: int, before: int | None, to: int) -> int:
    """A household handed to volunteer `to`: its open runs that `before` was doing go with it,
    and so do their reminders (paused-run reminders and digests follow a run's volunteer; a
    come-back date the previous volunteer chose now reminds the new one). How many runs moved."""
    from db.models import ScheduledJob
    from db.repo.jobs import come_back_key

    if before is None or before == to:
        return 0
    runs = list(await session.scalars(select(FlowRun.id).where(
        FlowRun.household_id == household_id, FlowRun.volunteer_id == before,
        FlowRun.status.in_([RunStatus.ACTIVE, RunStatus.BLOCKED]))))
    if not runs:
        return 0
    await session.execute(update(FlowRun).where(FlowRun.id.in_(runs)).values(volunteer_id=to)
                          .execution_options(synchronize_session="fetch"))
    await session.execute(update(ScheduledJob).where(
        ScheduledJob.key.in_([come_back_key(run) for run in runs]), ScheduledJob.state == "pending",
        ScheduledJob.user_id == before).values(user_id=to).execution_options(synchronize_session="fetch"))
    return len(runs)
