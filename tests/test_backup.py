"""`gocua backup`: a consistent copy of the SQLite database taken while it is being written,
that the bot can run on after a restore."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from tests.test_cli import gocua


def test_backup_while_writing_then_restore(tmp_path: Path, demo_cli: Path) -> None:
    database = tmp_path / "cli.db"
    stop = threading.Event()
    written = []

    def writer() -> None:  # another process's writes, as the running bot's would be
        connection = sqlite3.connect(database, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        while not stop.is_set():
            connection.execute("INSERT INTO audit_log (at, action, details) VALUES "
                               "('2026-11-29 00:00:00', 'test.write', '{}')")
            connection.commit()
            written.append(1)
        connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        out = tmp_path / "backup.db"
        result = gocua(tmp_path, "backup", "--out", str(out))
    finally:
        stop.set()
        thread.join()
    assert result.returncode == 0, result.stderr
    assert written, "the writer never wrote: the test proves nothing"
    copy = sqlite3.connect(out)
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    copied = copy.execute("SELECT count(*) FROM audit_log WHERE action = 'test.write'").fetchone()[0]
    copy.close()
    assert copied <= len(written)
    assert not (tmp_path / ".backup.db.partial").exists() and not Path(f"{out}-wal").exists()

    # Restore: the bot runs on the copy.
    restored = gocua(tmp_path, "stats", "--json",
                     env={"GOCUA_DATABASE_URL": f"sqlite+aiosqlite:///{out}"})
    assert restored.returncode == 0, restored.stderr
    original = gocua(tmp_path, "stats", "--json")
    assert json.loads(restored.stdout)["households"] == json.loads(original.stdout)["households"] > 0


def test_backup_refuses_what_it_cannot_copy(tmp_path: Path, demo_cli: Path) -> None:
    postgres = gocua(tmp_path, "backup", "--out", str(tmp_path / "x.db"),
                     env={"GOCUA_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/test"})
    assert postgres.returncode == 2 and "pg_dump" in postgres.stderr
    nowhere = gocua(tmp_path, "backup", "--out", str(tmp_path / "missing" / "x.db"))
    assert nowhere.returncode == 2 and "does not exist" in nowhere.stderr
    itself = gocua(tmp_path, "backup", "--out", str(tmp_path / "cli.db"))
    assert itself.returncode == 2 and "database itself" in itself.stderr
