"""SQLite for the async engine, run on the event loop's thread (dialect `sqlite+gocua_inline`).

SQLAlchemy's aiosqlite dialect sends each call (cursor, execute, fetchall, close, commit …) to
aiosqlite's worker thread and back: about 27 thread round trips per update, each one waiting for
the GIL and for the event loop to come round again, with the in-process write lock
(db/engine.py) held across all of them. SQLite in WAL mode answers the update path's small
indexed statements in microseconds, less than one such round trip costs. This dialect is
SQLAlchemy's own pysqlite dialect (the standard sqlite3 module, same SQL, same types) flagged
as usable by the asyncio extension: statements run directly, inside the greenlet that
SQLAlchemy's asyncio layer already uses, and a transaction never leaves the loop's thread.

The price: a statement holds the loop while it runs, so a long one (a report over many rows)
delays everything else in the process for its duration; the update path's statements are
point lookups. Waiting for another process's write lock never holds the loop: connections have
no busy timeout and BEGIN IMMEDIATE (where a writer waits for SQLite's write lock; in WAL mode
readers never wait) is retried with asyncio sleeps until `busy_timeout` seconds have passed,
then fails as the busy handler would ("database is locked").

`db.engine.create_engine` selects this dialect for every SQLite URL (`sqlite+aiosqlite://…` in
the settings keeps working); nothing else needs to know.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.base import SQLiteExecutionContext
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.util import concurrency

_await = getattr(concurrency, "await_", None) or concurrency.await_only  # SQLAlchemy 2.1 / 2.0

DRIVER = "gocua_inline"
SQLITE_BUSY = 5
SQLITE_BUSY_SNAPSHOT = 517  # a read transaction cannot become a writer: waiting cannot help
_FIRST_PAUSE = 0.001
_MAX_PAUSE = 0.05


def is_busy(error: sqlite3.OperationalError) -> bool:
    """SQLITE_BUSY: another connection holds a lock this statement needs; trying again later
    may succeed (the statement had no effect)."""
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        return "database is locked" in str(error)
    return code & 0xFF == SQLITE_BUSY and code != SQLITE_BUSY_SNAPSHOT


def begin_immediate(connection: sqlite3.Connection, busy_timeout: float) -> None:
    """BEGIN IMMEDIATE (take the write lock up front). While another process holds the lock,
    sleep on the event loop (not in SQLite's busy handler, which would block it) and retry."""
    try:
        connection.execute("BEGIN IMMEDIATE")
        return
    except sqlite3.OperationalError as error:
        if not is_busy(error):
            raise
    deadline = time.monotonic() + busy_timeout
    pause = _FIRST_PAUSE
    while True:
        remaining = deadline - time.monotonic()
        if remaining > 0:
            # Inside SQLAlchemy's greenlet: this suspends the caller's coroutine, not the loop.
            _await(asyncio.sleep(min(pause, remaining)))
            pause = min(pause * 2, _MAX_PAUSE)
        try:
            connection.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as error:
            if remaining <= 0 or not is_busy(error):
                raise


class _Done:
    """An awaitable that is already complete: awaiting it does not suspend anything."""

    def __await__(self) -> Any:
        return iter(())


_DONE = _Done()


def _report_await() -> None:
    # SQLAlchemy's AsyncConnection.execute refuses a driver that never awaits (a guard against
    # a blocking driver used by mistake). This one runs statements inline on purpose, so each
    # statement reports one await that completes at once (two greenlet switches, ~1 µs).
    if concurrency.in_greenlet():
        _await(_DONE)


class Cursor(sqlite3.Cursor):
    async def _async_soft_close(self) -> None:
        """Called by SQLAlchemy's asyncio layer on a result's cursor before handing the result
        back (aiosqlite's adapter closes its cursor there, having buffered the rows). Rows are
        read from this cursor directly, without a thread, so it stays open."""


class Connection(sqlite3.Connection):
    def cursor(self, factory: Any = Cursor) -> Any:
        return super().cursor(factory)


class _ExecutionContext(SQLiteExecutionContext):
    def create_server_side_cursor(self) -> Any:
        # A sqlite3 cursor already steps through its rows on demand (stream / stream_scalars).
        return self._dbapi_connection.cursor()


class SQLiteDialect_gocua_inline(SQLiteDialect_pysqlite):
    """pysqlite, flagged async (it never waits), beginning every transaction IMMEDIATE."""

    driver = DRIVER
    is_async = True
    supports_statement_cache = True
    supports_server_side_cursors = True
    execution_ctx_cls = _ExecutionContext
    busy_timeout = 15.0  # seconds BEGIN IMMEDIATE waits for another process's write lock

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        # The asyncio-aware queue (a checkout waits without blocking the loop); one shared
        # connection for a memory database.
        return pool.AsyncAdaptedQueuePool if cls._is_url_file_db(url) else pool.StaticPool

    def create_connect_args(self, url: URL) -> Any:
        args, kwargs = super().create_connect_args(url)
        kwargs["timeout"] = 0  # no blocking busy handler: see begin_immediate
        kwargs["check_same_thread"] = False  # only ever used by one task at a time
        kwargs["isolation_level"] = None  # SQLAlchemy, not sqlite3, says when transactions begin
        kwargs["factory"] = Connection
        return args, kwargs

    def do_execute(self, cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        cursor.execute(statement, parameters)
        _report_await()

    def do_execute_no_params(self, cursor: Any, statement: str, context: Any = None) -> None:
        cursor.execute(statement)
        _report_await()

    def do_executemany(self, cursor: Any, statement: str, parameters: Any, context: Any = None) -> None:
        cursor.executemany(statement, parameters)
        _report_await()

    def do_begin(self, dbapi_connection: Any) -> None:
        begin_immediate(dbapi_connection.driver_connection, self.busy_timeout)


registry.register(f"sqlite.{DRIVER}", __name__, "SQLiteDialect_gocua_inline")
