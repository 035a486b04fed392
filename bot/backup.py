"""`gocua backup --out FILE`: a consistent copy of the SQLite database while the bot runs.

SQLite's online backup API copies the database page by page; in WAL mode the bot keeps writing
meanwhile and the copy is the database as of one moment. The copy is written next to the target
and renamed into place, so a half-written backup never carries the target's name. PostgreSQL
has its own tool for this (pg_dump); README.md says how to restore either.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.config import UsageError

PAGES_PER_STEP = 1024  # copy in steps, so a long backup lets writers in between


def sqlite_path(database_url: str) -> Path:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise UsageError("gocua backup copies the embedded SQLite database; for PostgreSQL use "
                         "pg_dump (see README.md, 'Backups')")
    if not url.database or url.database == ":memory:":
        raise UsageError("the SQLite database is in memory: there is no file to back up")
    return Path(url.database)


def backup_sqlite(source: Path, out: Path) -> int:
    """Copy `source` to `out` (replaced atomically); returns the number of pages copied."""
    if not source.exists():
        raise UsageError(f"there is no database at {source}")
    if out.resolve() == source.resolve():
        raise UsageError("--out must not be the database itself")
    if not out.parent.is_dir():
        raise UsageError(f"--out: the folder {str(out.parent)!r} does not exist")
    partial = out.with_name(f".{out.name}.partial")
    partial.unlink(missing_ok=True)
    pages = 0
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(partial)
        try:
            def progress(_status: int, remaining: int, total: int) -> None:
                nonlocal pages
                pages = total - remaining

            src.backup(dst, pages=PAGES_PER_STEP, progress=progress)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            if dst.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                raise UsageError("the copy failed its integrity check; nothing was written")
        finally:
            dst.close()
        os.replace(partial, out)
    finally:
        src.close()
        partial.unlink(missing_ok=True)
    return pages
