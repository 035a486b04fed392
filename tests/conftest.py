"""Fixtures: every database test runs on a real SQLite file and, when GOCUA_TEST_POSTGRES_URL
is set, on the real PostgreSQL too."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import App, open_app
from bot.config import Settings, normalise_database_url
from db.migrate import upgrade_sync
from handlers import file_limits

POSTGRES_URL = os.environ.get("GOCUA_TEST_POSTGRES_URL")
TABLES_IN_ORDER = None  # filled lazily from the metadata


def pytest_configure(config: pytest.Config) -> None:
    """The trained FAQ index (conversations/faq_cache.py) is kept in a folder of the test runs', not
    in the user's ~/.cache: shared by this run's processes, the `gocua` ones it starts included
    (they inherit the variable), so that each does not train it anew."""
    shared = Path(tempfile.gettempdir()) / f"gocua-test-cache-{os.getuid()}"
    os.environ.setdefault("GOCUA_CACHE_DIR", str(shared))


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "gocua.db"
    upgrade_sync(f"sqlite+aiosqlite:///{path}")
    return path


def _worker_database(url: str) -> str:
    """The database of this pytest-xdist worker (`make test` runs the suite in several, .ci/suite):
    the URL's own for a run without workers, `<name>_gw0`, `<name>_gw1`, … beside it otherwise,
    created on first use, so that no worker truncates another's tables."""
    from sqlalchemy import make_url

    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    base = make_url(url)
    name = f"{base.database}_{worker}"

    async def create() -> None:
        import asyncpg

        conn = await asyncpg.connect(base.set(drivername="postgresql").render_as_string(False))
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:  # the caller may run a loop
        pool.submit(asyncio.run, create()).result()
    return base.set(database=name).render_as_string(False)


@pytest.fixture(scope="session")
def postgres_migrated() -> str:
    if not POSTGRES_URL:
        pytest.skip("GOCUA_TEST_POSTGRES_URL is not set")
    url = _worker_database(normalise_database_url(POSTGRES_URL))
    upgrade_sync(url)
    return url


async def _truncate_postgres(url: str) -> None:
    from sqlalchemy import text

    from db.engine import create_engine
    from db.models import Base

    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        target = tmp_path / "gocua.db"
        shutil.copy(template, target)
        return f"sqlite+aiosqlite:///{target}"
    url = request.getfixturevalue("postgres_migrated")
    await _truncate_postgres(url)
    return url


@pytest.fixture
async def postgres_url(postgres_migrated: str) -> str:
    """A migrated, empty PostgreSQL database, for what only makes sense there (worker groups)."""
    await _truncate_postgres(postgres_migrated)
    return postgres_migrated


@pytest.fixture(autouse=True)
def _export_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Temporary exports go to the test's own folder (handlers/file_limits.py)."""
    exports = tmp_path / "gocua-exports"
    exports.mkdir()
    monkeypatch.setattr(file_limits, "EXPORT_DIR", exports)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, webhook_secret="test-secret-123")


@pytest.fixture
async def app(settings: Settings, clock: FakeClock) -> AsyncIterator[App]:
    application = await open_app(settings, migrate=False, clock=clock)
    try:
        yield application
    finally:
        await application.close()


@pytest.fixture
async def demo(app: App) -> App:
    """The app with the demo data (bot/seed_demo.py): Da Nang, its wards, volunteers, households."""
    from bot.seed_demo import seed_demo

    await seed_demo(app)
    return app


@pytest.fixture
async def people(demo: App) -> tuple:
    """The demo's volunteer an, leader lan and admin, each having chosen English."""
    from tests.chat import Talker

    an, lan, admin = (Talker(demo, name, lang="en") for name in ("an", "lan", "admin"))
    for talker in (an, lan, admin):
        await talker.say("/lang en")
    return an, lan, admin


def pytest_itemcollected(item: pytest.Item) -> None:
    """Every test that uses PostgreSQL is marked `postgres` (a `database_url` test's PostgreSQL
    case already is, by its parameter): `pytest -m "not postgres"` leaves them out."""
    if item.get_closest_marker("postgres") is None and \
            {"postgres_url", "postgres_migrated"} & set(getattr(item, "fixturenames", ())):
        item.add_marker(pytest.mark.postgres)


@pytest.fixture(scope="session")
def demo_cli_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`gocua seed demo` run once per test run, in its own process as a user would (a second of
    migrations and seeding): the file that `demo_cli` copies."""
    from tests.test_cli import gocua

    path = tmp_path_factory.mktemp("demo-cli")
    result = gocua(path, "seed", "demo")
    assert result.returncode == 0, result.stderr
    return path / "cli.db"


@pytest.fixture
def demo_cli(tmp_path: Path, demo_cli_database: Path) -> Path:
    """A folder whose `cli.db` (what `tests.test_cli.gocua` opens) holds a fresh copy of the demo
    data (Hải Vân: Tà Lang, Giàn Bí, volunteer Nguyễn Văn An), for a test to change as it likes."""
    shutil.copyfile(demo_cli_database, tmp_path / "cli.db")
    return tmp_path
