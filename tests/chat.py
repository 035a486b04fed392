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
        replies = await self.app.core.handle(incoming)
        await self.app.core.mark_sent(incoming)  # waits for the commit: others may send meanwhile
        self.last = replies
        return replies

    async def say(self, text: str, *, update_id: str | None = None) -> list[Reply]:
        return await self.send(self.incoming(text=text, update_id=update_id))

    async def press(self, payload: str, *, update_id: str | None = None) -> list[Reply]:
        return await self.send(self.incoming(payload=payload, update_id=update_id))

    def text(self) -> str:
        return "\n".join(r.text for r in self.last)

    def buttons(self) -> list[tuple[str, str]]:
        return [(b.label, b.payload) for r in self.last for b in r.buttons]


def payload_of(talker: Talker, label: str) -> str:
    """The payload of the first button in the last replies whose label contains `label`."""
    for shown, payload in talker.buttons():
        if label in shown:
            return payload
    raise AssertionError(f"no button labelled {label!r} in {talker.buttons()}; text: {talker.text()!r}")


async def count_rows(app: App, model: type, *where: object) -> int:
    """How many rows of `model` match `where` (SQLAlchemy conditions), in a fresh transaction."""
    from sqlalchemy import func, select

    async with app.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def all_rows(app: App, model: type, *where: object, order_by: object = None) -> list:
    """The rows of `model` matching `where` (ordered by `order_by`, else the primary key)."""
    from sqlalchemy import inspect, select

    stmt = select(model).where(*where)
    stmt = stmt.order_by(order_by if order_by is not None else inspect(model).primary_key[0])
    async with app.db.transaction() as session:
        return list(await session.scalars(stmt))


async def stored_anywhere(app: App, needle: str) -> list[str]:
    """Every table.column of the database whose stored value contains `needle` (JSON included)."""
    from sqlalchemy import select

    from db.models import Base

    found = []
    async with app.db.transaction() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).mappings():
                found += [f"{table.name}.{column}" for column, value in row.items()
                          if value is not None and needle in str(value)]
    return found
