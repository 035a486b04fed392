""""Step n/N" on every path of every shipped flow: n rises by one per answered step, and N
changes only right after an answer that picks the route (a choice, a branch on a saved
answer, a Problem that goes elsewhere)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from conversations import engine
from conversations.engine import AskReason, AskReasonText, Pressed, ShowStep, Transition, Typed
from conversations.flow_model import END, Flow, Step, TaskStep, load_flows

FLOWS = Path(__file__).resolve().parent.parent / "conversations" / "flows"
SHIPPED = load_flows(FLOWS)
TODAY = date(2026, 12, 4)
# Typed answers that, between them, take every branch a shipped input step has.
SAMPLE_INPUTS = {
    # 2 weeks, 6 months, 8 years old; aged 86 and 72 (birthdays for the social pension)
    "date": ("20/11/2026", "01/06/2026", "01/01/2018", "01/01/1940", "15/12/1953"),
    "year": ("1940", "1954", "1990"),  # aged 86, 72, 36
    "phone": ("0905123456",),
    "cccd": ("048185000123",),
    "name": ("Hồ Thị Mười",),
    "number": ("3",),
    "text": ("some text",),
}


@dataclass(frozen=True)
class Answer:
    """One answered step on a path: what was shown before it and what came after."""

    step: Step
    outcome: str
    before: ShowStep
    after: ShowStep | None  # None when the run ended


def _shown(transition: Transition) -> ShowStep | None:
    steps = [e for e in transition.events if isinstance(e, ShowStep)]
    return steps[-1] if steps else None


def _press(flow: Flow, transition: Transition, token: str) -> Transition:
    return engine.advance(flow, transition.new_state, Pressed(token), TODAY)


def _answers(flow: Flow, transition: Transition, shown: ShowStep) -> Iterator[Transition]:
    """Every distinct way to answer the step shown (one reason stands for all of a Problem)."""
    step = flow.step(shown.step_id)
    assert step is not None
    if step.kind == "input":
        for text in SAMPLE_INPUTS[step.validator or "text"]:
            yield engine.advance(flow, transition.new_state, Typed(text), TODAY)
        if step.optional:
            yield _press(flow, transition, shown.buttons[0].token)
        return
    for button in shown.buttons:
        answered = _press(flow, transition, button.token)
        asked = [e for e in answered.events if isinstance(e, AskReason | AskReasonText)]
        if asked and isinstance(asked[0], AskReason):
            answered = _press(flow, answered, asked[0].buttons[0].token)
        elif asked:
            answered = engine.advance(flow, answered.new_state, Typed("no signal"), TODAY)
        yield answered


def paths(flow: Flow) -> Iterator[list[Answer]]:
    """Every path through the flow as the list of its answers, first step to the end, going
    round each loop once (no step shown more than twice)."""

    def walk(transition: Transition, shown: ShowStep, so_far: list[Answer]) -> Iterator[list[Answer]]:
        if sum(a.step.id == shown.step_id for a in so_far) >= 2:
            return
        for answered in _answers(flow, transition, shown):
            assert len(answered.records) == 1, (flow.id, shown.step_id, answered.events)
            record = answered.records[0]
            step = flow.step(record.step_id)
            assert step is not None
            after = _shown(answered) if not answered.finished else None
            path = [*so_far, Answer(step, record.outcome, shown, after)]
            if after is None:
                yield path
            else:
                yield from walk(answered, after, path)

    first = engine.start(flow, TODAY)
    shown = _shown(first)
    assert shown is not None
    yield from walk(first, shown, [])


def _visible_routes(flow: Flow, step: Step) -> set[str]:
    """The steps (or END) that can be shown after this one when it is answered normally."""
    found: set[str] = set()
    todo = [o.next for o in step.options] if step.kind == "choice" else \
        [b.next for b in step.branch] or [step.next]
    while todo:
        target = todo.pop()
        router = flow.step(target)
        if router is not None and router.kind == "branch":
            todo += [b.next for b in router.branch]
        else:
            found.add(target)
    return found


def picks_the_route(flow: Flow, answer: Answer) -> bool:
    """Whether this answer chose between routes, so that the total may change after it."""
    step = answer.step
    detour = answer.outcome == "blocked" and isinstance(step, TaskStep) and step.on_blocked is not None
    return detour or len(_visible_routes(flow, answer.step)) > 1


@pytest.mark.parametrize("flow", list(SHIPPED), ids=lambda f: f.id)
def test_every_path_counts_its_steps_one_by_one(flow: Flow):
    """On every path of the flow n rises by one per answer, N moves only after a route is
    picked, n never passes N, and the last step shown before the end reads n/n."""
    walked = 0
    visited: set[str] = set()
    for path in paths(flow):
        walked += 1
        assert (path[0].before.position, path[0].before.total) >= (1, 1)
        assert path[0].before.position == 1
        for answer in path:
            visited.add(answer.step.id)
            before, after = answer.before, answer.after
            assert before.position <= before.total, (flow.id, answer.step.id, before)
            if after is None:
                continue
            where = f"{flow.id}: after {answer.step.id} ({answer.outcome}) {before.position}/" \
                    f"{before.total} -> {after.position}/{after.total}"
            assert after.position == before.position + 1, where
            if not picks_the_route(flow, answer):
                assert after.total == before.total, where
        last = path[-1]
        blocking = isinstance(last.step, TaskStep) and last.step.blocking
        if not blocking and not picks_the_route(flow, last):
            shown = f"{last.before.position}/{last.before.total}"
            assert last.before.position == last.before.total, f"{flow.id}: ends at {last.step.id} as {shown}"
    shown_steps = {s.id for s in flow.steps if s.kind != "branch"}
    assert visited == shown_steps, f"{flow.id}: paths never reach {sorted(shown_steps - visited)}"
    assert walked >= 1


def test_a_plain_task_after_a_detour_step_keeps_the_total():
    """Done on VNeID's NFC registration (a step with a Problem detour) keeps "Step n/N"'s N."""
    flow = SHIPPED.latest("vneid")
    for path in paths(flow):
        for answer in path:
            if answer.step.id == "register_nfc" and answer.outcome == "done" and answer.after:
                assert answer.after.total == answer.before.total
                return
    raise AssertionError("no path answers register_nfc with Done")


def test_sample_inputs_reach_every_branch_of_the_shipped_input_steps():
    """The walker's typed answers take every branch entry of every shipped input step."""
    for flow in SHIPPED:
        reached = {a.after.step_id for p in paths(flow) for a in p if a.after}
        for step in flow.steps:
            if step.kind == "input" and step.branch:
                for entry in step.branch:
                    assert entry.next in reached | {END}, (flow.id, step.id, entry.next)


def test_a_flow_of_tangled_loops_is_counted_quickly_and_never_below_the_position():
    """A flow where every step can go back to every earlier one still gets a total at once,
    never below the step's own position."""
    steps = []
    for i in range(25):
        earlier = range(max(i - 8, 0), i)
        back = "\n".join(f"      - {{id: b{j}, label: Back {j}, next: s{j}}}" for j in earlier)
        back = back or "      - {id: stay, label: Stay, next: s0}"
        steps.append(f"""  - id: s{i}
    kind: choice
    text: Step {i}?
    options:
      - {{id: go, label: Go, next: {f's{i + 1}' if i < 24 else 'end'}}}
{back}""")
    from conversations.flow_model import parse_flow_text

    flow = parse_flow_text("id: tangled\nversion: 1\ntitle: Tangled\nsteps:\n" + "\n".join(steps))
    transition = engine.start(flow, TODAY)
    for _ in range(30):
        shown = _shown(transition)
        if shown is None:
            break
        assert 1 <= shown.position <= shown.total
        transition = _press(flow, transition, shown.buttons[-1 if shown.position % 3 == 0 else 0].token)
