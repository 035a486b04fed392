"""Start-up: settings → migrated database → the core that every channel feeds.

An `App` is what a channel is given: `core` (handle an update, mark its replies sent),
`channel_services` (notices, served files, the health check: handlers/channel_services.py),
and the background jobs and HTTP handlers of a serving process (`housekeeper()`,
`metrics_handler()`). Channels import no `db` module; this wiring does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import web

from bot.config import FLOWS_DIR, Settings, pool_options
from bot.housekeeping import Housekeeper
from bot.metrics import metrics_for
from conversations.faq_match import default_index
from conversations.flow_model import FlowRegistry, load_flows
from db.engine import Database
from db.migrate import upgrade
from db.repo.flows import store_flow_version, stored_flow_versions
from handlers.channel_services import ChannelServices
from handlers.context import Services
from handlers.pipeline import Core

__all__ = ["FLOWS_DIR", "App", "open_app", "pin_flow_versions", "utcnow"]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    settings: Settings
    db: Database
    core: Core
    channel_services: ChannelServices = field(init=False)

    def __post_init__(self) -> None:
        self.channel_services = ChannelServices(self.db, self.core.services.clock)

    def housekeeper(self) -> Housekeeper:
        """The pruning of bookkeeping tables a serving process runs (not started yet)."""
        return Housekeeper(self.db, self.core.services.clock)

    def metrics_handler(self) -> Callable[[web.Request], Awaitable[web.Response]]:
        """GET /metrics of a serving process."""
        return metrics_for(self.db)

    async def close(self) -> None:
        await self.db.dispose()


async def open_app(
    settings: Settings, *, migrate: bool = True, clock: Callable[[], datetime] = utcnow,
    planner_statistics: bool = True,
    build_faq: bool = False,
) -> App:
    """The core over a migrated database with the flows pinned, for the bot, the console chat
    and the commands that change data. `planner_statistics=False` leaves the planner's
    statistics as they are (a command that only writes a row or two; the bot refreshes them
    when it starts, and `gocua db upgrade` after migrating). `build_faq` trains the FAQ index now
    (about a second: the bot and the console chat, which answer residents); otherwise the first
    question builds it. The read-only commands use bot/read_only.py."""
    if migrate:
        await upgrade(settings.database_url)
    flows = load_flows(FLOWS_DIR)  # a broken flow file stops start-up here, naming file and step
    shipped = frozenset(flows.ids())
    db = Database(settings.database_url, **pool_options(settings))
    await pin_flow_versions(db, flows, clock())
    if planner_statistics:
        await db.refresh_planner_statistics()
    services = Services(
        settings=settings, clock=clock, flows=flows, faq=default_index() if build_faq else None,
        is_sqlite=db.is_sqlite,
        retired_flows=frozenset(flows.ids()) - shipped, read_session=db.read_session,
        bot_username=settings.telegram_bot_username,
    )
    return App(settings=settings, db=db, core=Core(db, services))


async def pin_flow_versions(db: Database, flows: FlowRegistry, now: datetime) -> None:
    """Store each shipped flow version's YAML and load every stored version the files no
    longer have, so a run keeps the flow it started on after the file changes."""
    async with db.transaction() as session:
        for flow in flows:
            await store_flow_version(session, flow.id, flow.version, flow.source, now)
        for flow_id, version, source in await stored_flow_versions(session):
            if flows.get(flow_id, version) is None:
                flows.add_yaml(source, f"{flow_id}.v{version}.yaml (stored)")
