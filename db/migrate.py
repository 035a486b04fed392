"""Run Alembic migrations from code (`gocua db upgrade` and start-up)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.ext.asyncio import AsyncSession

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_REVISION = re.compile(r"^revision(?:: str)? = ['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision(?:: [^=]+)? = (?:['\"]([^'\"]+)['\"]|None)", re.MULTILINE)


def known_revisions() -> tuple[str, frozenset[str]]:
    """The head revision and every revision the migration files know, read from the files' text
    (no import of Alembic or of the migrations: the read-only commands check the schema with it
    at start-up). tests/test_migrations.py checks it against Alembic's own reading."""
    revisions: dict[str, str | None] = {}
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or down is None:
            raise RuntimeError(f"{path.name}: no `revision = ...` and `down_revision = ...` lines")
        revisions[revision.group(1)] = down.group(1)
    heads = set(revisions) - set(revisions.values())
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return heads.pop(), frozenset(revisions)


async def current_revision(session: AsyncSession) -> str | None:
    """The revision the database was migrated to; None if it was never migrated."""
    from sqlalchemy import inspect, text

    connection = await session.connection()
    if not await connection.run_sync(lambda c: inspect(c).has_table("alembic_version")):
        return None
    return await session.scalar(text("SELECT version_num FROM alembic_version"))


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade_sync(url: str, revision: str = "head") -> None:
    """Migrate synchronously; safe to call from a thread that runs an event loop."""
    from alembic import command

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        command.upgrade(alembic_config(url), revision)
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(command.upgrade, alembic_config(url), revision).result()


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` to `revision` (run in a worker thread: Alembic is sync)."""
    await asyncio.to_thread(upgrade_sync, url, revision)
