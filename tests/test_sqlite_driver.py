"""db/sqlite_driver.py: SQLite on the event loop's thread, waiting for other processes' locks
without blocking the loop; and the write lock of db.engine.Database."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from db import sqlite_driver
from db.engine import Database, create_engine


@pytest.fixture
async def db(tmp_path: Path):
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
    async with database.transaction() as session:
        await session.execute(text("CREATE TABLE t (x INTEGER)"))
    try:
        yield database
    finally:
        await database.dispose()


async def _ticks(stop: asyncio.Event) -> int:
    n = 0
    while not stop.is_set():
        await asyncio.sleep(0.005)
        n += 1
    return n


async def test_any_sqlite_url_runs_inline(tmp_path: Path):
    """sqlite+aiosqlite and plain sqlite URLs both get the inline dialect, file and memory."""
    for url in (f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}",
                "sqlite+aiosqlite://"):
        engine = create_engine(url)
        try:
            assert engine.dialect.driver == sqlite_driver.DRIVER
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 41 + 1"))).scalar() == 42
        finally:
            await engine.dispose()


async def test_execute_stream_and_sessions_work(db: Database):
    """AsyncConnection.execute/stream and AsyncSession.stream_scalars, as with aiosqlite."""
    async with db.transaction() as session:
        await session.execute(text("INSERT INTO t VALUES (1), (2), (3)"))
    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 3
        streamed = await conn.stream(text("SELECT x FROM t ORDER BY x"))
        assert [row.x async for row in streamed] == [1, 2, 3]
    async with AsyncSession(db.engine) as session:
        scalars = await session.stream_scalars(text("SELECT x FROM t ORDER BY x"))
        assert [x async for x in scalars] == [1, 2, 3]


async def test_waiting_for_another_writer_does_not_block_the_loop(db: Database, tmp_path: Path):
    """Another process holds the write lock: our transaction waits in asyncio sleeps (the loop
    keeps running) and goes on as soon as the lock is free."""
    other = sqlite3.connect(tmp_path / "d.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (7)")

    async def write() -> None:
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO t VALUES (8)"))

    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticks(stop))
    writer = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    assert not writer.done()
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(writer, 5)
    stop.set()
    assert await ticker >= 20  # ~60 possible in 0.3 s; a blocked loop would give 0 or 1
    async with db.transaction() as session:
        assert (await session.execute(text("SELECT x FROM t ORDER BY x"))).scalars().all() == [7, 8]


async def test_a_lock_held_too_long_is_a_database_error(db: Database, tmp_path: Path):
    """Past the busy timeout BEGIN fails as SQLite's busy handler would ("database is locked")."""
    db.engine.dialect.busy_timeout = 0.2
    other = sqlite3.connect(tmp_path / "d.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="locked"):
            async with db.transaction() as session:
                await session.execute(text("INSERT INTO t VALUES (1)"))
    finally:
        other.execute("ROLLBACK")
        other.close()
    async with db.transaction() as session:  # the connection is usable again
        await session.execute(text("INSERT INTO t VALUES (2)"))


async def test_a_transaction_inside_a_transaction_of_the_same_task_is_refused(db: Database):
    """On SQLite it would wait for the lock its own task holds, for ever: it raises instead."""
    async with db.transaction():
        with pytest.raises(RuntimeError, match="same task"):
            async with db.transaction():
                pass
    async with db.transaction() as session:  # and the lock was released
        await session.execute(text("SELECT 1"))


async def test_other_tasks_still_queue_for_the_write_lock(db: Database):
    """Two tasks: the second transaction starts after the first one ends."""
    order: list[str] = []

    async def one(name: str, pause: float) -> None:
        async with db.transaction():
            order.append(f"{name} in")
            await asyncio.sleep(pause)
            order.append(f"{name} out")

    await asyncio.gather(one("a", 0.05), one("b", 0))
    assert order == ["a in", "a out", "b in", "b out"]


async def test_a_broken_writer_connection_is_replaced(db: Database):
    """The writers share one connection; once it is invalidated the next transaction opens
    another."""
    async with db.transaction() as session:
        first = await session.connection()
        await session.execute(text("INSERT INTO t VALUES (1)"))
    await db._connection.invalidate()
    async with db.transaction() as session:
        await session.execute(text("INSERT INTO t VALUES (2)"))
        assert await session.connection() is not first
        assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 2
