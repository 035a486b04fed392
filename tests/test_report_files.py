"""Report files as a ward leader sees them: the `/stats` chart (PNG), the CSV and the XLSX exports."""

from __future__ import annotations

import codecs
import csv
import io
import logging
import struct
import tempfile
import warnings
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import matplotlib
import matplotlib.image
import numpy as np
import pytest
from matplotlib.text import Text
from openpyxl import load_workbook

from reports.chart import (
    BAR_COLOUR,
    DONE_COLOUR,
    ChartText,
    TargetBar,
    WeekCount,
    build_progress_figure,
    render_progress_chart,
)
from reports.export_files import VIETNAM, SummarySheet, write_csv, write_xlsx

TEXT = ChartText(
    title="Phường Thuận Hóa · 30 ngày qua",
    weekly_title="Thủ tục hoàn thành mỗi tuần",
    weekly_axis="Số thủ tục",
    target_title="Tiến độ so với mục tiêu",
    no_target="chưa đặt mục tiêu",
    no_data="Chưa có thủ tục nào hoàn thành",
)
LONG_LABEL = "Hộ có người dùng được dịch vụ số trên Cổng dịch vụ công quốc gia và ứng dụng VNeID, mức độ 2"
WEEKS = [WeekCount(f"{day:02d}/11", count) for day, count in [(3, 12), (10, 0), (17, 31), (24, 7)]]
SIXTEEN_WEEKS = [WeekCount(f"{(i * 7) % 28 + 1:02d}/{i // 4 + 8:02d}", (i * 37) % 90) for i in range(16)]
BARS = [
    TargetBar("Hộ đã tiếp cận", 170, 200),
    TargetBar(LONG_LABEL, 60, 200),
    TargetBar("Thủ tục hoàn thành", 250, 100),
    TargetBar("Tài khoản định danh điện tử mức 2", 42, None),
]
# Every Vietnamese letter with every tone mark, upper and lower case.
ALL_VIETNAMESE = "aàáảãạ ăằắẳẵặ âầấẩẫậ eèéẻẽẹ êềếểễệ iìíỉĩị oòóỏõọ ôồốổỗộ ơờớởỡợ uùúủũụ ưừứửữự yỳýỷỹỵ đ"


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def _pixels(png: bytes) -> np.ndarray:
    """RGB values 0-255 of the decoded PNG."""
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    return np.rint(image[:, :, :3] * 255).astype(int)


def _count_colour(pixels: np.ndarray, hex_colour: str) -> int:
    rgb = [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]
    return int(np.all(np.abs(pixels - rgb) <= 2, axis=-1).sum())


def _texts(text: ChartText, weeks: Sequence[WeekCount], bars: Sequence[TargetBar]) -> list[str]:
    """Every text drawn on the chart, as written (wrapped lines joined by newlines)."""
    fig = build_progress_figure(text, weeks, bars)
    fig.draw_without_rendering()  # tick labels get their text when drawn
    return [t.get_text() for t in fig.findobj(Text) if t.get_text()]


def _render_strictly(
    caplog: pytest.LogCaptureFixture, text: ChartText, weeks: Sequence[WeekCount], bars: Sequence[TargetBar]
) -> bytes:
    """Render with every warning an error, and no font complaint in matplotlib's log."""
    with caplog.at_level(logging.WARNING, logger="matplotlib"), warnings.catch_warnings():
        warnings.simplefilter("error")
        png = render_progress_chart(text, weeks, bars)
    complaints = [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING
        or "missing from font" in record.getMessage()
        or "findfont: Font family" in record.getMessage()
    ]
    assert complaints == []
    return png


# --- the chart ---------------------------------------------------------------------------------------


def test_chart_is_a_portrait_png_with_every_vietnamese_glyph(caplog: pytest.LogCaptureFixture) -> None:
    text = ChartText(
        title=f"Phường Thuận Hóa {ALL_VIETNAMESE}",
        weekly_title=ALL_VIETNAMESE.upper(),
        weekly_axis="Số thủ tục",
        target_title="Tiến độ so với mục tiêu",
        no_target="chưa đặt mục tiêu",
        no_data="Chưa có thủ tục nào hoàn thành",
    )
    bars = [*BARS, TargetBar(ALL_VIETNAMESE, 1, 3)]

    assert _png_size(_render_strictly(caplog, text, SIXTEEN_WEEKS, bars))[0] == 900

    png = _render_strictly(caplog, TEXT, SIXTEEN_WEEKS, BARS)
    assert _png_size(png) == (900, 1200)
    pixels = _pixels(png)
    assert pixels.shape == (1200, 900, 3)
    assert _count_colour(pixels, BAR_COLOUR) > 10_000  # the weekly bars and the unfinished targets
    assert _count_colour(pixels, DONE_COLOUR) > 1_000  # the target already reached


def test_the_strict_rendering_does_catch_a_missing_glyph(caplog: pytest.LogCaptureFixture) -> None:
    """Guards the test above: a glyph DejaVu Sans lacks must fail it."""
    chinese = ChartText("進度", "每週", "數", "目標", "無", "無資料")
    with pytest.raises(UserWarning, match="missing from font"):
        _render_strictly(caplog, chinese, WEEKS, BARS)


def test_chart_writes_percentages_values_and_no_target() -> None:
    texts = _texts(TEXT, WEEKS, BARS)

    assert "85%  ·  170 / 200" in texts
    assert "30%  ·  60 / 200" in texts
    assert "250%  ·  250 / 100" in texts  # the real percentage, even though the bar stops at 100%
    assert "42 · chưa đặt mục tiêu" in texts
    assert {"12", "0", "31", "7"} <= set(texts)  # the values above the weekly bars
    assert {"03/11", "10/11", "17/11", "24/11"} <= set(texts)
    assert TEXT.title in texts


def test_chart_caps_a_bar_above_its_target_at_full_width() -> None:
    fig = build_progress_figure(TEXT, WEEKS, [TargetBar("Vượt chỉ tiêu", 250, 100)])
    target_ax = fig.axes[0]  # the target panel is placed first
    widths = sorted(patch.get_width() for patch in target_ax.patches)
    assert widths == [1.0, 1.0]  # the track and the fill: the fill is capped at 100%


def test_chart_percentage_is_floored_so_100_means_reached() -> None:
    texts = _texts(TEXT, WEEKS, [TargetBar("Gần đạt", 199, 200), TargetBar("Đạt", 200, 200)])
    assert "99%  ·  199 / 200" in texts
    assert "100%  ·  200 / 200" in texts


def test_long_labels_are_wrapped_not_cut() -> None:
    title = "Phường Thuận Hóa, Thành phố Huế (trước đây là phường Phú Hội và Vĩnh Ninh) · 30 ngày qua"
    texts = _texts(replace(TEXT, title=title), WEEKS, BARS)

    wrapped_label = next(t for t in texts if t.startswith("Hộ có người dùng"))
    assert "\n" in wrapped_label
    assert wrapped_label.replace("\n", " ") == LONG_LABEL
    wrapped_title = next(t for t in texts if t.startswith("Phường Thuận Hóa, Thành phố Huế"))
    assert "\n" in wrapped_title
    assert wrapped_title.replace("\n", " ") == title


def test_chart_without_any_data_shows_the_message(caplog: pytest.LogCaptureFixture) -> None:
    for weeks in ([], [WeekCount("03/11", 0), WeekCount("10/11", 0)]):
        assert TEXT.no_data in _texts(TEXT, weeks, [])
        png = _render_strictly(caplog, TEXT, weeks, [])
        assert _png_size(png) == (900, 1200)
        pixels = _pixels(png)
        assert _count_colour(pixels, BAR_COLOUR) == 0  # no bar at all
        middle = pixels[500:700, :, :]
        assert (middle < 200).any()  # but the message is written mid-panel


def test_chart_with_no_target_set_at_all(caplog: pytest.LogCaptureFixture) -> None:
    bars = [TargetBar("Hộ đã tiếp cận", 0, None), TargetBar("Thủ tục hoàn thành", 5, 0)]
    assert {"0 · chưa đặt mục tiêu", "5 · chưa đặt mục tiêu"} <= set(_texts(TEXT, [], bars))
    png = _render_strictly(caplog, TEXT, [], bars)
    assert _png_size(png) == (900, 1200)
    assert _count_colour(_pixels(png), BAR_COLOUR) == 0


def test_chart_survives_absurd_input() -> None:
    text = ChartText("Phường " * 80, "\x00\n\t", "", "Mục tiêu", "chưa đặt mục tiêu", "Chưa có")
    weeks = [WeekCount(f"Tuần {i} của năm 2026", 10**6 * i) for i in range(20)]
    bars = [TargetBar("Nhãn " * 30, -5, 7) for _ in range(12)]
    width, height = _png_size(render_progress_chart(text, weeks, bars))
    assert width == 900
    assert 1200 < height <= 2100  # taller for the many target rows, within a limit


def test_dollar_signs_are_shown_as_typed_not_as_mathtext() -> None:
    typed = "$\\frac{1}{2}$ và $x$"
    assert typed in _texts(replace(TEXT, target_title=typed), WEEKS, [TargetBar(typed, 1, 2)])


def test_chart_renders_in_threads_without_touching_global_state() -> None:
    """Two charts drawn at once in threads come out the same as one drawn alone, and
    matplotlib's global settings are left as they were (speed is bench's to print)."""
    before = dict(matplotlib.rcParams)
    expected = render_progress_chart(TEXT, SIXTEEN_WEEKS, BARS)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: render_progress_chart(TEXT, SIXTEEN_WEEKS, BARS), range(2)))
    assert all(result == expected for result in results)
    assert dict(matplotlib.rcParams) == before


# --- CSV ---------------------------------------------------------------------------------------------

HEADER = ["Mã", "Tình nguyện viên", "Hoàn thành lúc", "Lý do", "Ghi chú"]
AT_UTC = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)  # 08:30 in Vietnam
AT_NIGHT = datetime(2026, 11, 20, 20, 15, tzinfo=timezone(timedelta(hours=-5)))  # 08:15 next day


def _records() -> list[list[object]]:
    return [
        [1, "Nguyễn Thị Hương", AT_UTC, 'Đã xong, "đúng hẹn"\nlần 2', None],
        [2, "Trần Văn Đức", AT_NIGHT, '=HYPERLINK("http://evil.example","Bấm vào")', 3.5],
        [3, "+84905123456", None, "-2+3", "@SUM(A1:A2)"],
        [4, "\tTab", datetime(2026, 1, 1, 17, 0), "\rCR", "#N/A"],
        [-5, "bình thường", date(2026, 11, 20), "a=b", True],
    ]


def test_csv_round_trips_vietnamese_times_and_defused_formulas() -> None:
    out = io.BytesIO()

    count = write_csv(out, HEADER, iter([*_records(), [6, "\ud800lẻ", "null\x00byte"]]))

    assert count == 6
    assert not out.closed  # handed back open: the caller sends it
    data = out.getvalue()
    assert data.startswith(codecs.BOM_UTF8)  # Excel then reads the file as UTF-8
    assert b"\r\n" in data
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == HEADER
    assert rows[1] == ["1", "Nguyễn Thị Hương", "2026-11-20 08:30", 'Đã xong, "đúng hẹn"\nlần 2', ""]
    assert rows[2] == [
        "2",
        "Trần Văn Đức",
        "2026-11-21 08:15",
        '\'=HYPERLINK("http://evil.example","Bấm vào")',
        "3.5",
    ]
    assert rows[3] == ["3", "'+84905123456", "", "'-2+3", "'@SUM(A1:A2)"]
    # A naive datetime is taken as UTC, like everything the database returns.
    assert rows[4] == ["4", "'\tTab", "2026-01-02 00:00", "'\rCR", "#N/A"]
    assert rows[5] == ["-5", "bình thường", "2026-11-20", "a=b", "True"]  # numbers are not text
    assert rows[6] == ["6", "?lẻ", "nullbyte"]  # what cannot be encoded is replaced, not fatal


def test_csv_streams_a_large_generator_and_appends_without_a_second_bom() -> None:
    produced = 0

    def rows() -> Iterator[tuple[int, str]]:
        nonlocal produced
        for i in range(50_000):
            produced += 1
            yield i, f"Hộ {i}"

    out = io.BytesIO()
    assert write_csv(out, ["Mã", "Hộ"], rows()) == 50_000
    assert produced == 50_000
    lines = out.getvalue().decode("utf-8-sig").splitlines()
    assert len(lines) == 50_001
    assert lines[-1] == "49999,Hộ 49999"

    appended = io.BytesIO()
    appended.write(b"x\r\n")
    write_csv(appended, ["Mã"], [])
    assert appended.getvalue() == "x\r\nMã\r\n".encode()


# --- XLSX --------------------------------------------------------------------------------------------

SUMMARIES = [
    SummarySheet(
        "Phường Thuận Hóa", [("Hộ đã tiếp cận", 170), ("Tỉ lệ hoàn thành", 0.85), ("Ghi chú", None)]
    ),
    SummarySheet("Phường Thuận Hóa", [("Hộ đã tiếp cận", 3)]),
    SummarySheet("Xã Phú Vang thuộc thành phố Huế mới sáp nhập 2025", [("Hộ đã tiếp cận", 1)]),
    SummarySheet("Tổ 1/2: [Khu A]*?", [("Ghi chú", "=cmd")]),
    SummarySheet("hồ sơ", [("Hộ đã tiếp cận", 0)]),  # same as the records sheet, but for case
    SummarySheet("History", []),  # a name Excel reserves
]
MISSES_HEADER = ["Câu hỏi", "Lúc", "Số lần"]
MISSES = [("Làm CCCD cho trẻ em ở đâu?", AT_UTC, 4), ("=1+1", None, 1)]


def _write_workbook(out: io.BytesIO | Path, rows: Iterable[Sequence[object]] | None = None) -> int:
    return write_xlsx(
        out,
        records_title="Hồ sơ",
        header=HEADER,
        rows=iter(_records()) if rows is None else rows,
        summaries=SUMMARIES,
        misses_title="Câu hỏi chưa trả lời",
        misses_header=MISSES_HEADER,
        misses=iter(MISSES),
    )


def test_xlsx_sheets_in_order_with_valid_unique_names() -> None:
    out = io.BytesIO()
    assert _write_workbook(out) == 5
    assert not out.closed  # handed back open: the caller sends it
    workbook = load_workbook(io.BytesIO(out.getvalue()))

    assert workbook.sheetnames == [
        "Phường Thuận Hóa",
        "Phường Thuận Hóa (2)",
        "Xã Phú Vang thuộc thành phố Huế",
        "Tổ 1-2- (Khu A)",
        "hồ sơ (2)",
        "History (2)",
        "Hồ sơ",
        "Câu hỏi chưa trả lời",
    ]
    for name in workbook.sheetnames:
        assert len(name) <= 31
        assert not set(name) & set("[]:*?/\\")


def test_xlsx_records_header_values_and_vietnam_dates() -> None:
    out = io.BytesIO()
    _write_workbook(out)
    sheet = load_workbook(io.BytesIO(out.getvalue()))["Hồ sơ"]

    assert [cell.value for cell in sheet[1]] == HEADER
    assert all(cell.font.bold for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == "A1:E6"
    assert sheet.column_dimensions["D"].width > sheet.column_dimensions["A"].width >= 8

    rows = [[cell.value for cell in row] for row in sheet.iter_rows(min_row=2)]
    assert rows[0] == [
        1,
        "Nguyễn Thị Hương",
        datetime(2026, 11, 20, 8, 30),
        'Đã xong, "đúng hẹn"\nlần 2',
        None,
    ]
    assert rows[1][2] == datetime(2026, 11, 21, 8, 15)
    assert rows[3][2] == datetime(2026, 1, 2, 0, 0)  # naive: taken as UTC
    assert sheet["C2"].number_format == "dd/mm/yyyy hh:mm"
    assert sheet["C6"].value == datetime(2026, 11, 20, 0, 0)  # a plain date
    assert sheet["C6"].number_format == "dd/mm/yyyy"
    assert rows[4][4] is True
    assert rows[1][4] == 3.5


def test_xlsx_formula_like_text_stays_text() -> None:
    out = io.BytesIO()
    _write_workbook(out)
    workbook = load_workbook(io.BytesIO(out.getvalue()))
    records = workbook["Hồ sơ"]

    reason = records["D3"]
    assert reason.value == '=HYPERLINK("http://evil.example","Bấm vào")'
    assert reason.data_type == "s"  # a string, not a formula
    for coordinate, value in [("B4", "+84905123456"), ("D4", "-2+3"), ("E4", "@SUM(A1:A2)"), ("E5", "#N/A")]:
        assert records[coordinate].value == value
        assert records[coordinate].data_type == "s"
    assert workbook["Tổ 1-2- (Khu A)"]["B1"].value == "=cmd"
    assert workbook["Tổ 1-2- (Khu A)"]["B1"].data_type == "s"
    assert workbook["Câu hỏi chưa trả lời"]["A3"].data_type == "s"
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        sheets = [name for name in archive.namelist() if name.startswith("xl/worksheets/sheet")]
        assert len(sheets) == 8
        assert not any(b"<f>" in archive.read(name) for name in sheets)  # no formula anywhere


def test_xlsx_summary_and_misses_sheets() -> None:
    out = io.BytesIO()
    _write_workbook(out)
    workbook = load_workbook(io.BytesIO(out.getvalue()))

    summary = workbook["Phường Thuận Hóa"]
    assert [[c.value for c in row] for row in summary.iter_rows()] == [
        ["Hộ đã tiếp cận", 170],
        ["Tỉ lệ hoàn thành", 0.85],
        ["Ghi chú", None],
    ]
    assert summary["A1"].font.bold
    assert not summary["B1"].font.bold
    assert summary.column_dimensions["A"].width >= 30
    assert summary.max_column == 2
    assert workbook["History (2)"].max_row == 1  # empty sheet

    misses = workbook["Câu hỏi chưa trả lời"]
    assert [[c.value for c in row] for row in misses.iter_rows()] == [
        MISSES_HEADER,
        ["Làm CCCD cho trẻ em ở đâu?", datetime(2026, 11, 20, 8, 30), 4],
        ["=1+1", None, 1],
    ]
    assert misses["A1"].font.bold
    assert misses.freeze_panes == "A2"


def test_xlsx_hostile_text_is_kept_readable(tmp_path: Path) -> None:
    rows = [
        [1, "null\x00byte\x07bell", "😀 " + "dài " * 10_000, "x" * 40_000, "\ud800lone surrogate"],
    ]
    path = tmp_path / "bao-cao.xlsx"
    assert _write_workbook(path, iter(rows)) == 1
    values = [c.value for c in load_workbook(path)["Hồ sơ"][2]]
    assert values[1] == "nullbytebell"
    assert values[2].startswith("😀 dài dài")
    assert len(values[3]) == 32_767  # Excel's limit for one cell
    assert values[4] == "lone surrogate"


def test_xlsx_streams_fifty_thousand_rows() -> None:
    produced = 0

    def rows() -> Iterator[tuple[int, str]]:
        nonlocal produced
        for i in range(50_000):
            produced += 1
            yield i, f"Hộ {i}"

    out = io.BytesIO()
    count = write_xlsx(
        out,
        records_title="Hồ sơ",
        header=["Mã", "Hộ"],
        rows=rows(),
        summaries=[],
        misses_title="Câu hỏi",
        misses_header=["Câu hỏi"],
        misses=[],
    )

    assert count == produced == 50_000
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        workbook = archive.read("xl/workbook.xml").decode()
        assert workbook.index('name="Hồ sơ"') < workbook.index('name="Câu hỏi"')
        records = archive.read("xl/worksheets/sheet1.xml").decode()
    # Reading 50,000 rows back with openpyxl takes seconds: look at the last row in the XML.
    last_row = records[records.rindex("<row ") : records.rindex("</row>")]
    assert 'r="50001"' in last_row
    assert "<v>49999</v>" in last_row
    assert "<t>Hộ 49999</t>" in last_row


def test_xlsx_failure_leaves_no_temporary_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    def rows() -> Iterator[tuple[int]]:
        yield (1,)
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError, match="database went away"):
        _write_workbook(io.BytesIO(), rows())
    assert list(scratch.iterdir()) == []


def test_vietnam_is_utc_plus_seven() -> None:
    assert AT_UTC.astimezone(VIETNAM).hour == 8
