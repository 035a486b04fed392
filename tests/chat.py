"""Talk to the core as a console user would, for tests."""

from __future__ import annotations

import itertools

from bot.app import App
from handlers.types import Incoming, Reply

_ids = itertools.count(1)


class Talker:
    """One console user: `await an.say("/start")` returns the replies, as the console would."""

    def __init__(self, app: App, user: str, *, channel: str = "console", lang: str | None = None):
        self.app = app
        self.user = user
        self.channel = channel
        self.lang = lang
        self.last: list[Reply] = []

    def incoming(self, text: str | None = None, payload: str | None = None,
                 update_id: str | None = None) -> Incoming:
        return Incoming(
            channel=self.channel, chat_id=self.user, sender_id=self.user, display_name=self.user,
            update_id=update_id or f"t{next(_ids)}", text=text, payload=payload,
            language_hint=self.lang,
        )

    async def send(self, incoming: Incoming) -> list[Reply]:
        self.last = await self.app.core.handle(incoming)
        await self.app.core.mark_sent(incoming)
        return self.last

    async def say(self, text: str, *, update_id: str | None = None) -> list[Reply]:
        return await self.send(self.incoming(text=text, update_id=update_id))

    async def press(self, payload: str, *, update_id: str | None = None) -> list[Reply]:
        return await self.send(self.incoming(payload=payload, update_id=update_id))

    def text(self) -> str:
        return "\n".join(r.text for r in self.last)

    def buttons(self) -> list[tuple[str, str]]:
        return [(b.label, b.payload) for r in self.last for b in r.buttons]
