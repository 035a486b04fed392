"""Time and peak memory of a city's export, built the way a leader's tap builds it.

    .venv/bin/python bench/exports.py                       # 5,000 households (under a minute)
    .venv/bin/python bench/exports.py --households 20000    # bigger; seeding takes a while once
    .venv/bin/python bench/exports.py --limit-mb 10         # a smaller limit: the CSV is zipped

The database is seeded once with the synthetic city (bot/seed_synthetic, deterministic) and
kept in data/bench-exports-<N>.db, so later runs measure at once. Each format (CSV, XLSX) of the
whole city, all time, is made by the export renderer itself (handlers/exports.py
`render_export`) for a Telegram chat: rows streamed from the database to a temporary file, the
50 MB limit checked, a CSV over it compressed. Printed per format: rows, file size, seconds, and
the process's peak resident memory above what it used before the export (sampled every 10 ms
from /proc/self/statm: what the file would cost if it were held in memory shows here). The last
line is one JSON object. Exit status 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from dataclasses import replace
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
from db.models import Area, Household, StepRecord  # noqa: E402
from handlers.deferred import RenderContext  # noqa: E402
from handlers.exports import render_export  # noqa: E402
from handlers.file_limits import MB, TELEGRAM, FileDelivery, discard  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


class PeakRSS:
    """The highest resident set size seen while the block runs, sampled on a thread."""

    def __init__(self, every: float = 0.01) -> None:
        self.every, self.peak, self._stop = every, 0, threading.Event()

    @staticmethod
    def now() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * PAGE

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRSS:
        self.before = self.now()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


async def run(households: int, limit_mb: int) -> dict[str, Any]:
    data = ROOT / "data"
    data.mkdir(exist_ok=True)
    url = f"sqlite+aiosqlite:///{data / f'bench-exports-{households}.db'}"
    await upgrade(url)
    app = await open_app(Settings(database_url=url), migrate=False)
    figures: dict[str, Any] = {"households": households, "limit_mb": limit_mb}
    try:
        async with app.db.read_session() as session:
            city = await session.scalar(select(Area).where(Area.code == "hue"))
        if city is None:
            started = time.perf_counter()
            summary = await seed_synthetic(app.db, households, seed=1, now=datetime.now(UTC),
                                           flows=app.core.services.flows)
            figures["seed_s"] = round(time.perf_counter() - started, 1)
            print(f"seeded {summary.households:,} households, {summary.step_records:,} step records "
                  f"in {figures['seed_s']} s", flush=True)
            await app.db.refresh_planner_statistics(after_bulk_load=True)
        async with app.db.read_session() as session:
            city = await session.scalar(select(Area).where(Area.code == "hue"))
            figures["step_records"] = await session.scalar(select(func.count()).select_from(StepRecord))
            figures["households"] = await session.scalar(select(func.count()).select_from(Household))
        assert city is not None
        rctx = RenderContext(app.core.services, app.db.transaction,
                             delivery=FileDelivery(limits=replace(TELEGRAM, document=limit_mb * MB)))
        for fmt in ("csv", "xlsx"):
            spec = {"kind": "export", "area_id": city.id, "period": "all", "fmt": fmt, "locale": "vi",
                    "user_id": None, "channel": "telegram", "now": datetime.now(UTC).isoformat()}
            started = time.perf_counter()
            with PeakRSS() as rss:
                reply = await render_export(rctx, spec)
            seconds = time.perf_counter() - started
            attachment = reply.attachment
            size = attachment.size if attachment is not None else 0
            figures[fmt] = {
                "seconds": round(seconds, 1),
                "file_mb": round(size / MB, 1),
                "sent_as": attachment.filename if attachment is not None else "message (too big)",
                "peak_rss_above_start_mb": round((rss.peak - rss.before) / MB, 1),
            }
            print(f"{fmt}: {figures['step_records']:,} rows in {seconds:.1f} s, "
                  f"{size / MB:.1f} MB ({figures[fmt]['sent_as']}), peak memory "
                  f"+{figures[fmt]['peak_rss_above_start_mb']} MB", flush=True)
            if attachment is not None:
                discard(attachment.path)
    finally:
        await app.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=5000)
    parser.add_argument("--limit-mb", type=int, default=50, help="the document limit (Telegram: 50)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.households, args.limit_mb))))


if __name__ == "__main__":
    main()
