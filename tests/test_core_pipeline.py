"""The update path's guarantees: one statement to load, the outbox, "sent" marks committed
before the acknowledgement, rollback on a handler error, per-chat turns. On SQLite and,
when configured, PostgreSQL."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from bot.seed_demo import seed_demo
from db.models import AuditLog, Conversation, ProcessedUpdate
from db.repo.users import load_for_update
from handlers import dispatch
from handlers.pipeline import HANDLER_FAILED, DatabaseUnavailable
from tests.chat import Talker


async def _row(app, update_id: str, channel: str = "console") -> ProcessedUpdate | None:
    async with app.db.transaction() as session:
        return await session.get(ProcessedUpdate, (channel, update_id))


async def _count(app, model: type) -> int:
    async with app.db.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _conversation(app, chat_id: str) -> Conversation:
    async with app.db.transaction() as session:
        return await session.scalar(select(Conversation).where(Conversation.chat_id == chat_id))


async def test_mark_sent_returns_once_the_mark_is_committed(app, clock):
    """When mark_sent returns, the outbox entry is gone from the database: an acknowledgement
    sent after it can never be followed by the same replies again."""
    talker = Talker(app, "durable", lang="en")
    incoming = talker.incoming(text="/help", update_id="d-1")
    assert await app.core.handle(incoming)
    row = await _row(app, "d-1")
    assert row.sent_at is None and row.replies and row.send_lease_until
    await app.core.mark_sent(incoming)
    row = await _row(app, "d-1")
    assert row.sent_at == clock() and row.replies is None and row.send_lease_until is None
    clock.advance(minutes=5)  # long past the lease: a redelivery still sends nothing
    assert await app.core.handle(incoming) == []


async def test_concurrent_marks_are_committed_together(app, monkeypatch):
    """Twenty updates marked at once are written in a few transactions, not twenty."""
    talkers = [Talker(app, f"group-{n}", lang="en") for n in range(20)]
    incomings = [t.incoming(text="/help", update_id=f"g-{n}") for n, t in enumerate(talkers)]
    for incoming in incomings:
        await app.core.handle(incoming)
    opened = 0
    working = app.db.transaction

    @asynccontextmanager
    async def counted():
        nonlocal opened
        opened += 1
        async with working() as session:
            yield session

    monkeypatch.setattr(app.db, "transaction", counted)
    await asyncio.gather(*(app.core.mark_sent(incoming) for incoming in incomings))
    assert opened <= 2
    rows = [await _row(app, f"g-{n}") for n in range(20)]
    assert all(row.sent_at is not None for row in rows)


@asynccontextmanager
async def _database_gone():
    """A stand-in for Database.transaction while the database cannot be reached."""
    raise OperationalError("BEGIN", {}, Exception("database is gone"))
    yield


async def test_a_mark_that_cannot_be_written_fails_the_acknowledgement(app, monkeypatch, clock):
    """While the database is down mark_sent raises (the platform is answered an error), a
    redelivery to this process sends nothing, and once the database is back it writes the mark."""
    talker = Talker(app, "outage", lang="en")
    incoming = talker.incoming(text="/help", update_id="o-1")
    assert await app.core.handle(incoming)
    working = app.db.transaction, app.db.autocommit
    monkeypatch.setattr(app.db, "transaction", _database_gone)
    monkeypatch.setattr(app.db, "autocommit", _database_gone)  # PostgreSQL's marks go there
    with pytest.raises(DatabaseUnavailable):
        await app.core.mark_sent(incoming)
    with pytest.raises(DatabaseUnavailable):
        await app.core.handle(incoming)  # the redelivery: still no mark, so still an error
    monkeypatch.setattr(app.db, "transaction", working[0])
    monkeypatch.setattr(app.db, "autocommit", working[1])
    clock.advance(minutes=5)
    assert await app.core.handle(incoming) == []
    assert (await _row(app, "o-1")).sent_at is not None


async def test_closing_the_app_writes_the_marks_left_unwritten(app, monkeypatch):
    """Disposing of the database (App.close) retries the marks whose write had failed."""
    talker = Talker(app, "closing", lang="en")
    incoming = talker.incoming(text="/help", update_id="c-1")
    await app.core.handle(incoming)
    working = app.db.transaction, app.db.autocommit
    monkeypatch.setattr(app.db, "transaction", _database_gone)
    monkeypatch.setattr(app.db, "autocommit", _database_gone)  # PostgreSQL's marks go there
    with pytest.raises(DatabaseUnavailable):
        await app.core.mark_sent(incoming)
    monkeypatch.setattr(app.db, "transaction", working[0])
    monkeypatch.setattr(app.db, "autocommit", working[1])
    await app.db.dispose()
    assert (await _row(app, "c-1")).sent_at is not None


async def test_a_handler_error_keeps_nothing_but_the_apology(app, monkeypatch):
    """A handler that wrote and then failed: all rolled back, the user told, the update handled."""
    talker = Talker(app, "unlucky", lang="en")
    await talker.say("/help")
    version = (await _conversation(app, "unlucky")).version

    async def broken(ctx: Any) -> list:
        ctx.set_state({"dialog": "half-done"})
        ctx.session.add(AuditLog(at=ctx.now, actor_id=ctx.user.id, action="half", target="x"))
        await ctx.session.flush()
        raise ValueError("bug")

    monkeypatch.setattr(dispatch, "dispatch", broken)
    incoming = talker.incoming(text="/whatever", update_id="bug-1")
    replies = await app.core.handle(incoming)
    assert [r.text for r in replies] == [HANDLER_FAILED]
    assert await _count(app, AuditLog) == 0
    conversation = await _conversation(app, "unlucky")
    assert (conversation.state, conversation.version) == ({}, version)
    assert (await _row(app, "bug-1")).replies == [{"text": HANDLER_FAILED}]
    await app.core.mark_sent(incoming)
    assert await app.core.handle(incoming) == []


async def test_the_conversation_is_written_only_when_it_changed(app):
    """Options offered or state changed: one UPDATE (version + 1); /help changes nothing."""
    talker = Talker(app, "writer", lang="en")
    await talker.say("/help")
    first = await _conversation(app, "writer")
    await talker.say("/help")
    assert (await _conversation(app, "writer")).version == first.version
    await talker.say("/lang")
    offered = await _conversation(app, "writer")
    assert offered.version == first.version + 1
    assert [label for label, _ in offered.offered] == ["Tiếng Việt", "English"]
    await talker.say("/help")  # offers nothing: the options are cleared
    cleared = await _conversation(app, "writer")
    assert (cleared.offered, cleared.version) == ([], first.version + 2)


async def test_one_statement_loads_user_roles_conversation_and_dedupe(app, clock):
    """load_for_update: the sender's user and every grant, the chat's conversation, processed."""
    await seed_demo(app)
    lan = Talker(app, "lan", lang="en")
    await lan.say("/help", update_id="l-1")
    async with app.db.transaction() as session:
        seen = await load_for_update(session, channel="console", update_id="l-1", sender_id="lan",
                                     chat_id="lan", lock=not app.db.is_sqlite)
        fresh = await load_for_update(session, channel="console", update_id="l-2",
                                      sender_id="nobody", chat_id="nowhere",
                                      lock=not app.db.is_sqlite)
    assert seen.processed and seen.user.display_name == "Lê Thị Lan"
    assert [(g.role, g.area_code) for g in seen.grants] == [("leader", "danang.hai-van")]
    assert seen.conversation is not None and seen.conversation.chat_id == "lan"
    assert (fresh.processed, fresh.user, fresh.conversation, fresh.grants) == (False, None, None, [])


async def test_a_new_locale_on_the_loaded_user_is_saved(app):
    """The user comes from a plain row but is in the session: /lang's change is flushed."""
    talker = Talker(app, "polyglot")
    await talker.say("/lang")
    await talker.say("2")
    await talker.say("/help")
    assert "Commands" in talker.text()


async def test_updates_of_one_chat_take_turns(app):
    """While a transaction holds the chat (PostgreSQL: its row locked FOR UPDATE; SQLite: the
    writer lock), the chat's next update waits, then goes on."""
    talker = Talker(app, "turns", lang="en")
    await talker.say("/help")
    async with app.db.transaction() as session:
        await session.execute(
            select(Conversation.id).where(Conversation.chat_id == "turns").with_for_update())
        waiting = asyncio.create_task(app.core.handle(talker.incoming(text="/help")))
        await asyncio.sleep(0.3)
        assert not waiting.done()
    assert await asyncio.wait_for(waiting, 10)
