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
    from collections.abc import Callable

    from db.repo.household_import import ImportReport

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


def template_workbook(t: Callable[..., str]) -> Any:
    """The template: the header GoCua reads, one example household (two member rows), notes."""
    import openpyxl
    from openpyxl.styles import Font

    from conversations.household_sheet import COLUMNS

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Hộ gia đình"
    sheet.append([header for _, header, _ in COLUMNS])
    sheet.append(["Thôn Tà Lang", "Nguyễn Văn Mẫu", "Cạnh nhà văn hóa thôn", "0905000111",
                  "Nguyễn Văn Mẫu", 1968, "", ""])
    sheet.append(["", "", "", "", "Nguyễn Thị Mẫu", 1995, "", ""])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for letter, width in zip("ABCDEFGH", (18, 24, 36, 14, 24, 10, 24, 24), strict=True):
        sheet.column_dimensions[letter].width = width
        if letter in "DG":  # phone and citizen ID as text: Excel would drop their leading 0
            for row in range(2, 2001):
                sheet[f"{letter}{row}"].number_format = "@"
    sheet.freeze_panes = "A2"
    notes = book.create_sheet(t("Notes"))
    explanations = [
        t("The village or residential group (thôn / tổ dân phố) as the ward knows it."),
        t("Head of household: full name."),
        t("Address or a landmark that helps a volunteer find the house."),
        t("Phone number of the household, e.g. 0905123456 (optional)."),
        t("One member per row. A row with the first four columns empty adds a member to the "
          "household above."),
        t("Year of birth of the member, 4 digits (optional)."),
        t("Optional. 12 digits; GoCua keeps only a mask and a keyed hash, never the full number."),
        t("Optional. The volunteer who will visit, by the name they registered with."),
    ]
    notes.append([t("Column"), t("What to write")])
    for (_, header, _), text in zip(COLUMNS, explanations, strict=True):
        notes.append([header, text])
    notes.append([])
    notes.append([t("The two rows under the header are an example: replace them with your households.")])
    notes.append([t("Formulas, merged header cells and empty rows: see the report of a dry run "
                    "(gocua import households FILE --area WARD --dry-run).")])
    notes.column_dimensions["A"].width = 28
    notes.column_dimensions["B"].width = 100
    return book


async def cmd_import_template(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli_reports import _out_path
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


MAX_LISTED = 200  # rejected rows listed in the text report (all of them in --json)


def report_text(t: Callable[..., str], report: ImportReport, area: str, *, dry_run: bool, written: bool,
                refused: bool) -> str:
    """The report in the deployment's language: figures, then each rejected row."""
    lines = [t("{area}: {rows} rows read, {households} households in the file.", area=area,
               rows=report.rows, households=report.households),
             t("New households: {imported}. Updated: {updated}. Unchanged: {unchanged}. "
               "Given to volunteers: {assigned}. Rejected rows: {rejected}.",
               imported=report.imported, updated=report.updated, unchanged=report.unchanged,
               assigned=report.assigned, rejected=len(report.rejected))]
    for rejection in report.rejected[:MAX_LISTED]:
        reason = t(rejection.reason.msgid, **rejection.reason.values)
        if rejection.column:
            lines.append(t("Row {row}, {column}: {reason}", row=rejection.row, column=rejection.column,
                           reason=reason))
        else:
            lines.append(t("Row {row}: {reason}", row=rejection.row, reason=reason))
    if len(report.rejected) > MAX_LISTED:
        lines.append(t("… and {count} more rejected rows (--json lists them all).",
                       count=len(report.rejected) - MAX_LISTED))
    lines.extend(t(w.msgid, **w.values) for w in report.warnings)
    if refused:
        lines.append(t("Nothing was imported: correct the rows above and import again, or import "
                       "the good rows with --skip-bad."))
    elif dry_run:
        lines.append(t("Dry run: nothing was written. Run it again without --dry-run to import."))
    elif written:
        lines.append(t("Imported."))
    return "\n".join(lines)


IMPORT_COMMANDS = {
    "import template": cmd_import_template,
    "import households": cmd_import_households,
}
