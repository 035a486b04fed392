"""How long a ward's household list takes to import (issue 17 §2): target < 5 s for 1,350
households on SQLite, < 2 minutes for 100,000 on PostgreSQL.

    .venv/bin/python bench/household_import.py                      # 1,350 households, SQLite
    .venv/bin/python bench/household_import.py --households 100000 \\
        --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/gocua_bench

Writes an XLSX of N households (two or three members each, a third with a citizen ID) over
the ward's villages with openpyxl, then times, in the process, what `gocua import households
FILE --area danang.hai-van --assign by-village` does: read the file (python-calamine), check
every cell, match and write in one transaction, assign; then the same file again (a re-import:
everything unchanged). A fresh SQLite file in a temporary folder each run (PostgreSQL: the
given database, migrated, its tables emptied first). Exit status 0; the last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.app import open_app  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.seed_demo import seed_demo  # noqa: E402
from conversations.household_sheet import parse_households  # noqa: E402
from conversations.sheet_file import read_table  # noqa: E402
from db.repo.area_import import find_area_named  # noqa: E402
from db.repo.household_import import import_households  # noqa: E402
from handlers.validation import hash_citizen_id, local_date  # noqa: E402

VILLAGES = ["Thôn Tà Lang", "Thôn Giàn Bí"]
GIVEN = ["An", "Bình", "Cường", "Dũng", "Hoa", "Lan", "Mai", "Nam", "Tư", "Xuân"]


def write_file(path: Path, households: int) -> int:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(["Thôn/Tổ", "Chủ hộ", "Địa chỉ / mốc", "Điện thoại", "Thành viên", "Năm sinh",
                  "Số định danh (tuỳ chọn)", "Tình nguyện viên (tuỳ chọn)"])
    rows = 0
    for i in range(households):
        head = f"Hồ Văn {GIVEN[i % 10]} {GIVEN[i // 10 % 10]} {GIVEN[i // 100 % 10]}"
        year = 1950 + i % 40
        cccd = f"0480{year % 100:02d}{i:06d}" if i % 3 == 0 else ""
        sheet.append([VILLAGES[i % 2], head, f"Nhà số {i + 1}, xóm {i // 50 + 1}", f"09{i:08d}", head, year,
                      cccd, ""])
        sheet.append(["", "", "", "", f"Hồ Thị {GIVEN[i % 10]}", 1985, "", ""])
        rows += 2
        if i % 2:
            sheet.append(["", "", "", "", f"Hồ Văn Bé {GIVEN[i % 10]}", 2015, "", ""])
            rows += 1
    book.save(path)
    return rows


async def run(url: str, file: Path) -> dict[str, float | int]:
    settings = Settings(database_url=url, secret_key="bench-key")
    app = await open_app(settings, planner_statistics=False)
    try:
        await seed_demo(app)
        figures: dict[str, float | int] = {}
        for label in ("first", "again"):
            started = time.perf_counter()
            now = datetime.now(UTC)
            data = await asyncio.to_thread(file.read_bytes)
            table = read_table(data, file.name)
            sheet = parse_households(table, local_date(now),
                                     lambda d: hash_citizen_id(d, settings.secret_key))
            parsed = time.perf_counter()
            async with app.db.transaction() as session:
                ward = await find_area_named(session, "danang.hai-van")
                assert ward is not None
                report = await import_households(session, ward, sheet, now=now, assign="by-village")
            done = time.perf_counter()
            figures[f"{label}_read_s"] = round(parsed - started, 3)
            figures[f"{label}_total_s"] = round(done - started, 3)
            figures[f"{label}_imported"] = report.imported
            figures[f"{label}_unchanged"] = report.unchanged
            figures[f"{label}_rejected"] = len(report.rejected)
        return figures
    finally:
        await app.close()


async def _empty_postgres(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from db.migrate import upgrade
    from db.models import Base

    await upgrade(url)
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=1350)
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL (its tables are emptied)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "households.xlsx"
        started = time.perf_counter()
        rows = write_file(file, args.households)
        print(f"wrote {args.households} households ({rows} rows, {file.stat().st_size // 1024} KB) "
              f"in {time.perf_counter() - started:.1f} s")
        if args.postgres:
            asyncio.run(_empty_postgres(args.postgres))
            url = args.postgres
        else:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        figures = asyncio.run(run(url, file))
    target = 5.0 if not args.postgres else 120.0
    print(f"import of {args.households} households: {figures['first_total_s']:.2f} s "
          f"(reading and checking {figures['first_read_s']:.2f} s); "
          f"re-import {figures['again_total_s']:.2f} s; "
          f"target < {target:.0f} s" + ("" if figures["first_total_s"] < target else " — ABOVE TARGET"))
    print(json.dumps({"households": args.households, "rows": rows,
                      "database": "postgresql" if args.postgres else "sqlite", **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
