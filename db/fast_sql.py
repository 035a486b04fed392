"""The update path's fixed statements, run on the driver's own connection (issue 19, round 2).

Each statement the update path runs on every update (the dedupe/user/conversation load, a flow
step's run load and writes, the outbox row) is compiled by SQLAlchemy once per dialect into a
`Plan`: its SQL text, the order of its parameters with their bind processors (JSON, UTC
datetimes: exactly what SQLAlchemy would send), the processors of its result columns and the
column defaults an INSERT leaves to Python. It then runs directly on the raw connection, the
`sqlite3.Connection` (db/sqlite_driver.py) or asyncpg's `Connection`, inside the transaction the
session already holds: one transaction per update still, committed or rolled back by the session.
What it saves is SQLAlchemy's per-statement work (execution context, result objects, the greenlet
round trip of the async bridge), which cost more than SQLite takes to run these statements.

`direct(session)` is that handle for a session opened by `Database.transaction()` (None for any
other session, or with GOCUA_FAST_SQL=0: the repositories then run the same statements through
the session, the path the tests compare against).

Errors keep SQLAlchemy's meaning: a driver error on the direct path is handed to the
connection's own handler, which wraps it (IntegrityError, OperationalError, DBAPIError) and, for a
lost connection (PostgreSQL restarted), invalidates it and the pool as a failed `execute` would.

On PostgreSQL, `begin(session)` starts the transaction (BEGIN) at once, and a connection found
dead there is replaced and BEGIN tried again: the pool's pre-ping (a round trip at every checkout)
is not needed. It reaches asyncpg's adapter through two private names (`_transaction`,
`_start_transaction`), pinned by tests/test_fast_sql.py.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import ClauseElement

RAW_KEY = "gocua.fast_sql"
# GOCUA_FAST_SQL=0 runs the update path's statements through the session instead (read when a
# Database is made; the tests compare both).
ENABLED = os.environ.get("GOCUA_FAST_SQL", "1") != "0"
BEGIN_ATTEMPTS = 3  # a pool of connections killed by a server restart: the first BEGIN fails

_CONSTANT, _PARAM, _DEFAULT = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Plan:
    """A statement compiled once for one dialect: SQL, how to build its positional arguments
    from a dict of parameters, and how to read its rows."""

    sql: str
    # Per position: (kind, name or value, bind processor). _CONSTANT: a value fixed in the
    # statement (a literal, a scalar column default), already processed; _PARAM: params[name];
    # _DEFAULT: a Python column default called for each execution.
    slots: tuple[tuple[int, Any, Callable[[Any], Any] | None], ...]
    results: tuple[Callable[[Any], Any] | None, ...] | None  # None: no processing needed

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        out = []
        for kind, what, process in self.slots:
            if kind == _CONSTANT:
                out.append(what)
                continue
            value = params[what] if kind == _PARAM else what(None)
            out.append(value if process is None else process(value))
        return out

    def rows(self, raw: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        results = self.results
        if results is None:
            return [tuple(row) for row in raw]
        return [tuple(value if p is None or value is None else p(value) for p, value in zip(results, row,
                                                                                        strict=True))
                for row in raw]


def compile_plan(statement: ClauseElement, dialect: Dialect) -> Plan:
    compiled: Any = statement.compile(dialect=dialect)
    sql = compiled.string
    if "POSTCOMPILE" in sql or compiled.positiontup is None:
        raise ValueError(f"not a fixed positional statement: {sql[:80]}")
    processors = compiled._bind_processors
    defaults = {column.key: column.default for column in getattr(compiled, "insert_prefetch", ())}
    slots: list[tuple[int, Any, Callable[[Any], Any] | None]] = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        process = processors.get(name)
        if name in defaults:
            default = defaults[name]
            if default.is_scalar:
                value = default.arg
                slots.append((_CONSTANT, value if process is None else process(value), None))
            else:
                slots.append((_DEFAULT, default.arg, process))
        elif not bind.required and bind.callable is None:
            value = bind.value
            slots.append((_CONSTANT, value if process is None else process(value), None))
        else:
            slots.append((_PARAM, bind.key, process))
    results = tuple(entry.type._cached_result_processor(dialect, None) for entry in compiled._result_columns)
    return Plan(sql, tuple(slots), results if any(p is not None for p in results) else None)


class Direct:
    """One transaction's statements on the driver's connection (see the module's docstring)."""

    __slots__ = ("_adapted", "_connection", "_driver", "_plans", "dialect", "is_sqlite")

    def __init__(self, connection: AsyncConnection, driver: Any, adapted: Any) -> None:
        self._connection = connection
        self._driver = driver
        self._adapted = adapted
        self.dialect = connection.dialect
        self.is_sqlite = self.dialect.name == "sqlite"
        plans = self.dialect.__dict__.get("_gocua_plans")
        if plans is None:
            plans = self.dialect.__dict__["_gocua_plans"] = {}
        self._plans: dict[ClauseElement, Plan] = plans

    def plan(self, statement: ClauseElement) -> Plan:
        plan = self._plans.get(statement)
        if plan is None:
            plan = self._plans[statement] = compile_plan(statement, self.dialect)
        return plan

    async def fetch(self, statement: ClauseElement, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows of a SELECT (or of an INSERT/UPDATE … RETURNING)."""
        plan = self.plan(statement)
        args = plan.args(params)
        try:
            if self.is_sqlite:
                raw = self._driver.execute(plan.sql, args).fetchall()
            else:
                raw = await self._driver.fetch(plan.sql, *args)
        except Exception as error:
            await self._fail(error, plan.sql)
        return plan.rows(raw)

    async def run(self, statement: ClauseElement, params: Mapping[str, Any]) -> int:
        """Run an INSERT/UPDATE/DELETE (or a locking SELECT); how many rows it touched."""
        plan = self.plan(statement)
        args = plan.args(params)
        try:
            if self.is_sqlite:
                return int(self._driver.execute(plan.sql, args).rowcount)
            status = await self._driver.execute(plan.sql, *args)
        except Exception as error:
            await self._fail(error, plan.sql)
        count = status.rpartition(" ")[2]  # "UPDATE 1", "INSERT 0 1", "SELECT 1"
        return int(count) if count.isdigit() else -1

    async def run_many(self, statement: ClauseElement, rows: Sequence[Mapping[str, Any]]) -> None:
        plan = self.plan(statement)
        args = [plan.args(row) for row in rows]
        try:
            if self.is_sqlite:
                self._driver.executemany(plan.sql, args)
            else:
                await self._driver.executemany(plan.sql, args)
        except Exception as error:
            await self._fail(error, plan.sql)

    async def _fail(self, error: Exception, sql: str) -> NoReturn:
        await fail(self._connection, self._adapted, error, sql)
        raise error  # not reached: the handler raises


async def fail(connection: AsyncConnection, adapted: Any, error: Exception, sql: str) -> NoReturn:
    """Raise `error` as SQLAlchemy would have, had the statement gone through `connection`:
    asyncpg's exceptions translated as its adapter does, then wrapped (IntegrityError …) by the
    connection's handler, which on a lost connection invalidates it and the pool's older
    connections."""
    if adapted is not None and not isinstance(error, sqlite3.Error):
        try:
            adapted._handle_exception(error)  # raises the translated (DBAPI) error
        except Exception as translated:
            error = translated

    def handle(sync_connection: Any) -> None:
        sync_connection._handle_dbapi_exception(error, sql, None, None, None)

    await connection.run_sync(handle)
    raise error


def direct(session: AsyncSession) -> Direct | None:
    """The driver-level handle of a session's transaction (None: use the session)."""
    return session.info.get(RAW_KEY)


async def begin(session: AsyncSession, *, fast: bool, sqlite_driver: Any = None) -> None:
    """Start the session's transaction now, on a live connection: on PostgreSQL BEGIN is sent at
    once and a connection that turns out dead there (the server restarted since it was pooled)
    is invalidated, with the pool's older ones, and BEGIN tried again on a new one. With `fast`
    the session gets its `Direct` handle (`sqlite_driver`: the sqlite3 connection of a session
    bound to the one SQLite connection, known already)."""
    for attempt in range(BEGIN_ATTEMPTS):
        connection = await session.connection()
        if sqlite_driver is not None:
            if fast:
                session.info[RAW_KEY] = Direct(connection, sqlite_driver, None)
            return
        sync = connection.sync_connection
        # The pooled connection the session just took, without another trip through the async
        # bridge (`get_raw_connection`) unless it needs reconnecting.
        pooled = sync.connection if sync is not None and not sync.invalidated \
            else await connection.get_raw_connection()
        adapted = pooled.dbapi_connection
        if connection.dialect.name == "sqlite":
            adapted = None  # SQLite's BEGIN IMMEDIATE ran when the session took the connection
        elif adapted is not None and adapted._transaction is None and not adapted.autocommit:
            try:
                await adapted._start_transaction()
            except Exception as error:
                try:
                    await fail(connection, adapted, error, "BEGIN")
                except DBAPIError as wrapped:
                    if not wrapped.connection_invalidated or attempt == BEGIN_ATTEMPTS - 1:
                        raise
                await session.rollback()  # drops the invalidated connection; the next is new
                continue
        if fast:
            session.info[RAW_KEY] = Direct(connection, pooled.driver_connection, adapted)
        return
