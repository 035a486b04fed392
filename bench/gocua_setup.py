"""Prepare a fresh GoCua database for the throughput benchmark (run by bench/throughput.py).

Migrates the database named by GOCUA_DATABASE_URL, loads the demo data and creates
`--volunteers` single-use volunteer invites, printed as one JSON object on stdout:
{"invites": ["CODE", ...], "runs": [[run id, ...] per volunteer]}.
The benchmark's volunteer chats claim them with `/start CODE`
during the warm-up, so the measured load sees real role grants.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import timedelta


async def prepare(
    volunteers: int, area_code: str, runs_each: int, flow_id: str
) -> tuple[list[str], list[list[int]]]:
    from bot.app import open_app
    from bot.config import load_settings

    app = await open_app(load_settings())
    try:
        return await prepare_app(app, volunteers, area_code, runs_each, flow_id)
    finally:
        await app.close()


async def prepare_app(
    app, volunteers: int, area_code: str, runs_each: int, flow_id: str
) -> tuple[list[str], list[list[int]]]:
    """`prepare` on an open App (tests/scale_harness.py uses it too)."""
    from bot.app import utcnow
    from bot.seed_demo import seed_demo
    from db.repo.areas import area_by_code
    from db.repo.invites import create_invite

    await seed_demo(app)
    codes: list[str] = []
    async with app.db.transaction() as session:
        area = await area_by_code(session, area_code)
        if area is None:
            raise SystemExit(f"gocua_setup: no area {area_code!r} after the demo seed")
        for _ in range(volunteers):
            invite = await create_invite(session, role="volunteer", area=area, now=utcnow(),
                                         validity=timedelta(days=1))
            codes.append(invite.code)
        runs = await _open_runs(app, session, area, volunteers, runs_each, flow_id)
    return codes, runs


async def _open_runs(app, session, area, volunteers: int, runs_each: int, flow_id: str) -> list[list[int]]:
    """For the flow-step scenario: one household per volunteer chat, with `runs_each` runs of
    the flow at its first step. The volunteers join the area by invite, so they may work on them."""
    from bot.app import utcnow
    from conversations import engine
    from db.models import FlowRun, Household
    from handlers.validation import local_date

    if runs_each <= 0:
        return [[] for _ in range(volunteers)]
    flow = app.core.services.flows.latest(flow_id)
    now = utcnow()
    state = engine.start(flow, local_date(now)).new_state
    result: list[list[int]] = []
    for index in range(volunteers):
        household = Household(code=f"BENCH-{index:05d}", area_id=area.id, head_name="Hộ thử tải",
                              address="bench", created_at=now)
        session.add(household)
        await session.flush()
        runs = [FlowRun(flow_id=flow.id, flow_version=flow.version, household_id=household.id,
                        area_id=area.id, volunteer_id=1, status=state.status.value, current_step=state.step,
                        state=state.to_json(), started_at=now, updated_at=now) for _ in range(runs_each)]
        session.add_all(runs)
        await session.flush()
        result.append([run.id for run in runs])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description="prepare a GoCua database for the benchmark")
    parser.add_argument("--volunteers", type=int, default=0)
    parser.add_argument("--area", default="danang.hai-van")
    parser.add_argument("--runs-per-volunteer", type=int, default=0)
    parser.add_argument("--flow", default="vneid")
    args = parser.parse_args()
    from bot.logging import configure_logging

    configure_logging("WARNING")
    codes, runs = asyncio.run(prepare(max(0, min(args.volunteers, 10_000)), args.area,
                                      max(0, min(args.runs_per_volunteer, 1000)), args.flow))
    print(json.dumps({"invites": codes, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
