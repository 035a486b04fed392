"""The update path's guarantees: one statement to load, the outbox, batched "sent" marks, rollback
on a handler error, per-chat turns. On SQLite and, when configured, PostgreSQL."""

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
from handlers import dispatch, pipeline
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


@pytest.fixture
def slow_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep "sent" marks queued until the test flushes them."""
    monkeypatch.setattr(pipeline, "SENT_FLUSH_DELAY", 3600.0)


async def test_sent_marks_are_written_in_one_batch(app, clock, slow_flush):
    """mark_sent queues; flush_sent writes every queued mark at once and empties the outbox."""
    talkers = [Talker(app, f"batch-{n}", lang="en") for n in range(3)]
    for n, talker in enumerate(talkers):
        await talker.say("/help", update_id=f"b-{n}")
    rows = [await _row(app, f"b-{n}") for n in range(3)]
    assert all(r.sent_at is None and r.replies and r.send_lease_until for r in rows)
    clock.advance(seconds=1)
    await app.core.flush_sent()
    rows = [await _row(app, f"b-{n}") for n in range(3)]
    assert all(r.sent_at == clock() and r.replies is None and r.send_lease_until is None for r in rows)
    await app.core.flush_sent()  # nothing queued: no transaction, no error


async def test_a_redelivery_of_a_sent_update_is_silent_before_and_after_the_flush(app, clock, slow_flush):
    """Sent, mark still queued, lease long expired: nothing is resent and nothing is written."""
    talker = Talker(app, "redelivered", lang="en")
    incoming = talker.incoming(text="/help", update_id="r-1")
    assert await talker.send(incoming)
    before = await _row(app, "r-1")
    clock.advance(minutes=5)
    assert await app.core.handle(incoming) == []
    after = await _row(app, "r-1")
    assert (after.sent_at, after.send_lease_until, after.replies) == (
        before.sent_at, before.send_lease_until, before.replies)
    await app.core.flush_sent()
    assert await app.core.handle(incoming) == []
    assert await _count(app, ProcessedUpdate) == 1


async def test_the_background_task_flushes_without_being_asked(app, monkeypatch):
    """Marks reach the database shortly after mark_sent, with nobody calling flush_sent."""
    monkeypatch.setattr(pipeline, "SENT_FLUSH_DELAY", 0.01)
    talker = Talker(app, "background", lang="en")
    await talker.say("/help", update_id="bg-1")
    for _ in range(200):
        row = await _row(app, "bg-1")
        if row.sent_at is not None:
            break
        await asyncio.sleep(0.01)
    assert row.sent_at is not None and row.replies is None


async def test_many_queued_marks_are_flushed_at_once(app, monkeypatch, slow_flush):
    """Past SENT_FLUSH_MAX queued marks, mark_sent writes them itself."""
    monkeypatch.setattr(pipeline, "SENT_FLUSH_MAX", 3)
    talker = Talker(app, "busy", lang="en")
    for n in range(3):
        await talker.say("/help", update_id=f"m-{n}")
    rows = [await _row(app, f"m-{n}") for n in range(3)]
    assert all(row.sent_at is not None for row in rows)


async def test_closing_the_app_writes_the_queued_marks(app, slow_flush):
    """Disposing of the database (App.close) flushes the marks still queued."""
    talker = Talker(app, "closing", lang="en")
    await talker.say("/help", update_id="c-1")
    assert (await _row(app, "c-1")).sent_at is None
    await app.db.dispose()
    assert (await _row(app, "c-1")).sent_at is not None


async def test_a_failed_flush_keeps_the_marks_for_later(app, monkeypatch, slow_flush):
    """While the database is down the marks stay queued (and keep redeliveries silent)."""
    talker = Talker(app, "outage", lang="en")
    incoming = talker.incoming(text="/help", update_id="o-1")
    await talker.send(incoming)
    working = app.db.transaction

    @asynccontextmanager
    async def down():
        raise OperationalError("BEGIN", {}, Exception("database is gone"))
        yield

    monkeypatch.setattr(app.db, "transaction", down)
    with pytest.raises(DatabaseUnavailable):
        await app.core.flush_sent()
    with pytest.raises(DatabaseUnavailable):
        await app.core.handle(talker.incoming(text="/help"))  # an outage raises, as before
    monkeypatch.setattr(app.db, "transaction", working)
    assert await app.core.handle(incoming) == []
    await app.core.flush_sent()
    assert (await _row(app, "o-1")).sent_at is not None


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
