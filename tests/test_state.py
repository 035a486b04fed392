"""Typed state: a run's state and a chat's dialog state survive their JSON round trip, and a
dialog state cannot be changed in place (a change the pipeline would not see)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from conversations.state import Awaiting, RunState, RunStatus, StepOutcome
from db.models import Conversation
from handlers import dispatch
from handlers.conversation_state import ConversationState
from tests.chat import Talker

slugs = st.from_regex(r"[a-z][a-z0-9_]{0,19}", fullmatch=True)
scalars = st.none() | st.booleans() | st.integers(-10**9, 10**9) | st.text(max_size=30)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
run_states = st.builds(
    RunState,
    flow=slugs, version=st.integers(1, 99), status=st.sampled_from(RunStatus),
    step=st.none() | slugs, awaiting=st.none() | st.sampled_from(Awaiting),
    attempts=st.dictionaries(slugs, st.integers(1, 50), max_size=5),
    vars=st.dictionaries(slugs, scalars, max_size=5), answered=st.integers(0, 500),
)


@given(run_states)
def test_a_run_state_round_trips_through_json(state: RunState) -> None:
    stored = json.loads(json.dumps(state.to_json()))
    assert stored == state.to_json()
    again = RunState.from_json(stored)
    assert again == state
    assert type(again.status) is RunStatus and (again.awaiting is None or type(again.awaiting) is Awaiting)


@given(run_states)
def test_a_run_state_shares_nothing_with_its_json_or_copy(state: RunState) -> None:
    stored, copied = state.to_json(), state.copy()
    stored["attempts"]["changed_here"] = 1
    stored["vars"]["changed_here"] = 1
    copied.attempts["changed_here"] = 1
    assert "changed_here" not in state.attempts and "changed_here" not in state.vars


def test_a_stored_run_state_with_an_unknown_status_is_refused() -> None:
    stored = RunState("vneid", 1).to_json()
    with pytest.raises(ValueError):
        RunState.from_json({**stored, "status": "finished"})
    assert [s.value for s in StepOutcome] == ["done", "skipped", "blocked"]


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_a_conversation_state_round_trips_through_json(data: dict[str, Any]) -> None:
    state = ConversationState.from_json(data)
    assert state.to_json() == data and state == data
    assert ConversationState.from_json(json.loads(json.dumps(state.to_json()))) == state
    assert dict(state.replace(extra=1)) == {**state, "extra": 1} and "extra" not in state


def test_a_conversation_state_cannot_be_changed_in_place() -> None:
    state = ConversationState.from_json({"dialog": "new_household", "data": {"phone": None}, "seen": [1]})
    assert state.dialog == "new_household" and not state.expects_text
    with pytest.raises(TypeError):
        state["step"] = "phone"  # type: ignore[index]
    with pytest.raises(TypeError):
        state["data"]["phone"] = "0905123456"
    with pytest.raises(TypeError):
        state["seen"].append(2)
    assert isinstance(state["data"], dict) and json.loads(json.dumps(state["data"])) == {"phone": None}
    copied = {**state["data"], "phone": "0905123456"}  # the way to change it: a new value
    assert type(copied) is dict and state["data"]["phone"] is None
    assert state.to_json() == {"dialog": "new_household", "data": {"phone": None}, "seen": [1]}
    assert ConversationState.from_json(None) == {} and ConversationState().dialog is None


async def test_a_handler_that_changes_the_stored_state_in_place_is_still_saved(app, monkeypatch):
    """The pipeline compares the conversation with a copy taken before the handler ran, so even
    a change made in place to the stored JSON value is written (it used to compare the dict with
    itself and drop the change)."""
    talker = Talker(app, "in-place", lang="en")
    await talker.say("/help")

    async def sets_then_changes(ctx: Any) -> list:
        ctx.set_state({"dialog": "join", "data": {"tries": 1}})
        await ctx.session.flush()
        ctx.conversation.state["data"]["tries"] = 2  # the stored value itself, behind set_state's back
        return []

    monkeypatch.setattr(dispatch, "dispatch", sets_then_changes)
    await talker.say("anything")

    async def changes_only_in_place(ctx: Any) -> list:
        ctx.conversation.state["data"]["tries"] = 3
        return []

    monkeypatch.setattr(dispatch, "dispatch", changes_only_in_place)
    await talker.say("again")
    async with app.db.transaction() as session:
        conversation = await session.scalar(select(Conversation).where(Conversation.chat_id == "in-place"))
    assert conversation is not None and conversation.state == {"dialog": "join", "data": {"tries": 3}}
