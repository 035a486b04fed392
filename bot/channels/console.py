"""The console channel (`gocua chat`): one input per line, replies with numbered options.

Rendering (design.md section 4): each bot message, then its buttons one per line as
`[1] Label`; the user may answer with the number, the label or a /command. Without a terminal
it runs the script on standard input and exits at its end. A reply for another console user
is kept for them and shown when their chat starts (console_inbox.py).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import AsyncIterator
from typing import TextIO

from bot.app import App
from bot.channels.console_inbox import for_this_chat, keep_for_others, waiting_for
from handlers.types import Incoming, Reply

CHANNEL = "console"


def render(replies: list[Reply]) -> str:
    blocks: list[str] = []
    for reply in replies:
        lines = [reply.text]
        if reply.to is not None:
            lines[0] = f"(→ {reply.to.channel}:{reply.to.chat_id}) {reply.text}"
        lines += [f"[{i}] {button.label}" for i, button in enumerate(reply.buttons, start=1)]
        if reply.attachment is not None:
            lines.append(f"({reply.attachment.kind}: {reply.attachment.filename}, "
                         f"{len(reply.attachment.data)} bytes)")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


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
    app: App, *, user: str, lang: str | None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout
) -> None:
    interactive = stdin.isatty()
    session = f"{time.time_ns()}"
    counter = itertools.count(1)
    if interactive:
        stdout.write(f"GoCua — {user}. /help, Ctrl-D to quit.\n")
    waiting = await waiting_for(app, user)
    if waiting:
        stdout.write(render(waiting) + "\n\n")
        stdout.flush()
    async for line in _lines(stdin, "> " if interactive else None):
        if not line.strip():
            continue
        incoming = Incoming(
            channel=CHANNEL, chat_id=user, sender_id=user, display_name=user,
            update_id=f"{session}-{next(counter)}", text=line, language_hint=lang,
        )
        replies, others = for_this_chat(await app.core.handle(incoming), user)
        if replies:
            stdout.write(render(replies) + "\n\n")
            stdout.flush()
        await keep_for_others(app, others)
        await app.core.mark_sent(incoming)
