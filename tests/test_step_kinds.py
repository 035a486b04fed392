"""One class per step kind (conversations/steps.py): each owns its buttons, its ways out and what
a press or a typed text means; the loader builds the class a step's `kind` names."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from conversations import engine, texts
from conversations.conditions import parse_condition
from conversations.flow_model import (
    KINDS,
    STEP_TYPES,
    Branch,
    BranchStep,
    ChoiceStep,
    FlowError,
    InfoStep,
    InputStep,
    Option,
    TaskStep,
    load_flows,
    parse_flow_text,
)
from conversations.state import Awaiting, StepOutcome
from conversations.steps import Answer, Ask, Refusal

FLOWS_DIR = Path(__file__).resolve().parent.parent / "conversations" / "flows"
TODAY = date(2025, 6, 1)

ALL_KINDS = """\
id: kinds
version: 1
title: Kinds
steps:
  - {id: read, kind: info, text: Read this.}
  - id: pick
    kind: choice
    text: Which way?
    save_as: way
    options:
      - {id: app, label: The app, next: born}
      - {id: desk, label: The desk, next: route}
  - {id: born, kind: input, text: Born?, validator: date, optional: true, save_as: born}
  - id: route
    kind: branch
    branch:
      - {if: {var: way, equals: desk}, next: visit}
      - {else: end}
  - {id: visit, kind: task, text: Visit the desk., reasons: [Closed], on_blocked: read}
"""


@pytest.fixture(scope="module")
def steps():
    flow = parse_flow_text(ALL_KINDS, "kinds.yaml")
    return {step.id: step for step in flow.steps}


def test_each_yaml_kind_is_built_as_its_own_class(steps):
    """The loader builds the class its kind names, and `kind` still reads as in the YAML."""
    assert KINDS == ("info", "task", "choice", "input", "branch")
    assert {kind: cls.kind for kind, cls in STEP_TYPES.items()} == {kind: kind for kind in KINDS}
    expected = {"read": InfoStep, "pick": ChoiceStep, "born": InputStep, "route": BranchStep,
                "visit": TaskStep}
    assert {step_id: type(step) for step_id, step in steps.items()} == expected
    assert [step.kind for step in steps.values()] == ["info", "choice", "input", "branch", "task"]
    assert [step.shown for step in steps.values()] == [True, True, True, False, True]


def test_each_kind_owns_its_buttons(steps):
    """Continue for info; Done, Skip, Problem for a task (then its reasons); one button per
    option; Skip for an optional input; none for a branch."""
    assert steps["read"].buttons(None) == ((texts.BUTTON_CONTINUE, "c"),)
    assert steps["visit"].buttons(None) == (
        (texts.BUTTON_DONE, "d"), (texts.BUTTON_SKIP, "s"), (texts.BUTTON_PROBLEM, "p"))
    assert TaskStep("t", "T.", skippable=False).buttons(None) == (
        (texts.BUTTON_DONE, "d"), (texts.BUTTON_PROBLEM, "p"))
    assert steps["visit"].buttons(Awaiting.REASON) == (
        ("Closed", "r0"), (texts.BUTTON_OTHER_REASON, "x"), (texts.BUTTON_BACK, "b"))
    assert steps["visit"].buttons(Awaiting.REASON_TEXT) == ((texts.BUTTON_BACK, "b"),)
    assert steps["pick"].buttons(None) == (("The app", "o:app"), ("The desk", "o:desk"))
    assert steps["born"].buttons(None) == ((texts.BUTTON_SKIP, "k"),)
    assert InputStep("n", "N?", validator="number").buttons(None) == ()
    assert steps["route"].buttons(None) == ()
    assert [step.expects_text for step in steps.values()] == [False, False, True, False, False]


def test_each_kind_owns_its_targets(steps):
    """Ways out: next, the options, the branch entries, and a task's Problem detour, which
    targets() includes and routes() (the step counter's) leaves out."""
    assert steps["read"].targets() == ("pick",)
    assert steps["pick"].targets() == ("born", "route")
    assert [edge.option.id for edge in steps["pick"].edges() if edge.option] == ["app", "desk"]
    assert steps["born"].targets() == ("route",)
    assert steps["route"].targets() == ("visit", "end")
    assert steps["visit"].targets() == ("end", "read")
    assert steps["visit"].routes() == ("end",)
    assert [edge.problem for edge in steps["visit"].edges()] == [False, True]
    assert steps["route"].next_for({"way": "desk"}, TODAY) == "visit"
    assert steps["route"].next_for({"way": "app"}, TODAY) == "end"


def test_each_kind_takes_only_its_own_presses(steps):
    """A press means something only to the kind that offers its button; the others say None
    (the engine then answers an out-of-date button)."""
    actions = ("c", "d", "s", "p", "x", "b", "r0", "o:app", "k")
    taken = {step_id: [a for a in actions if step.press(a) is not None] for step_id, step in steps.items()}
    assert taken == {"read": ["c"], "pick": ["o:app"], "born": ["k"], "route": [],
                     "visit": ["d", "s", "p", "x", "b", "r0"]}
    assert steps["pick"].press("o:desk") == Answer(StepOutcome.DONE, value="desk", target="route",
                                                  save=("way", "desk"))
    assert steps["born"].press("k") == Answer(StepOutcome.SKIPPED, save=("born", None))
    assert steps["visit"].press("p") == Ask(Awaiting.REASON)
    assert steps["visit"].press("r0") == Answer(StepOutcome.BLOCKED, reason="Closed", target="read")
    assert TaskStep("t", "T.", reasons=("No",), blocking=True).press("r0").stops  # type: ignore[union-attr]
    assert TaskStep("t", "T.", skippable=False).press("s") is None


def test_only_inputs_and_a_tasks_problem_take_typed_text(steps):
    """Typed text answers an input (validated) or a task's Problem once it asks for a reason."""
    assert steps["read"].typed("hello", TODAY, None, None) is None
    assert steps["pick"].typed("The app", TODAY, None, None) is None
    assert steps["visit"].typed("hello", TODAY, None, None) is None
    assert steps["born"].typed("05/03/2025", TODAY, None, None) == Answer(
        StepOutcome.DONE, value="2025-03-05", save=("born", "2025-03-05"))
    assert isinstance(steps["born"].typed("soon", TODAY, None, None), Refusal)
    assert steps["visit"].typed("Office moved", TODAY, Awaiting.REASON_TEXT, None) == Answer(
        StepOutcome.BLOCKED, reason="Office moved", reason_typed=True, target="read")


def test_the_engine_shows_the_buttons_of_the_steps_class():
    """For every shipped flow the first step's buttons are the ones its class gives."""
    for flow in load_flows(FLOWS_DIR):
        shown = engine.start(flow, TODAY).events[-1]
        assert isinstance(shown, engine.ShowStep)
        step = flow.step(shown.step_id)
        assert step is not None and shown.kind == step.kind
        assert [(b.label, engine.parse_token(b.token)) for b in shown.buttons] == [
            (label, (step.id, 1, action)) for label, action in step.buttons(None)]


def test_a_step_built_in_code_works_like_one_from_yaml(steps):
    """The classes can be built directly (as the engine's tests do) and compare by value."""
    built = ChoiceStep("pick", "Which way?", save_as="way",
                       options=(Option("app", "The app", "born"), Option("desk", "The desk", "route")))
    assert built == steps["pick"]
    desk = parse_condition({"var": "way", "equals": "desk"})
    assert BranchStep("route", branch=(Branch(desk, "visit"), Branch(None, "end"))) == steps["route"]


@pytest.mark.parametrize(("step", "problem"), [
    ("{id: s1, kind: todo, text: X.}", "unknown kind 'todo'; use one of info, task, choice, input, branch"),
    ("{id: s1, text: X.}", "unknown kind None"),
    ("{id: s1, kind: task, text: X., validator: date}", "key(s) validator do not belong to a task step"),
    ("{id: s1, kind: info, text: X., options: []}", "key(s) options do not belong to a info step"),
    ("{id: s1, kind: branch}", "a branch step needs a 'branch' list"),
])
def test_a_step_of_an_unknown_kind_or_with_another_kinds_keys_is_refused(step, problem):
    """The loader names the file and the step, and says what is wrong."""
    text = f"id: bad\nversion: 1\ntitle: Bad\nsteps:\n  - {step}\n"
    with pytest.raises(FlowError) as caught:
        parse_flow_text(text, "bad.yaml")
    assert (caught.value.filename, caught.value.step) == ("bad.yaml", "s1")
    assert problem in caught.value.problem
    assert str(caught.value).startswith("bad.yaml, step 's1': ")
