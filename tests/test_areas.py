"""Official areas (issue 17 §1): `gocua areas import|add-villages|list` as a deployer runs them on
a real SQLite file, and old unit names (before the 2025 reform) typed in the chat."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest

from tests.test_cli import gocua


def run_json(path: Path, *args: str) -> object:
    result = gocua(path, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def danang(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo data first, then Đà Nẵng's official units on top of it."""
    path = tmp_path_factory.mktemp("areas")
    assert gocua(path, "seed", "demo").returncode == 0
    first = run_json(path, "areas", "import", "--province", "48")
    assert isinstance(first, dict) and len(first["created"]) == 91 and first["existing"] == 4
    return path


def test_import_loads_the_94_units_of_da_nang_with_official_names_and_codes(danang: Path) -> None:
    """Đà Nẵng and its 94 wards, communes and special zone, official names and codes, slug codes."""
    tree = run_json(danang, "areas", "list", "--under", "danang")
    assert isinstance(tree, list)
    units = {row["official_code"]: row for row in tree if row["official_code"]}
    assert len(units) == 95  # the city and its 94 units
    assert units["48"]["name"] == "Thành phố Đà Nẵng" and units["48"]["code"] == "danang"
    assert units["20195"] == {"code": "danang.hai-van", "name": "Phường Hải Vân", "level": "ward",
                              "official_code": "20195", "households": 5}
    assert units["20314"]["name"] == "Phường Hòa Xuân" and units["20314"]["level"] == "ward"
    assert units["20458"]["name"] == "Xã Avương" and units["20458"]["level"] == "commune"
    assert {row["level"] for row in tree} >= {"city", "ward", "commune", "special_zone", "village"}
    assert all(row["code"].startswith("danang") for row in tree)


def test_a_second_import_changes_nothing_and_demo_units_are_reused(danang: Path) -> None:
    """Running the import again creates nothing; the demo's A Vương (a-vuong) was reused by its
    official code."""
    again = run_json(danang, "areas", "import", "--province", "48")
    assert again == {"created": [], "existing": 95}
    tree = run_json(danang, "areas", "list", "--under", "danang")
    assert isinstance(tree, list)
    assert [r["code"] for r in tree if r["official_code"] == "20458"] == ["danang.a-vuong"]
    assert len({r["code"] for r in tree}) == len(tree)


def test_a_hand_made_unit_with_the_same_code_gets_its_official_code(tmp_path: Path) -> None:
    """Only some wards: a unit already there under the same slug is filled in, not duplicated."""
    assert gocua(tmp_path, "db", "upgrade").returncode == 0
    import sqlite3

    with sqlite3.connect(tmp_path / "cli.db") as db:
        db.execute("INSERT INTO areas (code, name, level) VALUES ('danang', 'Đà Nẵng', 'city')")
    out = run_json(tmp_path, "areas", "import", "--province", "48", "--wards", "20195,20314")
    assert out == {"created": ["danang.hai-van", "danang.hoa-xuan"], "existing": 1}
    tree = run_json(tmp_path, "areas", "list")
    assert isinstance(tree, list)
    assert [(r["code"], r["official_code"]) for r in tree] == [
        ("danang", "48"), ("danang.hai-van", "20195"), ("danang.hoa-xuan", "20314")]


@pytest.mark.parametrize(("args", "message"), [
    (["--province", "3"], "no province with code 3"),
    (["--province", "48", "--wards", "99999"], "no ward 99999"),
    (["--province", "48", "--wards", "hai-van"], "--wards must be official ward codes"),
])
def test_unknown_codes_are_refused_with_a_message(tmp_path: Path, args: list[str], message: str) -> None:
    """A province or ward the official list does not have: exit 2 and a one-line reason."""
    result = gocua(tmp_path, "areas", "import", *args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_villages_from_an_xlsx_under_a_ward_named_by_its_old_name(danang: Path, tmp_path: Path) -> None:
    """add-villages finds Hải Vân from "xã Hòa Bắc, huyện Hòa Vang", adds new villages once, sets targets."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (["Thôn/Tổ", "Số hộ"], ["Thôn Tà Lang", 300], ["Giàn Bí", None], ["Thôn Phò Nam", 120],
                [None, None], ["Tổ dân phố Nam Yên", 80]):
        sheet.append(row)
    book.save(tmp_path / "villages.xlsx")
    first = run_json(danang, "areas", "add-villages", "--ward", "xã Hòa Bắc, huyện Hòa Vang",
                     str(tmp_path / "villages.xlsx"))
    assert first == {"ward": "danang.hai-van",
                     "created": ["danang.hai-van.pho-nam", "danang.hai-van.nam-yen"], "existing": 2,
                     "targets_changed": ["danang.hai-van.ta-lang"]}
    again = run_json(danang, "areas", "add-villages", "--ward", "hai-van", str(tmp_path / "villages.xlsx"))
    assert again == {"ward": "danang.hai-van", "created": [], "existing": 4, "targets_changed": []}
    villages = run_json(danang, "areas", "list", "--under", "danang.hai-van")
    assert isinstance(villages, list)
    assert [r["name"] for r in villages] == ["Phường Hải Vân", "Thôn Giàn Bí", "Thôn Phò Nam",
                                             "Thôn Tà Lang", "Tổ dân phố Nam Yên"]


def test_add_villages_refuses_a_file_that_is_not_a_spreadsheet(danang: Path, tmp_path: Path) -> None:
    """A PNG sent as the village list: a clear message, no traceback, nothing added."""
    junk = tmp_path / "villages.xlsx"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    result = gocua(danang, "areas", "add-villages", "--ward", "danang.hai-van", str(junk))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "bảng tính" in result.stderr  # GOCUA_LOCALE is Vietnamese by default


def test_list_prints_the_tree_indented(danang: Path) -> None:
    """The text listing shows each unit under its parent with its official code and households."""
    result = gocua(danang, "areas", "list", "--under", "danang.hai-van")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Phường Hải Vân [20195]  danang.hai-van  (ward, 5 households)")
    assert any(line.startswith("  Thôn Tà Lang  danang.hai-van.ta-lang") for line in lines)


async def test_a_leader_types_an_old_commune_name_and_sees_her_ward(demo, people) -> None:
    """/stats with "xã Hòa Bắc, huyện Hòa Vang" shows Hải Vân, the ward Hòa Bắc became in 2025."""
    _, lan, _ = people
    await lan.say("/stats xã Hòa Bắc, huyện Hòa Vang")
    assert "Hải Vân" in lan.text() and "There is no area" not in lan.text()


def test_a_code_taken_by_another_official_unit_gets_the_official_code_added(tmp_path: Path) -> None:
    """A slug already used by a unit with another official code is not reused: the new unit's
    code carries its official code."""
    assert gocua(tmp_path, "db", "upgrade").returncode == 0
    import sqlite3

    with sqlite3.connect(tmp_path / "cli.db") as db:
        db.execute("INSERT INTO areas (code, name, level, official_code) "
                   "VALUES ('danang.hai-van', 'Hải Vân cũ', 'ward', '20194')")
    out = run_json(tmp_path, "areas", "import", "--province", "48", "--wards", "20195")
    assert out == {"created": ["danang", "danang.hai-van-20195"], "existing": 0}
