"""Prepare a fresh GoCua database for the throughput benchmark (run by bench/throughput.py).

Migrates the database named by GOCUA_DATABASE_URL, loads the demo data and creates
`--volunteers` single-use volunteer invites, printed as one JSON object on stdout:
{"invites": ["CODE", ...]}. The benchmark's volunteer chats claim them with `/start CODE`
during the warm-up, so the measured load sees real role grants.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import timedelta


async def prepare(volunteers: int, area_code: str) -> list[str]:
    from bot.app import open_app, utcnow
    from bot.config import load_settings
    from bot.seed_demo import seed_demo
    from db.repo.areas import area_by_code
    from db.repo.invites import create_invite

    app = await open_app(load_settings())
    try:
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
        return codes
    finally:
        await app.close()


def main() -> int:
    parser = argparse.ArgumentParser(description="prepare a GoCua database for the benchmark")
    parser.add_argument("--volunteers", type=int, default=0)
    parser.add_argument("--area", default="danang.hai-van")
    args = parser.parse_args()
    from bot.logging import configure_logging

    configure_logging("WARNING")
    codes = asyncio.run(prepare(max(0, min(args.volunteers, 10_000)), args.area))
    print(json.dumps({"invites": codes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
