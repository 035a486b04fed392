"""The update path's statements on the driver's connection (db/fast_sql.py) against the same
statements through the session: the same rows, the same guarantees."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError

from bot.app import App, open_app
from bot.config import Settings
from bot.seed_demo import seed_demo
from conversations.events import StepRecord as RecordedStep
from db import fast_sql
from db.models import Conversation, FlowRun, Household, Identity, ProcessedUpdate, StepRecord, User
from db.repo.flows import load_run_for_step, run_state, write_run_state, write_step
from db.repo.updates import record_processed
from db.repo.users import create_user_and_conversation, load_for_update
from tests.chat import Talker, count_rows, payload_of
from tests.conftest import FakeClock, _truncate_postgres

# residence_confirmation through VNeID, as tests/test_flow_runs.py walks it
RC_PATH = ["Continue", "In the VNeID app", "Done", "Continue", "Done"]
TABLES = (User, Identity, Conversation, ProcessedUpdate, FlowRun, StepRecord)


async def _open(database_url: str, *, fast: bool, monkeypatch: pytest.MonkeyPatch) -> App:
    monkeypatch.setattr(fast_sql, "ENABLED", fast)
    app = await open_app(Settings(database_url=database_url, webhook_secret="test-secret-123"),
                         migrate=False, clock=FakeClock())
    async with app.db.transaction() as session:
        assert (fast_sql.direct(session) is not None) == fast, "the path under test is not the one running"
    return app


async def _scenario(app: App) -> None:
    """A first message, a second one, a procedure walked to its end with a redelivered press, a
    reason typed at a Problem: what the update path writes."""
    clock = app.core.services.clock
    assert isinstance(clock, FakeClock)
    ids = iter(range(1, 1000))

    async def send(talker: Talker, text_: str | None = None, payload: str | None = None,
                   update_id: str | None = None) -> None:
        clock.advance(seconds=1)
        update_id = update_id or f"u{next(ids)}"
        await talker.send(talker.incoming(text=text_, payload=payload, update_id=update_id))

    tu = Talker(app, "tu", lang="vi")
    await send(tu, "/help")
    await send(tu, "làm căn cước ở đâu")
    an = Talker(app, "an", lang="en")
    await send(an, "/household HV-TL-001")
    await send(an, payload=payload_of(an, "Start a procedure"))
    await send(an, payload=next(p for _, p in an.buttons() if p.endswith(":flow:residence_confirmation")))
    if "for whom?" in an.text():
        await send(an, payload=payload_of(an, "The household"))
    for n, label in enumerate(RC_PATH):
        press = next(p for shown, p in an.buttons() if p.startswith("f:") and label in shown)
        await send(an, payload=press, update_id=f"press{n}")
        if n == 1:
            shown = an.last
            await send(an, payload=press, update_id=f"press{n}")  # redelivered: a duplicate
            assert an.last == []
            an.last = shown
    await send(an, "/household HV-TL-002")
    await send(an, payload=payload_of(an, "Start a procedure"))
    await send(an, payload=next(p for _, p in an.buttons() if p.endswith(":flow:vneid")))
    if "for whom?" in an.text():
        await send(an, payload=payload_of(an, "The household"))
    problem = next((p for shown, p in an.buttons() if p.startswith("f:") and "Problem" in shown), None)
    if problem is not None:
        await send(an, payload=problem)
        await send(an, "không có điện thoại thông minh")
    # Left in the outbox (not marked sent), and an update with nothing to send.
    clock.advance(seconds=1)
    await app.core.handle(an.incoming(text="/help", update_id="unsent"))
    async with app.db.transaction() as session:
        await record_processed(session, channel="console", update_id="silent", chat_id="an", replies=[],
                               now=clock())


async def _rows(app: App, after_seed: dict[str, int]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the scenario wrote (rows of the seed left out), every column, in key order."""
    dump: dict[str, list[tuple[Any, ...]]] = {}
    async with app.db.transaction() as session:
        for model in TABLES:
            table = model.__table__
            key = list(table.primary_key.columns)
            stmt = select(*table.columns).order_by(*key)
            if "id" in table.columns:
                stmt = stmt.where(table.c.id > after_seed.get(table.name, 0))
            dump[table.name] = [tuple(row) for row in await session.execute(stmt)]
        dump["processed_updates.replies_is_null"] = [tuple(row) for row in await session.execute(
            select(ProcessedUpdate.update_id, text("replies IS NULL")).order_by(ProcessedUpdate.update_id))]
        dump["households.last_step_at"] = [tuple(row) for row in await session.execute(
            select(Household.id, Household.last_step_at).where(Household.last_step_at.is_not(None))
            .order_by(Household.id))]
    return dump


async def _seeded(app: App) -> dict[str, int]:
    await seed_demo(app)
    async with app.db.transaction() as session:
        return {model.__table__.name: int(await session.scalar(select(func.max(model.id))) or 0)
                for model in TABLES if hasattr(model, "id")}


async def test_the_fast_path_writes_what_the_session_wrote(database_url: str, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    """The same updates through the session and through the driver's connection leave the same
    rows (users, identities, conversations, outbox, runs, step records, households' last step)."""
    second_url = database_url
    if database_url.startswith("sqlite"):
        copy = tmp_path / "second.db"
        shutil.copy(database_url.split("///", 1)[1], copy)
        second_url = f"sqlite+aiosqlite:///{copy}"
    dumps = []
    for fast, url in ((False, database_url), (True, second_url)):
        if fast and not url.startswith("sqlite"):
            await _truncate_postgres(url)  # RESTART IDENTITY: the same ids again
        app = await _open(url, fast=fast, monkeypatch=monkeypatch)
        try:
            after_seed = await _seeded(app)
            await _scenario(app)
            dumps.append(await _rows(app, after_seed))
        finally:
            await app.close()
    slow, quick = dumps
    assert len(slow["step_records"]) >= 5 and slow["processed_updates"], "the scenario wrote nothing"
    assert [r for r in slow["processed_updates"] if r[1] == "press1"], "no redelivery in the scenario"
    for table in slow:
        assert quick[table] == slow[table], table


@pytest.fixture
async def fast_app(database_url: str, monkeypatch: pytest.MonkeyPatch) -> App:
    app = await _open(database_url, fast=True, monkeypatch=monkeypatch)
    await seed_demo(app)
    yield app
    await app.close()


async def _started_run(app: App) -> tuple[int, Talker]:
    an = Talker(app, "an", lang="en")
    await an.say("/household HV-TL-001")
    await an.press(payload_of(an, "Start a procedure"))
    await an.press(next(p for _, p in an.buttons() if p.endswith(":flow:residence_confirmation")))
    if "for whom?" in an.text():
        await an.press(payload_of(an, "The household"))
    async with app.db.transaction() as session:
        return int(await session.scalar(select(FlowRun.id).where(FlowRun.status == "active")) or 0), an


async def test_a_run_written_over_a_stale_version_raises(fast_app: App):
    """A flow step's write over a run another transaction moved on (version counted up since it
    was loaded) raises StaleDataError and leaves nothing, folded or not."""
    run_id, _ = await _started_run(fast_app)
    before = await count_rows(fast_app, StepRecord)
    async with fast_app.db.transaction() as session:
        version = await session.scalar(select(FlowRun.version).where(FlowRun.id == run_id))
    now = fast_app.core.services.clock()
    record = RecordedStep(step_id="intro", outcome="done", attempt=1)
    for write in ("step", "state"):
        with pytest.raises(StaleDataError):
            async with fast_app.db.transaction() as session:
                assert fast_sql.direct(session) is not None
                run, _, _ = await load_run_for_step(session, run_id, lock=not fast_app.db.is_sqlite)
                assert run is not None
                await session.execute(text("UPDATE flow_runs SET version = version + 1 WHERE id = :id"),
                                      {"id": run_id})
                if write == "step":
                    await write_step(session, run, [record], run_state(run), user_id=run.volunteer_id,
                                     now=now, source_update="console:stale")
                else:
                    await write_run_state(session, run, run_state(run), now)
    assert await count_rows(fast_app, StepRecord) == before
    async with fast_app.db.transaction() as session:
        assert await session.scalar(select(FlowRun.version).where(FlowRun.id == run_id)) == version


async def test_a_conversation_saved_over_a_stale_version_raises(fast_app: App):
    """The conversation's save with the outbox row (one statement on PostgreSQL) raises
    StaleDataError when the conversation changed since it was loaded, and keeps no outbox row."""
    await Talker(fast_app, "tu").say("/help")
    now = fast_app.core.services.clock()
    with pytest.raises(StaleDataError):
        async with fast_app.db.transaction() as session:
            loaded = await load_for_update(session, channel="console", update_id="stale-1", sender_id="tu",
                                           chat_id="tu", lock=not fast_app.db.is_sqlite)
            assert loaded.conversation is not None
            await session.execute(text("UPDATE conversations SET version = version + 1 WHERE id = :id"),
                                  {"id": loaded.conversation.id})
            loaded.conversation.state = {"last_question": "x"}
            await record_processed(session, channel="console", update_id="stale-1", chat_id="tu",
                                   replies=[{"text": "hi"}], now=now, conversation=loaded.conversation)
    assert await count_rows(fast_app, ProcessedUpdate, ProcessedUpdate.update_id == "stale-1") == 0


async def test_a_crash_before_commit_leaves_nothing(fast_app: App):
    """An update that fails after its first contact, step and outbox writes but before the commit
    leaves no user, identity, conversation, step record or outbox row."""
    run_id, _ = await _started_run(fast_app)
    counts = [await count_rows(fast_app, model) for model in TABLES]
    now = fast_app.core.services.clock()
    with pytest.raises(RuntimeError, match="crash"):
        async with fast_app.db.transaction() as session:
            user, conversation = await create_user_and_conversation(
                session, "console", "newcomer", "newcomer", "Newcomer", now, locale="vi")
            run, _, _ = await load_run_for_step(session, run_id, lock=not fast_app.db.is_sqlite)
            assert run is not None
            await write_step(session, run, [RecordedStep(step_id="intro", outcome="done", attempt=1)],
                             run_state(run), user_id=user.id, now=now, source_update="console:crash")
            conversation.state = {"last_question": "x"}
            await record_processed(session, channel="console", update_id="crash-1", chat_id="newcomer",
                                   replies=[{"text": "hi"}], now=now, conversation=conversation)
            raise RuntimeError("crash")
    assert [await count_rows(fast_app, model) for model in TABLES] == counts


async def test_a_first_message_creates_its_user_identity_and_conversation_once(fast_app: App):
    """A sender never seen gets one user, one identity and one conversation, however many
    messages follow and whether one is delivered twice."""
    tu = Talker(fast_app, "tu", lang="vi")
    await tu.say("/help", update_id="first-1")
    await tu.say("/help", update_id="first-1")  # redelivered
    await tu.say("xin chào", update_id="first-2")
    identity = (Identity.channel == "console", Identity.external_id == "tu")
    assert await count_rows(fast_app, Identity, *identity) == 1
    async with fast_app.db.transaction() as session:
        user_id = await session.scalar(select(Identity.user_id).where(*identity))
        user = await session.get(User, user_id)
        assert user is not None
        assert (user.display_name, user.locale, user.reminders_off) == ("tu", "vi", False)
    assert await count_rows(fast_app, Conversation, Conversation.chat_id == "tu") == 1
    assert await count_rows(fast_app, ProcessedUpdate, ProcessedUpdate.chat_id == "tu") == 2


async def test_a_redelivered_step_is_recorded_once(fast_app: App):
    """The same step press delivered twice records its step once."""
    run_id, an = await _started_run(fast_app)
    press = next(p for shown, p in an.buttons() if p.startswith("f:") and "Continue" in shown)
    await an.press(press, update_id="twice")
    assert await an.press(press, update_id="twice") == []
    assert await count_rows(fast_app, StepRecord, StepRecord.run_id == run_id) == 1


@pytest.mark.postgres
def test_the_asyncpg_adapter_still_has_what_the_fast_path_uses():
    """SQLAlchemy's asyncpg adapter keeps the private names db/fast_sql.py relies on (an upgrade
    that renames them fails here, not in production)."""
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection
    from sqlalchemy.engine.base import Connection

    assert "_transaction" in AsyncAdapt_asyncpg_connection.__slots__
    assert callable(AsyncAdapt_asyncpg_connection._start_transaction)
    assert callable(AsyncAdapt_asyncpg_connection._handle_exception)
    assert callable(Connection._handle_dbapi_exception)


async def _kill_other_backends(url: str) -> int:
    dsn = url.replace("postgresql+asyncpg", "postgresql")
    connection = await asyncpg.connect(dsn)
    try:
        return len(await connection.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    finally:
        await connection.close()


async def test_pooled_connections_killed_by_the_server_are_replaced_at_begin(postgres_url: str,
                                                                            monkeypatch: pytest.MonkeyPatch):
    """Without a pre-ping, connections the server dropped (as a restart does) are found dead at
    BEGIN and replaced there: the next update is handled, not refused."""
    app = await _open(postgres_url, fast=True, monkeypatch=monkeypatch)
    try:
        tu = Talker(app, "tu")
        await tu.say("/help")
        assert await _kill_other_backends(postgres_url) >= 1
        assert await tu.say("/help")
        assert await count_rows(app, ProcessedUpdate) == 2
    finally:
        await app.close()


async def test_a_connection_lost_mid_update_is_a_database_error(postgres_url: str,
                                                                monkeypatch: pytest.MonkeyPatch):
    """A connection dropped in the middle of an update raises SQLAlchemy's disconnect error from
    the direct path (so the update is refused and delivered again) and is not used again."""
    app = await _open(postgres_url, fast=True, monkeypatch=monkeypatch)
    try:
        with pytest.raises(DBAPIError) as raised:
            async with app.db.transaction() as session:
                await _kill_other_backends(postgres_url)
                since = app.core.services.clock() - timedelta(minutes=1)
                await load_for_update(session, channel="console", update_id="lost-1", sender_id="tu",
                                      chat_id="tu", lock=True, since=since)
        assert raised.value.connection_invalidated
        assert await Talker(app, "tu").say("/help")
    finally:
        await app.close()


async def test_sent_marks_are_one_autocommitted_update_that_outlives_dropped_connections(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch):
    """On PostgreSQL a batch of "sent" marks is written outside a transaction; connections the
    server dropped meanwhile are replaced and the marks still written (replies dropped, lease off)."""
    app = await _open(postgres_url, fast=True, monkeypatch=monkeypatch)
    try:
        assert app.db.autocommits
        tu = Talker(app, "tu")
        incomings = [tu.incoming(text="/help", update_id=f"mark-{n}") for n in range(3)]
        for incoming in incomings:
            assert await app.core.handle(incoming)
        await _kill_other_backends(postgres_url)
        for incoming in incomings:
            await app.core.mark_sent(incoming)
        async with app.db.transaction() as session:
            rows = (await session.execute(select(
                ProcessedUpdate.sent_at.is_not(None), text("replies IS NULL"),
                ProcessedUpdate.send_lease_until.is_(None)).order_by(ProcessedUpdate.update_id))).all()
        assert [tuple(row) for row in rows] == [(True, True, True)] * 3
    finally:
        await app.close()
