"""The texts of a household import: the spreadsheet template and the report, for the command
line (bot/cli_import.py) and the chat (handlers/household_upload.py) alike."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from db.repo.household_import import ImportReport


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


def template_bytes(t: Callable[..., str]) -> bytes:
    out = io.BytesIO()
    template_workbook(t).save(out)
    return out.getvalue()


MAX_LISTED = 200  # rejected rows listed in the command line's report (all of them in --json)


def report_text(t: Callable[..., str], report: ImportReport, area: str, *, dry_run: bool, written: bool,
                refused: bool, listed: int = MAX_LISTED, more_hint: bool = True) -> str:
    """The report in the deployment's language: figures, then each rejected row."""
    lines = [t("{area}: {rows} rows read, {households} households in the file.", area=area,
               rows=report.rows, households=report.households),
             t("New households: {imported}. Updated: {updated}. Unchanged: {unchanged}. "
               "Given to volunteers: {assigned}. Rejected rows: {rejected}.",
               imported=report.imported, updated=report.updated, unchanged=report.unchanged,
               assigned=report.assigned, rejected=len(report.rejected))]
    for rejection in report.rejected[:listed]:
        reason = t(rejection.reason.msgid, **rejection.reason.values)
        if rejection.column:
            lines.append(t("Row {row}, {column}: {reason}", row=rejection.row, column=rejection.column,
                           reason=reason))
        else:
            lines.append(t("Row {row}: {reason}", row=rejection.row, reason=reason))
    if len(report.rejected) > listed:
        more = len(report.rejected) - listed
        lines.append(t("… and {count} more rejected rows (--json lists them all).", count=more) if more_hint
                     else t("… and {count} more rejected rows.", count=more))
    lines.extend(t(w.msgid, **w.values) for w in report.warnings)
    if refused:
        lines.append(t("Nothing was imported: correct the rows above and import again, or import "
                       "the good rows with --skip-bad."))
    elif dry_run:
        lines.append(t("Dry run: nothing was written. Run it again without --dry-run to import."))
    elif written:
        lines.append(t("Imported."))
    return "\n".join(lines)
