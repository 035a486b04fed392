"""`gocua stats`, `gocua target set`, `gocua export` and `gocua seed synthetic` as a user runs them:
real subprocesses on a real SQLite file; the JSON of `gocua stats` is the design.md §4 contract."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import openpyxl
import pytest

from tests.test_cli import gocua


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli-reports")
    assert gocua(path, "seed", "demo").returncode == 0
    result = gocua(path, "seed", "synthetic", "--households", "300", "--seed", "3", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["households"] == 300
    return path


def stats(path: Path, *args: str) -> dict:
    result = gocua(path, "stats", *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_stats_of_everything_has_the_contract_keys_and_top_level_children(synthetic: Path) -> None:
    everything = stats(synthetic)
    for key in ("area", "households", "households_reached", "households_digital_ready",
                "residents_supported", "volunteers", "flows", "children"):
        assert key in everything, key
    assert set(everything["area"]) >= {"code", "name", "level"}
    assert {c["code"] for c in everything["children"]} == {"danang", "hue"}
    assert everything["households"] == 300 + sum(c["households"] for c in everything["children"]
                                                 if c["code"] == "danang")
    for child in everything["children"]:
        assert set(child) >= {"code", "name", "households", "households_reached"}
    for figures in everything["flows"].values():
        assert set(figures) >= {"started", "completed", "blocked"}


def test_stats_drill_down_adds_up(synthetic: Path) -> None:
    city = stats(synthetic, "--area", "hue")
    assert city["area"]["code"] == "hue" and city["households"] == 300
    assert city["households_reached"] == sum(c["households_reached"] for c in city["children"])
    assert 0 < city["households_reached"] <= 300
    assert city["households_digital_ready"] <= city["households"]
    assert city["volunteers"] >= 300 // 25
    ward = city["children"][0]
    below = stats(synthetic, "--area", ward["code"])
    assert below["households"] == ward["households"]
    assert all(c["code"].startswith(ward["code"] + ".") for c in below["children"])


def test_since_counts_activity_from_that_day(synthetic: Path) -> None:
    all_time = stats(synthetic, "--area", "hue")
    future = stats(synthetic, "--area", "hue", "--since", "2099-01-01")
    assert future["households"] == all_time["households"]
    assert future["households_reached"] == 0
    assert all(f["started"] == 0 and f["completed"] == 0 for f in future["flows"].values())


def test_stats_text_and_drop_off(synthetic: Path) -> None:
    result = gocua(synthetic, "stats", "--area", "hue", "--lang", "vi")
    assert result.returncode == 0, result.stderr
    assert "Hộ gia đình" in result.stdout
    result = gocua(synthetic, "stats", "--area", "hue", "--flow", "vneid", "--json")
    steps = json.loads(result.stdout)["steps"]
    assert steps[0]["step"] == "has_chip" and steps[0]["reached"] >= steps[0]["passed"] > 0


@pytest.mark.parametrize(("args", "says"), [
    (["stats", "--since", "29/11/2026"], "YYYY-MM-DD"),
    (["stats", "--area", "nowhere"], "no area with code 'nowhere'"),
    (["stats", "--flow", "nothing"], "no procedure 'nothing'"),
    (["target", "set", "--area", "hue"], "--households"),
    (["target", "set", "--area", "hue", "--households", "-5"], "from 0 to"),
    (["export", "--area", "hue", "--format", "csv", "--out", "/nonexistent/dir/x.csv"], "does not exist"),
    (["seed", "synthetic", "--households", "10"], "already"),
])
def test_bad_values_get_one_clear_line(synthetic: Path, args: list[str], says: str) -> None:
    result = gocua(synthetic, *args)
    assert result.returncode == 2
    assert result.stderr.startswith("gocua: error: ") and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_target_set_shows_in_stats(synthetic: Path) -> None:
    result = gocua(synthetic, "target", "set", "--area", "danang.hai-van", "--households", "25",
                   "--digital-ready", "12")
    assert result.returncode == 0, result.stderr
    figures = stats(synthetic, "--area", "danang.hai-van")
    assert figures["targets"] == {"households": 25, "digital_ready": 12}


def test_exports_csv_and_xlsx_are_audited(synthetic: Path, tmp_path: Path) -> None:
    city = stats(synthetic, "--area", "hue")
    out = tmp_path / "hue.csv"
    result = gocua(synthetic, "export", "--area", "hue", "--format", "csv", "--out", str(out))
    assert result.returncode == 0, result.stderr
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["Khu vực", "Hộ", "Thủ tục", "Bước", "Kết quả", "Câu trả lời", "Lý do",
                       "Tình nguyện viên", "Thời gian"]
    assert len(rows) > city["households_reached"]
    assert all(row[1].startswith("HUE-") for row in rows[1:])

    book_path = tmp_path / "hue.xlsx"
    result = gocua(synthetic, "export", "--area", "hue", "--format", "xlsx", "--out", str(book_path),
                   "--lang", "en", "--since", "2000-01-01")
    assert result.returncode == 0, result.stderr
    book = openpyxl.load_workbook(book_path, read_only=True)
    assert book.sheetnames[0] == city["area"]["name"]
    assert len(book.sheetnames) == 1 + len(city["children"]) + 2
    assert book.sheetnames[-2:] == ["Step records", "Unanswered questions"]
    assert sum(1 for _ in book["Step records"].iter_rows(values_only=True)) == len(rows)
    database = sqlite3.connect(synthetic / "cli.db")
    audits = database.execute("SELECT target, details FROM audit_log WHERE action = 'export'").fetchall()
    assert [(target, json.loads(details)["format"]) for target, details in audits][-2:] == [
        ("area:hue", "csv"), ("area:hue", "xlsx")]


def test_export_without_area_exports_everything(synthetic: Path, tmp_path: Path) -> None:
    """`gocua export` without --area writes every area's records, like `gocua stats` without it."""
    everything = stats(synthetic)
    out = tmp_path / "all.xlsx"
    result = gocua(synthetic, "export", "--format", "xlsx", "--out", str(out), "--lang", "en")
    assert result.returncode == 0, result.stderr
    assert "all areas" in result.stdout
    book = openpyxl.load_workbook(out, read_only=True)
    assert book.sheetnames[0] == "All areas"
    assert {c["name"] for c in everything["children"]} <= set(book.sheetnames)
    households = {row[1] for row in book["Step records"].iter_rows(min_row=2, values_only=True)}
    assert any(code.startswith("HUE-") for code in households)
    assert len(households) == everything["households_reached"]
    database = sqlite3.connect(synthetic / "cli.db")
    [(target,)] = database.execute(
        "SELECT target FROM audit_log WHERE action = 'export' ORDER BY id DESC LIMIT 1").fetchall()
    assert target == "area:*"


def _fingerprint(path: Path) -> tuple[str, int]:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns


def test_read_only_commands_on_an_old_schema_say_to_upgrade_and_change_nothing(tmp_path: Path) -> None:
    """`gocua stats` and `gocua export` do not migrate: on a database at an older schema (or none
    at all) they say, in one translated line, to run `gocua db upgrade`, exit non-zero and leave
    the file as it was."""
    from db.migrate import upgrade_sync

    assert gocua(tmp_path, "stats", "--json").returncode != 0
    assert not (tmp_path / "cli.db").exists()  # no database is created either
    upgrade_sync(f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}", "0008_offered_prompt")
    database = tmp_path / "cli.db"
    before = _fingerprint(database)
    for args, lang, says in (
        (["stats", "--json"], "en", "run `gocua db upgrade` first"),
        (["stats", "--area", "danang"], "vi", "hãy chạy `gocua db upgrade`"),
        (["export", "--format", "csv", "--out", str(tmp_path / "out.csv")], "en", "gocua db upgrade"),
    ):
        result = gocua(tmp_path, *args, env={"GOCUA_LOCALE": lang})
        assert result.returncode == 2, result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("gocua: error:") and says in lines[0], result.stderr
    assert _fingerprint(database) == before
    assert not (tmp_path / "out.csv").exists()
    version = sqlite3.connect(database).execute("SELECT version_num FROM alembic_version").fetchone()
    assert version == ("0008_offered_prompt",)


def test_stats_works_on_a_read_only_database_file(synthetic: Path, tmp_path: Path) -> None:
    """A copy of the database its user may only read: `gocua stats` answers (JSON, text,
    drop-off) and writes nothing to it (no migration, no flow versions, no ANALYZE)."""
    import os
    import stat

    copy = tmp_path / "cli.db"
    with sqlite3.connect(synthetic / "cli.db") as source, sqlite3.connect(copy) as target:
        source.backup(target)
    with sqlite3.connect(copy) as database:
        database.execute("PRAGMA journal_mode=WAL")
    expected = stats(synthetic, "--area", "hue")
    os.chmod(copy, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    before = _fingerprint(copy)
    try:
        assert stats(tmp_path, "--area", "hue") == expected
        text = gocua(tmp_path, "stats", "--area", "hue", "--lang", "en")
        assert text.returncode == 0 and "hue" not in text.stderr, text.stderr
        drop_off = gocua(tmp_path, "stats", "--flow", "vneid", "--json")
        assert drop_off.returncode == 0 and json.loads(drop_off.stdout)["steps"], drop_off.stderr
        assert _fingerprint(copy) == before
    finally:
        os.chmod(copy, stat.S_IRUSR | stat.S_IWUSR)
