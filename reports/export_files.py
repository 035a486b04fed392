"""The `/stats` data exports: CSV and XLSX writers that stream any number of rows.

Both are pure and thread-safe (the bot calls them via `asyncio.to_thread`): every text arrives
already translated, rows may be a generator of hundreds of thousands of rows and are never held
in memory all at once, and timestamps are shown in Vietnam time.

Free text typed by users (reasons, names) must never become a formula: in the CSV a text starting
with `=`, `+`, `-`, `@`, tab or carriage return gets a leading apostrophe (OWASP "CSV injection");
in the XLSX every text is stored as a string cell, which Excel never evaluates.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import chain, islice
from typing import BinaryIO

from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet.dimensions import DimensionHolder

from conversations.local_time import VIETNAM

CSV_DATETIME_FORMAT = "%Y-%m-%d %H:%M"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP CSV injection

XLSX_DATETIME_FORMAT = "dd/mm/yyyy hh:mm"
XLSX_DATE_FORMAT = "dd/mm/yyyy"
XLSX_TEXT_MAX = 32_767  # characters in one cell
XLSX_ERROR_CODES = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})
XLSX_EXACT_INT_MAX = 10**15  # Excel keeps 15 significant digits: longer integers are written as text
SHEET_NAME_MAX = 31  # UTF-16 code units, as Excel counts them
SHEET_NAME_RESERVED = "history"  # Excel refuses a sheet of its own called "History"
SHEET_NAME_REPLACE = str.maketrans({"/": "-", "\\": "-", ":": "-", "[": "(", "]": ")", "*": "", "?": ""})
WIDTH_SAMPLE_ROWS = 200  # rows looked at (and held) to size the columns before streaming the rest
MIN_COLUMN_WIDTH, MAX_COLUMN_WIDTH = 8, 60  # in characters
SUMMARY_VALUE_WIDTH = 18

# Characters an XML 1.0 file cannot hold (the C0 controls but tab and newlines; lone surrogates).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_BOLD = Font(bold=True)


@dataclass(frozen=True)
class SummarySheet:
    """One area's key figures, shown as a two-column sheet (label, value)."""

    title: str  # area name; becomes a sheet name
    rows: Sequence[tuple[str, object]]  # (label, value) pairs, in order; value: int, float, str or None


def to_vietnam_time(value: datetime) -> datetime:
    """Vietnam wall-clock time, still tz-aware. A naive datetime is taken as UTC, as in the database."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(VIETNAM)


# --- CSV ---------------------------------------------------------------------------------------------


def write_csv(out: BinaryIO, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Write `header` then every row as CSV to `out`; return the number of rows (header excluded).

    UTF-8 with a byte-order mark (so Excel reads Vietnamese correctly), comma separator, RFC 4180
    quoting and CRLF line ends. `out` is left open, positioned after the data.
    """
    text = io.TextIOWrapper(out, encoding="utf-8-sig", errors="replace", newline="")
    try:
        writer = csv.writer(text)  # the "excel" dialect: RFC 4180
        writer.writerow([csv_value(value) for value in header])
        count = 0
        for row in rows:
            writer.writerow([csv_value(value) for value in row])
            count += 1
        text.flush()
    finally:
        text.detach()  # hand `out` back without closing it
    return count


def csv_value(value: object) -> str:
    """One CSV field: Vietnam time for datetimes, "" for None, text defused against formulas."""
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise_formula(value.replace("\x00", ""))
    if isinstance(value, datetime):
        return to_vietnam_time(value).strftime(CSV_DATETIME_FORMAT)
    return str(value)


def neutralise_formula(text: str) -> str:
    """Prefix an apostrophe to a text a spreadsheet would run as a formula (OWASP CSV injection)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


# --- XLSX --------------------------------------------------------------------------------------------


def write_xlsx(
    out: BinaryIO | str | os.PathLike[str],
    *,
    records_title: str,
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    summaries: Sequence[SummarySheet],
    misses_title: str,
    misses_header: Sequence[str],
    misses: Iterable[Sequence[object]],
) -> int:
    """Write the workbook to `out` (a binary file or a path); return the number of records written.

    Sheets, in order: one per summary (label, value), the records (bold frozen header, filter), then
    the questions the FAQ could not answer. Sheet names are made valid for Excel: at most 31
    characters, none of `[]:*?/\\`, unique (" (2)", " (3)"... on clashes; the records and misses
    sheets keep their names, a clashing area gets the suffix).
    """
    names = _SheetNames()
    records_name = names.claim(records_title)
    misses_name = names.claim(misses_title)
    summary_names = [names.claim(summary.title) for summary in summaries]

    workbook = Workbook(write_only=True)
    try:
        for summary, name in zip(summaries, summary_names, strict=True):
            _write_summary(workbook.create_sheet(name), summary)
        count = _write_table(workbook.create_sheet(records_name), header, rows)
        _write_table(workbook.create_sheet(misses_name), misses_header, misses)
        workbook.save(out)
    except BaseException:
        _discard(workbook)
        raise
    return count


def _write_summary(ws: WriteOnlyWorksheet, summary: SummarySheet) -> None:
    labels = [_xml_text(str(label)) for label, _ in summary.rows]
    longest = max((_display_width(label) for label in labels), default=0)
    _columns_of(ws)["A"].width = min(max(longest + 3, 30), MAX_COLUMN_WIDTH)
    _columns_of(ws)["B"].width = SUMMARY_VALUE_WIDTH
    for label, (_, value) in zip(labels, summary.rows, strict=True):
        ws.append([_text_cell(ws, label, bold=True), xlsx_value(ws, value)])


def _write_table(ws: WriteOnlyWorksheet, header: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Bold frozen header, columns sized from the first rows, then every row streamed; returns the count."""
    remaining = iter(rows)
    sample = list(islice(remaining, WIDTH_SAMPLE_ROWS))
    columns = max([len(header), *(len(row) for row in sample)])
    for index, width in enumerate(_column_widths(header, sample, columns), start=1):
        _columns_of(ws)[get_column_letter(index)].width = width
    ws.freeze_panes = "A2"
    ws.append([_text_cell(ws, _xml_text(str(title)), bold=True) for title in header])
    count = 0
    for row in chain(sample, remaining):
        ws.append([xlsx_value(ws, value) for value in row])
        count += 1
    if columns:
        # Set on a write-only sheet by Worksheet._setup; types-openpyxl declares it on Worksheet only.
        ws.auto_filter.ref = f"A1:{get_column_letter(columns)}{count + 1}"  # type: ignore[attr-defined]
    return count


def _columns_of(ws: WriteOnlyWorksheet) -> DimensionHolder:
    # Set by Worksheet._setup, as auto_filter; types-openpyxl declares it on Worksheet only.
    return ws.column_dimensions  # type: ignore[attr-defined]


def xlsx_value(ws: WriteOnlyWorksheet, value: object) -> object:
    """A value openpyxl writes faithfully: texts stay texts, datetimes in Vietnam time, no tz."""
    if value is None or isinstance(value, bool | Decimal):
        return value
    if isinstance(value, str):
        text = _xml_text(value)
        # openpyxl would store "=..." as a formula and "#N/A" as an error: force a string cell.
        if text.startswith("=") or text in XLSX_ERROR_CODES:
            return _text_cell(ws, text)
        return text
    if isinstance(value, int):
        return value if abs(value) < XLSX_EXACT_INT_MAX else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        cell = WriteOnlyCell(ws, value=to_vietnam_time(value).replace(tzinfo=None))
        cell.number_format = XLSX_DATETIME_FORMAT
        return cell
    if isinstance(value, date):
        # openpyxl writes dates; types-openpyxl's WriteOnlyCell leaves them out of `value`.
        cell = WriteOnlyCell(ws, value=value)  # type: ignore[arg-type]
        cell.number_format = XLSX_DATE_FORMAT
        return cell
    if isinstance(value, timedelta) or (isinstance(value, time) and value.tzinfo is None):
        return value
    return xlsx_value(ws, str(value))


def _text_cell(ws: WriteOnlyWorksheet, text: str, *, bold: bool = False) -> Cell:
    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"  # a string, even when it looks like a formula or an error code
    if bold:
        cell.font = _BOLD
    return cell


def _xml_text(text: str) -> str:
    """Drop what XML cannot hold (control characters, lone surrogates); cut at Excel's cell limit."""
    if _XML_ILLEGAL.search(text):
        text = _XML_ILLEGAL.sub("", text)
    return text[:XLSX_TEXT_MAX]


def _column_widths(header: Sequence[str], sample: list[Sequence[object]], columns: int) -> list[float]:
    widths = [_display_width(str(title)) + 2.0 for title in header]
    widths += [0.0] * (columns - len(widths))
    for row in sample:
        for index, value in enumerate(row):
            widths[index] = max(widths[index], _value_width(value))
    return [min(max(width + 1, MIN_COLUMN_WIDTH), MAX_COLUMN_WIDTH) for width in widths]


def _value_width(value: object) -> float:
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 16  # dd/mm/yyyy hh:mm
    if isinstance(value, date):
        return 10
    return _display_width(str(value))


def _display_width(text: str) -> int:
    """Characters on the longest line, counting wide (CJK, emoji) characters twice."""
    return max(
        (
            sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in line)
            for line in text.splitlines()
        ),
        default=0,
    )


class _SheetNames:
    """Valid, unique Excel sheet names (Excel compares them case-insensitively)."""

    def __init__(self) -> None:
        self.taken: set[str] = {SHEET_NAME_RESERVED}

    def claim(self, title: str) -> str:
        base = unicodedata.normalize("NFC", title).translate(SHEET_NAME_REPLACE)
        base = " ".join("".join(ch if ch.isprintable() else " " for ch in base).split())
        base = _XML_ILLEGAL.sub("", base).strip("' ") or "Sheet"
        name = _cut_utf16(base, SHEET_NAME_MAX)
        number = 2
        while name.casefold() in self.taken:
            suffix = f" ({number})"
            name = _cut_utf16(base, SHEET_NAME_MAX - len(suffix)) + suffix
            number += 1
        self.taken.add(name.casefold())
        return name


def _cut_utf16(text: str, limit: int) -> str:
    """At most `limit` UTF-16 code units (Excel's measure), no trailing space or apostrophe."""
    kept: list[str] = []
    used = 0
    for ch in text:
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            break
        kept.append(ch)
    return "".join(kept).rstrip("' ") or "Sheet"


def _discard(workbook: Workbook) -> None:
    """After a failure: close the half-written sheets and delete their temporary files (best effort)."""
    for ws in workbook.worksheets:
        writer = getattr(ws, "_writer", None)
        if writer is None:
            continue
        with contextlib.suppress(Exception):
            rows = getattr(ws, "_rows", None)  # openpyxl's row-writing generator
            if rows is not None:
                rows.close()
            writer.close()
            writer.cleanup()
