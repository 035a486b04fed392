"""The console channel as a person uses it: charts and exports land as files they can open, and
what was sent to them while their chat was closed is shown when it starts."""

from __future__ import annotations

import io
import re
from pathlib import Path

import openpyxl
import pytest

from bot.channels.console import run_console, save_attachment
from bot.seed_demo import seed_demo
from db.repo.notices import add_notices
from handlers.types import Attachment, Button, Reply
from tests.test_cli import gocua

FILE_LINE = re.compile(r"^\((photo|document): (.+)\)$", re.MULTILINE)
VISIT = "/lang en\n/visit\nMy VNeID password is lost\nPhường Hải Vân\nThôn Giàn Bí\nSkip\nSkip\n"


@pytest.fixture
def seeded(demo_cli: Path) -> Path:
    return demo_cli


def files_shown(stdout: str) -> dict[str, Path]:
    return {kind: Path(path) for kind, path in FILE_LINE.findall(stdout)}


def test_a_leader_on_the_console_gets_the_chart_and_the_export_as_files(seeded: Path) -> None:
    """`(photo: PATH)` and `(document: PATH)` name files under GOCUA_OUT_DIR: a PNG and an XLSX."""
    out = seeded / "out"
    result = gocua(seeded, "chat", "--user", "lan", stdin="/lang en\n/stats\n📈 Chart\n/export\n",
                   env={"GOCUA_OUT_DIR": str(out)})
    assert result.returncode == 0, result.stderr
    assert "bytes)" not in result.stdout
    shown = files_shown(result.stdout)
    assert set(shown) == {"photo", "document"}, result.stdout
    photo, document = shown["photo"], shown["document"]
    assert photo.parent == out and photo.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert document.parent == out and document.suffix == ".xlsx"
    assert "Step records" in openpyxl.load_workbook(document, read_only=True).sheetnames


async def test_files_go_to_data_out_by_default_and_never_replace_another(app, tmp_path, monkeypatch) -> None:
    """Without GOCUA_OUT_DIR the chart is written to ./data/out/; drawing it again keeps both files."""
    await seed_demo(app)
    monkeypatch.chdir(tmp_path)
    stdout = io.StringIO()
    script = io.StringIO("/lang en\n/stats\n📈 Chart\n⬅️ Back\n📈 Chart\n")
    await run_console(app, user="lan", lang="en", stdin=script, stdout=stdout)
    paths = [Path(path) for kind, path in FILE_LINE.findall(stdout.getvalue()) if kind == "photo"]
    assert len(paths) == 2 and paths[0] != paths[1], stdout.getvalue()
    for path in paths:
        assert path.parent == Path("data/out") and (tmp_path / path).read_bytes().startswith(b"\x89PNG")


def test_save_attachment_keeps_the_name_inside_the_folder(tmp_path: Path) -> None:
    """A file name is written inside the out folder, whatever it says, and never over another file."""
    first = save_attachment(tmp_path, Attachment("document", "../../etc/x.csv", b"a"))
    second = save_attachment(tmp_path, Attachment("document", "x.csv", b"b"))
    assert first == tmp_path / "x.csv" and second == tmp_path / "x-2.csv"
    assert (first.read_bytes(), second.read_bytes()) == (b"a", b"b")


def test_a_visit_request_waits_for_the_volunteer_and_the_answer_for_the_resident(seeded: Path) -> None:
    """A console volunteer sees a visit request made while their chat was closed when it starts
    (and its word, "nhận 1", takes it); the resident sees who will help when theirs starts;
    neither sees the other's message in their own chat."""
    resident = gocua(seeded, "chat", "--user", "tu", stdin=VISIT)
    assert "was sent to 1 volunteer" in resident.stdout, resident.stdout
    assert "My VNeID password is lost" not in resident.stdout.split("/cancel)", 1)[1]
    assert "(→" not in resident.stdout
    volunteer = gocua(seeded, "chat", "--user", "an", stdin="nhận 1\n")
    away, request, taken = volunteer.stdout.split("\n\n", 2)
    assert away == "Trong lúc bạn vắng mặt:"  # what waited, under a header in the user's language
    assert "#1" in request and "“My VNeID password is lost”" in request and "NHẬN 1" in request
    assert "[1] " not in request
    assert "#1" in taken and "(→" not in volunteer.stdout
    again = gocua(seeded, "chat", "--user", "an", stdin="")
    assert again.stdout.strip() == "", "a notice was shown twice"
    told = gocua(seeded, "chat", "--user", "tu", stdin="")
    assert "Nguyễn Văn An" in told.stdout and "#1" in told.stdout


async def test_a_notice_from_another_channel_is_shown_when_the_console_chat_starts(app, clock) -> None:
    """A notice stored for a console user by an update on another channel is shown once, with its options."""
    await seed_demo(app)
    notice = Reply("Hello from Telegram", buttons=(Button("Take it", "x:1"),))
    async with app.db.transaction() as session:
        await add_notices(session, [("console", "binh", notice.to_json())], clock())
    stdout = io.StringIO()
    await run_console(app, user="binh", lang="en", stdin=io.StringIO(""), stdout=stdout)
    assert stdout.getvalue() == "While you were away:\n\nHello from Telegram\n[1] Take it\n\n"
    stdout = io.StringIO()
    await run_console(app, user="binh", lang="en", stdin=io.StringIO(""), stdout=stdout)
    assert stdout.getvalue() == ""
