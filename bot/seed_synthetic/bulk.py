"""The database side: refuse a database that already has synthetic data, find the first free
ids, write batches of rows fast (SQLAlchemy Core executemany; COPY on PostgreSQL), keep the
flow versions the runs are pinned to."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, func, insert, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.seed_synthetic.plan import CITY_CODE
from bot.seed_synthetic.runs import CHANNEL
from conversations.flow_model import Flow
from db.models import (
    Area,
    FaqMiss,
    FlowRun,
    FlowVersion,
    Household,
    Identity,
    Membership,
    Resident,
    StepRecord,
    SupportRequest,
    User,
)

HOUSEHOLD_PREFIX = "HUE-"
ROW_BATCH = 10_000  # rows per INSERT executemany
SQLITE_CACHE_SIZE = -262_144  # KiB (256 MiB) of page cache while seeding, on SQLite
TABLES: tuple[Any, ...] = (Area, User, Identity, Membership, Household, Resident, FlowRun, StepRecord,
                           SupportRequest, FaqMiss)

Rows = list[dict[str, Any]]
Batch = list[tuple[Any, Rows]]  # (table, rows) in an order the foreign keys accept


class SeedError(Exception):
    """The synthetic data cannot be written; the message is one sentence for the user."""


async def check_empty(session: AsyncSession) -> None:
    in_city = or_(Area.code == CITY_CODE, Area.code.like(CITY_CODE + ".%"))
    existing = await session.scalar(
        select(func.count()).select_from(Household).join(Area, Area.id == Household.area_id).where(in_city)
    )
    if existing:
        raise SeedError(f"the city '{CITY_CODE}' already has synthetic data ({existing} households); "
                        "seed a fresh database instead")
    areas = await session.scalar(select(func.count()).select_from(Area).where(in_city))
    if areas:
        raise SeedError(f"the city '{CITY_CODE}' already has {areas} areas, without households; "
                        "seed a fresh database instead")
    codes = await session.scalar(
        select(func.count()).select_from(Household).where(Household.code.like(HOUSEHOLD_PREFIX + "%"))
    )
    users = await session.scalar(
        select(func.count()).select_from(Identity).where(Identity.channel == CHANNEL)
    )
    if codes or users:
        raise SeedError(f"the database already has synthetic data elsewhere ({codes} household codes "
                        f"{HOUSEHOLD_PREFIX}…, {users} synthetic users); seed a fresh database instead")


async def next_ids(session: AsyncSession) -> dict[str, int]:
    """The first free primary key of every table filled here."""
    return {
        model.__tablename__: int(await session.scalar(select(func.max(model.id))) or 0) + 1
        for model in TABLES
    }


async def insert_all(session: AsyncSession, batches: Iterator[Batch], *, postgres: bool) -> None:
    """Write every batch: SQLAlchemy Core INSERTs (executemany, ROW_BATCH rows at a time).

    PostgreSQL works in a server process of its own: there the rows go in with COPY, and the next
    batch is made in a worker thread while the server stores this one (SQLite works in this
    process: nothing to overlap)."""
    if not postgres:
        for batch in batches:
            for table, rows in batch:
                for first in range(0, len(rows), ROW_BATCH):
                    await session.execute(insert(table), rows[first:first + ROW_BATCH])
        return
    upcoming: asyncio.Future[Batch | None] = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
    try:
        while (ready := await upcoming) is not None:
            upcoming = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
            await _copy(session, ready)
    finally:
        await asyncio.gather(upcoming, return_exceptions=True)  # let the worker finish its batch


async def _copy(session: AsyncSession, batch: Batch) -> None:
    """PostgreSQL: COPY the rows in (asyncpg's binary COPY on the session's connection, inside its
    transaction). For two million step records it takes a third less time than INSERT
    executemany. The values need no conversion by SQLAlchemy: datetimes are aware UTC and JSON is
    serialised as the JSON type does it."""
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    for table, rows in batch:
        if not rows:
            continue
        columns = list(rows[0])
        as_json = {column.name for column in table.c if isinstance(column.type, JSON)}
        records = [tuple(json.dumps(row[c]) if c in as_json else row[c] for c in columns) for row in rows]
        await driver.copy_records_to_table(table.name, records=records, columns=columns)


async def move_sequences(session: AsyncSession, tables: Iterable[str]) -> None:
    """PostgreSQL: explicit ids do not move the sequences; move them past the rows written."""
    for name in tables:
        await session.execute(text(
            f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"
        ))


async def store_flow_versions(session: AsyncSession, flows: Iterable[Flow], now: datetime) -> None:
    """Keep the YAML of the versions the runs are pinned to (start-up does the same), so that the
    runs can be resumed after the files have moved on to a newer version."""
    for flow in flows:
        if flow.source and await session.get(FlowVersion, (flow.id, flow.version)) is None:
            session.add(FlowVersion(flow_id=flow.id, version=flow.version, source=flow.source, loaded_at=now))
    await session.flush()
