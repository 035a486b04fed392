"""The Alembic migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from db.engine import create_engine
from db.models import Base


async def test_migrated_schema_matches_models(database_url):
    """After `upgrade head` nothing differs between the database and the models."""
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert diff == []


async def test_sqlite_runs_with_wal_and_foreign_keys(tmp_path):
    """The embedded database uses WAL, enforces foreign keys and waits on busy locks."""
    from sqlalchemy import text

    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}")
    try:
        async with engine.connect() as conn:
            mode = (await conn.execute(text("PRAGMA journal_mode"))).scalar()
            fks = (await conn.execute(text("PRAGMA foreign_keys"))).scalar()
    finally:
        await engine.dispose()
    assert (mode, fks) == ("wal", 1)
    # Waiting for another process's lock happens in asyncio sleeps, not in SQLite's busy handler
    # (which would block the event loop): tests/test_sqlite_driver.py.
    assert engine.dialect.busy_timeout >= 5
