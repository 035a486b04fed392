"""How fast leaders get their figures at city scale: /stats queries and the chat round trip.

    .venv/bin/python bench/stats.py                       # 100,000 households on SQLite
    .venv/bin/python bench/stats.py --households 5000     # a smaller smoke run
    .venv/bin/python bench/stats.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/gocua_bench

The database is seeded once with `gocua seed synthetic` (deterministic) and kept, in
data/bench-stats-<N>.db for SQLite, so later runs measure at once; for PostgreSQL give a
database of its own (it is created if missing and never dropped).

Measured inside the process, median of --repeat runs after one warm-up:
- `ward`: area_stats for the ward with the most households (what `/stats` computes), all time;
- `ward_30d`: the same for the last 30 days;
- `city`: area_stats for the whole city, all time (children = its wards);
- `drop_off_ward`: per-step drop-off of VNeID in that ward;
- `volunteers_ward`: the per-volunteer table of that ward;
- `chat_ward` / `chat_city`: `/stats` sent by the ward's / city's leader through the core
  (one transaction, dedupe, text rendering, buttons), what a leader waits for in the chat.
Targets: ward < 200 ms, city < 1 s. Exit status 0 either way; the last line is one JSON object.

    .venv/bin/python bench/stats.py --startup             # start-up of the command, not the query

`--startup` times whole processes instead: `gocua stats --area WARD --json` (the largest ward)
and `gocua --help`, alternately, median of --repeat runs of each after one warm-up of each, and
prints the first minus the second: what the command spends starting (imports it needs beyond
the CLI's own, opening the database, checking its schema) and on its query. Target: < 300 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bot.app import open_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.seed_synthetic import seed_synthetic  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.models import Area, Household, Identity, Membership, StepRecord  # noqa: E402
from db.repo.stats import area_stats, step_drop_off, volunteer_table  # noqa: E402
from handlers.stats_text import since_of  # noqa: E402
from handlers.types import Incoming  # noqa: E402
from handlers.validation import VIETNAM  # noqa: E402

TARGETS_MS = {"ward": 200, "city": 1000}
STARTUP_TARGET_MS = 300


async def ensure_postgres_database(url: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    admin = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432, user=parsed.username,
                                  database="postgres")
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", parsed.database)
        if not exists:
            await admin.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await admin.close()


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> float:
    await fn()  # warm-up: caches, query plans
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


async def seed_once(app: Any, households: int, figures: dict[str, Any]) -> None:
    """Seed the synthetic city unless the database has it already."""
    async with app.db.read_session() as session:
        seeded = await session.scalar(select(func.count()).select_from(Household)
                                      .join(Area, Area.id == Household.area_id)
                                      .where(Area.code.like("hue.%")))
    if not seeded:
        started = time.perf_counter()
        summary = await seed_synthetic(app.db, households, seed=1, now=datetime.now(UTC),
                                       flows=app.core.services.flows)
        figures["seed_s"] = round(time.perf_counter() - started, 1)
        print(f"seeded {summary.households:,} households, {summary.step_records:,} step records "
              f"in {figures['seed_s']} s", flush=True)
    await app.db.refresh_planner_statistics(after_bulk_load=True)


async def largest_ward(session: Any) -> Area:
    """The ward (or commune) with the most households."""
    ward_id, _most = (await session.execute(
        select(Household.area_id, func.count()).group_by(Household.area_id)
        .order_by(func.count().desc()).limit(1)
    )).one()
    village = await session.get(Area, ward_id)
    return await session.get(Area, village.parent_id) if village.level == "village" else village


async def run(url: str, households: int, repeat: int) -> dict[str, Any]:
    await upgrade(url)
    app = await open_app(Settings(database_url=url), migrate=False)
    db, figures = app.db, {}
    try:
        await seed_once(app, households, figures)
        async with db.read_session() as session:
            city = await session.scalar(select(Area).where(Area.code == "hue"))
            ward = await largest_ward(session)
            figures["households"] = await session.scalar(select(func.count()).select_from(Household))
            figures["step_records"] = await session.scalar(select(func.count()).select_from(StepRecord))
            leaders = dict((await session.execute(
                select(Membership.area_id, Identity.external_id)
                .join(Identity, Identity.user_id == Membership.user_id)
                .where(Membership.role.in_(("leader", "admin")), Membership.area_id.in_((ward.id, city.id)))
            )).all())
        now = datetime.now(UTC)
        since_30d = since_of("30d", now)

        async def with_session(fn: Callable[[Any], Awaitable[Any]]) -> Any:
            async with db.read_session() as session:
                return await fn(session)

        def stats_of(area: Area, since: datetime | None) -> Awaitable[Any]:
            return with_session(lambda s: area_stats(s, area, now=now, since=since, tz=VIETNAM))

        figures["ward_name"] = ward.name
        ward_stats = await stats_of(ward, None)
        figures["ward_households"] = ward_stats.counts.households
        cases: dict[str, Callable[[], Awaitable[Any]]] = {
            "ward": lambda: stats_of(ward, None),
            "ward_30d": lambda: stats_of(ward, since_30d),
            "city": lambda: stats_of(city, None),
            "city_30d": lambda: stats_of(city, since_30d),
            "drop_off_ward": lambda: with_session(lambda s: step_drop_off(s, ward, "vneid", None)),
            "volunteers_ward": lambda: with_session(lambda s: volunteer_table(s, ward, None, limit=60)),
        }
        counter = iter(range(10**9))
        for key, area in (("chat_ward", ward), ("chat_city", city)):
            sender = leaders.get(area.id)
            if sender is None:
                continue

            async def ask(sender: str = sender) -> None:
                incoming = Incoming(channel="synthetic", chat_id=sender, sender_id=sender,
                                    update_id=f"bench-{time.time_ns()}-{next(counter)}", text="/stats")
                replies = await app.core.handle(incoming)
                assert replies and "📊" in replies[0].text, replies
                await app.core.mark_sent(incoming)

            cases[key] = ask
        for name, fn in cases.items():
            figures[f"{name}_ms"] = round(await timed(fn, repeat), 1)
            print(f"{name:>16}: {figures[f'{name}_ms']:8.1f} ms", flush=True)
    finally:
        await app.close()
    return figures


async def prepare_startup(url: str, households: int) -> dict[str, Any]:
    """Seed if needed; the largest ward's code."""
    await upgrade(url)
    app = await open_app(Settings(database_url=url), migrate=False)
    figures: dict[str, Any] = {}
    try:
        await seed_once(app, households, figures)
        async with app.db.read_session() as session:
            ward = await largest_ward(session)
            figures["ward"] = ward.code
            figures["households"] = await session.scalar(select(func.count()).select_from(Household))
    finally:
        await app.close()
    return figures


def startup(url: str, households: int, repeat: int) -> dict[str, Any]:
    """Median wall time of whole `gocua` processes: stats of the largest ward, and --help."""
    figures = asyncio.run(prepare_startup(url, households))
    script = Path(sys.executable).with_name("gocua")
    gocua = [str(script)] if script.exists() else [sys.executable, "-m", "bot"]
    env = {**os.environ, "GOCUA_DATABASE_URL": url}
    commands = {"help": [*gocua, "--help"], "stats": [*gocua, "stats", "--area", figures["ward"], "--json"]}
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for round_ in range(repeat + 1):  # round 0 warms the page cache and the .pyc files
        for name, command in commands.items():
            start = time.perf_counter()
            result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
            elapsed = (time.perf_counter() - start) * 1000
            if result.returncode != 0:
                raise SystemExit(f"{' '.join(command)} failed: {result.stderr.strip()}")
            if round_:
                samples[name].append(elapsed)
    for name, values in samples.items():
        figures[f"{name}_ms"] = round(statistics.median(values), 1)
        label = "gocua " + " ".join(commands[name][len(gocua):])
        print(f"{label:>40}: {figures[f'{name}_ms']:7.1f} ms", flush=True)
    figures["startup_ms"] = round(figures["stats_ms"] - figures["help_ms"], 1)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--postgres", default=None, help="measure on this PostgreSQL URL instead of SQLite")
    parser.add_argument("--startup", action="store_true",
                        help="time `gocua stats --area WARD --json` minus `gocua --help` (processes)")
    args = parser.parse_args()
    if args.postgres:
        asyncio.run(ensure_postgres_database(args.postgres))
        url, kind = args.postgres, "postgresql"
    else:
        path = ROOT / "data" / f"bench-stats-{args.households}.db"
        path.parent.mkdir(exist_ok=True)
        url, kind = f"sqlite+aiosqlite:///{path}", "sqlite"
    if args.startup:
        figures = startup(url, args.households, args.repeat)
        value = figures["startup_ms"]
        print(f"{kind}: start-up of stats {value:.0f} ms {'<' if value < STARTUP_TARGET_MS else '>='} "
              f"{STARTUP_TARGET_MS} ms")
        print(json.dumps({"database": kind, **figures}, ensure_ascii=False))
        return 0
    figures = asyncio.run(run(url, args.households, args.repeat))
    verdicts = []
    for key, limit in TARGETS_MS.items():
        value = figures.get(f"{key}_ms")
        if value is not None:
            verdicts.append(f"{key} {value:.0f} ms {'<' if value < limit else '>='} {limit} ms")
    print(f"{kind}: " + "; ".join(verdicts))
    print(json.dumps({"database": kind, **figures}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
