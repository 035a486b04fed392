"""A household list (the template of `gocua import template`) read into households and members,
each cell checked with the chat's validators (conversations/validators.py).

Pure: a `Table` (conversations/sheet_file.py) and today's date in, a `Sheet` out. One row is
one member; the household columns (village, head, address, phone) name the household, and a
row that leaves all of them empty adds a member to the household above it. Every rejected row
says its row number (as the spreadsheet shows it), column and reason. Full citizen IDs are
hashed and masked here and not kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from conversations.folding import strip_marks
from conversations.sheet_file import SheetError, Table
from conversations.texts import N_
from conversations.validators import (
    ErrorMessage,
    cccd_year_conflict,
    mask_cccd,
    validate_address,
    validate_cccd,
    validate_name,
    validate_phone,
    validate_year,
)

# Column key, the template's header, and other headers that mean the same (folded).
COLUMNS: list[tuple[str, str, tuple[str, ...]]] = [
    ("village", "Thôn/Tổ", ("thon/to", "thon", "to", "thon, to", "thon to", "to dan pho", "khu pho",
                            "ap", "ban", "village")),
    ("head", "Chủ hộ", ("chu ho", "ho ten chu ho", "ten chu ho", "head", "head of household")),
    ("address", "Địa chỉ / mốc", ("dia chi / moc", "dia chi", "dia chi/moc", "moc", "address")),
    ("phone", "Điện thoại", ("dien thoai", "so dien thoai", "sdt", "so dt", "phone")),
    ("member", "Thành viên", ("thanh vien", "ho ten thanh vien", "ho ten", "ten thanh vien", "member")),
    ("birth_year", "Năm sinh", ("nam sinh", "birth year", "year of birth")),
    ("citizen_id", "Số định danh (tuỳ chọn)", ("so dinh danh", "so dinh danh (tuy chon)", "cccd", "so cccd",
                                               "can cuoc", "so can cuoc", "citizen id")),
    ("volunteer", "Tình nguyện viên (tuỳ chọn)", ("tinh nguyen vien", "tinh nguyen vien (tuy chon)", "tnv",
                                                 "volunteer")),
]
REQUIRED = ("village", "head", "address")
HOUSEHOLD_KEYS = ("village", "head", "address", "phone")
HEADER_SEARCH = 20  # title rows above the header are common; the header is among the first 20

NO_HEADER = N_("No header row found: the first rows must name the columns {columns}.")
MISSING_COLUMNS = N_("Missing columns: {columns}. Start from the template (gocua import template).")
MERGED_HEADER = N_("The header row has merged cells ({cells}): unmerge them so that each column has "
                   "its own name.")
DUPLICATE_COLUMN = N_("The column {column} appears twice in the header.")
NO_ROWS = N_("The file has a header but no household rows.")

FORMULA = N_("This cell holds a formula; type the value itself (copy, then paste values only).")
REQUIRED_EMPTY = N_("Empty: every household needs a village, a head of household and an address.")
ORPHAN_MEMBER = N_("A member without a household: fill in the village, head and address of the household.")
HOUSEHOLD_REJECTED = N_("Its household (row {row}) was rejected.")
DUPLICATE_ROW = N_("The same as row {row}.")
PHONE_TWICE = N_("Row {row} gives this phone number to another household.")
PHONE_CONFLICT = N_("Row {row} gives this household another phone number.")
VOLUNTEER_CONFLICT = N_("Row {row} gives this household another volunteer.")
CCCD_TWICE = N_("Row {row} has the same citizen ID.")
CCCD_YEAR = N_("The citizen ID says born in {card_year}, not {year}.")
MEMBER_NEEDS_NAME = N_("A birth year or citizen ID without the member's name.")
TOO_LONG_CELL = N_("Too long: at most {max} characters.")


@dataclass(frozen=True)
class Rejection:
    row: int  # as the spreadsheet shows it (1 = the first row)
    column: str  # the column's header as written in the file ("" for the whole row)
    reason: ErrorMessage


@dataclass
class SheetMember:
    row: int
    name: str
    birth_year: int | None
    citizen_id_masked: str | None = None
    citizen_id_hash: str | None = None


@dataclass
class SheetHousehold:
    row: int  # the household's first row
    village: str
    head: str
    address: str
    phone: str | None = None
    volunteer: str | None = None
    members: list[SheetMember] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)  # every row that describes it


@dataclass
class Sheet:
    rows: int  # data rows read (empty rows left out)
    households: list[SheetHousehold]
    rejected: list[Rejection]
    headers: dict[str, str]  # column key -> header as written in the file

    def reject(self, row: int, key: str, reason: ErrorMessage) -> None:
        self.rejected.append(Rejection(row, self.headers.get(key, ""), reason))


def fold(text: str) -> str:
    return " ".join(strip_marks(text).split())


def _header_key(cell: str) -> str | None:
    folded = fold(re.sub(r"[*:]", "", cell)).strip()
    folded = re.sub(r"\s*/\s*", "/", folded)
    for key, header, aliases in COLUMNS:
        if folded in {fold(header), re.sub(r"\s*/\s*", "/", fold(header)),
                      *(re.sub(r"\s*/\s*", "/", a) for a in aliases)}:
            return key
    return None


def find_header(table: Table) -> tuple[int, dict[str, int], dict[str, str]]:
    """(row index, column key -> index, column key -> header text) of the header row."""
    best: tuple[int, dict[str, int], dict[str, str]] | None = None
    for index, row in enumerate(table.rows[:HEADER_SEARCH]):
        keys: dict[str, int] = {}
        texts: dict[str, str] = {}
        for col, cell in enumerate(row):
            key = _header_key(cell) if cell else None
            if key is None:
                continue
            if key in keys:
                raise SheetError(ErrorMessage(DUPLICATE_COLUMN, {"column": cell}))
            keys[key] = col
            texts[key] = cell
        if keys and (best is None or len(keys) > len(best[1])):
            best = (index, keys, texts)
        if all(k in keys for k in REQUIRED):
            break
    header_row = best[0] if best else 0
    merged = [rng for rng in table.merged if rng[0][0] <= header_row <= rng[1][0]]
    if merged:
        cells = ", ".join(f"{_cell_name(*top)}:{_cell_name(*bottom)}" for top, bottom in merged[:3])
        raise SheetError(ErrorMessage(MERGED_HEADER, {"cells": cells}))
    if best is None:
        names = ", ".join(header for key, header, _ in COLUMNS if key in REQUIRED)
        raise SheetError(ErrorMessage(NO_HEADER, {"columns": names}))
    missing = [header for key, header, _ in COLUMNS if key in REQUIRED and key not in best[1]]
    if missing:
        raise SheetError(ErrorMessage(MISSING_COLUMNS, {"columns": ", ".join(missing)}))
    return best


def _cell_name(row: int, col: int) -> str:
    letters = ""
    col += 1
    while col:
        col, rest = divmod(col - 1, 26)
        letters = chr(65 + rest) + letters
    return f"{letters}{row + 1}"


def _fix_number_cell(key: str, value: str) -> str:
    """Excel drops the leading 0 of a phone or citizen ID typed as a number: put it back."""
    if key == "phone" and value.isdigit() and len(value) == 9 and value[0] in "35789":
        return "0" + value
    if key == "phone" and value.isdigit() and len(value) in (9, 10) and value[0] == "2":
        return "0" + value
    if key == "citizen_id" and value.isdigit() and len(value) == 11 and value[0] != "0":
        return "0" + value
    return value


def parse_households(table: Table, today: date, hash_id: Callable[[str], str]) -> Sheet:
    """The households and members of `table`; `hash_id` makes the keyed hash of a citizen ID."""
    header_row, columns, headers = find_header(table)
    sheet = Sheet(0, [], [], headers)
    by_key: dict[tuple[str, str, str], SheetHousehold] = {}
    phones: dict[str, tuple[int, tuple[str, str, str]]] = {}
    citizen_ids: dict[str, int] = {}
    seen_rows: dict[tuple, int] = {}
    current: SheetHousehold | None = None
    current_bad: int | None = None  # the rejected household row that later member rows belong to
    for index in range(header_row + 1, len(table.rows)):
        raw = table.rows[index]
        cells = {key: _fix_number_cell(key, raw[col].strip()) if col < len(raw) else ""
                 for key, col in columns.items()}
        if not any(cells.values()):
            continue
        row = index + 1
        sheet.rows += 1
        formulas = [key for key, col in columns.items() if (index, col) in table.formulas]
        if formulas:
            sheet.reject(row, formulas[0], ErrorMessage(FORMULA))
            current_bad = row if any(cells[k] for k in HOUSEHOLD_KEYS[:3]) else current_bad
            continue
        if any(cells.get(k) for k in HOUSEHOLD_KEYS[:3]):  # a member row repeated: the member check
            fingerprint = tuple(fold(v) for v in cells.values())
            if fingerprint in seen_rows:
                sheet.reject(row, "", ErrorMessage(DUPLICATE_ROW, {"row": seen_rows[fingerprint]}))
                continue
            seen_rows[fingerprint] = row

        if not any(cells.get(k) for k in HOUSEHOLD_KEYS[:3]):  # another member of the household above
            if current is None:
                sheet.reject(row, "member" if "member" in columns else "", ErrorMessage(
                    HOUSEHOLD_REJECTED, {"row": current_bad}) if current_bad else ErrorMessage(ORPHAN_MEMBER))
                continue
            household = current
        else:
            household_or_none = _household(sheet, row, cells, today)
            if household_or_none is None:
                current, current_bad = None, row
                continue
            key = (fold(household_or_none.village), fold(household_or_none.head),
                   fold(household_or_none.address))
            household = by_key.get(key) or household_or_none
            if not _phone_and_volunteer(sheet, row, household, household_or_none, key, phones):
                current, current_bad = None, row
                continue
            if key not in by_key:
                by_key[key] = household
                sheet.households.append(household)
            current, current_bad = household, None
        accepted, member = _member(sheet, row, cells, today, hash_id, citizen_ids)
        if not accepted:
            continue
        if member is not None:
            twin = next((m for m in household.members
                         if fold(m.name) == fold(member.name) and m.birth_year == member.birth_year), None)
            if twin is not None:
                sheet.reject(row, "member", ErrorMessage(DUPLICATE_ROW, {"row": twin.row}))
                continue
            household.members.append(member)
        household.rows.append(row)
    if sheet.rows == 0:
        raise SheetError(ErrorMessage(NO_ROWS))
    return sheet


def _household(sheet: Sheet, row: int, cells: dict[str, str], today: date) -> SheetHousehold | None:
    for key in REQUIRED:
        if not cells[key]:
            sheet.reject(row, key, ErrorMessage(REQUIRED_EMPTY))
            return None
    if len(cells["village"]) > 100:
        sheet.reject(row, "village", ErrorMessage(TOO_LONG_CELL, {"max": 100}))
        return None
    head, error = validate_name(cells["head"], today)
    if error is not None:
        sheet.reject(row, "head", error)
        return None
    address, error = validate_address(cells["address"], today)
    if error is not None:
        sheet.reject(row, "address", error)
        return None
    phone = None
    if cells.get("phone"):
        value, error = validate_phone(cells["phone"], today)
        if error is not None:
            sheet.reject(row, "phone", error)
            return None
        phone = str(value)
    volunteer = cells.get("volunteer") or None
    if volunteer is not None and len(volunteer) > 200:
        sheet.reject(row, "volunteer", ErrorMessage(TOO_LONG_CELL, {"max": 200}))
        return None
    return SheetHousehold(row, " ".join(cells["village"].split()), str(head), str(address), phone, volunteer)


HouseholdKey = tuple[str, str, str]


def _phone_and_volunteer(sheet: Sheet, row: int, household: SheetHousehold, read: SheetHousehold,
                         key: HouseholdKey, phones: dict[str, tuple[int, HouseholdKey]]) -> bool:
    """Merge a repeated household row's phone and volunteer into the household, or reject it."""
    if read.phone is not None:
        earlier = phones.get(read.phone)
        if earlier is not None and earlier[1] != key:
            sheet.reject(row, "phone", ErrorMessage(PHONE_TWICE, {"row": earlier[0]}))
            return False
        if household is not read and household.phone not in (None, read.phone):
            sheet.reject(row, "phone", ErrorMessage(PHONE_CONFLICT, {"row": household.row}))
            return False
    if household is not read and read.volunteer and household.volunteer \
            and fold(read.volunteer) != fold(household.volunteer):
        sheet.reject(row, "volunteer", ErrorMessage(VOLUNTEER_CONFLICT, {"row": household.row}))
        return False
    if read.phone is not None:
        phones.setdefault(read.phone, (row, key))
        household.phone = household.phone or read.phone
    household.volunteer = household.volunteer or read.volunteer
    return True


def _member(sheet: Sheet, row: int, cells: dict[str, str], today: date, hash_id: Callable[[str], str],
            citizen_ids: dict[str, int]) -> tuple[bool, SheetMember | None]:
    """(False, None) when the row is rejected, else (True, the row's member or None)."""
    name_text = cells.get("member", "")
    if not name_text:
        if cells.get("birth_year") or cells.get("citizen_id"):
            sheet.reject(row, "member", ErrorMessage(MEMBER_NEEDS_NAME))
            return False, None
        return True, None
    name, error = validate_name(name_text, today)
    if error is not None:
        sheet.reject(row, "member", error)
        return False, None
    year = None
    if cells.get("birth_year"):
        value, error = validate_year(cells["birth_year"], today)
        if error is not None:
            sheet.reject(row, "birth_year", error)
            return False, None
        year = int(value)  # type: ignore[arg-type]
    member = SheetMember(row, str(name), year)
    if cells.get("citizen_id"):
        digits, error = validate_cccd(cells["citizen_id"], today)
        if error is not None:
            sheet.reject(row, "citizen_id", error)
            return False, None
        digits = str(digits)
        card_year = cccd_year_conflict(digits, year)
        if card_year is not None:
            sheet.reject(row, "citizen_id", ErrorMessage(CCCD_YEAR, {"card_year": card_year, "year": year}))
            return False, None
        hashed = hash_id(digits)
        if hashed in citizen_ids:
            sheet.reject(row, "citizen_id", ErrorMessage(CCCD_TWICE, {"row": citizen_ids[hashed]}))
            return False, None
        citizen_ids[hashed] = row
        member.citizen_id_masked, member.citizen_id_hash = mask_cccd(digits), hashed
    return True, member
