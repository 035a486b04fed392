"""Household lists from a spreadsheet (issue 17 §2): `gocua import template|households` on real
XLSX and CSV files written in tmp_path, against a real SQLite file; and the pure sheet reader."""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from bot.app import App
from bot.cli import COMMANDS, _command_key, build_parser
from bot.config import Settings
from conversations.household_sheet import parse_households
from conversations.sheet_file import MAX_ROWS, SheetError, read_table
from tests.chat import Talker
from tests.test_cli import gocua

HEADER = ["Thôn/Tổ", "Chủ hộ", "Địa chỉ / mốc", "Điện thoại", "Thành viên", "Năm sinh",
          "Số định danh (tuỳ chọn)", "Tình nguyện viên (tuỳ chọn)"]
CCCD = "048068001234"  # Đà Nẵng, born 1968


def write_xlsx(path: Path, rows: list[list[object]], *, header: list[str] | None = None) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(header or HEADER)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def households(n: int, village: str = "Thôn Tà Lang", start: int = 0) -> list[list[object]]:
    """n households of two members each, with distinct names, landmarks and phones."""
    rows: list[list[object]] = []
    for i in range(start, start + n):
        head = f"Hồ Văn {chr(65 + i % 26)}{chr(97 + i // 26 % 26)}"
        rows.append([village, head, f"Nhà số {i + 1} gần suối", f"0905{i:06d}", head, 1960 + i % 30, "", ""])
        rows.append(["", "", "", "", f"Hồ Thị {chr(65 + i % 26)}{chr(97 + i // 26 % 26)}", 1990, "", ""])
    return rows


def counts(path: Path) -> tuple[int, int]:
    """(households, residents) in the database."""
    with sqlite3.connect(path / "cli.db") as db:
        return (db.execute("SELECT count(*) FROM households").fetchone()[0],
                db.execute("SELECT count(*) FROM residents").fetchone()[0])


def run_import(path: Path, file: Path, *args: str) -> tuple[int, dict]:
    result = gocua(path, "import", "households", str(file), "--area", "danang.hai-van", "--json", *args)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout)


@pytest.fixture
def demo(demo_cli: Path) -> Path:
    """A fresh database with the demo data (Hải Vân: Tà Lang, Giàn Bí, volunteer Nguyễn Văn An)."""
    return demo_cli


def test_the_template_has_the_columns_an_example_and_notes(demo: Path) -> None:
    """The template's header is what the importer reads, and its example passes a dry run."""
    out = demo / "mau.xlsx"
    assert gocua(demo, "import", "template", "--out", str(out)).returncode == 0
    book = openpyxl.load_workbook(out)
    assert [c.value for c in book.worksheets[0][1]] == HEADER
    assert len(book.worksheets) == 2 and book.worksheets[1].max_row >= 9
    code, report = run_import(demo, out, "--dry-run")
    assert code == 0 and report == {"rows": 2, "imported": 1, "updated": 0, "unchanged": 0,
                                    "assigned": 0, "rejected": []}
    assert counts(demo) == (8, 0)  # the dry run wrote nothing


def test_import_then_reimport_updates_and_never_duplicates(demo: Path) -> None:
    """A file imports once; the same file again changes nothing; a corrected one updates in place."""
    rows = households(30) + households(10, "Giàn Bí", start=30)
    rows[0][5], rows[0][6] = 1968, CCCD
    first = write_xlsx(demo / "ds.xlsx", rows)
    code, report = run_import(demo, first)
    assert code == 0 and report["rows"] == 80 and report["imported"] == 40 and not report["rejected"]
    assert counts(demo) == (8 + 40, 80)
    with sqlite3.connect(demo / "cli.db") as db:
        stored = db.execute("SELECT citizen_id_masked, citizen_id_hash FROM residents "
                            "WHERE citizen_id_masked IS NOT NULL").fetchall()
        assert stored == [("0480******34", stored[0][1])] and len(stored[0][1]) == 64
        codes = [c for (c,) in db.execute(
            "SELECT code FROM households WHERE code LIKE 'HV-GB-%' ORDER BY id")]
        assert codes[:3] == ["HV-GB-001", "HV-GB-002", "HV-GB-003"]  # numbering goes on after the demo's
        assert CCCD not in "".join(str(r) for r in db.execute("SELECT * FROM residents"))

    code, again = run_import(demo, first)
    assert (code, again["imported"], again["updated"], again["unchanged"]) == (0, 0, 0, 40)
    assert counts(demo) == (48, 80)

    rows[2][3] = "0912345678"  # a new phone for the second household
    rows.append(["", "", "", "", "Hồ Văn Mới", 2020, "", ""])  # a newborn in the last household
    rows[4][2] = "Nhà số 3, cạnh trường"  # the third household moved: matched by its phone
    code, corrected = run_import(demo, write_xlsx(demo / "ds2.xlsx", rows))
    assert (code, corrected["imported"], corrected["updated"], corrected["unchanged"]) == (0, 0, 3, 37)
    assert counts(demo) == (48, 81)


def test_one_bad_row_means_nothing_is_written_unless_skip_bad(demo: Path) -> None:
    """Bad rows are listed with row, column and reason in Vietnamese; exit 1 and nothing written,
    or with --skip-bad the good rows imported."""
    rows = households(5)
    rows[2][3] = "12345"  # row 4: phone
    rows[5][5] = 1850  # row 7: a member's birth year
    rows[6][6] = "099123456789"  # row 8: not a province code
    rows[8][1] = "Nguyễn 2"  # row 10: a head with a digit
    file = write_xlsx(demo / "bad.xlsx", rows)
    code, report = run_import(demo, file)
    assert code == 1 and report["imported"] == 0 and counts(demo) == (8, 0)
    assert [(r["row"], r["column"]) for r in report["rejected"]] == [
        (4, "Điện thoại"), (5, "Thành viên"), (7, "Năm sinh"), (8, "Số định danh (tuỳ chọn)"),
        (10, "Chủ hộ"), (11, "Thành viên")]
    reasons = {r["row"]: r["reason"] for r in report["rejected"]}
    assert "099" in reasons[8] and "099123456789" not in json.dumps(report)
    assert reasons[5] == "Hộ của dòng này (dòng 4) đã bị loại."

    text = gocua(demo, "import", "households", str(file), "--area", "danang.hai-van")
    assert text.returncode == 1 and "Dòng 4, Điện thoại:" in text.stdout
    assert "099123456789" not in text.stdout and "--skip-bad" in text.stdout

    code, report = run_import(demo, file, "--skip-bad")
    assert code == 0 and report["imported"] == 3 and len(report["rejected"]) == 6
    assert counts(demo) == (11, 4)  # households 1, 3 (without its bad member) and 4


def test_unknown_villages_are_rejected_with_the_known_ones_or_created(demo: Path) -> None:
    """A village the ward does not have: rejected naming the known villages; --create-villages adds it."""
    file = write_xlsx(demo / "moi.xlsx", households(2, "Thôn Phò Nam"))
    code, report = run_import(demo, file)
    assert code == 1 and len(report["rejected"]) == 4
    assert "Thôn Giàn Bí, Thôn Tà Lang" in report["rejected"][0]["reason"]
    code, report = run_import(demo, file, "--create-villages")
    assert code == 0 and report["imported"] == 2
    tree = json.loads(gocua(demo, "areas", "list", "--under", "danang.hai-van", "--json").stdout)
    assert {"code": "danang.hai-van.pho-nam", "name": "Thôn Phò Nam", "level": "village",
            "official_code": None, "households": 2} in tree


def test_assign_gives_households_to_volunteers_and_warns_past_twenty(demo: Path) -> None:
    """--assign gives every unassigned household to the ward's volunteer and warns past 20; the
    volunteer column names a volunteer by display name, and an unknown one is rejected."""
    rows = households(25)
    rows[0][7] = "nguyen van an"  # by name, without diacritics
    code, report = run_import(demo, write_xlsx(demo / "a.xlsx", rows), "--assign", "round-robin", "--dry-run")
    assert code == 0 and report["imported"] == 25 and report["assigned"] == 24
    result = gocua(demo, "import", "households", str(demo / "a.xlsx"), "--area", "danang.hai-van",
                   "--assign", "by-village")
    assert result.returncode == 0 and "Giao cho tình nguyện viên: 24." in result.stdout
    assert "1 tình nguyện viên đang phụ trách hơn 20 hộ" in result.stdout  # An: 5 + 25
    with sqlite3.connect(demo / "cli.db") as db:
        assert db.execute("SELECT count(*) FROM households WHERE volunteer_id IS NULL").fetchone()[0] == 0
    rows[2][7] = "Người Lạ"
    code, report = run_import(demo, write_xlsx(demo / "b.xlsx", rows))
    assert code == 1 and report["rejected"][0]["column"] == "Tình nguyện viên (tuỳ chọn)"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1258"])
def test_csv_in_the_encodings_excel_writes(demo: Path, encoding: str) -> None:
    """CSV in UTF-8, UTF-8 with BOM and Windows-1258 (Vietnamese Windows Excel) reads the same names."""
    lines = [",".join(HEADER), "Thôn Giàn Bí,Zơrâm Thị Hường,Đầu cầu treo,0905111222,Zơrâm Thị Hường,1958,,",
             ",,,,Zơrâm Văn Đức,1985,,"]
    text = "\r\n".join(lines) + "\r\n"
    data = windows_1258(text) if encoding == "cp1258" else text.encode(encoding)
    file = demo / "ds.csv"
    file.write_bytes(data)
    code, report = run_import(demo, file)
    assert code == 0 and report["imported"] == 1 and not report["rejected"]
    with sqlite3.connect(demo / "cli.db") as db:
        names = [n for (n,) in db.execute("SELECT name FROM residents ORDER BY id")]
    assert names == ["Zơrâm Thị Hường", "Zơrâm Văn Đức"]


def windows_1258(text: str) -> bytes:
    """Text as Excel on Vietnamese Windows saves it: precomposed letters where the code page has
    them (ư, â, ơ…), a combining tone mark after them otherwise."""
    out = bytearray()
    for ch in unicodedata.normalize("NFC", text):
        try:
            out += ch.encode("cp1258")
        except UnicodeEncodeError:
            parts = unicodedata.normalize("NFD", ch)
            tone = next(m for m in parts if m in "\u0300\u0301\u0303\u0309\u0323")
            base = unicodedata.normalize("NFC", parts.replace(tone, ""))
            out += base.encode("cp1258") + tone.encode("cp1258")
    return bytes(out)


def _merged_header(folder: Path) -> Path:
    path = folder / "merged.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Hộ gia đình", "", "Địa chỉ / mốc"])
    sheet.merge_cells("A1:B1")
    sheet.append(["Thôn Tà Lang", "Hồ Văn A", "Gần suối"])
    book.save(path)
    return path


def _write(name: str, data: bytes) -> object:
    def make(path: Path) -> Path:
        (path / name).write_bytes(data)
        return path / name
    return make


def _sparse(path: Path) -> Path:
    big = path / "big.xlsx"
    with big.open("wb") as fh:
        fh.truncate(50 * 1024 * 1024)
    return big


def _many_rows(path: Path) -> Path:
    rows = "\n".join(f"Thôn Tà Lang,Hồ Văn A,Nhà {i},,,,," for i in range(MAX_ROWS + 100))
    (path / "many.csv").write_text(",".join(HEADER) + "\n" + rows, encoding="utf-8")
    return path / "many.csv"


@pytest.mark.parametrize(("make", "message"), [
    (_write("anh.xlsx", b"\x89PNG\r\n\x1a\n" + bytes(500)), "không phải bảng tính"),
    (_write("zip.xlsx", b"PK\x03\x04" + bytes(500)), "không phải bảng tính"),
    (_write("rong.csv", b""), "Tệp trống"),
    (_write("cot.csv", "Thôn/Tổ,Họ tên\nTà Lang,Hồ Văn A\n".encode()), "Thiếu cột: Chủ hộ, Địa chỉ / mốc"),
    (_write("tieude.csv", (",".join(HEADER) + "\n").encode()), "không có dòng hộ nào"),
    (_merged_header, "ô gộp (A1:B1)"),
    (_sparse, "Tệp quá lớn (50 MB; tối đa 20 MB)"),
    (_many_rows, "hơn 300.000 dòng"),
], ids=["png", "broken-zip", "empty", "missing-columns", "header-only", "merged-header", "50MB", "300k-rows"])
def test_hostile_files_get_a_clear_message_and_nothing_is_written(demo: Path, make, message: str) -> None:
    """Files that cannot be a household list: one clear line, no traceback, nothing written."""
    file = make(demo)
    result = gocua(demo, "import", "households", str(file), "--area", "danang.hai-van")
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and counts(demo) == (8, 0)


def test_formulas_and_duplicate_rows_are_rejected_row_by_row(demo: Path) -> None:
    """A formula cell and a row repeated in the file are rejected with their row; nothing is written."""
    rows = households(3)
    rows[1][5] = "=1990+1"
    rows.append(list(rows[2]))  # row 8 repeats row 4
    code, report = run_import(demo, write_xlsx(demo / "f.xlsx", rows))
    assert code == 1 and counts(demo) == (8, 0)
    assert [(r["row"], r["column"]) for r in report["rejected"]] == [(3, "Năm sinh"), (8, "")]
    assert "công thức" in report["rejected"][0]["reason"] and "dòng 4" in report["rejected"][1]["reason"]


def test_an_unknown_area_is_refused(demo: Path) -> None:
    """--area that names nothing: exit 2 with a pointer to `gocua areas list`."""
    file = write_xlsx(demo / "x.xlsx", households(1))
    result = gocua(demo, "import", "households", str(file), "--area", "nowhere")
    assert result.returncode == 2 and "gocua areas list" in result.stderr


TODAY = date(2026, 12, 5)


def _sheet(rows: list[list[str]]):
    from conversations.sheet_file import Table

    return parse_households(Table([HEADER, *rows]), TODAY, lambda digits: "h" + digits[-4:])


@pytest.mark.parametrize(("row", "column", "msgid_start"), [
    (["Tà Lang", "", "Gần suối", "", "", "", "", ""], "Chủ hộ", "Empty"),
    (["Tà Lang", "A", "Gần suối", "", "", "", "", ""], "Chủ hộ", "A name has at least"),
    (["Tà Lang", "Hồ Văn A", "!!!", "", "", "", "", ""], "Địa chỉ / mốc", "An address needs"),
    (["Tà Lang", "Hồ Văn A", "Gần suối", "0123", "", "", "", ""], "Điện thoại", "A Vietnamese mobile"),
    (["Tà Lang", "Hồ Văn A", "Gần suối", "", "Hồ Văn A", "3000", "", ""], "Năm sinh", "The year must be"),
    (["Tà Lang", "Hồ Văn A", "Gần suối", "", "Hồ Văn A", "1970", "04806800123", ""],
     "Số định danh (tuỳ chọn)", "A citizen ID has 12"),
    (["Tà Lang", "Hồ Văn A", "Gần suối", "", "Hồ Văn A", "1970", CCCD, ""],
     "Số định danh (tuỳ chọn)", "The citizen ID says born in"),
    (["Tà Lang", "Hồ Văn A", "Gần suối", "", "", "1970", "", ""], "Thành viên", "A birth year or citizen ID"),
])
def test_each_cell_is_checked_with_the_chat_validators(row: list[str], column: str, msgid_start: str) -> None:
    """A bad cell is reported with its spreadsheet row (2) and its column's header."""
    sheet = _sheet([row])
    assert [(r.row, r.column) for r in sheet.rejected] == [(2, column)]
    assert sheet.rejected[0].reason.msgid.startswith(msgid_start)


def test_excel_numbers_keep_their_leading_zero_and_members_follow_their_household() -> None:
    """A phone or citizen ID stored as a number gets its 0 back; rows without household columns
    are members of the household above; the same household twice is one household."""
    sheet = _sheet([["Tà Lang", "Hồ Văn A", "Gần suối", "905123456", "Hồ Văn A", "1968", "48068001234", ""],
                    ["", "", "", "", "Hồ Thị B", "1990", "", ""],
                    ["tà lang", "Ho Van A", "gần suối", "", "Hồ Văn C", "2001", "", ""]])
    assert not sheet.rejected and len(sheet.households) == 1
    household = sheet.households[0]
    assert household.phone == "0905123456" and [m.name for m in household.members] == [
        "Hồ Văn A", "Hồ Thị B", "Hồ Văn C"]
    assert household.members[0].citizen_id_masked == "0480******34"


def test_a_title_row_above_the_header_and_a_merged_village_column_are_read(tmp_path: Path) -> None:
    """The header may sit under a title; a village cell merged down its households' rows counts for each."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["DANH SÁCH HỘ GIA ĐÌNH THÔN TÀ LANG"])
    sheet.append(HEADER)
    sheet.append(["Thôn Tà Lang", "Hồ Văn A", "Gần suối"])
    sheet.append([None, "Hồ Văn B", "Gần cầu"])
    sheet.merge_cells("A3:A4")
    book.save(tmp_path / "m.xlsx")
    parsed = parse_households(read_table((tmp_path / "m.xlsx").read_bytes()), TODAY, str)
    assert [(h.row, h.village, h.head) for h in parsed.households] == [
        (3, "Thôn Tà Lang", "Hồ Văn A"), (4, "Thôn Tà Lang", "Hồ Văn B")]


def test_bytes_that_are_no_table_raise_a_sheet_error() -> None:
    """Binary junk with a spreadsheet's name is a SheetError, not a crash."""
    with pytest.raises(SheetError):
        read_table(b"\x00\x01\x02" * 100, "x.xlsx")


def test_the_same_member_row_under_two_households_is_no_duplicate() -> None:
    """Two households each with a member "Hồ Thị An, 1985" on a row of its own: both kept."""
    sheet = _sheet([["Tà Lang", "Hồ Văn A", "Nhà 1", "", "", "", "", ""],
                    ["", "", "", "", "Hồ Thị An", "1985", "", ""],
                    ["Tà Lang", "Hồ Văn B", "Nhà 2", "", "", "", "", ""],
                    ["", "", "", "", "Hồ Thị An", "1985", "", ""],
                    ["", "", "", "", "Hồ Thị An", "1985", "", ""]])
    assert [len(h.members) for h in sheet.households] == [1, 1]
    assert [(r.row, r.column) for r in sheet.rejected] == [(6, "Thành viên")]


async def test_going_live_from_an_empty_database(app: App, settings: Settings, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """README's "Going live in a ward", on SQLite and PostgreSQL: Đà Nẵng's official units, Hải
    Vân's villages, a 1,350-household list with bad rows (dry run, report, fix, import), a
    leader, 70 volunteers invited with a printed sheet who join with /start CODE, households
    assigned about 20 each, then the roster and /stats agreeing (1,350 households, 70 volunteers)."""

    async def cli(*args: str) -> tuple[int, dict]:
        """`gocua ARGS --json` in the process, on the test's database."""
        parsed = build_parser().parse_args([*args, "--json"])
        capsys.readouterr()  # what the chat logged meanwhile
        code = await COMMANDS[_command_key(parsed)](settings, parsed)
        return code, json.loads(capsys.readouterr().out)

    code, loaded = await cli("areas", "import", "--province", "48")
    assert code == 0 and len(loaded["created"]) == 95  # the city and its 94 units
    assert (await cli("areas", "import", "--province", "48"))[1]["created"] == []  # idempotent
    (tmp_path / "thon.csv").write_text("Thôn/Tổ,Số hộ\nThôn Tà Lang,700\nThôn Giàn Bí,650\n",
                                       encoding="utf-8")
    code, villages = await cli("areas", "add-villages", "--ward", "danang.hai-van",
                               str(tmp_path / "thon.csv"))
    assert code == 0 and len(villages["created"]) == 2

    rows = households(700) + households(650, "Thôn Giàn Bí", start=700)
    rows[10][3], rows[2001][5] = "0905", 1066  # two bad rows: a phone, a birth year
    sheet = write_xlsx(tmp_path / "ho-gia-dinh.xlsx", rows)
    code, report = await cli("import", "households", str(sheet), "--area", "danang.hai-van", "--dry-run")
    assert code == 1 and [(r["row"], r["column"]) for r in report["rejected"]] == [
        (12, "Điện thoại"), (13, "Thành viên"), (2003, "Năm sinh")]
    rows[10][3], rows[2001][5] = "0905123123", 1966  # the file corrected
    write_xlsx(sheet, rows)
    code, report = await cli("import", "households", str(sheet), "--area", "danang.hai-van")
    assert code == 0 and (report["imported"], report["rows"], report["assigned"]) == (1350, 2700, 0)

    code, made = await cli("invite", "create", "--role", "leader", "--area", "danang.hai-van")
    leader = Talker(app, "bi-thu")
    await leader.say(f"/start {made['code']}")
    await leader.say("/lang en")
    code, made = await cli("invite", "create", "--role", "volunteer", "--area", "danang.hai-van",
                           "--count", "70", "--out", str(tmp_path / "sheet.pdf"))
    assert code == 0 and len(made["invites"]) == 70
    assert (tmp_path / "sheet.pdf").read_bytes()[:5] == b"%PDF-"
    for i, invite in enumerate(made["invites"]):
        volunteer = Talker(app, f"tnv{i:02d}")
        await volunteer.say(f"/start {invite['code']}")
        assert "Phường Hải Vân" in volunteer.text(), volunteer.text()

    code, report = await cli("import", "households", str(sheet), "--area", "danang.hai-van",
                             "--assign", "by-village")
    assert code == 0 and (report["unchanged"], report["imported"], report["assigned"]) == (1350, 0, 1350)
    code, listed = await cli("volunteers", "list", "--area", "danang.hai-van")
    loads = sorted(v["households"] for v in listed["volunteers"])
    assert len(loads) == 70 and sum(loads) == 1350 and (loads[0], loads[-1]) == (19, 20)

    await leader.say("/volunteers")
    assert "Volunteers of Phường Hải Vân: 70, of whom 70 inactive" in leader.text()
    assert "Page 1 of 7." in leader.text() and "tnv" in leader.text()
    await leader.say("/stats")
    text = leader.text()
    assert "Households: 1,350" in text and "Volunteers: 70, active in the last 7 days: 0" in text
    assert "1+20: 1,350 of 1,350 households assigned; 70 volunteers × 20 = 1,400" in text, text
    code, stats = await cli("stats", "--area", "danang.hai-van")
    assert (stats["households"], stats["households_assigned"], stats["volunteers"]) == (1350, 1350, 70)
    assert {c["code"]: c["households"] for c in stats["children"]} == {
        "danang.hai-van.ta-lang": 700, "danang.hai-van.gian-bi": 650}


def run_json_ok(path: Path, *args: str) -> dict:
    result = gocua(path, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
