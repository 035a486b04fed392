"""Start-up of the read-only commands (`gocua stats`, `gocua export`): open the database
read-only, check its schema without migrating, and load only what the command uses.

Unlike `open_app` (the bot, the console chat, the commands that change data) nothing here
migrates, stores flow versions, refreshes planner statistics or builds the FAQ index: a leader's
`gocua stats` on a city's database spends its time on its query. A database that is not at this
code's schema is refused with one line that says what to do (`gocua db upgrade`), and left as
it was. `gocua faq ask` opens no database at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.config import FLOWS_DIR, ConfigError, Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from conversations.flow_model import FlowRegistry
    from db.engine import Database


class SchemaNotCurrent(ConfigError):
    """The database is not at the schema of this code (never migrated, older, or newer)."""


async def open_read_only(settings: Settings, lang: str | None) -> Database:
    """The database opened read-only, once its schema is known to be this code's; else
    SchemaNotCurrent with a translated line (nothing written, nothing migrated)."""
    from db.engine import Database, sqlite_file
    from db.migrate import current_revision, known_revisions
    from handlers.i18n import translator

    t = translator(lang or settings.locale)
    upgrade = t("The database is not at this version's schema: run `gocua db upgrade` first.")
    path = sqlite_file(settings.database_url)
    if path is not None and not path.exists():
        raise SchemaNotCurrent(upgrade)
    db = Database(settings.database_url, read_only=True)
    try:
        async with db.read_session() as session:
            current = await current_revision(session)
    except BaseException:
        await db.dispose()
        raise
    head, known = known_revisions()
    if current != head:
        await db.dispose()
        if current is None or current in known:
            raise SchemaNotCurrent(upgrade)
        raise SchemaNotCurrent(t("The database was migrated by a newer GoCua (revision {revision}); "
                                 "update GoCua first.", revision=current))
    return db


async def load_flows_read_only(session: AsyncSession) -> FlowRegistry:
    """The flow files and, read from the database without storing anything, the versions that
    only the database still has (a retired procedure keeps its title in reports)."""
    from conversations.flow_model import load_flows
    from db.repo.flows import stored_flow_versions

    flows = load_flows(FLOWS_DIR)  # a broken flow file stops here, naming file and step
    for flow_id, version, source in await stored_flow_versions(session):
        if flows.get(flow_id, version) is None:
            flows.add_yaml(source, f"{flow_id}.v{version}.yaml (stored)")
    return flows
