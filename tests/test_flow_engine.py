"""The pure flow engine on small inline flows: every step kind, stale buttons, problems,
inputs, branching, the loop cap, pinned versions and missing steps."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from conversations import engine, texts
from conversations.conditions import parse_condition
from conversations.engine import (
    AskReason,
    AskReasonText,
    Blocked,
    Completed,
    InvalidInput,
    LoopLimit,
    MarkDigitalReady,
    Pressed,
    ProblemNoted,
    RunNotActive,
    ShowStep,
    StaleButton,
    StepMissing,
    Transition,
    Typed,
)
from conversations.flow_model import Branch, BranchStep, Flow, FlowRegistry, InfoStep, parse_flow_text
from conversations.state import RunState

NOW = datetime(2026, 11, 20, 9, 30)
ROOT = Path(__file__).resolve().parent.parent

BASIC = """
id: basic
version: 1
title: Basic flow
done_text: All done.
steps:
  - id: hello
    kind: info
    text: Hello.
  - id: fix
    kind: task
    text: Fix the thing.
    reasons: [No tool, No time]
  - id: pick
    kind: choice
    text: Which way?
    save_as: way
    options:
      - {id: left, label: Left, next: phone}
      - {id: right, label: Right, next: end}
  - id: phone
    kind: input
    text: Phone number?
    validator: phone
    optional: true
    save_as: phone
  - id: bye
    kind: info
    text: Bye.
    mark_digital_ready: true
"""


def _flow(text: str = BASIC, filename: str | None = None) -> Flow:
    return parse_flow_text(text, filename)


def _show(transition: Transition) -> ShowStep:
    shown = [e for e in transition.events if isinstance(e, ShowStep)]
    assert shown, transition.events
    return shown[-1]


def _token(transition: Transition, label: str) -> str:
    for event in reversed(transition.events):
        for button in getattr(event, "buttons", ()):
            if button.label == label:
                return button.token
    raise AssertionError(f"no button {label!r} in {transition.events}")


def _press(flow: Flow, transition: Transition, label: str) -> Transition:
    return engine.advance(flow, transition.new_state, Pressed(_token(transition, label)), NOW)


def _walk_to(flow: Flow, *labels: str) -> Transition:
    transition = engine.start(flow, NOW)
    for label in labels:
        transition = _press(flow, transition, label)
    return transition


def test_start_shows_the_first_step_with_its_position():
    """Starting a run shows the first step as step 1 of the longest path and records nothing."""
    flow = _flow()
    transition = engine.start(flow, NOW)
    shown = _show(transition)
    assert (shown.step_id, shown.position, shown.total) == ("hello", 1, 5)
    assert shown.header == (texts.STEP_POSITION, {"n": 1, "total": 5})
    assert [b.label for b in shown.buttons] == [texts.BUTTON_CONTINUE]
    assert transition.records == () and not transition.finished
    assert transition.new_state.flow == "basic" and transition.new_state.version == 1


def test_info_continue_records_done_and_moves_on():
    """Continue on an info step writes one done record and shows the following step."""
    flow = _flow()
    transition = _walk_to(flow, texts.BUTTON_CONTINUE)
    assert [(r.step_id, r.attempt, r.outcome) for r in transition.records] == [("hello", 1, "done")]
    shown = _show(transition)
    assert shown.step_id == "fix" and shown.position == 2
    assert [b.label for b in shown.buttons] == [texts.BUTTON_DONE, texts.BUTTON_SKIP, texts.BUTTON_PROBLEM]


@pytest.mark.parametrize(("label", "outcome"), [(texts.BUTTON_DONE, "done"), (texts.BUTTON_SKIP, "skipped")])
def test_task_done_and_skip_are_recorded(label, outcome):
    """Done and Skip on a task write one record with that outcome and go to the next step."""
    flow = _flow()
    transition = _walk_to(flow, texts.BUTTON_CONTINUE, label)
    assert [(r.step_id, r.outcome, r.reason) for r in transition.records] == [("fix", outcome, None)]
    assert _show(transition).step_id == "pick"


def test_problem_asks_for_a_reason_from_the_list_and_records_it():
    """Problem shows the flow's reasons plus Other and Back; a reason is recorded as blocked."""
    flow = _flow()
    asked = _walk_to(flow, texts.BUTTON_CONTINUE, texts.BUTTON_PROBLEM)
    assert asked.records == ()
    assert isinstance(asked.events[0], AskReason)
    assert [b.label for b in asked.events[0].buttons] == [
        "No tool", "No time", texts.BUTTON_OTHER_REASON, texts.BUTTON_BACK,
    ]
    assert asked.new_state.awaiting == "reason"
    done = _press(flow, asked, "No time")
    assert [(r.step_id, r.outcome, r.reason, r.reason_typed) for r in done.records] == [
        ("fix", "blocked", "No time", False)
    ]
    assert ProblemNoted("fix", "No time") in done.events
    assert _show(done).step_id == "pick" and not done.finished


def test_other_reason_takes_typed_text():
    """Other reason waits for typed text and records it as the reason."""
    flow = _flow()
    asked = _walk_to(flow, texts.BUTTON_CONTINUE, texts.BUTTON_PROBLEM, texts.BUTTON_OTHER_REASON)
    assert isinstance(asked.events[0], AskReasonText) and asked.records == ()
    done = engine.advance(flow, asked.new_state, Typed("  Trời mưa to  "), NOW)
    assert [(r.outcome, r.reason, r.reason_typed) for r in done.records] == [("blocked", "Trời mưa to", True)]
    assert _show(done).step_id == "pick"


def test_text_typed_while_the_reason_list_is_shown_is_the_reason():
    """Typing instead of pressing a reason button records the text as a free-text reason."""
    flow = _flow()
    asked = _walk_to(flow, texts.BUTTON_CONTINUE, texts.BUTTON_PROBLEM)
    done = engine.advance(flow, asked.new_state, Typed("Mất điện"), NOW)
    assert [(r.reason, r.reason_typed) for r in done.records] == [("Mất điện", True)]


@pytest.mark.parametrize("bad", ["", "   ", "x" * 600, "a\x00b"])
def test_a_bad_free_text_reason_is_asked_again(bad):
    """An empty, overlong or control-character reason is refused and nothing is recorded."""
    flow = _flow()
    asked = _walk_to(flow, texts.BUTTON_CONTINUE, texts.BUTTON_PROBLEM, texts.BUTTON_OTHER_REASON)
    again = engine.advance(flow, asked.new_state, Typed(bad), NOW)
    assert again.records == ()
    assert isinstance(again.events[0], InvalidInput) and isinstance(again.events[1], AskReasonText)
    assert again.new_state.step == "fix" and again.new_state.answered == asked.new_state.answered


def test_back_from_the_reasons_returns_to_the_task():
    """Back from the reason list shows the task again with the same, still valid buttons."""
    flow = _flow()
    task = _walk_to(flow, texts.BUTTON_CONTINUE)
    back = _walk_to(flow, texts.BUTTON_CONTINUE, texts.BUTTON_PROBLEM, texts.BUTTON_BACK)
    assert back.new_state.awaiting is None and back.records == ()
    assert _show(back).buttons == _show(task).buttons


def test_task_without_reasons_asks_for_typed_reason_at_once():
    """A Problem on a task without a reason list goes straight to the typed reason."""
    flow = _flow("""
id: bare
version: 1
title: Bare
steps:
  - {id: only, kind: task, text: Do it.}
""")
    asked = _walk_to(flow, texts.BUTTON_PROBLEM)
    assert isinstance(asked.events[0], AskReasonText)


def test_blocking_problem_ends_the_run_blocked():
    """A Problem on a blocking task records it and ends the run with status blocked."""
    flow = _flow("""
id: stop
version: 1
title: Stop
steps:
  - {id: must, kind: task, text: Must work., reasons: [Broken], blocking: true}
  - {id: after, kind: info, text: After.}
""")
    done = _walk_to(flow, texts.BUTTON_PROBLEM, "Broken")
    assert done.finished and done.status == "blocked"
    assert done.events == (Blocked("must", "Broken"),)
    assert [(r.step_id, r.outcome) for r in done.records] == [("must", "blocked")]
    assert done.new_state.step == "must"


def test_on_blocked_goes_to_the_named_step():
    """A Problem on a task with on_blocked continues at that step."""
    flow = _flow("""
id: detour
version: 1
title: Detour
steps:
  - {id: try_app, kind: task, text: Try the app., reasons: [Broken], on_blocked: police}
  - {id: ok, kind: info, text: Fine., next: end}
  - {id: police, kind: info, text: Go to the police.}
""")
    done = _walk_to(flow, texts.BUTTON_PROBLEM, "Broken")
    assert _show(done).step_id == "police"
    assert _show(_walk_to(flow, texts.BUTTON_DONE)).step_id == "ok"


def test_unskippable_task_has_no_skip_button():
    """A task with skippable false offers only Done and Problem, and a forged skip is stale."""
    flow = _flow("""
id: noskip
version: 1
title: No skip
steps:
  - {id: solo, kind: task, text: Alone., skippable: false}
""")
    transition = engine.start(flow, NOW)
    assert [b.label for b in _show(transition).buttons] == [texts.BUTTON_DONE, texts.BUTTON_PROBLEM]
    forged = engine.advance(flow, transition.new_state, Pressed("solo:1:s"), NOW)
    assert isinstance(forged.events[0], StaleButton) and forged.records == ()


def test_choice_goes_to_the_option_target_and_saves_it():
    """Choosing an option records its id, saves it and follows the option's next."""
    flow = _flow()
    left = _walk_to(flow, texts.BUTTON_CONTINUE, texts.BUTTON_DONE, "Left")
    assert [(r.step_id, r.value) for r in left.records] == [("pick", "left")]
    assert left.new_state.vars["way"] == "left"
    assert _show(left).step_id == "phone" and _show(left).expects_text
    right = _walk_to(flow, texts.BUTTON_CONTINUE, texts.BUTTON_DONE, "Right")
    assert right.finished and right.status == "completed"
    assert right.events == (Completed("basic", "All done."),)


def test_valid_input_is_normalised_recorded_and_saved():
    """A valid typed answer is recorded normalised and saved under save_as."""
    flow = _flow()
    asked = _walk_to(flow, texts.BUTTON_CONTINUE, texts.BUTTON_DONE, "Left")
    done = engine.advance(flow, asked.new_state, Typed("+84 905 123 456"), NOW)
    assert [(r.step_id, r.outcome, r.value) for r in done.records] == [("phone", "done", "0905123456")]
    assert done.new_state.vars["phone"] == "0905123456"


@pytest.mark.parametrize("bad", ["12345", "", "😀", "x" * 200_000, "'; DROP TABLE households; --"])
def test_invalid_input_says_why_asks_again_and_records_nothing(bad):
    """A bad typed value gets the validator's message and the step again; state stays the same."""
    flow = _flow()
    asked = _walk_to(flow, texts.BUTTON_CONTINUE, texts.BUTTON_DONE, "Left")
    again = engine.advance(flow, asked.new_state, Typed(bad), NOW)
    assert again.records == ()
    assert isinstance(again.events[0], InvalidInput) and again.events[0].msgid
    assert _show(again).step_id == "phone"
    assert again.new_state == asked.new_state


def test_optional_input_can_be_skipped():
    """Skip on an optional input records skipped and moves on without a value."""
    flow = _flow()
    asked = _walk_to(flow, texts.BUTTON_CONTINUE, texts.BUTTON_DONE, "Left")
    assert [b.label for b in _show(asked).buttons] == [texts.BUTTON_SKIP]
    skipped = _press(flow, asked, texts.BUTTON_SKIP)
    assert [(r.step_id, r.outcome, r.value) for r in skipped.records] == [("phone", "skipped", None)]
    assert "phone" not in skipped.new_state.vars


def test_required_input_has_no_skip():
    """A required input offers no Skip button and a forged skip token is stale."""
    flow = _flow("""
id: req
version: 1
title: Required
steps:
  - {id: year, kind: input, text: "Year?", validator: year}
""")
    transition = engine.start(flow, NOW)
    assert _show(transition).buttons == ()
    forged = engine.advance(flow, transition.new_state, Pressed("year:1:k"), NOW)
    assert isinstance(forged.events[0], StaleButton) and forged.records == ()


def test_mark_digital_ready_is_emitted_when_the_step_is_done():
    """A step with mark_digital_ready emits MarkDigitalReady when it is answered."""
    flow = _flow()
    asked = _walk_to(flow, texts.BUTTON_CONTINUE, texts.BUTTON_DONE, "Left", texts.BUTTON_SKIP)
    done = _press(flow, asked, texts.BUTTON_CONTINUE)
    assert MarkDigitalReady("bye") in done.events
    assert isinstance(done.events[-1], Completed) and done.finished


def test_cccd_input_keeps_only_the_masked_number():
    """A citizen ID is recorded and saved masked (with a keyed hash), never in full."""
    flow = _flow("""
id: idcard
version: 1
title: ID card
steps:
  - {id: cccd, kind: input, text: "Citizen ID?", validator: cccd, save_as: cccd}
""")
    transition = engine.start(flow, NOW)
    done = engine.advance(flow, transition.new_state, Typed("048 090 001 234"), NOW, cccd_key=b"k")
    record = done.records[0]
    assert record.value == "0480******34" and record.value_hash and len(record.value_hash) == 64
    assert done.new_state.vars["cccd"] == "0480******34"
    dumped = json.dumps(done.new_state.to_json()) + repr(done.records) + repr(done.events)
    assert "048090001234" not in dumped and "090001" not in dumped


def test_stale_button_from_an_older_step_records_nothing_and_shows_the_current_step():
    """A button from a step already answered answers StaleButton, shows the current step, records nothing."""
    flow = _flow()
    first = engine.start(flow, NOW)
    second = _press(flow, first, texts.BUTTON_CONTINUE)
    stale = engine.advance(flow, second.new_state, Pressed(_token(first, texts.BUTTON_CONTINUE)), NOW)
    assert isinstance(stale.events[0], StaleButton) and stale.events[0].step_id == "hello"
    assert _show(stale).step_id == "fix"
    assert stale.records == () and stale.new_state == second.new_state


@pytest.mark.parametrize("token", ["", "garbage", "fix:1", "fix:2:d", "fix:0:d", "fix:1:zz", "fix:1:r9",
                                   "x" * 5000, "fix:1:o:left", "hello:1:c", "other:1:d", "fix:١:d"])
def test_forged_or_foreign_tokens_are_stale(token):
    """Tokens that do not match the current step, attempt and kind are stale and record nothing."""
    flow = _flow()
    at_task = _walk_to(flow, texts.BUTTON_CONTINUE)
    result = engine.advance(flow, at_task.new_state, Pressed(token), NOW)
    assert isinstance(result.events[0], StaleButton)
    assert _show(result).step_id == "fix"
    assert result.records == () and result.new_state == at_task.new_state


def test_revisiting_a_step_starts_a_new_attempt_and_old_buttons_go_stale():
    """Going back to a step counts a new attempt; the previous attempt's buttons are stale."""
    flow = _flow("""
id: loop
version: 1
title: Loop
steps:
  - id: ask
    kind: choice
    text: Again?
    options:
      - {id: again, label: Again, next: ask}
      - {id: stop, label: Stop, next: end}
""")
    first = engine.start(flow, NOW)
    second = _press(flow, first, "Again")
    assert second.new_state.attempts["ask"] == 2
    assert [(r.step_id, r.attempt) for r in second.records] == [("ask", 1)]
    assert _show(second).position == 2
    stale = engine.advance(flow, second.new_state, Pressed(_token(first, "Stop")), NOW)
    assert isinstance(stale.events[0], StaleButton) and stale.records == ()
    done = _press(flow, second, "Stop")
    assert [(r.step_id, r.attempt) for r in done.records] == [("ask", 2)] and done.finished


def test_buttons_of_a_finished_run_are_stale():
    """A press on a finished run answers StaleButton alone; typed text answers RunNotActive."""
    flow = _flow()
    finished = _walk_to(flow, texts.BUTTON_CONTINUE, texts.BUTTON_DONE, "Right")
    pressed = engine.advance(flow, finished.new_state, Pressed("pick:1:o:right"), NOW)
    assert pressed.events == (StaleButton(),) and pressed.records == ()
    typed = engine.advance(flow, finished.new_state, Typed("hello"), NOW)
    assert typed.events == (RunNotActive("completed"),)


def test_typed_text_on_a_button_step_asks_for_a_button():
    """Text typed where buttons are expected gets 'use the buttons' and the step again."""
    flow = _flow()
    transition = engine.advance(flow, engine.start(flow, NOW).new_state, Typed("ok"), NOW)
    assert transition.events[0] == InvalidInput("hello", texts.USE_BUTTONS)
    assert _show(transition).step_id == "hello" and transition.records == ()


def test_cancel_abandons_the_run_where_it_stands():
    """Cancel marks the run abandoned at its current step without a step record."""
    flow = _flow()
    at_task = _walk_to(flow, texts.BUTTON_CONTINUE)
    cancelled = engine.cancel(at_task.new_state)
    assert cancelled.status == "abandoned" and cancelled.finished and cancelled.records == ()
    assert cancelled.events[0].step_id == "fix"
    assert engine.cancel(cancelled.new_state).events == (RunNotActive("abandoned"),)
    again = engine.advance(flow, cancelled.new_state, Pressed(_token(at_task, texts.BUTTON_DONE)), NOW)
    assert again.events == (StaleButton(),)


def test_resume_shows_the_same_step_and_keeps_its_buttons_valid():
    """Resuming a paused run shows the current step with the same tokens and changes nothing."""
    flow = _flow()
    at_task = _walk_to(flow, texts.BUTTON_CONTINUE, texts.BUTTON_PROBLEM)
    stored = json.loads(json.dumps(at_task.new_state.to_json()))
    resumed = engine.resume(flow, RunState.from_json(stored))
    assert resumed.new_state.to_json() == stored and resumed.records == ()
    assert isinstance(resumed.events[0], AskReason)
    done = _press(flow, resumed, "No tool")
    assert done.records[0].reason == "No tool"


def test_the_engine_does_not_mutate_the_state_it_is_given():
    """advance works on a copy: the caller's state is unchanged."""
    flow = _flow()
    transition = engine.start(flow, NOW)
    before = json.dumps(transition.new_state.to_json(), sort_keys=True)
    engine.advance(flow, transition.new_state, Pressed(_token(transition, texts.BUTTON_CONTINUE)), NOW)
    assert json.dumps(transition.new_state.to_json(), sort_keys=True) == before


BRANCHY = """
id: branchy
version: 1
title: Branchy
steps:
  - {id: born, kind: input, text: "Birth date?", validator: date, save_as: born}
  - id: route
    kind: branch
    branch:
      - if: {var: born, older_than_days: 60}
        next: late
      - else: route2
  - id: route2
    kind: branch
    branch:
      - if: {not: {var: born, is_set: false}}
        next: on_time
      - else: late
  - {id: late, kind: info, text: Late., next: end}
  - {id: on_time, kind: info, text: On time., next: end}
"""


@pytest.mark.parametrize(("typed", "step"), [("01/01/2026", "late"), ("01/11/2026", "on_time"),
                                             ("21/09/2026", "on_time"), ("20/09/2026", "late")])
def test_branch_steps_route_on_saved_variables_without_a_press(typed, step):
    """Branch steps evaluate conditions on saved values (with today passed in) and route at once."""
    flow = _flow(BRANCHY)
    done = engine.advance(flow, engine.start(flow, NOW).new_state, Typed(typed), NOW)
    assert _show(done).step_id == step
    assert [r.step_id for r in done.records] == ["born"]
    assert _show(done).total == 2


@pytest.mark.parametrize(
    ("condition", "variables", "expected"),
    [
        ({"var": "y", "age_at_least": 75}, {"y": 1951}, True),
        ({"var": "y", "age_at_least": 75}, {"y": 1952}, False),
        ({"var": "y", "age_below": 75}, {"y": 1952}, True),
        ({"var": "d", "age_at_least": 6}, {"d": "2020-11-20"}, True),
        ({"var": "d", "age_at_least": 6}, {"d": "2020-11-21"}, False),
        ({"var": "d", "older_than_days": 60}, {"d": "2026-09-21"}, False),
        ({"var": "d", "older_than_days": 60}, {"d": "2026-09-20"}, True),
        ({"var": "h", "equals": "poor"}, {"h": "poor"}, True),
        ({"var": "h", "one_of": ["poor", "near"]}, {"h": "rich"}, False),
        ({"var": "h", "is_set": False}, {}, True),
        ({"var": "y", "age_at_least": 75}, {}, False),
        ({"var": "y", "age_at_least": 75}, {"y": "not a date"}, False),
        ({"all": [{"var": "y", "age_at_least": 70}, {"var": "h", "equals": "poor"}]},
         {"y": 1955, "h": "poor"}, True),
        ({"any": [{"var": "y", "age_at_least": 75}, {"var": "h", "equals": "poor"}]},
         {"y": 1990, "h": "other"}, False),
    ],
)
def test_conditions_evaluate_declaratively(condition, variables, expected):
    """Each condition test gives the expected truth for the saved variables on a fixed day."""
    from conversations.conditions import evaluate

    assert evaluate(parse_condition(condition), variables, NOW.date()) is expected


def test_the_loop_cap_stops_branch_steps_that_go_round_in_circles():
    """Branch steps looping without input stop at the cap with LoopLimit and change nothing."""
    always = parse_condition({"var": "x", "is_set": False})
    flow = Flow("loopy", 1, "Loopy", (
        InfoStep("go", "Go.", next="a"),
        BranchStep("a", branch=(Branch(always, "b"), Branch(None, "end"))),
        BranchStep("b", branch=(Branch(always, "a"), Branch(None, "end"))),
    ))
    first = engine.start(flow, NOW)
    looped = _press(flow, first, texts.BUTTON_CONTINUE)
    assert len(looped.events) == 1 and isinstance(looped.events[0], LoopLimit)
    assert looped.new_state == first.new_state and looped.records == ()
    assert engine.MAX_AUTO_STEPS == 50


def test_the_loader_refuses_branch_steps_that_loop():
    """A flow whose branch steps form a cycle without any input fails to load."""
    from conversations.flow_model import FlowError

    with pytest.raises(FlowError, match="loop back"):
        _flow("""
id: loopy
version: 1
title: Loopy
steps:
  - {id: go, kind: input, text: "X?", validator: text, save_as: x}
  - id: a
    kind: branch
    branch: [{if: {var: x, is_set: true}, next: b}, {else: end}]
  - id: b
    kind: branch
    branch: [{if: {var: x, is_set: true}, next: a}, {else: end}]
""")


def test_runs_stay_pinned_to_the_version_they_started_on():
    """A run started on version 1 goes on with version 1 after version 2 removed its steps."""
    registry = FlowRegistry()
    registry.add_yaml(BASIC, "basic.yaml")
    registry.add_yaml("""
id: basic
version: 2
title: Basic flow, shorter
steps:
  - {id: hello, kind: info, text: Hello again.}
""", "basic.yaml")
    assert registry.latest("basic").version == 2 and registry.versions("basic") == [1, 2]
    run = engine.start(registry.get("basic", 1), NOW)
    run = _press(registry.get("basic", 1), run, texts.BUTTON_CONTINUE)
    stored = json.loads(json.dumps(run.new_state.to_json()))
    pinned = registry.for_state(RunState.from_json(stored))
    assert pinned is not None and pinned.version == 1
    done = engine.advance(pinned, RunState.from_json(stored), Pressed(_token(run, texts.BUTTON_DONE)), NOW)
    assert [r.step_id for r in done.records] == ["fix"] and _show(done).step_id == "pick"
    with pytest.raises(ValueError, match="v1"):
        engine.advance(registry.latest("basic"), RunState.from_json(stored), Pressed("fix:1:d"), NOW)


def test_registering_the_same_version_with_other_steps_fails():
    """Loading a different flow under an already known id and version is refused."""
    from conversations.flow_model import FlowError

    registry = FlowRegistry()
    registry.add_yaml(BASIC, "basic.yaml")
    registry.add_yaml(BASIC, "basic.yaml")  # the same definition again is fine
    with pytest.raises(FlowError, match="bump the version"):
        registry.add_yaml(BASIC.replace("Hello.", "Hi."), "basic.yaml")


def test_a_run_whose_step_no_longer_exists_reports_step_missing():
    """A state pinned to a step its flow lacks answers StepMissing for presses, text and resume."""
    flow = _flow()
    state = dataclasses.replace(engine.start(flow, NOW).new_state, step="vanished")
    for result in (engine.advance(flow, state, Pressed("vanished:1:c"), NOW),
                   engine.advance(flow, state, Typed("hi"), NOW), engine.resume(flow, state)):
        assert result.events == (StepMissing("vanished"),) and result.records == ()
        assert result.new_state == state


def test_state_round_trips_through_json():
    """Every state the engine produces survives a JSON round trip unchanged."""
    flow = _flow()
    transition = _walk_to(flow, texts.BUTTON_CONTINUE, texts.BUTTON_PROBLEM, "No tool", "Left")
    transition = engine.advance(flow, transition.new_state, Typed("0905123456"), NOW)
    stored = json.loads(json.dumps(transition.new_state.to_json()))
    assert RunState.from_json(stored) == transition.new_state and stored == transition.new_state.to_json()
    assert transition.new_state.answered == 4


def test_total_shrinks_when_a_branch_skips_steps():
    """The total counts the longest remaining path, so a shorter branch lowers it honestly."""
    flow = _flow("""
id: paths
version: 1
title: Paths
steps:
  - id: pick
    kind: choice
    text: Long or short?
    options:
      - {id: long, label: Long, next: a}
      - {id: short, label: Short, next: c}
  - {id: a, kind: info, text: A.}
  - {id: b, kind: info, text: B.}
  - {id: c, kind: info, text: C.}
""")
    start = engine.start(flow, NOW)
    assert (_show(start).position, _show(start).total) == (1, 4)
    short = _press(flow, start, "Short")
    assert (_show(short).position, _show(short).total) == (2, 2)
    long = _press(flow, start, "Long")
    assert (_show(long).position, _show(long).total) == (2, 4)


def test_tokens_fit_in_telegram_callback_data():
    """The longest possible token plus the handler's prefix fits in Telegram's 64 bytes."""
    token = engine.make_token("s" * 20, 999_999, "o:" + "o" * 16)
    assert engine.parse_token(token) == ("s" * 20, 999_999, "o:" + "o" * 16)
    assert len(f"flow:{2**63 - 1}:{token}".encode()) > 64 >= len(f"flow:{2**31 - 1}:{token}".encode())
    assert len(token.encode()) <= 48


FORBIDDEN = ("db", "handlers", "bot", "reports", "aiogram", "aiohttp", "sqlalchemy")
PACKAGES = ("bot", "handlers", "conversations", "db", "reports")
# Dependencies point one way (docs/design.md §1): what each top-level package may import of the
# others; everything else is forbidden, imports inside functions included.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "conversations": frozenset(),  # pure: flows, their engine, the FAQ matcher
    "db": frozenset({"conversations"}),  # models and queries; the run state and its enums
    "reports": frozenset({"conversations"}),  # chart and export files; Vietnam's time zone
    "handlers": frozenset({"conversations", "db", "reports"}),  # the core; no channel, no wiring
    "bot": frozenset({"conversations", "db", "handlers", "reports"}),  # wiring, CLI, channels
}
# Libraries only some packages may use: the platforms belong to bot/ (the channels), SQL to db/
# and the layers above it.
LIBRARIES: dict[str, frozenset[str]] = {
    "aiogram": frozenset({"bot"}),
    "aiohttp": frozenset({"bot"}),
    "sqlalchemy": frozenset({"db", "handlers", "bot"}),
}


def _imports(package: str) -> list[tuple[str, str]]:
    """(file, top-level name) of every absolute import in the package, nested ones included."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            found += [(str(path.relative_to(ROOT)), name.split(".")[0]) for name in names]
    return found


def test_every_package_is_in_the_table_of_import_directions():
    """A new top-level package gets its line in MAY_IMPORT (and pyproject's packages)."""
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "bench"}
    assert on_disk == set(PACKAGES) == set(MAY_IMPORT)


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_one_way(package):
    """conversations/ imports no other package of ours; db/ and reports/ only conversations/ (the
    run state and its enums, the one Vietnam time zone); handlers/ imports those three, never
    bot/; bot/ may import them all. The platform libraries are bot/'s alone and SQLAlchemy
    stays out of conversations/ and reports/."""
    for path, name in _imports(package):
        if name in MAY_IMPORT and name != package:
            assert name in MAY_IMPORT[package], f"{path} imports {name}"
        if name in LIBRARIES:
            assert package in LIBRARIES[name], f"{path} imports {name}"


def test_conversations_imports_no_database_handler_or_platform_module():
    """No module in conversations/ imports db/, handlers/, bot/, reports/ or a platform library."""
    for path, name in _imports("conversations"):
        assert name not in FORBIDDEN, f"{path} imports {name}"


def test_importing_the_engine_loads_no_database_handler_or_platform_module():
    """Importing the engine and loading the flows pulls in no db, handler or platform module."""
    code = (
        "import sys; import conversations.engine, conversations.flow_model as m; "
        "m.load_flows('conversations/flows'); "
        f"bad = [n for n in sys.modules if n.split('.')[0] in {FORBIDDEN!r}]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_reopen_retries_a_blocked_step_as_a_new_attempt():
    """A blocked run reopened later shows the same step as attempt 2; old buttons are stale."""
    flow = parse_flow_text(
        "id: t\nversion: 1\ntitle: T\nsteps:\n"
        "  - {id: card, kind: task, text: Card, reasons: [No card], blocking: true}\n"
        "  - {id: app, kind: task, text: App}\n",
        "t.yaml",
    )
    now = datetime(2026, 1, 1)
    state = engine.start(flow, now).new_state
    state = engine.advance(flow, state, engine.Pressed("card:1:p"), now).new_state
    blocked = engine.advance(flow, state, engine.Pressed("card:1:r0"), now)
    assert blocked.status == "blocked"
    again = engine.reopen(flow, blocked.new_state)
    assert again.status == "active"
    assert next(b.token for b in again.events[0].buttons) == "card:2:d"
    stale = engine.advance(flow, again.new_state, engine.Pressed("card:1:d"), now)
    assert stale.records == ()
    done = engine.advance(flow, again.new_state, engine.Pressed("card:2:d"), now)
    assert [(r.step_id, r.attempt, r.outcome) for r in done.records] == [("card", 2, "done")]


def test_channels_reach_the_database_only_through_the_core():
    """bot/channels/ imports neither db/ nor SQLAlchemy: the notice relay, the served files and the
    health check go through app.core and app.channel_services (handlers/channel_services.py)."""
    found = [(path, name) for path, name in _imports("bot")
             if path.startswith("bot/channels/") and name in {"db", "sqlalchemy"}]
    assert found == []
