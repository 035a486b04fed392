"""A spreadsheet's first sheet as rows of text: XLSX / XLS / ODS read with python-calamine, CSV
in UTF-8 (with or without BOM) or the Windows-1258 that Excel on Vietnamese Windows writes.

Pure: bytes in, a `Table` out, or a `SheetError` with a message to translate. Cells that hold
a formula are marked (the importer rejects them: a value is what was meant to be typed), merged
cells below the header are filled from their top-left cell (a village merged over its rows).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from conversations.texts import N_
from conversations.validators import ErrorMessage

MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 300_000  # data rows: a city of 100,000 households, one row per member (issue 17 §2)
MAX_COLUMNS = 60

NOT_A_SHEET = N_("The file is not a spreadsheet GoCua can read: send an .xlsx file (or .csv).")
TOO_BIG = N_("The file is too large ({size} MB; at most {max} MB).")
EMPTY_FILE = N_("The file is empty: there is no row to read.")
TOO_MANY_ROWS = N_("The file has more than {max} rows; split it into several files.")
PROTECTED = N_("The file is protected with a password: save it without the password.")


class SheetError(Exception):
    """The whole file is unusable; `message` says why (to translate)."""

    def __init__(self, message: ErrorMessage) -> None:
        super().__init__(message.msgid)
        self.message = message


@dataclass
class Table:
    """Rows of text (stripped; "" for an empty cell), 0-based from cell A1; `formulas` holds
    the (row, column) of cells that hold a formula; `merged` the merged ranges, 0-based
    ((top, left), (bottom, right))."""

    rows: list[list[str]]
    formulas: set[tuple[int, int]] = field(default_factory=set)
    merged: list[tuple[tuple[int, int], tuple[int, int]]] = field(default_factory=list)


def cell_text(value: Any) -> str:
    """A cell as text: whole floats without ".0" (years, phones typed as numbers), dates as
    dd/mm/yyyy."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else str(value)
    if isinstance(value, datetime | date):
        return value.strftime("%d/%m/%Y")
    return str(value).strip()


def check_size(size: int) -> None:
    """A SheetError for a file of `size` bytes too large to read."""
    if size > MAX_BYTES:
        raise SheetError(ErrorMessage(TOO_BIG, {"size": f"{size / 1024 / 1024:.0f}",
                                                "max": MAX_BYTES // 1024 // 1024}))


def read_table(data: bytes, filename: str = "") -> Table:
    """The first sheet of `data` (a spreadsheet file's bytes)."""
    check_size(len(data))
    if not data.strip():
        raise SheetError(ErrorMessage(EMPTY_FILE))
    if data[:4] == b"PK\x03\x04" or data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        table = _read_workbook(data)
    elif filename.lower().endswith((".xlsx", ".xlsm", ".xls", ".ods")) or b"\x00" in data[:4096]:
        raise SheetError(ErrorMessage(NOT_A_SHEET))
    else:
        table = _read_csv(data)
    while table.rows and not any(table.rows[-1]):
        table.rows.pop()
    if not table.rows:
        raise SheetError(ErrorMessage(EMPTY_FILE))
    if len(table.rows) > MAX_ROWS + 20:
        raise SheetError(ErrorMessage(TOO_MANY_ROWS, {"max": f"{MAX_ROWS:,}".replace(",", ".")}))
    return table


def _read_workbook(data: bytes) -> Table:
    import python_calamine

    try:
        book = python_calamine.CalamineWorkbook.from_filelike(io.BytesIO(data))
        sheet = book.get_sheet_by_index(0)
        raw = sheet.to_python(skip_empty_area=False)
        merged = list(sheet.merged_cell_ranges or [])
    except python_calamine.PasswordError:
        raise SheetError(ErrorMessage(PROTECTED)) from None
    except Exception:  # CalamineError, ZipError, XmlError… and whatever a broken file raises
        raise SheetError(ErrorMessage(NOT_A_SHEET)) from None
    if len(raw) > MAX_ROWS + 20:
        raise SheetError(ErrorMessage(TOO_MANY_ROWS, {"max": f"{MAX_ROWS:,}".replace(",", ".")}))
    rows = [[cell_text(v) for v in row[:MAX_COLUMNS]] for row in raw]
    table = Table(rows, _xlsx_formulas(data), merged)
    for (top, left), (bottom, right) in merged:
        if top == 0 and bottom == 0:
            continue  # header cells: the importer refuses them with a message
        value = rows[top][left] if top < len(rows) and left < len(rows[top]) else ""
        for r in range(top, min(bottom, len(rows) - 1) + 1):
            for c in range(left, min(right, MAX_COLUMNS - 1) + 1):
                while len(rows[r]) <= c:
                    rows[r].append("")
                rows[r][c] = value
    return table


_FORMULA_CELL = re.compile(rb'<c r="([A-Z]{1,3})([0-9]+)"[^>]*?(?<!/)>\s*<f[ >/]')


def _xlsx_formulas(data: bytes) -> set[tuple[int, int]]:
    """(row, column), 0-based, of the first sheet's formula cells (XLSX only)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = sorted(n for n in archive.namelist() if re.fullmatch(r"xl/worksheets/sheet\d+\.xml", n))
            if not names:
                return set()
            first = "xl/worksheets/sheet1.xml" if "xl/worksheets/sheet1.xml" in names else names[0]
            xml = archive.read(first)
    except (zipfile.BadZipFile, KeyError, OSError):
        return set()
    found = set()
    for match in _FORMULA_CELL.finditer(xml):
        letters, number = match.group(1).decode(), int(match.group(2))
        column = 0
        for ch in letters:
            column = column * 26 + ord(ch) - 64
        found.add((number - 1, column - 1))
    return found


def _read_csv(data: bytes) -> Table:
    if data.startswith(b"\xef\xbb\xbf"):
        text = data[3:].decode("utf-8", errors="replace")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode("cp1258", errors="replace")
    import unicodedata

    text = unicodedata.normalize("NFC", text)  # cp1258 writes combining tone marks
    sample = text[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows: list[list[str]] = []
    formulas: set[tuple[int, int]] = set()
    try:
        for index, row in enumerate(csv.reader(io.StringIO(text), dialect)):
            if index > MAX_ROWS + 20:
                raise SheetError(ErrorMessage(TOO_MANY_ROWS, {"max": f"{MAX_ROWS:,}".replace(",", ".")}))
            cells = [c.strip() for c in row[:MAX_COLUMNS]]
            formulas.update((index, col) for col, c in enumerate(cells) if c.startswith("="))
            rows.append(cells)
    except csv.Error:
        raise SheetError(ErrorMessage(NOT_A_SHEET)) from None
    return Table(rows, formulas)


BAD_TARGET = N_("Row {row}: the target \"{value}\" is not a whole number.")
_VILLAGE_HEADERS = ("thon", "to", "ten", "name", "village", "thon/to", "ten thon", "to dan pho", "stt")


def village_rows(table: Table) -> tuple[list[tuple[str, int | None]], list[ErrorMessage]]:
    """(name, target households or None) of a one-column list of villages; a header row (a
    first cell such as "Thôn/Tổ" or "Tên") is skipped, a number in the second column is the
    village's target."""
    from conversations.folding import strip_marks

    villages: list[tuple[str, int | None]] = []
    errors: list[ErrorMessage] = []
    for index, row in enumerate(table.rows):
        cells = [c for c in row if c.strip()] if row else []
        if not cells:
            continue
        name = cells[0].strip()
        if index == 0 and strip_marks(name).strip().split(" (")[0] in _VILLAGE_HEADERS:
            continue
        target = None
        if len(cells) > 1:
            raw = cells[1].replace(".", "").replace(",", "").strip()
            if not raw.isdigit():
                if index == 0:
                    continue  # a header row with unknown words
                errors.append(ErrorMessage(BAD_TARGET, {"row": index + 1, "value": cells[1]}))
                continue
            target = int(raw)
        villages.append((name[:200], target))
    return villages, errors
