"""The README and docs/ stand on their own in a fresh clone: no link or path leaves the
repository, every relative link names a file that exists, and the two set-up commands come first."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_scale_faults import RESTART_OPT_IN, _can_restart_postgres

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
PARENT_PATH = re.compile(r"(?:^|[\s(\"'`])(\.\./[^\s)\"'`]*)")


def relative_targets(text: str) -> list[str]:
    """Link targets that are not web or mail addresses, without their #fragment."""
    found = LINK.findall(text)
    return [t.split("#", 1)[0] for t in found
            if not re.match(r"^[a-z][a-z0-9+.-]*:", t) and t.split("#", 1)[0]]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_link_or_path_leaves_the_repository(doc: Path) -> None:
    """Every relative link resolves to an existing file inside the repository; no text points above it."""
    text = doc.read_text(encoding="utf-8")
    for target in relative_targets(text):
        resolved = (doc.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{doc.name}: {target} leaves the repository"
        assert resolved.exists(), f"{doc.name}: {target} does not exist"
    outside = PARENT_PATH.findall(text) + [span for span in CODE_SPAN.findall(text) if "../" in span]
    assert not outside, f"{doc.name} points outside the repository: {outside}"


def test_the_checker_catches_the_old_design_link() -> None:
    """The check above would have caught the README's old pointer to ../shared/design.md."""
    assert PARENT_PATH.findall("See `../shared/design.md` for the architecture.")
    assert relative_targets("[design](../shared/design.md) and [bot](https://t.me/x)") == [
        "../shared/design.md"]


def test_readme_starts_with_exactly_the_two_set_up_commands() -> None:
    """The README's first code block is `make demo` and `make test`, nothing else."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = text.split("```", 2)[1]
    commands = [line.split("#", 1)[0].strip() for line in first_block.splitlines()[1:] if line.strip()]
    assert commands == ["make demo", "make test"]


def test_the_postgres_restart_test_is_opt_in(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without GOCUA_TEST_PG_RESTART=1 the restart test never restarts a server; .ci/run opts in."""
    monkeypatch.delenv(RESTART_OPT_IN, raising=False)
    reason = _can_restart_postgres("postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    assert reason is not None and RESTART_OPT_IN in reason
    monkeypatch.setenv(RESTART_OPT_IN, "0")
    assert _can_restart_postgres("postgresql+asyncpg://postgres@127.0.0.1:5432/test") is not None
    assert f"export {RESTART_OPT_IN}=1" in (ROOT / ".ci" / "run").read_text()
    assert RESTART_OPT_IN in (ROOT / "README.md").read_text()
