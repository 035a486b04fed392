"""The console channel (`gocua chat`): one input per line, replies with numbered options.

Rendering (design.md section 4): each bot message, then its buttons one per line as
`[1] Label`; the user may answer with the number, the label or a /command. A photo or a
document (a chart, an export) is written under GOCUA_OUT_DIR (`./data/out/`) and shown as
`(photo: PATH)` / `(document: PATH)`. Without a terminal it runs the script on standard input
and exits at its end.

Each console user is a chat of its own, reached only while their `gocua chat` runs: a reply
addressed to another console user (a visit request for the volunteer `an`) is kept for them in
the notices table, like a notice for another channel, and whatever waits for a user is shown
when their chat starts (and after each of their inputs, should it arrive meanwhile).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import shutil
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from bot.app import App
from handlers.file_limits import discard
from handlers.types import Attachment, Incoming, Reply

CHANNEL = "console"
_UNSAFE = re.compile(r"[^\w.\-]+")


def save_attachment(out_dir: Path, attachment: Attachment) -> Path:
    """Write the file under `out_dir` (made if missing) without replacing another file: a name
    that is taken gets "-2", "-3" … before its suffix. Returns the path written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    name = _UNSAFE.sub("-", Path(attachment.filename).name).strip(".-") or attachment.kind
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    for number in itertools.count(1):
        candidate = name if number == 1 else f"{stem}-{number}{dot}{suffix}"
        path = out_dir / candidate
        try:
            with path.open("xb") as fh:
                if attachment.path is not None:  # an export on disk: copied, not read whole
                    with open(attachment.path, "rb") as src:
                        shutil.copyfileobj(src, fh)
                else:
                    fh.write(attachment.data)
        except FileExistsError:
            continue
        return path
    raise AssertionError("unreachable")


def shown_path(path: Path) -> str:
    """The path as the user can open it: relative to the working folder when inside it."""
    absolute = path.resolve()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def render(replies: Sequence[Reply], files: Sequence[Path | None] = ()) -> str:
    """The replies as the console prints them; `files[i]` is where reply i's attachment was
    written (see `save_attachment`)."""
    blocks: list[str] = []
    for index, reply in enumerate(replies):
        lines = [reply.text] if reply.text else []
        if reply.to is not None:
            lines = [f"(→ {reply.to.channel}:{reply.to.chat_id}) {reply.text}"]
        lines += [f"[{i}] {button.label}" for i, button in enumerate(reply.buttons, start=1)]
        if reply.attachment is not None:
            path = files[index] if index < len(files) else None
            where = shown_path(path) if path is not None else reply.attachment.filename
            lines.append(f"({reply.attachment.kind}: {where})")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


class ConsoleChat:
    """One console user's chat: sends their lines to the core and prints what comes back."""

    def __init__(self, app: App, user: str, out_dir: Path, stdout: TextIO, lang: str | None = None) -> None:
        self.app = app
        self.user = user
        self.lang = lang
        self.out_dir = out_dir
        self.stdout = stdout

    def show(self, replies: Sequence[Reply]) -> None:
        if not replies:
            return
        files = [save_attachment(self.out_dir, r.attachment) if r.attachment is not None else None
                 for r in replies]
        for reply in replies:  # a temporary export, copied into out_dir
            if reply.attachment is not None:
                discard(reply.attachment.path)
        self.stdout.write(render(replies, files) + "\n\n")
        self.stdout.flush()

    def is_mine(self, reply: Reply) -> bool:
        return reply.to is None or (reply.to.channel == CHANNEL and reply.to.chat_id == self.user)

    async def handle(self, incoming: Incoming) -> None:
        replies = await self.app.core.handle(incoming)
        mine = [r for r in replies if self.is_mine(r)]
        self.show([replace(r, to=None) for r in mine])
        await self.keep_for_others(incoming, [r for r in replies if not self.is_mine(r)])
        await self.app.core.mark_sent(incoming)

    async def keep_for_others(self, incoming: Incoming, replies: list[Reply]) -> None:
        """Replies for other console users wait in the notices table until their chat shows them."""
        if not replies:
            return
        kept = [(r.to.chat_id, replace(r, edit=False)) for r in replies if r.to]
        await self.app.channel_services.keep_notices(CHANNEL, kept)

    async def show_waiting(self, *, away: bool = False) -> None:
        """Show what was sent to this user while their chat was closed, oldest first; `away`
        (the chat just opened): under "While you were away:"."""
        waiting = await self.app.channel_services.take_waiting(CHANNEL, self.user)
        if waiting and away:
            header = await self.app.channel_services.away_header(CHANNEL, self.user, self.lang)
            self.stdout.write(header + "\n\n")
        self.show(waiting)


async def _lines(stream: TextIO, prompt: str | None) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    while True:
        if prompt:
            sys.stdout.write(prompt)
            sys.stdout.flush()
        line = await loop.run_in_executor(None, stream.readline)
        if not line:
            return
        yield line.rstrip("\r\n")


async def run_console(
    app: App, *, user: str, lang: str | None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout,
    out_dir: str | os.PathLike[str] | None = None,
) -> None:
    interactive = stdin.isatty()
    session = f"{time.time_ns()}"
    counter = itertools.count(1)
    chat = ConsoleChat(app, user, Path(out_dir or app.settings.out_dir), stdout, lang)
    if interactive:
        stdout.write(f"GoCua — {user}. /help, Ctrl-D to quit.\n")
    await chat.show_waiting(away=True)
    async for line in _lines(stdin, "> " if interactive else None):
        if not line.strip():
            continue
        incoming = Incoming(
            channel=CHANNEL, chat_id=user, sender_id=user, display_name=user,
            update_id=f"{session}-{next(counter)}", text=line, language_hint=lang,
        )
        await chat.handle(incoming)
        await chat.show_waiting()
