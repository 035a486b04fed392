"""`gocua import template` and `gocua import households`: the household lists village heads keep
in Excel, checked row by row and imported whole (or, with --skip-bad, the good rows)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Settings, UsageError

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]


def add_import_commands(sub: Subcommands) -> None:
    load = sub.add_parser("import", help="household lists from a spreadsheet")
    load_sub = load.add_subparsers(dest="import_command", required=True)
    template = load_sub.add_parser("template", help="write the spreadsheet template (XLSX)")
    template.add_argument("--out", required=True, help="file to write, e.g. ho-gia-dinh.xlsx")

    households = load_sub.add_parser("households", help="import a household list (XLSX or CSV) into a ward")
    households.add_argument("file", help="the spreadsheet (made from `gocua import template`)")
    households.add_argument("--area", required=True, help="the ward's code or name, e.g. danang.hai-van")
    households.add_argument("--dry-run", action="store_true", help="check and report; write nothing")
    households.add_argument("--skip-bad", action="store_true",
                            help="import the good rows even if some are rejected")
    households.add_argument("--assign", choices=["by-village", "round-robin"], default=None,
                            help="give unassigned households to the area's volunteers, about 20 each")
    households.add_argument("--create-villages", action="store_true",
                            help="create villages the file names that the ward does not have yet")
    households.add_argument("--json", action="store_true")


async def cmd_import_template(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli_reports import _out_path
    from handlers.household_report import template_workbook
    from handlers.i18n import translator

    out = _out_path(args.out)
    book = template_workbook(translator(settings.locale))
    await asyncio.to_thread(book.save, out)
    print(f"wrote the household template to {out}")
    return 0


class _NothingWritten(Exception):
    """Raised inside the transaction to roll it back (dry run, or rejected rows)."""


async def cmd_import_households(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import open_app, utcnow
    from bot.cli_areas import area_named_or_fail, read_file
    from conversations.household_sheet import parse_households
    from conversations.sheet_file import SheetError, read_table
    from db.repo.household_import import import_households
    from handlers.household_report import report_text
    from handlers.i18n import translator
    from handlers.validation import hash_citizen_id, local_date

    t = translator(settings.locale)
    path = Path(args.file)
    now = utcnow()

    def parse() -> Any:
        table = read_table(read_file(path), path.name)
        return parse_households(table, local_date(now),
                                lambda digits: hash_citizen_id(digits, settings.secret_key))

    try:
        sheet = await asyncio.to_thread(parse)
    except SheetError as exc:
        raise UsageError(t(exc.message.msgid, **exc.message.values)) from None
    app = await open_app(settings, planner_statistics=False)
    written = False
    try:
        try:
            async with app.db.transaction() as session:
                ward = await area_named_or_fail(session, args.area, "--area")
                ward_name = ward.name
                report = await import_households(session, ward, sheet, now=now,
                                                 create_villages=args.create_villages, assign=args.assign)
                if args.dry_run or (report.rejected and not args.skip_bad):
                    raise _NothingWritten
            written = True
        except _NothingWritten:
            pass
    finally:
        await app.close()
    refused = bool(report.rejected) and not args.skip_bad
    if refused and not args.dry_run:  # figures of what was written: nothing
        report.imported = report.updated = report.assigned = 0
        report.unchanged = 0
    if args.json:
        print(json.dumps(report.to_json(t), ensure_ascii=False))
        for warning in report.warnings:
            print(t(warning.msgid, **warning.values), file=sys.stderr)
    else:
        print(report_text(t, report, ward_name, dry_run=args.dry_run, written=written, refused=refused))
    return 1 if refused else 0


IMPORT_COMMANDS = {
    "import template": cmd_import_template,
    "import households": cmd_import_households,
}
