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

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from db import sqlite_driver

SQLITE_BUSY_TIMEOUT_MS = 15_000


def _sqlite_file(url: str) -> Path | None:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


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
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    return create_async_engine(url, **kwargs)


class Database:
    """The engine, a session factory and one way to run a transaction."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = create_engine(url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=True)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self._writer: asyncio.Task[Any] | None = None  # the task holding the write lock
        self._connection: AsyncConnection | None = None  # SQLite: the writers' one connection
        self._before_dispose: list[Callable[[], Awaitable[None]]] = []

    def before_dispose(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run `callback` (e.g. a last flush of pending writes) when the database is disposed."""
        self._before_dispose.append(callback)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back if it raises.

        On SQLite, opening a second one inside the first (same task) raises RuntimeError: it
        would wait for the write lock its own task holds, for ever. Pass the session down."""
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
                    session = self.sessions(bind=connection)
                    try:
                        yield session
                        await session.commit()
                    except BaseException:
                        await session.rollback()
                        raise
                    finally:
                        # Not `async with session`: its exit closes in a task of its own (safe
                        # against cancellation mid-close), a round of the event loop per update.
                        # With the inline SQLite driver closing never waits, so it cannot be
                        # interrupted part way.
                        await session.close()
                finally:
                    self._writer = None
        else:
            async with self.sessions() as session, session.begin():
                yield session

    async def dispose(self) -> None:
        callbacks, self._before_dispose = self._before_dispose, []
        for callback in callbacks:
            await callback()
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()
        await self.engine.dispose()
