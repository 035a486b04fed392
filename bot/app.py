"""Start-up: settings → migrated database → the core that every channel feeds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.config import Settings
from db.engine import Database
from db.migrate import upgrade
from handlers.context import Services
from handlers.pipeline import Core


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    settings: Settings
    db: Database
    core: Core

    async def close(self) -> None:
        await self.db.dispose()


async def open_app(
    settings: Settings, *, migrate: bool = True, clock: Callable[[], datetime] = utcnow
) -> App:
    if migrate:
        await upgrade(settings.database_url)
    db = Database(settings.database_url)
    services = Services(settings=settings, clock=clock)
    return App(settings=settings, db=db, core=Core(db, services))
