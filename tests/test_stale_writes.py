"""Optimistic locking (db/models.py): a run or a conversation written over a copy that another
transaction changed since is refused (StaleDataError), and the other transaction's write stays."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from bot.app import App
from conversations.state import RunState
from db.models import Conversation, FlowRun, Household, User
from db.repo.flows import load_run_for_step, save_run_state, write_run_state
from db.repo.users import new_conversation, save_conversation


async def test_a_stale_write_of_a_run_is_refused(demo: App, clock) -> None:
    db = demo.db
    async with db.transaction() as session:
        household = await session.scalar(select(Household).order_by(Household.id).limit(1))
        volunteer_id = await session.scalar(select(User.id).order_by(User.id).limit(1))
        run = FlowRun(flow_id="vneid", flow_version=1, household_id=household.id,
                      area_id=household.area_id, volunteer_id=volunteer_id, status="active",
                      state={"status": "active", "step": "start"}, started_at=clock(), updated_at=clock())
        session.add(run)
        await session.flush()
        run_id = run.id
    stale_session = db.sessions()
    try:
        stale = await stale_session.get(FlowRun, run_id)  # read at version 1 ...
        await stale_session.commit()
        async with db.transaction() as session:  # ... then another transaction moves the run on
            fresh = await session.get(FlowRun, run_id)
            save_run_state(fresh, RunState.from_json({"status": "abandoned", "step": "start"}), clock())
        assert fresh.version == 2
        save_run_state(stale, RunState.from_json({"status": "active", "step": "next"}), clock())
        with pytest.raises(StaleDataError):
            await stale_session.commit()
        await stale_session.rollback()
    finally:
        await stale_session.close()
    async with db.read_session() as session:
        kept = await session.get(FlowRun, run_id)
        assert (kept.status, kept.current_step, kept.version) == ("abandoned", "start", 2)


async def test_a_flow_step_over_a_stale_copy_of_its_run_is_refused(demo: App, clock) -> None:
    """The flow step's own write (one UPDATE, not the ORM's flush) keeps the same lock."""
    db = demo.db
    async with db.transaction() as session:
        household = await session.scalar(select(Household).order_by(Household.id).limit(1))
        volunteer_id = await session.scalar(select(User.id).order_by(User.id).limit(1))
        run = FlowRun(flow_id="vneid", flow_version=1, household_id=household.id,
                      area_id=household.area_id, volunteer_id=volunteer_id, status="active",
                      state={"status": "active", "step": "start"}, started_at=clock(), updated_at=clock())
        session.add(run)
        await session.flush()
        run_id = run.id
    stale_session = db.sessions()
    try:
        stale, stale_household, area = await load_run_for_step(stale_session, run_id, lock=False)
        assert stale is not None and stale.version == 1
        assert stale_household is not None and stale_household.id == household.id
        assert area is not None and area.id == household.area_id
        await stale_session.commit()
        async with db.transaction() as session:
            fresh, _, _ = await load_run_for_step(session, run_id, lock=False)
            assert fresh is not None
            abandoned = RunState.from_json({"status": "abandoned", "step": "start"})
            await write_run_state(session, fresh, abandoned, clock())
            assert not session.dirty  # written by the UPDATE: nothing left for the unit of work
        assert fresh.version == 2
        with pytest.raises(StaleDataError):
            moved_on = RunState.from_json({"status": "active", "step": "next"})
            await write_run_state(stale_session, stale, moved_on, clock())
        await stale_session.rollback()
    finally:
        await stale_session.close()
    async with db.read_session() as session:
        kept = await session.get(FlowRun, run_id)
        assert (kept.status, kept.current_step, kept.version) == ("abandoned", "start", 2)
        assert kept.finished_at is not None


async def test_a_stale_write_of_a_conversation_is_refused(demo: App, clock) -> None:
    db = demo.db
    async with db.transaction() as session:
        user_id = await session.scalar(select(User.id).order_by(User.id).limit(1))
        conversation = await new_conversation(session, "console", "stale-test", user_id, clock())
    stale = Conversation(id=conversation.id, channel="console", chat_id="stale-test", user_id=user_id,
                         state={"step": "old"}, offered=[], version=1, updated_at=clock())
    fresh = Conversation(id=conversation.id, channel="console", chat_id="stale-test", user_id=user_id,
                         state={"step": "new"}, offered=[], version=1, updated_at=clock())
    async with db.transaction() as session:
        await save_conversation(session, fresh, clock())
    assert fresh.version == 2
    with pytest.raises(StaleDataError):
        async with db.transaction() as session:
            await save_conversation(session, stale, clock())
    async with db.read_session() as session:
        row = await session.get(Conversation, conversation.id)
        assert (row.state, row.version) == ({"step": "new"}, 2)
