"""The dead-end explorer (issue 12 §1): GoCua never leaves a person without a way forward.

For each role (resident `mai`, volunteer `an`, leader `lan`, `admin`) in Vietnamese and English,
the console conversation on the demo seed is explored breadth-first: from the start, every
command of /help; from every state, the options offered (typed as their numbers, as console
and Zalo users do), and hostile answers: a number not offered, free text, a part of a label,
an empty line, /cancel. Every answer is checked:

- it shows the way forward: one of its replies offers options, or names a /command, or the bot
  is now waiting for a typed answer to the question it just asked (a dialog is open);
- an answer that picks nothing at a menu (a number not offered, free text, an empty line)
  gets options again: the menu is never wiped;
- it is never the "something went wrong" apology, and a typed answer is never "out of date";
- a mistyped command (/hlep), and /help, leave the dialog as it was, and a menu's options come
  again;
- from every state, /start comes back to the greeting with no dialog left open (a way back
  without /cancel).

Each explored state is a snapshot of the SQLite database (the backup API, in memory), restored
before each answer sent from it, so one app serves the whole exploration. Bounded (depth,
states, options per menu) so that it runs in seconds; charts and file exports, which have their
own tests, are not pressed.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import sqlite3
import tempfile
from collections import deque
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import open_app
from bot.config import Settings
from bot.seed_demo import seed_demo
from handlers.deferred import RENDER_FAILED
from handlers.i18n import translator
from handlers.pipeline import HANDLER_FAILED
from handlers.router import OUT_OF_DATE
from handlers.types import Reply
from tests.chat import Talker
from tests.conftest import FakeClock

ROLES = {"mai": "resident", "an": "volunteer", "lan": "leader", "admin": "admin"}
MAX_DEPTH = 7
# Explored states per role: English repeats the Vietnamese paths' shapes, so fewer.
MAX_STATES = {"vi": 40, "en": 16}
MAX_OPTIONS = 5  # options pressed per menu: the first ones and the last one
COMMAND = re.compile(r"(?<![\w/])/[a-z]+\b")
HEAVY = re.compile(r"^st:\d+:\w+:(c|x:)")  # a chart or a file: drawn/written after the commit
QUESTIONS = {"vi": "làm sao để có tài khoản VNeID mức 2", "en": "how do I get a VNeID level 2 account"}
FREE_TEXT = "Nguyễn Văn Thử"
TYPO = "/hlep"  # a mistyped command: it must not end what the person was doing
HELP = "/help"  # asked in passing: it must not end what the person was doing either


@pytest.fixture(scope="module")
def seeded_file(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo seed on a migrated SQLite file, made once for the module."""
    path = tmp_path_factory.mktemp("explorer") / "seeded.db"
    shutil.copy(sqlite_template, path)

    async def seed() -> None:
        app = await open_app(Settings(database_url=f"sqlite+aiosqlite:///{path}"), migrate=False,
                             clock=FakeClock())
        try:
            await seed_demo(app)
        finally:
            await app.close()

    asyncio.run(seed())
    return path


@pytest.fixture
def scratch(tmp_path: Path) -> Iterator[Path]:
    """A directory for the explored database: in memory (/dev/shm) where there is one, since
    every answer restores a snapshot into it."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="gocua-explore-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- snapshots of the database ---------------------------------------------------------------

def snapshot(path: Path) -> sqlite3.Connection:
    memory = sqlite3.connect(":memory:")
    with closing(sqlite3.connect(path)) as live:
        live.backup(memory)
    return memory


def restore(path: Path, saved: sqlite3.Connection) -> None:
    live = sqlite3.connect(path)
    try:
        saved.backup(live)
    finally:
        live.close()


# -- what is checked ---------------------------------------------------------------------------

def names_a_command(text: str) -> bool:
    """Names a command to go on with: /cancel alone only stops (and "choose with a button (or
    /cancel)" with no button is the dead end this test is about)."""
    return any(c != "/cancel" for c in COMMAND.findall(text))


def shows_the_way(replies: list[Reply], dialog_open: bool) -> bool:
    """Options offered, a /command named, or a typed answer awaited for the question just asked."""
    return any(r.buttons or names_a_command(r.text) for r in replies) or (bool(replies) and dialog_open)


def signature(replies: list[Reply], dialog: str | None) -> tuple:
    """What a state looks like to the user: its options (or its question when it has none),
    numbers blurred, so that pages of the same kind (two households) count as one state."""
    options = offered(replies)
    if options:
        shape = tuple(re.sub(r"\d+", "#", label) for label, _ in options)
    else:
        shape = (re.sub(r"\d+", "#", replies[-1].text[:60]),) if replies else ()
    return (dialog, shape)


def offered(replies: list[Reply]) -> list[tuple[str, str]]:
    for reply in reversed(replies):
        if reply.buttons and reply.to is None:
            return [(b.label, b.payload) for b in reply.buttons]
    return []


def label_part(options: list[tuple[str, str]]) -> str | None:
    """A distinctive word of one label, as someone types a short place or person name."""
    words = [[w for w in re.findall(r"\w+", label) if len(w) >= 3 and not w.isdigit()]
             for label, _ in options]
    for i, mine in enumerate(words):
        others = {w.lower() for j, theirs in enumerate(words) if j != i for w in theirs}
        for word in sorted(mine, key=len, reverse=True):
            if word.lower() not in others:
                return word.lower()
    return None


@dataclass
class State:
    path: tuple[str, ...]
    replies: list[Reply]
    saved: sqlite3.Connection
    conversation: dict  # the chat's dialog state


class Explorer:
    def __init__(self, app, path: Path, user: str, lang: str) -> None:
        self.app, self.path, self.lang = app, path, lang
        self.talker = Talker(app, user, lang=lang)
        t = translator(lang)
        self.failed_texts = {t(HANDLER_FAILED), t(RENDER_FAILED)}
        self.out_of_date = t(OUT_OF_DATE)
        self.findings: list[str] = []
        self.seen: set[tuple] = set()
        self.answers = 0

    def conversation_state(self) -> dict:
        with closing(sqlite3.connect(self.path)) as db:
            row = db.execute("SELECT state FROM conversations WHERE channel = 'console' AND chat_id = ?",
                             (self.talker.user,)).fetchone()
        return json.loads(row[0] or "{}") if row else {}

    async def send(self, state: State, text: str) -> tuple[list[Reply], dict]:
        restore(self.path, state.saved)
        # The core alone (no "sent" marks): nothing here is delivered twice.
        replies = await self.app.core.handle(self.talker.incoming(text=text))
        self.answers += 1
        after = self.conversation_state()
        dialog = after.get("dialog")
        where = " → ".join((*state.path, repr(text)))
        shown = " | ".join(r.text[:90] for r in replies)
        if not shows_the_way(replies, dialog is not None):
            self.findings.append(f"no way forward: {where}: {shown!r}")
        elif dialog and after == state.conversation and offered(state.replies) and not offered(replies):
            # Still on the same question, which had options: they must come again.
            self.findings.append(f"options not asked again: {where}: {shown!r}")
        if any(r.text in self.failed_texts for r in replies):
            self.findings.append(f"something went wrong: {where}")
        if any(r.text == self.out_of_date for r in replies):
            self.findings.append(f"typed answer called out of date: {where}: {shown!r}")
        return replies, after

    @staticmethod
    def strays(state: State) -> set[str]:
        """Answers at a menu that pick nothing: the menu must stay (asked again)."""
        options = offered(state.replies)
        return {str(len(options) + 1), "xyzzy qwerty", "", "1.5", TYPO} if options else set()

    def answers_at(self, state: State, commands: list[str]) -> list[tuple[str, bool]]:
        """(text, explore further?) for each answer tried at `state`."""
        options = [(label, p) for label, p in offered(state.replies)]
        tries: list[tuple[str, bool]] = []
        if not state.path:
            tries += [(c, True) for c in commands] + [(QUESTIONS[self.lang], True)]
        picks = [i for i in range(len(options)) if not HEAVY.match(options[i][1])]
        picks = picks[: MAX_OPTIONS - 1] + picks[MAX_OPTIONS - 1:][-1:]
        tries += [(str(i + 1), True) for i in picks]
        part = label_part(options)
        hostile = [str(len(options) + 1), "xyzzy qwerty", "", "/cancel", "1.5", TYPO, HELP]
        if part:
            hostile.append(part)
        tries += [(h, h in ("xyzzy qwerty", part)) for h in hostile]
        tries.append((FREE_TEXT, True))
        return tries

    async def way_back(self, state: State) -> None:
        replies, after = await self.send(state, "/start")
        dialog = after.get("dialog")
        if dialog is not None or not any(names_a_command(r.text) for r in replies):
            self.findings.append(f"/start does not come back: {' → '.join(state.path)} (dialog {dialog})")

    async def run(self, root: State, commands: list[str]) -> None:
        queue = deque([root])
        explored = 0
        while queue and explored < MAX_STATES[self.lang]:
            state = queue.popleft()
            explored += 1
            strays = self.strays(state)
            for text, further in self.answers_at(state, commands):
                replies, after = await self.send(state, text)
                dialog = after.get("dialog")
                if text in (TYPO, HELP) and after != state.conversation:
                    self.findings.append(f"{text} changed the dialog: "
                                         f"{' → '.join(state.path)}: {state.conversation} → {after}")
                # A stray that the dialog took as its answer (free text where an address is
                # asked, with a Skip button beside it) moved the chat on: not a wiped menu.
                if text in strays and not offered(replies) and after == state.conversation:
                    self.findings.append(f"options wiped: {' → '.join((*state.path, repr(text)))}: "
                                         f"{' | '.join(r.text[:90] for r in replies)!r}")
                # A state with no options and no dialog answers like the start: not explored again.
                if not further or len(state.path) + 1 >= MAX_DEPTH or not (offered(replies) or dialog):
                    continue
                key = signature(replies, dialog)
                if key in self.seen:
                    continue
                self.seen.add(key)
                queue.append(State((*state.path, text), replies, snapshot(self.path),
                                   self.conversation_state()))
            if state.path:
                await self.way_back(state)


@pytest.mark.parametrize("lang", ["vi", "en"])
@pytest.mark.parametrize("user", list(ROLES))
async def test_no_dead_ends(seeded_file: Path, scratch: Path, user: str, lang: str) -> None:
    """Every answer, on every path explored from the start as this role, shows the way forward,
    never fails, and /start always leads back."""
    path = scratch / "explore.db"
    shutil.copy(seeded_file, path)
    app = await open_app(Settings(database_url=f"sqlite+aiosqlite:///{path}"), migrate=False,
                         clock=FakeClock())
    try:
        explorer = Explorer(app, path, user, lang)
        talker = explorer.talker
        await talker.say(f"/lang {lang}")
        await talker.say("/help")
        commands = sorted(set(COMMAND.findall(talker.text())) - {"/cancel"})
        await app.core.flush_sent()
        await explorer.run(State((), [], snapshot(path), explorer.conversation_state()), commands)
    finally:
        await app.close()
    assert explorer.answers > 40, "the explorer did not get far"
    assert explorer.findings == [], "\n".join(explorer.findings)
