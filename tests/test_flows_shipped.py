"""The seven shipped flows: they load, every path ends, the texts are extractable, and broken
flow files stop the loader with a message naming the file and the step."""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from conversations import engine
from conversations.babel_yaml import translatable_strings
from conversations.engine import (
    AskReason,
    AskReasonText,
    Blocked,
    Completed,
    MarkDigitalReady,
    Pressed,
    ShowStep,
    StaleButton,
    Transition,
    Typed,
)
from conversations.flow_model import Flow, FlowError, FlowRegistry, load_flows
from conversations.flow_order import FLOW_ORDER
from conversations.state import RunState

FLOWS_DIR = Path(__file__).resolve().parent.parent / "conversations" / "flows"
SHIPPED = ["birth_registration", "digital_signature", "public_service_account", "residence_confirmation",
           "smartphone_skills", "social_pension", "vneid"]
NOW = datetime(2026, 11, 20, 9, 0)
TODAY = NOW.date()
MAX_PATH = 60  # steps (presses and typed answers) from start to the end of any run
HANDLER_PREFIX = "flow:2147483647:"


def _dmy(day: date) -> str:
    return f"{day.day}/{day.month}/{day.year}"


SAMPLES: dict[str, list[str]] = {
    "date": [_dmy(TODAY - timedelta(days=10)), _dmy(TODAY - timedelta(days=100)),
             _dmy(TODAY - timedelta(days=7 * 366)), _dmy(TODAY.replace(year=TODAY.year - 72)),
             _dmy(TODAY.replace(year=TODAY.year - 80))],
    "year": [str(TODAY.year - 80), str(TODAY.year - 72), str(TODAY.year - 50)],
    "phone": ["0905123456"],
    "cccd": ["048090001234"],
    "name": ["Nguyễn Văn An"],
    "number": ["3"],
    "text": ["ghi chú"],
}
FREE_REASON = "Bà con chưa về nhà"


@pytest.fixture(scope="module")
def registry() -> FlowRegistry:
    return load_flows(FLOWS_DIR)


@dataclass
class Exploration:
    """Every state reachable in a flow, by pressing every button and typing every sample."""

    states: int = 0
    transitions: list[tuple[str, Transition]] = field(default_factory=list)
    shown_steps: set[str] = field(default_factory=set)
    endings: dict[str, int] = field(default_factory=dict)
    depth: dict[str, int] = field(default_factory=dict)
    edges: dict[str, set[str]] = field(default_factory=dict)


def _key(state: RunState) -> str:
    """What decides a run's future: the attempt counters and the step count only label it."""
    return json.dumps([state.status, state.step, state.awaiting, state.vars], sort_keys=True)


def _inputs(flow: Flow, state: RunState, shown: Transition) -> list[Pressed | Typed]:
    step = flow.step(state.step)
    assert step is not None
    buttons = [b for event in shown.events for b in getattr(event, "buttons", ())]
    inputs: list[Pressed | Typed] = [Pressed(b.token) for b in buttons]
    if step.kind == "input":
        inputs += [Typed(sample) for sample in SAMPLES[step.validator or "text"]]
    if step.kind == "task" and state.awaiting == "reason_text":
        inputs.append(Typed(FREE_REASON))
    return inputs


def _check_events(transition: Transition) -> None:
    for event in transition.events:
        assert not isinstance(event, StaleButton), transition.events
        assert event.msgid and event.msgid.strip() == event.msgid
        for button in getattr(event, "buttons", ()):
            assert button.label and button.label.strip() == button.label
            assert len((HANDLER_PREFIX + button.token).encode()) <= 64
        if isinstance(event, ShowStep):
            assert 1 <= event.position <= event.total
            assert len(event.text) <= 300, "keep each message short for a phone screen"


def explore(flow: Flow) -> Exploration:
    found = Exploration()
    first = engine.start(flow, NOW)
    _check_events(first)
    start_key = _key(first.new_state)
    found.depth[start_key] = 0
    queue = deque([first.new_state])
    seen = {start_key}
    while queue:
        state = queue.popleft()
        key = _key(state)
        found.states += 1
        found.edges.setdefault(key, set())
        if state.status != "active":
            found.endings[state.status] = found.endings.get(state.status, 0) + 1
            continue
        shown = engine.resume(flow, state)
        _check_events(shown)
        for event in shown.events:
            if isinstance(event, ShowStep):
                found.shown_steps.add(event.step_id)
        for user_input in _inputs(flow, state, shown):
            result = engine.advance(flow, state, user_input, NOW)
            _check_events(result)
            assert len(result.records) <= 1
            found.transitions.append((state.step, result))
            for event in result.events:
                if isinstance(event, ShowStep):
                    found.shown_steps.add(event.step_id)
            new_key = _key(result.new_state)
            found.edges[key].add(new_key)
            if new_key not in seen:
                seen.add(new_key)
                found.depth[new_key] = found.depth[key] + 1
                assert found.depth[new_key] <= MAX_PATH
                queue.append(result.new_state)
    return found


@pytest.fixture(scope="module")
def explored(registry: FlowRegistry) -> dict[str, Exploration]:
    return {flow_id: explore(registry.latest(flow_id)) for flow_id in SHIPPED}


def test_the_seven_flows_load(registry):
    """Loading conversations/flows gives exactly the seven shipped flows."""
    assert registry.ids() == SHIPPED
    for flow in registry:
        assert flow.version >= 1 and flow.title and flow.steps


def test_every_shipped_flow_has_its_place_in_the_one_order(registry):
    """A new flow file gets its place in conversations/flow_order.py (else it is listed last)."""
    assert sorted(FLOW_ORDER) == registry.ids()


@pytest.mark.parametrize("flow_id", SHIPPED)
def test_every_path_ends_completed_or_blocked(explored, flow_id):
    """Pressing every button and typing every sample from every reachable state, runs end
    completed or blocked within a bounded number of steps and every step gets shown."""
    found = explored[flow_id]
    assert found.endings.get("completed", 0) >= 1
    assert set(found.endings) <= {"completed", "blocked"}
    flow = load_flows(FLOWS_DIR).latest(flow_id)
    shown = {s.id for s in flow.steps if s.kind != "branch"}
    assert found.shown_steps == shown
    # From every reachable state an end can still be reached.
    finishing = {k for k in found.edges if json.loads(k)[0] != "active"}
    changed = True
    while changed:
        changed = False
        for key, targets in found.edges.items():
            if key not in finishing and targets & finishing:
                finishing.add(key)
                changed = True
    assert finishing == set(found.edges)
    # Walk every simple path of the state graph from the start: each one ends, and soon.
    start = next(key for key, depth in found.depth.items() if depth == 0)
    lengths: list[int] = []
    stack = [(start, (start,))]
    while stack:
        key, path = stack.pop()
        if json.loads(key)[0] != "active":
            lengths.append(len(path) - 1)
            continue
        assert found.edges[key], f"dead end at {key}"
        stack += [(target, (*path, target)) for target in found.edges[key] if target not in path]
    assert lengths and max(lengths) <= MAX_PATH


@pytest.mark.parametrize("flow_id", SHIPPED)
def test_every_task_outcome_is_exercised(explored, registry, flow_id):
    """Every task is done, skipped (when allowed) and blocked with each reason and a typed one."""
    flow = registry.latest(flow_id)
    outcomes: set[tuple[str, str, str | None]] = set()
    for _, result in explored[flow_id].transitions:
        for record in result.records:
            outcomes.add((record.step_id, record.outcome, None if record.reason_typed else record.reason))
    for step in flow.steps:
        if step.kind != "task":
            continue
        assert (step.id, "done", None) in outcomes
        assert ((step.id, "skipped", None) in outcomes) == step.skippable
        for reason in step.reasons:
            assert (step.id, "blocked", reason) in outcomes
        assert (step.id, "blocked", None) in outcomes  # the typed "other reason"


@pytest.mark.parametrize("flow_id", SHIPPED)
def test_blocking_tasks_end_runs_blocked(explored, registry, flow_id):
    """A Problem on a blocking task ends the run blocked; elsewhere a Problem never does."""
    flow = registry.latest(flow_id)
    for step_id, result in explored[flow_id].transitions:
        if any(isinstance(e, Blocked) for e in result.events):
            assert flow.step(step_id).blocking
            assert result.status == "blocked"


def test_smartphone_skills_ends_by_marking_the_resident_digital_ready(explored):
    """Every smartphone_skills run that completes emits MarkDigitalReady in its last step."""
    completing = [r for _, r in explored["smartphone_skills"].transitions
                  if any(isinstance(e, Completed) for e in r.events)]
    assert completing
    for result in completing:
        assert any(isinstance(e, MarkDigitalReady) for e in result.events)


def _run(flow: Flow, answers: list[str]) -> Transition:
    """Answer a run: a text is a button label (translated msgid) or, on input steps, typed."""
    transition = engine.start(flow, NOW)
    for answer in answers:
        buttons = {b.label: b.token for e in transition.events for b in getattr(e, "buttons", ())}
        user_input = Pressed(buttons[answer]) if answer in buttons else Typed(answer)
        transition = engine.advance(flow, transition.new_state, user_input, NOW)
        assert not any(isinstance(e, StaleButton) for e in transition.events)
    return transition


@pytest.mark.parametrize(
    ("days", "step"),
    [(10, "place"), (60, "place"), (61, "late_note"), (200, "late_note"), (6 * 366, "over_six")],
)
def test_birth_registration_checks_the_60_day_deadline(registry, days, step):
    """A birth more than 60 days ago leads to the late-registration note; 6 years to the commune."""
    flow = registry.latest("birth_registration")
    shown = _run(flow, ["Continue", _dmy(TODAY - timedelta(days=days))])
    assert [e.step_id for e in shown.events if isinstance(e, ShowStep)] == [step]


def test_birth_registration_refuses_a_future_birth_date(registry):
    """A birth date in the future is refused and the question asked again."""
    flow = registry.latest("birth_registration")
    shown = _run(flow, ["Continue", _dmy(TODAY + timedelta(days=1))])
    assert shown.records == () and shown.new_state.step == "birth_date"


def _born_years_ago(years: int) -> str:
    return _dmy(TODAY.replace(year=TODAY.year - years))


@pytest.mark.parametrize(
    ("age", "step"), [(90, "pension_check"), (75, "pension_check"), (74, "household"), (70, "household"),
                      (69, "too_young")],
)
def test_social_pension_checks_the_age(registry, age, step):
    """Age 75+ goes to the pension check, 70–74 to the household question, younger is not eligible."""
    flow = registry.latest("social_pension")
    shown = _run(flow, ["Continue", _born_years_ago(age)])
    assert [e.step_id for e in shown.events if isinstance(e, ShowStep)] == [step]


def test_social_pension_for_70_to_74_needs_a_poor_or_near_poor_household(registry):
    """At 72 a poor or near-poor household leads to the pension check, any other to not eligible."""
    flow = registry.latest("social_pension")
    poor = _run(flow, ["Continue", _born_years_ago(72), "Poor or near-poor"])
    assert poor.new_state.step == "pension_check"
    other = _run(flow, ["Continue", _born_years_ago(72), "No"])
    assert other.new_state.step == "not_yet_75"


def test_vneid_without_nfc_scans_the_qr_code_and_a_failed_read_falls_back(registry):
    """No NFC leads to QR scanning; a failed NFC read falls back to QR, a failed QR to the police."""
    flow = registry.latest("vneid")
    start = ["Yes, chip card", "Done", "Done"]
    assert _run(flow, [*start, "No NFC / not sure"]).new_state.step == "register_qr"
    nfc_failed = _run(flow, [*start, "Yes, it has NFC", "Problem", "Card chip not read"])
    assert nfc_failed.new_state.step == "register_qr"
    qr_failed = _run(flow, [*start, "No NFC / not sure", "Problem", "QR code not read"])
    assert qr_failed.new_state.step == "police_level2"
    no_chip = _run(flow, ["No chip card yet", "Continue", "Done", "Done"])
    assert no_chip.new_state.step == "police_card"


@pytest.mark.parametrize("flow_id", SHIPPED)
def test_the_babel_extractor_sees_exactly_the_flow_texts(registry, flow_id):
    """Every text a person sees sits under a translatable key, and nothing else does."""
    extracted = translatable_strings((FLOWS_DIR / f"{flow_id}.yaml").read_text(encoding="utf-8"))
    assert sorted(set(extracted)) == sorted(set(registry.latest(flow_id).texts()))
    assert all(text.strip() for text in extracted)


@pytest.mark.parametrize("flow_id", SHIPPED)
def test_no_flow_asks_to_type_a_password_or_otp(registry, flow_id):
    """No input step asks for a password, passcode, PIN or OTP."""
    secret = re.compile(r"password|passcode|\bPIN\b|\bOTP\b", re.IGNORECASE)
    for step in registry.latest(flow_id).steps:
        if step.kind == "input":
            assert not secret.search(step.text)


# Broken flow files -----------------------------------------------------------------------

GOOD = """\
id: @ID@
version: 1
title: Test flow
steps:
  - id: nfc_check
    kind: choice
    text: Does the phone have NFC?
    options:
      - {id: "yes", label: "Yes", next: scan_card}
      - {id: "no", label: "No", next: end}
  - id: scan_card
    kind: task
    text: Scan the card.
    reasons: [Card chip not read]
"""


def _broken(old: str, new: str) -> str:
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    return text


REASONS = "    reasons: [Card chip not read]"


def _branch(*entries: str, save: bool = True) -> str:
    """GOOD with a branch on scan_card instead of its reasons (and nfc_check saving `nfc`)."""
    text = _broken(REASONS, "    branch:\n" + "".join(f"      - {e}\n" for e in entries).rstrip("\n"))
    return text.replace("    options:", "    save_as: nfc\n    options:") if save else text


def _at(step: str, problem: str) -> str:
    return f"vneid.yaml, step '{step}': {problem}"


BROKEN = [
    pytest.param(_broken("next: scan_card}", "next: scan}"),
                 _at("nfc_check", "option 'yes' goes to unknown step 'scan'"), id="option-target"),
    pytest.param(_broken("- id: scan_card", "- id: nfc_check"),
                 _at("nfc_check", "this id is used by another step too"), id="duplicate-id"),
    pytest.param(_broken("kind: task", "kind: todo"), _at("scan_card", "unknown kind 'todo'"),
                 id="unknown-kind"),
    pytest.param(_broken(REASONS, "    next: nowhere"), _at("scan_card", "goes to unknown step 'nowhere'"),
                 id="next-target"),
    pytest.param(_broken("    text: Scan the card.\n", ""), _at("scan_card", "'text' is missing"),
                 id="missing-text"),
    pytest.param(_broken('label: "Yes"', "label: Yes"),
                 _at("nfc_check", "'label of option 'yes'' must be a text, got True"), id="unquoted-yes"),
    pytest.param(_broken('{id: "no", label: "No", next: end}', '{id: "no", label: "No", next: nfc_check}')
                 .replace(REASONS, "    next: nfc_check"),
                 _at("nfc_check", "can never reach the end"), id="no-way-out"),
    pytest.param(GOOD + "    next: end\n  - {id: lost, kind: info, text: Nobody comes here.}\n",
                 _at("lost", "cannot be reached from the first step"), id="unreachable"),
    pytest.param(_broken("version: 1", "version: 0"), "vneid.yaml: 'version' must be a positive whole number",
                 id="version-zero"),
    pytest.param(_broken("version: 1", 'version: "2"'), "vneid.yaml: 'version' must be a positive",
                 id="version-text"),
    pytest.param(_broken("title: Test flow", "title: Test flow\nowner: me"),
                 "vneid.yaml: unknown key(s) owner", id="unknown-flow-key"),
    pytest.param(_broken("    reasons:", "    nxt: end\n    reasons:"),
                 _at("scan_card", "key(s) nxt do not belong to a task step"), id="typo-key"),
    pytest.param(_broken(REASONS, REASONS + "\n    blocking: true\n    on_blocked: end"),
                 _at("scan_card", "has both 'blocking' and 'on_blocked'"), id="blocking-and-detour"),
    pytest.param(_broken("    text: Scan the card.", "    text: |\n      Scan the card."),
                 _at("scan_card", "'text' starts or ends with a space or line break"), id="trailing-newline"),
    pytest.param(_broken(REASONS, "    reasons: [Card chip not read, Card chip not read]"),
                 _at("scan_card", "'reasons' lists the same reason twice"), id="duplicate-reason"),
    pytest.param(_broken("kind: task\n    text: Scan the card.\n" + REASONS,
                         "kind: input\n    text: Year?\n    validator: age"),
                 _at("scan_card", "unknown validator 'age'"), id="unknown-validator"),
    pytest.param(_branch("{if: {var: born, age_at_least: 75}, next: end}", "{else: end}", save=False),
                 _at("scan_card", "a condition reads 'born' but no step saves it"), id="unsaved-var"),
    pytest.param(_branch("{if: {var: nfc, equals: maybe}, next: end}", "{else: end}"),
                 _at("scan_card", "a condition compares 'nfc' with maybe, which is not one of its options "
                     "(no, yes)"), id="unknown-option-value"),
    pytest.param(_branch("{if: {var: nfc, equals: 'yes'}, next: end}"),
                 _at("scan_card", "'branch' must list at least one"), id="branch-without-else"),
    pytest.param(_branch("{else: end}", "{if: {var: nfc, equals: 'yes'}, next: end}"),
                 _at("scan_card", "'else' must be the last entry"), id="else-not-last"),
    pytest.param(_branch("{if: {var: nfc, older_than: 3}, next: end}", "{else: end}"),
                 _at("scan_card", "branch entry 1: a condition on 'nfc' needs exactly one test"),
                 id="unknown-condition"),
    pytest.param("id: vneid\nversion: 1\ntitle: [unclosed\n", "vneid.yaml: is not valid YAML", id="bad-yaml"),
    pytest.param(GOOD.replace("@ID@", "other"), "vneid.yaml: id 'other' does not match the file name 'vneid'",
                 id="id-not-filename"),
]


@pytest.mark.parametrize(("text", "message"), BROKEN)
def test_a_broken_flow_file_stops_loading_naming_file_and_step(tmp_path, text, message):
    """Each kind of broken flow file raises FlowError whose message names the file, step and problem."""
    (tmp_path / "vneid.yaml").write_text(text.replace("@ID@", "vneid"), encoding="utf-8")
    with pytest.raises(FlowError) as caught:
        load_flows(tmp_path)
    assert str(caught.value).startswith(message), str(caught.value)


def test_the_good_test_flow_loads(tmp_path):
    """The template the broken-file cases start from is itself a valid flow."""
    (tmp_path / "vneid.yaml").write_text(GOOD.replace("@ID@", "vneid"), encoding="utf-8")
    assert load_flows(tmp_path).latest("vneid").first.id == "nfc_check"


def test_archived_versions_are_loaded_and_must_be_named_by_version(tmp_path):
    """archive/<id>.v<version>.yaml files add older versions; a misnamed one is refused."""
    (tmp_path / "vneid.yaml").write_text(GOOD.replace("@ID@", "vneid").replace("version: 1", "version: 2"))
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "vneid.v1.yaml").write_text(GOOD.replace("@ID@", "vneid"))
    registry = load_flows(tmp_path)
    assert registry.versions("vneid") == [1, 2] and registry.latest("vneid").version == 2
    (tmp_path / "archive" / "vneid.v1.yaml").rename(tmp_path / "archive" / "vneid-old.yaml")
    with pytest.raises(FlowError, match=r"archive/vneid-old.yaml: an archived flow file must be named"):
        load_flows(tmp_path)


def test_a_pinned_run_survives_an_edited_flow_file(tmp_path):
    """A run on version 1 keeps going after the file becomes version 2 and v1 moves to archive/."""
    (tmp_path / "vneid.yaml").write_text(GOOD.replace("@ID@", "vneid"))
    first = load_flows(tmp_path)
    run = engine.start(first.latest("vneid"), NOW)
    yes = next(b.token for e in run.events for b in getattr(e, "buttons", ()) if b.label == "Yes")
    (tmp_path / "archive").mkdir()
    (tmp_path / "vneid.yaml").rename(tmp_path / "archive" / "vneid.v1.yaml")
    (tmp_path / "vneid.yaml").write_text(
        GOOD.replace("@ID@", "vneid").replace("version: 1", "version: 2").replace("scan_card", "read_card")
    )
    later = load_flows(tmp_path)
    pinned = later.for_state(run.new_state)
    assert pinned is not None and pinned.version == 1
    moved = engine.advance(pinned, run.new_state, Pressed(yes), NOW)
    assert moved.new_state.step == "scan_card" and moved.records[0].value == "yes"


def test_free_text_reason_and_back_work_in_a_shipped_flow(registry):
    """In a shipped flow, Problem → Other reason takes typed text and Back returns to the task."""
    flow = registry.latest("smartphone_skills")
    asked = _run(flow, ["Continue", "Problem"])
    assert isinstance(asked.events[0], AskReason)
    back = _run(flow, ["Continue", "Problem", "Back"])
    assert back.new_state.awaiting is None
    typed = _run(flow, ["Continue", "Problem", "Other reason (type it)"])
    assert isinstance(typed.events[0], AskReasonText)
    blocked = engine.advance(flow, typed.new_state, Typed(FREE_REASON), NOW)
    assert blocked.status == "blocked" and blocked.records[0].reason == FREE_REASON


@pytest.mark.parametrize("flow_id", SHIPPED)
def test_each_flow_has_a_mermaid_diagram(registry, flow_id):
    """The Mermaid generator draws every step of a shipped flow and its end."""
    from conversations.diagram import flow_to_mermaid

    flow = registry.latest(flow_id)
    diagram = flow_to_mermaid(flow)
    assert diagram.startswith("flowchart TD\n") and "done((end))" in diagram
    for step in flow.steps:
        assert f"    {step.id}" in diagram
