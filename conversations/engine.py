"""The flow engine: pure functions from (flow, run state, input, time) to a Transition.

    start(flow, now) -> Transition
    advance(flow, state, Pressed(token) | Typed(text), now, cccd_key=None) -> Transition
    resume(flow, state) -> Transition      # show the current step again (a paused run)
    step_view(flow, state) -> ShowStep     # the current step as shown, without its sub-step
    reopen(flow, state) -> Transition      # retry a blocked run at its step, as a new attempt
    cancel(state) -> Transition            # abandon the run (/cancel, then "Abandon it")

A Transition holds the new state (a RunState, conversations/state.py, which the handler stores
with `to_json()`; the state given is never changed), the step
records to write in the same transaction, and events for the handler to render (inputs,
records and events are defined in events.py and re-exported here). The engine never sends,
reads a clock or touches a database; texts in events are English msgids. `now` is the local
(Vietnam) date or datetime: only its date is used, for date checks and ages.

State (RunState, stored as JSON):
    flow, version                        # the flow version the run is pinned to
    status: RunStatus                    # active | blocked | completed | abandoned
    step: "has_nfc" | None               # current step; where it stopped when blocked/abandoned
    awaiting: None | Awaiting            # a task's Problem sub-step: reason | reason_text
    attempts: {"has_nfc": 1, ...}        # visits per step: the current attempt is attempts[step]
    vars: {"birth_date": "2025-01-31"}   # save_as values (a cccd only masked)
    answered: 4                          # step records written so far

Button tokens are `<step>:<attempt>:<action>`, at most 48 bytes (the handler adds the run's id
to the button's data, handlers/flows.py). Each step kind is a class (steps.py) that says which
buttons it shows, with which actions (`c` continue, `d` done, `s` skip, `p` problem, `r<i>` a
reason, `x` other reason, `b` back, `o:<option id>` a choice, `k` skip an input), and what a
press or a typed text means (a steps.Move); the engine only carries that out. A token for
another step or attempt, for a button the step does not offer, or for a finished run, answers
StaleButton (then the current step again) and records nothing. Whether a token belongs to
this run at all is the handler's part (the run id it adds).

A Problem on a task records outcome StepOutcome.BLOCKED with the reason, then: with `on_blocked: step`
the run goes there; with `blocking: true` the run ends with status RunStatus.BLOCKED (event Blocked);
otherwise the problem is noted (ProblemNoted) and the run goes on to the step's normal next.
So a Problem stops a run only where the flow says the procedure cannot go on without it.

"Step n/total": n is the number of answered steps + 1, so it rises by one per answer; total is
n - 1 plus the most steps that can still be shown from the current one along the steps' own
routes, going round each loop at most once (Flow.remaining, flow_graph.StepCounter). So the
total changes only right after an answer that picks the route: a choice, a branch on a saved
answer, or a Problem that goes elsewhere (on_blocked), whose detour is not counted before it
is taken. A plain Done, Skip or Continue never moves it, and the last step reads n/n.

Branch steps (kind: branch, never shown) route on saved variables without a press; at most
MAX_AUTO_STEPS of them run in one call, else the call returns LoopLimit and changes nothing
(start() then returns the run abandoned). The loader already refuses such loops.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from conversations import texts
from conversations.conditions import birthday
from conversations.events import (
    Abandoned,
    AskReason,
    AskReasonText,
    Blocked,
    Completed,
    Event,
    FlowButton,
    InvalidInput,
    LoopLimit,
    MarkDigitalReady,
    Pressed,
    ProblemNoted,
    RunNotActive,
    ShowStep,
    StaleButton,
    StepMissing,
    StepRecord,
    Transition,
    Typed,
)
from conversations.flow_model import END, Flow, Step
from conversations.state import Awaiting, RunState, RunStatus, StepOutcome
from conversations.steps import Answer, Ask, Move, Refusal
from conversations.validators import ErrorMessage

__all__ = [
    "MAX_AUTO_STEPS", "Abandoned", "AskReason", "AskReasonText", "Awaiting", "Blocked", "Completed",
    "Event", "FlowButton", "InvalidInput", "LoopLimit", "MarkDigitalReady", "Pressed", "ProblemNoted",
    "RunNotActive", "RunState", "RunStatus", "ShowStep", "StaleButton", "StepMissing", "StepOutcome",
    "StepRecord", "Transition", "Typed", "advance", "cancel", "make_token", "parse_token", "reopen",
    "resume", "start", "step_view",
]

MAX_AUTO_STEPS = 50
_TOKEN = re.compile(r"([a-z][a-z0-9_]{0,19}):([0-9]{1,6}):([a-z0-9:_]{1,20})")


class _Loop(Exception):
    def __init__(self, step_id: str) -> None:
        self.step_id = step_id


# Public functions -------------------------------------------------------------------------

def start(flow: Flow, now: datetime | date) -> Transition:
    """A new run at the flow's first step (after any branch steps)."""
    state = RunState(flow.id, flow.version)
    try:
        events = _enter(flow, state, flow.first.id, _today(now))
    except _Loop as loop:
        state.status, state.step = RunStatus.ABANDONED, None
        return Transition(state, (), (LoopLimit(loop.step_id),))
    return Transition(state, (), tuple(events))


def advance(
    flow: Flow, state: RunState, user_input: Pressed | Typed, now: datetime | date,
    *, cccd_key: bytes | None = None,
) -> Transition:
    """Apply one press or typed text to a run; see the module docstring."""
    _check_pinned(flow, state)
    if state.status != RunStatus.ACTIVE:
        event = StaleButton() if isinstance(user_input, Pressed) else RunNotActive(state.status)
        return Transition(state, (), (event,))
    step = flow.step(state.step)
    if step is None:
        return Transition(state, (), (StepMissing(state.step),))
    new = state.copy()
    try:
        if isinstance(user_input, Pressed):
            return _pressed(flow, new, step, user_input.token, _today(now))
        return _typed(flow, new, step, user_input.text, _today(now), cccd_key)
    except _Loop as loop:
        return Transition(state, (), (LoopLimit(loop.step_id),))


def resume(flow: Flow, state: RunState) -> Transition:
    """Show where a paused run stands (the same step and attempt: old buttons stay valid)."""
    _check_pinned(flow, state)
    if state.status != RunStatus.ACTIVE:
        return Transition(state, (), (RunNotActive(state.status),))
    step = flow.step(state.step)
    if step is None:
        return Transition(state, (), (StepMissing(state.step),))
    return Transition(state, (), (_prompt(flow, state, step),))


def step_view(flow: Flow, state: RunState) -> ShowStep | None:
    """The run's current step as it is shown, leaving out a Problem sub-step it waits at (the
    reason question repeats the step it is about); None when there is no step to show."""
    step = flow.step(state.step) if state.step else None
    if step is None:
        return None
    shown = state.copy()
    shown.awaiting = None
    event = _prompt(flow, shown, step)
    return event if isinstance(event, ShowStep) else None


def reopen(flow: Flow, state: RunState) -> Transition:
    """Retry a blocked run: the step it stopped at is shown again as a new attempt, so the
    earlier "blocked" record stays as it was and the new answer is recorded beside it."""
    _check_pinned(flow, state)
    if state.status != RunStatus.BLOCKED:
        return resume(flow, state)
    step = flow.step(state.step)
    if step is None:
        return Transition(state, (), (StepMissing(state.step),))
    new = state.copy()
    new.status, new.awaiting = RunStatus.ACTIVE, None
    new.attempts[step.id] = new.attempts.get(step.id, 0) + 1
    return Transition(new, (), (_prompt(flow, new, step),))


def cancel(state: RunState) -> Transition:
    """Abandon: the run stops at its current step; no step record is written. (Pausing needs
    no engine call: a paused run is an active run nobody is answering.)"""
    if state.status != RunStatus.ACTIVE:
        return Transition(state, (), (RunNotActive(state.status),))
    new = state.copy()
    new.status, new.awaiting = RunStatus.ABANDONED, None
    return Transition(new, (), (Abandoned(new.step),))


def parse_token(token: str) -> tuple[str, int, str] | None:
    """(step id, attempt, action) of a button token, or None if it is not one."""
    match = _TOKEN.fullmatch(token) if isinstance(token, str) and len(token) <= 48 else None
    return (match.group(1), int(match.group(2)), match.group(3)) if match else None


def make_token(step_id: str, attempt: int, action: str) -> str:
    return f"{step_id}:{attempt}:{action}"


# Internals --------------------------------------------------------------------------------

def _today(now: datetime | date) -> date:
    return now.date() if isinstance(now, datetime) else now


def _check_pinned(flow: Flow, state: RunState) -> None:
    if state.flow != flow.id or state.version != flow.version:
        raise ValueError(f"run of {state.flow} v{state.version} given flow {flow.id} v{flow.version}")


def _pressed(flow: Flow, state: RunState, step: Step, token: str, today: date) -> Transition:
    parsed = parse_token(token)
    attempt = state.attempts.get(step.id, 0)
    if parsed is None or parsed[0] != step.id or parsed[1] != attempt:
        return _stale(flow, state, step, parsed[0] if parsed else None)
    move = step.press(parsed[2])
    if move is None:  # a button this step does not offer (or no longer: skippable, optional)
        return _stale(flow, state, step, step.id)
    return _move(flow, state, step, move, today)


def _typed(
    flow: Flow, state: RunState, step: Step, text: str, today: date, cccd_key: bytes | None
) -> Transition:
    move = step.typed(text, today, state.awaiting, cccd_key)
    if move is None:
        return Transition(state, (), (InvalidInput(step.id, texts.USE_BUTTONS), _prompt(flow, state, step)))
    return _move(flow, state, step, move, today)


def _move(flow: Flow, state: RunState, step: Step, move: Move, today: date) -> Transition:
    """Carry out what the step said a press or a typed text means (steps.py)."""
    if isinstance(move, Ask):
        state.awaiting = move.awaiting
        return Transition(state, (), (_prompt(flow, state, step),))
    if isinstance(move, Refusal):
        state.awaiting = move.awaiting
        return Transition(state, (), (_invalid(step, move.error), _prompt(flow, state, step)))
    if move.save is not None:
        name, value = move.save
        if value is None:
            state.vars.pop(name, None)
        else:
            state.vars[name] = value
    return _leave(flow, state, step, move, today)


def _invalid(step: Step, error: ErrorMessage) -> InvalidInput:
    return InvalidInput(step.id, error.msgid, dict(error.values))


def _stale(flow: Flow, state: RunState, step: Step, pressed_step: str | None) -> Transition:
    return Transition(state, (), (StaleButton(pressed_step), _prompt(flow, state, step)))


def _leave(flow: Flow, state: RunState, step: Step, answer: Answer, today: date) -> Transition:
    """Record the answered step, then move to the next one (or end the run)."""
    outcome = answer.outcome
    record = StepRecord(step.id, state.attempts[step.id], outcome, answer.reason, answer.reason_typed,
                        answer.value, answer.value_hash)
    state.answered += 1
    state.awaiting = None
    events: list[Event] = []
    if outcome == StepOutcome.DONE and step.mark_digital_ready:
        events.append(MarkDigitalReady(step.id))
    if outcome == StepOutcome.BLOCKED:
        assert answer.reason is not None
        if answer.stops:
            state.status = RunStatus.BLOCKED
            return Transition(state, (record,), (Blocked(step.id, answer.reason, answer.reason_typed),))
        events.append(ProblemNoted(step.id, answer.reason, answer.reason_typed))
    target = answer.target if answer.target is not None else step.next_for(state.vars, today)
    events += _enter(flow, state, target, today)
    return Transition(state, (record,), tuple(events))


def _enter(flow: Flow, state: RunState, target: str, today: date) -> list[Event]:
    """Go to `target`, through any branch steps, and show it (or complete the run)."""
    for _ in range(MAX_AUTO_STEPS + 1):
        if target == END:
            state.status, state.step, state.awaiting = RunStatus.COMPLETED, None, None
            return [Completed(flow.id, flow.done_text)]
        step = flow.step(target)
        if step is None:
            state.step, state.awaiting = target, None
            return [StepMissing(target)]
        if step.shown:
            state.step, state.awaiting = step.id, None
            state.attempts[step.id] = state.attempts.get(step.id, 0) + 1
            return [_prompt(flow, state, step)]
        target = step.next_for(state.vars, today)
    assert step is not None  # the loop went through branch steps only
    raise _Loop(step.id)


def _prompt(flow: Flow, state: RunState, step: Step) -> Event:
    """The message that asks for the current step's answer (or its Problem sub-step)."""
    attempt = state.attempts.get(step.id, 0)
    buttons = tuple(FlowButton(label, make_token(step.id, attempt, action))
                    for label, action in step.buttons(state.awaiting))
    if state.awaiting == Awaiting.REASON:
        return AskReason(step.id, buttons)
    if state.awaiting == Awaiting.REASON_TEXT:
        return AskReasonText(step.id, buttons)
    answered = state.answered
    values = {value.name: _shown_date(birthday(state.vars.get(value.var), value.years))
              for value in step.dates}
    return ShowStep(
        step.id, step.kind, step.text, answered + 1, answered + flow.remaining(step.id, state.attempts),
        buttons, step.hint(), step.expects_text, values,
    )


def _shown_date(day: date | None) -> str:
    """A date as people in Vietnam write it (dd/mm/yyyy); "?" when the saved answer is missing."""
    return f"{day.day:02d}/{day.month:02d}/{day.year}" if day else "?"
