"""The `gocua` command as a user runs it: real subprocesses on a real SQLite file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.process_env import clean_env

ROOT = Path(__file__).resolve().parent.parent


def gocua(tmp_path: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full_env = clean_env()
    full_env["GOCUA_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], input=stdin, capture_output=True, text=True,
        cwd=ROOT, env=full_env, timeout=timeout,
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli")
    result = gocua(path, "seed", "demo", "--json")
    assert result.returncode == 0, result.stderr
    return path


@pytest.mark.parametrize(
    ("env", "args"),
    [
        ({"GOCUA_DATABASE_URL": "oracle://nope"}, ["db", "upgrade"]),
        ({"GOCUA_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"}, ["db", "upgrade"]),
        ({}, ["invite", "create", "--role", "volunteer", "--area", "nowhere"]),
    ],
)
def test_errors_are_one_clear_line(tmp_path, env, args):
    """A bad database URL, an unreachable database or an unknown area: one line, non-zero exit."""
    result = gocua(tmp_path, *args, env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("gocua: error:"), result.stderr


def test_seed_demo_is_idempotent_and_prints_invites(seeded):
    """Seeding twice keeps one copy of everything and offers the same unused invite codes."""
    first = json.loads(gocua(seeded, "seed", "demo", "--json").stdout)
    second = json.loads(gocua(seeded, "seed", "demo", "--json").stdout)
    assert first == second
    assert {"danang.hai-van", "danang.hoa-xuan", "danang.a-vuong",
            "danang.hai-van.ta-lang", "danang.hai-van.gian-bi"} <= set(first["areas"])
    assert all(re.fullmatch(r"\w{4}-\w{4}-\w{4}", inv["code"]) for inv in first["invites"])


def test_invite_create_json_and_claim_on_the_console(seeded):
    """An invite made on the command line turns a console user into a volunteer once."""
    made = gocua(seeded, "invite", "create", "--role", "volunteer", "--area", "danang.hoa-xuan", "--json")
    code = json.loads(made.stdout)["code"]
    chat = gocua(seeded, "chat", "--user", "newbie", "--lang", "en",
                 stdin=f"/join {code}\n/help\n")
    assert "You are now a volunteer in Phường Hòa Xuân" in chat.stdout
    assert "/households" in chat.stdout
    again = gocua(seeded, "chat", "--user", "someone", "--lang", "en", stdin=f"/start {code}\n")
    assert "not valid" in again.stdout


def test_console_renders_numbered_buttons_and_accepts_label(seeded):
    """The console prints options as `[1] Label` and takes the label as the answer."""
    result = gocua(seeded, "chat", "--user", "an", stdin="/lang\nEnglish\n/lang\n1\n")
    assert "[1] Tiếng Việt\n[2] English" in result.stdout
    assert "Language set to English." in result.stdout
    assert "Đã chuyển sang Tiếng Việt." in result.stdout
    assert result.returncode == 0 and "Traceback" not in result.stderr


def test_console_speaks_vietnamese_by_default(seeded):
    """A new console user is greeted in Vietnamese."""
    result = gocua(seeded, "chat", "--user", "ba-tu", stdin="/start\n")
    assert "Xin chào ông/bà ba-tu!" in result.stdout


def test_python_dash_m_bot_and_help(tmp_path):
    """`python -m bot --help` lists the commands."""
    result = gocua(tmp_path, "--help")
    assert result.returncode == 0
    for word in ("db", "seed", "invite", "chat", "run"):
        assert word in result.stdout


def test_faq_ask_json_and_one_question_per_line(tmp_path):
    """`gocua faq ask` prints the contract's JSON; with `-` one object per input line, and an
    out-of-scope question gets id and answer null."""
    one = gocua(tmp_path, "faq", "ask", "lam khai sinh can gi", "--json")
    found = json.loads(one.stdout)
    assert found["id"] == "birth.documents" and found["score"] > 0.5
    assert "giấy chứng sinh" in found["answer"]
    many = gocua(tmp_path, "faq", "ask", "-", "--lang", "en",
                 stdin="quen mat khau vneid\n\ngia vang hom nay bao nhieu\n")
    rows = [json.loads(line) for line in many.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["vneid.forgot_password", None]
    assert rows[1]["answer"] is None and isinstance(rows[1]["score"], float)
    assert "Forgot password" in rows[0]["answer"] or "password" in rows[0]["answer"]
