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


async def test_0003_fills_reached_and_run_areas_from_existing_records(tmp_path):
    """A database from before /stats keeps its figures: households already reached get their
    last step time and runs get their household's area."""
    import sqlite3

    from db.migrate import upgrade_sync

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    upgrade_sync(url, "0002")
    old = sqlite3.connect(tmp_path / "old.db")
    old.executescript("""
        INSERT INTO areas (id, code, name, level) VALUES (1, 'x', 'X', 'city'), (2, 'x.y', 'Y', 'ward');
        INSERT INTO users (id, display_name, created_at) VALUES (1, 'An', '2026-11-01 00:00:00');
        INSERT INTO households (id, code, area_id, head_name, address, created_at) VALUES
            (1, 'H-1', 2, 'A', 'a', '2026-11-01 00:00:00'), (2, 'H-2', 2, 'B', 'b', '2026-11-01 00:00:00');
        INSERT INTO flow_runs (id, flow_id, flow_version, household_id, volunteer_id, status, state, version,
                               started_at, updated_at) VALUES
            (1, 'vneid', 1, 1, 1, 'active', '{}', 1, '2026-11-02 00:00:00', '2026-11-03 00:00:00');
        INSERT INTO step_records (run_id, step_id, attempt, outcome, user_id, recorded_at) VALUES
            (1, 'a', 1, 'done', 1, '2026-11-02 08:00:00'), (1, 'b', 1, 'done', 1, '2026-11-03 09:30:00');
    """)
    old.commit()
    old.close()
    upgrade_sync(url)
    new = sqlite3.connect(tmp_path / "old.db")
    assert new.execute("SELECT code, last_step_at FROM households ORDER BY id").fetchall() == [
        ("H-1", "2026-11-03 09:30:00"), ("H-2", None)]
    assert new.execute("SELECT area_id FROM flow_runs").fetchall() == [(2,)]
    assert new.execute("SELECT flow_id, area_id FROM step_records").fetchall() == [("vneid", 2)] * 2
    assert new.execute("PRAGMA foreign_key_check").fetchall() == []


async def test_0007_keeps_households_current_and_downgrades(tmp_path):
    """Households from before archiving stay current (archived_at empty); downgrading to 0006
    drops the column and keeps the rows."""
    import asyncio
    import sqlite3

    from alembic import command

    from db.migrate import alembic_config, upgrade_sync

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    upgrade_sync(url, "0006")
    old = sqlite3.connect(tmp_path / "old.db")
    old.executescript("""
        INSERT INTO areas (id, code, name, level) VALUES (1, 'x', 'X', 'city');
        INSERT INTO households (id, code, area_id, head_name, address, created_at) VALUES
            (1, 'H-1', 1, 'A', 'a', '2026-11-01 00:00:00');
    """)
    old.commit()
    old.close()
    upgrade_sync(url)
    db = sqlite3.connect(tmp_path / "old.db")
    assert db.execute("SELECT code, archived_at FROM households").fetchall() == [("H-1", None)]
    db.close()
    await asyncio.to_thread(command.downgrade, alembic_config(url), "0006")  # Alembic runs its own loop
    db = sqlite3.connect(tmp_path / "old.db")
    columns = [row[1] for row in db.execute("PRAGMA table_info(households)")]
    assert "archived_at" not in columns
    assert db.execute("SELECT code FROM households").fetchall() == [("H-1",)]


def test_known_revisions_read_from_the_files_agree_with_alembic():
    """The read-only commands check the schema against db.migrate.known_revisions(), read from
    the migration files' text; it names Alembic's head and every revision Alembic knows."""
    from alembic.script import ScriptDirectory

    from db.migrate import alembic_config, known_revisions

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    head, known = known_revisions()
    assert head == script.get_current_head()
    assert known == {revision.revision for revision in script.walk_revisions()}


async def test_the_database_refuses_a_run_status_or_step_outcome_outside_the_vocabulary(database_url):
    """CHECK constraints (0010): a misspelt status or outcome cannot be stored, a right one can."""
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    from conversations.state import RunStatus, StepOutcome

    engine = create_engine(database_url)
    seed = [
        "INSERT INTO areas (id, code, name, level) VALUES (1, 'x', 'X', 'city')",
        "INSERT INTO users (id, display_name, locale, created_at) VALUES (1, 'An', 'vi', '2026-11-01')",
        "INSERT INTO households (id, code, area_id, head_name, address, created_at) "
        "VALUES (1, 'H-1', 1, 'A', 'a', '2026-11-01')",
    ]
    run = ("INSERT INTO flow_runs (id, flow_id, flow_version, household_id, area_id, volunteer_id, status, "
           "state, version, started_at, updated_at) VALUES (:id, 'vneid', 1, 1, 1, 1, :status, '{}', 1, "
           "'2026-11-02', '2026-11-02')")
    record = ("INSERT INTO step_records (run_id, flow_id, area_id, step_id, attempt, outcome, user_id, "
              "recorded_at) VALUES (1, 'vneid', 1, :step, 1, :outcome, 1, '2026-11-02')")
    try:
        async with engine.begin() as conn:
            for statement in seed:
                await conn.execute(text(statement))
            for number, status in enumerate(RunStatus, 1):
                await conn.execute(text(run), {"id": number, "status": status.value})
            for outcome in StepOutcome:
                await conn.execute(text(record), {"step": outcome.value, "outcome": outcome.value})
        for statement, values in [(run, {"id": 9, "status": "done"}), (run, {"id": 9, "status": "Active"}),
                                  (record, {"step": "x", "outcome": "completed"}),
                                  (record, {"step": "y", "outcome": "abandoned"})]:
            with pytest.raises(IntegrityError, match=r"(?i)check"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement), values)
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM flow_runs"))).scalar() == len(RunStatus)
    finally:
        await engine.dispose()


async def test_0010_keeps_runs_drops_legacy_abandoned_records_and_downgrades(tmp_path):
    """Upgrading a database with data keeps every run and real record, deletes the old synthetic
    seed's 'abandoned' step records (the real /cancel writes none), and then refuses a bad
    status; downgrading to 0009 takes the constraints away and keeps the rows."""
    import asyncio
    import sqlite3

    import pytest
    from alembic import command

    from db.migrate import alembic_config, upgrade_sync

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    upgrade_sync(url, "0009_invite_attempts")
    old = sqlite3.connect(tmp_path / "old.db")
    old.executescript("""
        INSERT INTO areas (id, code, name, level) VALUES (1, 'x', 'X', 'city');
        INSERT INTO users (id, display_name, created_at) VALUES (1, 'An', '2026-11-01 00:00:00');
        INSERT INTO households (id, code, area_id, head_name, address, created_at) VALUES
            (1, 'H-1', 1, 'A', 'a', '2026-11-01 00:00:00');
        INSERT INTO flow_runs (id, flow_id, flow_version, household_id, area_id, volunteer_id, status, state,
                               version, started_at, updated_at, finished_at) VALUES
            (1, 'vneid', 1, 1, 1, 1, 'completed', '{}', 3, '2026-11-02 00:00:00', '2026-11-03 00:00:00',
             '2026-11-03 00:00:00'),
            (2, 'vneid', 1, 1, 1, 1, 'abandoned', '{}', 2, '2026-11-02 00:00:00', '2026-11-03 00:00:00',
             '2026-11-03 00:00:00');
        INSERT INTO step_records (run_id, flow_id, area_id, step_id, attempt, outcome, reason, user_id,
                                  recorded_at) VALUES
            (1, 'vneid', 1, 'a', 1, 'done', NULL, 1, '2026-11-02 08:00:00'),
            (1, 'vneid', 1, 'b', 1, 'blocked', 'No card', 1, '2026-11-02 09:00:00'),
            (1, 'vneid', 1, 'b', 2, 'skipped', NULL, 1, '2026-11-03 09:00:00'),
            (2, 'vneid', 1, 'a', 1, 'abandoned', NULL, 1, '2026-11-03 09:30:00');
    """)
    old.commit()
    old.close()
    upgrade_sync(url)
    db = sqlite3.connect(tmp_path / "old.db")
    assert db.execute("SELECT id, status FROM flow_runs ORDER BY id").fetchall() == [
        (1, "completed"), (2, "abandoned")]
    records = db.execute("SELECT run_id, step_id, attempt, outcome FROM step_records ORDER BY id").fetchall()
    assert records == [(1, "a", 1, "done"), (1, "b", 1, "blocked"), (1, "b", 2, "skipped")]
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    names = [row[0] for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'step_records'")]
    assert "ix_step_records_blocked" in names  # the tables were copied with their indexes
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        db.execute("UPDATE flow_runs SET status = 'finished' WHERE id = 1")
    db.close()
    await asyncio.to_thread(command.downgrade, alembic_config(url), "0009_invite_attempts")
    db = sqlite3.connect(tmp_path / "old.db")
    db.execute("UPDATE flow_runs SET status = 'finished' WHERE id = 1")
    assert db.execute("SELECT count(*) FROM step_records").fetchone() == (3,)
    db.close()


async def test_0010_stops_on_a_status_it_does_not_know(tmp_path):
    """A value outside the vocabulary (not the known legacy one) stops the upgrade, naming it."""
    import sqlite3

    import pytest

    from db.migrate import upgrade_sync

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    upgrade_sync(url, "0009_invite_attempts")
    old = sqlite3.connect(tmp_path / "old.db")
    old.executescript("""
        INSERT INTO areas (id, code, name, level) VALUES (1, 'x', 'X', 'city');
        INSERT INTO users (id, display_name, created_at) VALUES (1, 'An', '2026-11-01 00:00:00');
        INSERT INTO households (id, code, area_id, head_name, address, created_at) VALUES
            (1, 'H-1', 1, 'A', 'a', '2026-11-01 00:00:00');
        INSERT INTO flow_runs (id, flow_id, flow_version, household_id, area_id, volunteer_id, status, state,
                               version, started_at, updated_at) VALUES
            (1, 'vneid', 1, 1, 1, 1, 'paused', '{}', 1, '2026-11-02 00:00:00', '2026-11-03 00:00:00');
    """)
    old.commit()
    old.close()
    with pytest.raises(RuntimeError, match="'paused' \\(1 rows\\)"):
        upgrade_sync(url)
