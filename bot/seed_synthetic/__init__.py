"""`gocua seed synthetic --households N [--seed S]`: a deterministic city of synthetic data.

Why: benchmarks, /stats, /export and the leaders' charts must be tried at city scale (100,000
households, about 2,000,000 step records) on data shaped like a real campaign, and nobody's
personal data may be used for it.

What it writes, under the real area tree of Huế (province code 46, area code `hue`; the demo
data lives under `danang`, so both fit in one database):
- the city; its real wards and communes from the `vietnam-provinces` package (all 40 from about
  100,000 households, fewer for a smaller N, at least 2 from 50), with targets; below each,
  numbered residential groups ("Tổ dân phố 3", `hue.<ward>.to-3`) or villages ("Thôn 5",
  `hue.<commune>.thon-5`) of about 180 households;
- users, each with a `synthetic` identity: volunteers (one per about 20 households, a volunteer
  membership on a ward), one leader per ward, one admin on the city, a few residents who asked
  for a visit;
- households (`HUE-0000123`, addresses, a phone for 60%), about 3 residents each (Vietnamese
  names, birth years, for most adults a masked citizen ID such as `0460******34`, never a full
  number; the digital-ready flag for one member in about 60% of households);
- runs of the seven shipped procedures and their step records for about 80% of households, made
  by the real engine (`conversations/engine.py`: start, advance, reopen, cancel) answered by a
  seeded chooser (choices, branches, skips, Problems with the flow's own reasons, typed dates,
  a few retries after a block), and left completed (60%), in progress (20%), blocked (12%) or
  abandoned (8%), over the 16 weeks before `now` with activity growing week by week. Every
  run's state and step records are the engine's own, so a volunteer can resume a synthetic
  run; each household's `last_step_at` is the time of its latest record;
- a few unanswered FAQ questions and visit requests.

The modules, one job each: `plan` (how many of what: wards, villages, volunteers), `people`
(names, households, members), `runs` (the chooser driving the engine), `city` (the rows in
order, batch by batch), `bulk` (the database side: the fast inserts), `draws` (the one random
stream, the time window, the ids).

The same (households, seed, date of `now`) always gives the same rows, on SQLite and on
PostgreSQL. They are generated batch by batch (memory stays bounded) with primary keys assigned
here (no RETURNING), and go in with SQLAlchemy Core bulk inserts (on PostgreSQL with COPY), all
in one transaction: a failed seed leaves nothing behind.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from bot.seed_synthetic import bulk
from bot.seed_synthetic.bulk import SeedError
from bot.seed_synthetic.city import City
from bot.seed_synthetic.plan import CITY_CODE
from bot.seed_synthetic.runs import DOORSTEP_ORDER
from conversations.flow_model import FlowRegistry

if TYPE_CHECKING:
    from db.engine import Database

__all__ = ["SeedError", "SyntheticSummary", "seed_synthetic"]


@dataclass(frozen=True)
class SyntheticSummary:
    """What `seed_synthetic` wrote (the CLI prints it)."""

    city_code: str
    areas: int
    volunteers: int
    leaders: int
    households: int
    residents: int
    runs: int
    step_records: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 2)
        return data


async def seed_synthetic(
    db: Database, households: int, *, seed: int = 1, now: datetime, flows: FlowRegistry
) -> SyntheticSummary:
    """Write `households` synthetic households of Huế and everything around them (see the module
    docstring) in one transaction. SeedError if they cannot be written; then nothing is."""
    started = time.perf_counter()
    if isinstance(households, bool) or not isinstance(households, int) or households < 1:
        raise SeedError(f"the number of households must be a whole number of at least 1, not {households!r}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise SeedError("the anchor time must be timezone-aware (UTC)")
    loaded = {flow_id: flows.latest(flow_id) for flow_id in DOORSTEP_ORDER if flow_id in flows}
    if not loaded:
        raise SeedError("none of the procedures " + ", ".join(DOORSTEP_ORDER) + " is loaded")
    city = City(households, seed, now.astimezone(UTC).date(), loaded)
    async with db.transaction() as session:
        await bulk.check_empty(session)
        dialect = session.get_bind().dialect.name
        if dialect == "sqlite":
            # The indexes of two million step records fit in a larger page cache: about 20%
            # faster. The connection is the process's writer connection: put it back after.
            cache_size = await session.scalar(text("PRAGMA cache_size"))
            await session.execute(text(f"PRAGMA cache_size={bulk.SQLITE_CACHE_SIZE}"))
        try:
            city.start(await bulk.next_ids(session))
            await bulk.insert_all(session, city.batches(), postgres=dialect == "postgresql")
        finally:
            if dialect == "sqlite":
                await session.execute(text(f"PRAGMA cache_size={int(cache_size)}"))
        await bulk.store_flow_versions(session, loaded.values(), now)
        if dialect == "postgresql":
            await bulk.move_sequences(session, city.filled)
    counts = city.counts
    return SyntheticSummary(
        city_code=CITY_CODE, areas=counts["areas"], volunteers=counts["volunteers"],
        leaders=counts["leaders"], households=counts["households"], residents=counts["residents"],
        runs=city.runs.runs, step_records=city.runs.step_records, seconds=time.perf_counter() - started,
    )
