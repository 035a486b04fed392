"""Engine and transactions, the same code on SQLite (WAL) and PostgreSQL (asyncpg).

On SQLite every transaction starts with BEGIN IMMEDIATE (a writer takes the lock up front, so two
transactions never deadlock upgrading a read lock) and, within one process, writers queue on an
asyncio lock instead of spinning in SQLite's busy handler. Statements run on the event loop's
thread (db/sqlite_driver.py: no thread round trip per call); waiting for another process's
lock does not block the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from db import fast_sql, sqlite_driver

SQLITE_BUSY_TIMEOUT_MS = 15_000


def _sqlite_file(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database or an in-memory SQLite one."""
    return _sqlite_file(url) if make_url(url).get_backend_name() == "sqlite" else None


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_file(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        # Whatever driver the URL names, SQLite runs on the loop's thread (db/sqlite_driver.py).
        engine = create_async_engine(parsed.set(drivername=f"sqlite+{sqlite_driver.DRIVER}"), **kwargs)
        engine.dialect.busy_timeout = SQLITE_BUSY_TIMEOUT_MS / 1000  # type: ignore[attr-defined]

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    # No pre-ping (a round trip at every checkout): Database.transaction() sends BEGIN at once and
    # replaces a connection found dead there (db/fast_sql.py `begin`). Up to 20 connections
    # (GOCUA_DB_POOL_SIZE, bot/config.py), all kept: with 10 kept and 10 "overflow" ones closed
    # whenever returned, a busy worker opened a connection every second update or so (a backend
    # forked by PostgreSQL, the driver's type set-up queries), about a third of its CPU per flow
    # step (bench/README.md).
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 0)
    return create_async_engine(url, **kwargs)


def _sqlite_reader(url: str, *, read_only_file: bool = False) -> AsyncEngine:
    parsed = make_url(url).set(drivername="sqlite+aiosqlite")
    if read_only_file:  # opened with mode=ro: works on a file this user may not write
        path = _sqlite_file(url)
        assert path is not None
        parsed = parsed.set(database=f"{path.resolve().as_uri()}?mode=ro", query={"uri": "true"})
    engine = create_async_engine(parsed, pool_size=2)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA query_only=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    return engine


@asynccontextmanager
async def _committed(session: AsyncSession, *, fast: bool, sqlite_driver: Any = None
                     ) -> AsyncIterator[AsyncSession]:
    """The session's transaction, begun at once (db/fast_sql.py `begin`, with the driver-level
    handle when `fast`): committed when the block ends, rolled back if it raises."""
    try:
        await fast_sql.begin(session, fast=fast, sqlite_driver=sqlite_driver)
        yield session
        await session.commit()
    except BaseException:
        await session.rollback()
        raise


class Database:
    """The engine, a session factory and one way to run a transaction.

    `read_only=True` (the read-only commands: `gocua stats`, `gocua export`) opens a SQLite file
    read-only (mode=ro: nothing written, not even the WAL setting, and a file this user may only
    read works) and offers `read_session` only: `transaction()` raises RuntimeError."""

    def __init__(self, url: str, *, read_only: bool = False, **engine_kwargs: Any) -> None:
        self.url = url
        self.read_only = read_only
        if read_only and sqlite_file(url) is not None:
            self.engine = _sqlite_reader(url, read_only_file=True)
        else:
            self.engine = create_engine(url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._writer: asyncio.Task[Any] | None = None  # the task holding the write lock
        self._connection: AsyncConnection | None = None  # SQLite: the writers' one connection
        self._driver: Any = None  # SQLite: its sqlite3 connection
        # The update path's statements on the driver's connection (db/fast_sql.py).
        self.fast_sql = fast_sql.ENABLED and not read_only
        self._before_dispose: list[Callable[[], Awaitable[None]]] = []
        self._reader: AsyncEngine | None = None  # SQLite: reports read on a worker thread
        if read_only and sqlite_file(url) is not None:
            self._reader = self.engine

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """A read-only session for reports (/stats, exports): it sees what is committed.

        On SQLite it is a connection of its own driven by aiosqlite's worker thread, so a long
        aggregate query does not hold the event loop (the update path's statements run on it);
        in WAL mode a reader never waits for the writer. On PostgreSQL: a read-only transaction.
        """
        if self.is_sqlite and _sqlite_file(self.url) is not None:
            if self._reader is None:
                self._reader = _sqlite_reader(self.url)
            async with AsyncSession(self._reader) as session:
                yield session
            return
        async with self.sessions() as session, _committed(session, fast=False):
            if not self.is_sqlite:
                await session.execute(text("SET TRANSACTION READ ONLY"))
            yield session

    def before_dispose(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run `callback` (e.g. a last flush of pending writes) when the database is disposed."""
        self._before_dispose.append(callback)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises.

        On SQLite, opening a second one inside the first (same task) raises RuntimeError: it
        would wait for the write lock its own task holds, for ever. Pass the session down."""
        if self.read_only:
            raise RuntimeError("Database.transaction() on a database opened read-only")
        if self._write_lock is not None:
            task = asyncio.current_task()
            if task is not None and task is self._writer:
                raise RuntimeError("Database.transaction() inside a transaction of the same task "
                                   "would wait for itself on SQLite; use the open session")
            async with self._write_lock:
                self._writer = task
                try:
                    # One connection for every SQLite transaction of this process (they take
                    # turns anyway): no pool checkout, check-in and reset per update.
                    connection = self._connection
                    if connection is None or connection.closed or connection.invalidated:
                        connection = self._connection = await self.engine.connect()
                        self._driver = (await connection.get_raw_connection()).driver_connection
                    session = self.sessions(bind=connection)
                    try:
                        async with _committed(session, fast=self.fast_sql, sqlite_driver=self._driver):
                            yield session
                    finally:
                        # Not `async with session`: its exit closes in a task of its own (safe
                        # against cancellation mid-close), a round of the event loop per update.
                        # With the inline SQLite driver closing never waits, so it cannot be
                        # interrupted part way.
                        await session.close()
                finally:
                    self._writer = None
        else:
            # Not `session.begin()`: BEGIN is sent at once, on a connection found alive there
            # (db/fast_sql.py `begin`, instead of the pool's pre-ping).
            async with self.sessions() as session, _committed(session, fast=self.fast_sql):
                yield session

    @property
    def autocommits(self) -> bool:
        """Whether `autocommit()` is offered: PostgreSQL with the driver-level path."""
        return self.fast_sql and not self.is_sqlite

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[fast_sql.Direct]:
        """A pooled PostgreSQL connection outside any transaction, each statement committed by
        itself (no BEGIN and COMMIT round trips): for one idempotent statement, such as marking
        replies sent. Only where `autocommits`."""
        if not self.autocommits:
            raise RuntimeError("Database.autocommit() needs PostgreSQL and the driver-level path")
        async with self.engine.connect() as connection:
            pooled = await connection.get_raw_connection()
            yield fast_sql.Direct(connection, pooled.driver_connection, pooled.dbapi_connection)

    async def refresh_planner_statistics(self, *, after_bulk_load: bool = False) -> None:
        """Give the query planner fresh table statistics. SQLite (sampled: well under a second on
        a city's database) needs them: without them it may start a ward's report from two million
        step records instead of the ward's households. They are refreshed after migrating
        (`gocua db upgrade`, and start-up when it migrates), after loading data (`gocua seed`) and
        when the bot starts (`open_app`), not by every command: the read-only ones use what the
        file holds. PostgreSQL's autovacuum keeps its own, but not right after a bulk load
        (`after_bulk_load`)."""
        if not self.is_sqlite and not after_bulk_load:
            return
        async with self.transaction() as session:
            if self.is_sqlite:
                await session.execute(text("PRAGMA analysis_limit=1000"))
            await session.execute(text("ANALYZE"))

    async def dispose(self) -> None:
        callbacks, self._before_dispose = self._before_dispose, []
        for callback in callbacks:
            await callback()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()
        if self._reader is not None:
            reader, self._reader = self._reader, None
            if reader is not self.engine:
                await reader.dispose()
        await self.engine.dispose()
