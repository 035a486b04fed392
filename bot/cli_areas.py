"""`gocua areas import|add-villages|list`: the official units and villages of a deployment."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Settings, UsageError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from db.models import Area

    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]


def add_area_commands(sub: Subcommands) -> None:
    areas = sub.add_parser("areas", help="official provinces, wards and their villages")
    areas_sub = areas.add_subparsers(dest="areas_command", required=True)
    load = areas_sub.add_parser("import", help="a province and its wards from the official list (2025)")
    load.add_argument("--province", required=True, type=int, help="official province code, e.g. 48 (Đà Nẵng)")
    load.add_argument("--wards", default=None,
                      help="only these official ward codes, comma-separated, e.g. 20195,20314")
    load.add_argument("--json", action="store_true")

    villages = areas_sub.add_parser("add-villages", help="villages / tổ dân phố under a ward, from a file")
    villages.add_argument("--ward", required=True, help="the ward's code or name, e.g. danang.hai-van")
    villages.add_argument("file", help="CSV or XLSX: one column of names, optionally a second of targets")
    villages.add_argument("--json", action="store_true")

    listing = areas_sub.add_parser("list", help="the area tree with household counts")
    listing.add_argument("--under", default=None, help="only this area and what is below it")
    listing.add_argument("--json", action="store_true")


def read_file(path: Path) -> bytes:
    """The file's bytes, a usage error when there is none, a SheetError when it is too large."""
    from conversations.sheet_file import MAX_BYTES, check_size

    if not path.is_file():
        raise UsageError(f"no file {str(path)!r}")
    check_size(path.stat().st_size)
    with path.open("rb") as fh:
        return fh.read(MAX_BYTES + 1)


def _ward_codes(raw: str | None) -> list[int] | None:
    if raw is None:
        return None
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        raise UsageError(f"--wards must be official ward codes separated by commas, not {raw!r}")
    return [int(p) for p in parts]


async def area_named_or_fail(session: AsyncSession, text: str, option: str) -> Area:
    """The area `text` names (code, name or old name), or a usage error saying so."""
    from db.repo.area_import import find_area_named

    area = await find_area_named(session, text)
    if area is None:
        raise UsageError(f"{option}: no area {text!r} (see `gocua areas list`; "
                         "load official units with `gocua areas import --province CODE`)")
    return area


async def cmd_areas_import(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import open_app
    from db.repo.area_import import AreaImportError, import_province

    wards = _ward_codes(args.wards)
    app = await open_app(settings, planner_statistics=False)
    try:
        async with app.db.transaction() as session:
            try:
                counts = await import_province(session, args.province, wards)
            except AreaImportError as exc:
                raise UsageError(str(exc)) from None
    finally:
        await app.close()
    if args.json:
        print(json.dumps({"created": counts.created, "existing": counts.existing}, ensure_ascii=False))
    else:
        print(f"{len(counts.created)} areas created, {counts.existing} already there")
        for code in counts.created[:20]:
            print(f"  + {code}")
        if len(counts.created) > 20:
            print(f"  … and {len(counts.created) - 20} more (gocua areas list)")
    return 0


async def cmd_areas_add_villages(settings: Settings, args: argparse.Namespace) -> int:
    import asyncio

    from bot.app import open_app
    from conversations.sheet_file import SheetError, read_table, village_rows
    from db.repo.area_import import add_villages
    from handlers.i18n import translator

    t = translator(settings.locale)
    path = Path(args.file)
    try:
        table = await asyncio.to_thread(lambda: read_table(read_file(path), path.name))
    except SheetError as exc:
        raise UsageError(t(exc.message.msgid, **exc.message.values)) from None
    villages, errors = village_rows(table)
    if errors:
        raise UsageError("; ".join(t(e.msgid, **e.values) for e in errors[:10]))
    if not villages:
        raise UsageError(f"{args.file}: no village names in the first column")
    app = await open_app(settings, planner_statistics=False)
    try:
        async with app.db.transaction() as session:
            ward = await area_named_or_fail(session, args.ward, "--ward")
            counts = await add_villages(session, ward, villages)
            ward_code = ward.code
    finally:
        await app.close()
    if args.json:
        print(json.dumps({"ward": ward_code, "created": counts.created, "existing": counts.existing,
                          "targets_changed": counts.updated}, ensure_ascii=False))
    else:
        print(f"{ward_code}: {len(counts.created)} villages added, {counts.existing} already there"
              + (f", {len(counts.updated)} targets changed" if counts.updated else ""))
        for code in counts.created:
            print(f"  + {code}")
    return 0


async def cmd_areas_list(settings: Settings, args: argparse.Namespace) -> int:
    from bot.read_only import open_read_only
    from db.repo.area_import import area_tree

    db = await open_read_only(settings, None)
    try:
        async with db.read_session() as session:
            under = await area_named_or_fail(session, args.under, "--under") if args.under else None
            rows = await area_tree(session, under)
    finally:
        await db.dispose()
    if args.json:
        print(json.dumps([{"code": r.code, "name": r.name, "level": r.level, "official_code": r.official_code,
                           "households": r.households} for r in rows], ensure_ascii=False))
        return 0
    if not rows:
        print("no areas yet: gocua areas import --province CODE")
    for r in rows:
        official = f" [{r.official_code}]" if r.official_code else ""
        print(f"{'  ' * r.depth}{r.name}{official}  {r.code}  ({r.level}, {r.households} households)")
    return 0


AREA_COMMANDS = {
    "areas import": cmd_areas_import,
    "areas add-villages": cmd_areas_add_villages,
    "areas list": cmd_areas_list,
}
