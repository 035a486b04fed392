"""Flows as data: the Flow, the registry, the YAML loader and the validator (design.md section
3). Each step kind is a class of its own in steps.py, which reads the kind's keys; this loader
checks what all steps share and builds the class the step's `kind` names.

A flow file is `<id>.yaml` in conversations/flows/; older versions that runs may still be
pinned to live in conversations/flows/archive/ as `<id>.v<version>.yaml`. A broken file stops
start-up with a FlowError naming the file, the step and the problem.

    id: vneid                 # slug, equal to the file name
    version: 3                # positive int; bump it when steps change
    title: VNeID account      # texts are English msgids (Babel extracts them)
    description: ...          # optional
    done_text: ...            # optional, shown when the run completes; if the last step marks
                              # the resident digital-ready, say so here (the separate note is
                              # then left out so the end is not said twice)
    steps:
      - id: has_chip          # slug, at most 20 characters
        kind: choice          # info | task | choice | input | branch (steps.py)
        text: Does the resident have a chip ID card?
        save_as: chip         # choice/input: keep the answer as a variable
        options:
          - {id: "yes", label: "Yes", next: phone}   # quote yes/no/on/off: YAML reads them as booleans
      - id: phone
        kind: task
        text: ...
        reasons: [No smartphone, SIM not in the resident's own name]
        blocking: true        # a Problem ends the run as blocked (see engine.py)
        on_blocked: other     # or: a Problem continues at this step
        skippable: false      # no Skip button
        next: end             # default: the following step, or end after the last one
      - id: born
        kind: input
        validator: date       # cccd | phone | date | year | name | number | text
        optional: true        # offers Skip
        hint: ...             # optional; default from the validator
        branch:               # instead of next: the first entry whose `if` holds
          - {if: {var: born, older_than_days: 60}, next: late}
          - {else: on_time}
      - id: late
        kind: info
        text: The resident turns 75 on {turns_75}.
        dates:                # info/task: {placeholders} of the text, each a saved date's
          turns_75: {var: born, birthday: 75}   # N-th birthday, shown as dd/mm/yyyy
      - id: route
        kind: branch          # no text, no answer: only routes (conditions.py)
        branch: [...]

Every human-readable text sits under a key the Babel extractor reads (title, description,
done_text, text, label, reasons, hint); ids, kinds, validators and targets sit under others.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from conversations.conditions import ConditionError, parse_condition
from conversations.flow_graph import END, GraphProblem, StepCounter, check_graph
from conversations.state import RunState
from conversations.steps import (
    KINDS,
    STEP_TYPES,
    Branch,
    BranchStep,
    ChoiceStep,
    DateValue,
    InfoStep,
    InputStep,
    Option,
    Step,
    TaskStep,
)
from conversations.yaml_load import safe_load

__all__ = [
    "END", "KINDS", "STEP_TYPES", "Branch", "BranchStep", "ChoiceStep", "DateValue", "Flow", "FlowError",
    "FlowRegistry", "InfoStep", "InputStep", "Option", "Step", "TaskStep", "load_flow_file", "load_flows",
    "parse_flow", "parse_flow_text",
]

STEP_ID = re.compile(r"[a-z][a-z0-9_]{0,19}")
FLOW_ID = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_STEPS = 100
MAX_TEXT = 1000

_FLOW_KEYS = frozenset({"id", "version", "title", "description", "done_text", "steps"})
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class FlowError(ValueError):
    """A flow file that cannot be used: `file, step 'x': problem`."""

    def __init__(self, filename: str, problem: str, step: str | None = None) -> None:
        self.filename = filename
        self.step = step
        self.problem = problem
        where = f"{filename}, step '{step}'" if step else filename
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Flow:
    id: str
    version: int
    title: str
    steps: tuple[Step, ...]
    description: str | None = None
    done_text: str | None = None
    source: str = field(default="", compare=False, repr=False)
    _index: dict[str, Step] = field(init=False, compare=False, repr=False, hash=False)
    _counter: StepCounter = field(init=False, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {step.id: step for step in self.steps})
        object.__setattr__(self, "_counter", StepCounter(self.steps))

    @property
    def first(self) -> Step:
        return self.steps[0]

    def step(self, step_id: str | None) -> Step | None:
        return self._index.get(step_id) if step_id else None

    def remaining(self, step_id: str, visits: dict[str, int] | None = None) -> int:
        """The most steps a person can still be shown from here, this one included, along the
        steps' own routes and going round each loop at most once, given the visits so far
        per step (the N behind "Step n/N"; flow_graph.StepCounter)."""
        return self._counter.remaining(step_id, visits)

    def texts(self) -> list[str]:
        """Every text of the flow a person may see (for catalog checks)."""
        found = [self.title] + [t for t in (self.description, self.done_text) if t]
        for step in self.steps:
            found += step.texts()
        return found


class FlowRegistry:
    """Every version of every flow seen, so that runs pinned to an older version keep working."""

    def __init__(self) -> None:
        self._versions: dict[str, dict[int, Flow]] = {}

    def add(self, flow: Flow, filename: str | None = None) -> Flow:
        known = self._versions.setdefault(flow.id, {})
        previous = known.get(flow.version)
        if previous is not None and previous != flow:
            raise FlowError(
                filename or f"{flow.id}.yaml",
                f"version {flow.version} of flow '{flow.id}' is already loaded with other steps; "
                "bump the version (and keep the old file in archive/)",
            )
        known[flow.version] = flow
        return flow

    def add_yaml(self, text: str, filename: str | None = None) -> Flow:
        """Parse, validate and register a flow from YAML text (e.g. an older version)."""
        return self.add(parse_flow_text(text, filename), filename)

    def get(self, flow_id: str, version: int) -> Flow | None:
        return self._versions.get(flow_id, {}).get(version)

    def latest(self, flow_id: str) -> Flow:
        """The highest version of a flow; KeyError if the flow is unknown."""
        versions = self._versions[flow_id]
        return versions[max(versions)]

    def for_state(self, state: RunState) -> Flow | None:
        """The flow version a run's state is pinned to, or None if it is not loaded."""
        return self.get(state.flow, state.version)

    def title(self, flow_id: str) -> str:
        """The title msgid of the flow's latest version; the id itself for a flow not loaded."""
        return self.latest(flow_id).title if flow_id in self._versions else flow_id

    def versions(self, flow_id: str) -> list[int]:
        return sorted(self._versions.get(flow_id, {}))

    def ids(self) -> list[str]:
        return sorted(self._versions)

    def __contains__(self, flow_id: object) -> bool:
        return flow_id in self._versions

    def __iter__(self) -> Iterator[Flow]:
        return (self.latest(flow_id) for flow_id in self.ids())

    def __len__(self) -> int:
        return len(self._versions)


def load_flows(directory: str | Path) -> FlowRegistry:
    """Load and validate `<id>.yaml` files and `archive/<id>.v<version>.yaml` files."""
    directory = Path(directory)
    registry = FlowRegistry()
    for path in sorted(directory.glob("*.yaml")):
        registry.add(load_flow_file(path, expect_id=path.stem), path.name)
    for path in sorted((directory / "archive").glob("*.yaml")):
        flow = load_flow_file(path)
        if path.stem != f"{flow.id}.v{flow.version}":
            expected = f"{flow.id}.v{flow.version}.yaml"
            raise FlowError(f"archive/{path.name}", f"an archived flow file must be named '{expected}'")
        registry.add(flow, f"archive/{path.name}")
    return registry


def load_flow_file(path: str | Path, expect_id: str | None = None) -> Flow:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise FlowError(path.name, f"cannot be read: {exc}") from None
    return parse_flow_text(text, path.name, expect_id=expect_id)


def parse_flow_text(text: str, filename: str | None = None, *, expect_id: str | None = None) -> Flow:
    """Parse and validate one flow from YAML text; FlowError names the file and the step."""
    name = filename or "<flow>"
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        raise FlowError(name, f"is not valid YAML: {exc}") from None
    return parse_flow(data, name, expect_id=expect_id, source=text)


def parse_flow(data: Any, filename: str, *, expect_id: str | None = None, source: str = "") -> Flow:
    """Validate a flow already read from YAML and build it."""
    return _Parser(filename).flow(data, expect_id, source)


class _Parser:
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.step_id: str | None = None

    def fail(self, problem: str) -> FlowError:
        return FlowError(self.filename, problem, self.step_id)

    def text(
        self, raw: dict[str, Any], key: str, *, required: bool = True, limit: int = MAX_TEXT
    ) -> str | None:
        value = raw.get(key)
        if value is None and not required:
            return None
        return self.text_value(value, key, limit)

    def text_value(self, value: Any, what: str, limit: int = MAX_TEXT) -> str:
        if value is None or value == "":
            raise self.fail(f"'{what}' is missing")
        if not isinstance(value, str):
            raise self.fail(f"'{what}' must be a text, got {value!r} (quote values such as yes/no/on/off)")
        if value != value.strip():
            raise self.fail(f"'{what}' starts or ends with a space or line break (use '>-' for long texts)")
        if len(value) > limit:
            raise self.fail(f"'{what}' is longer than {limit} characters")
        return value

    def flag(self, raw: dict[str, Any], key: str, default: bool) -> bool:
        value = raw.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"'{key}' must be true or false, got {value!r}")
        return value

    def slug(self, value: Any, what: str, pattern: re.Pattern[str], longest: int) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise self.fail(
                f"{what} {value!r} must be lower-case letters, digits and _, starting with a letter, "
                f"at most {longest} characters"
            )
        if value == END:
            raise self.fail(f"{what} cannot be '{END}'")
        return value

    def target(self, value: Any, what: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(f"{what} must name a step or 'end', got {value!r}")
        return value

    def flow(self, data: Any, expect_id: str | None, source: str) -> Flow:
        if not isinstance(data, dict):
            raise self.fail("must be a mapping with id, version, title and steps")
        unknown = sorted(set(map(str, data)) - _FLOW_KEYS)
        if unknown:
            raise self.fail(f"unknown key(s) {', '.join(unknown)}")
        flow_id = data.get("id")
        if not isinstance(flow_id, str) or not FLOW_ID.fullmatch(flow_id):
            raise self.fail(f"'id' must be a lower-case slug, got {flow_id!r}")
        if expect_id is not None and flow_id != expect_id:
            raise self.fail(f"id '{flow_id}' does not match the file name '{expect_id}'")
        version = data.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise self.fail(f"'version' must be a positive whole number, got {version!r}")
        title = self.text(data, "title")
        description = self.text(data, "description", required=False)
        done_text = self.text(data, "done_text", required=False)
        raw_steps = data.get("steps")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise self.fail("'steps' must be a non-empty list")
        if len(raw_steps) > MAX_STEPS:
            raise self.fail(f"has {len(raw_steps)} steps; at most {MAX_STEPS}")
        ids = self.step_ids(raw_steps)
        steps = tuple(
            self.step(raw, ids[i + 1] if i + 1 < len(ids) else END) for i, raw in enumerate(raw_steps)
        )
        self.step_id = None
        flow = Flow(flow_id, version, title or "", steps, description, done_text, source)
        try:
            check_graph(flow.steps)
        except GraphProblem as exc:
            raise FlowError(self.filename, exc.problem, exc.step) from None
        return flow

    def step_ids(self, raw_steps: list[Any]) -> list[str]:
        ids: list[str] = []
        for number, raw in enumerate(raw_steps, 1):
            if not isinstance(raw, dict):
                raise self.fail(f"step number {number} must be a mapping")
            step_id = self.slug(raw.get("id"), f"step number {number}: id", STEP_ID, 20)
            if step_id in ids:
                self.step_id = step_id
                raise self.fail("this id is used by another step too")
            ids.append(step_id)
        return ids

    def step(self, raw: dict[str, Any], following: str) -> Step:
        """One step, built by the class of its kind (steps.py) once its keys are checked."""
        self.step_id = raw["id"]
        kind = raw.get("kind")
        if kind not in STEP_TYPES:
            raise self.fail(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
        step_type = STEP_TYPES[kind]
        unknown = sorted(set(map(str, raw)) - step_type.keys)
        if unknown:
            raise self.fail(f"key(s) {', '.join(unknown)} do not belong to a {kind} step")
        if "next" in raw and "branch" in raw:
            raise self.fail("has both 'next' and 'branch'; use one")
        return step_type.from_yaml(raw, self, following)

    def dates(self, raw: Any, text: str) -> tuple[DateValue, ...]:
        """The `dates:` mapping; its names and the text's {placeholders} must be the same."""
        if not isinstance(raw, dict):
            raise self.fail("'dates' must be a mapping such as {turns_75: {var: born, birthday: 75}}")
        found: list[DateValue] = []
        for name, spec in raw.items():
            self.slug(name, "a 'dates' name", FLOW_ID, 32)
            if not isinstance(spec, dict) or set(spec) != {"var", "birthday"}:
                raise self.fail(f"dates '{name}' needs exactly 'var' and 'birthday'")
            var = self.slug(spec["var"], f"dates '{name}': var", FLOW_ID, 32)
            years = spec["birthday"]
            if not isinstance(years, int) or isinstance(years, bool) or not 0 <= years <= 150:
                raise self.fail(f"dates '{name}': 'birthday' must be a whole number of years, got {years!r}")
            found.append(DateValue(name, var, years))
        used = set(_PLACEHOLDER.findall(text))
        declared = {value.name for value in found}
        if used != declared:
            raise self.fail(
                f"the text's placeholders {sorted(used)} must be exactly the 'dates' names {sorted(declared)}"
            )
        return tuple(found)

    def branch(self, raw: Any) -> tuple[Branch, ...]:
        if not isinstance(raw, list) or len(raw) < 2:
            raise self.fail("'branch' must list at least one {if: ..., next: ...} and a final {else: ...}")
        entries: list[Branch] = []
        for number, item in enumerate(raw, 1):
            last = number == len(raw)
            if isinstance(item, dict) and set(item) == {"else"}:
                if not last:
                    raise self.fail("'else' must be the last entry of 'branch'")
                entries.append(Branch(None, self.target(item["else"], "'else'")))
                continue
            if not isinstance(item, dict) or set(item) != {"if", "next"}:
                raise self.fail(f"branch entry {number} must be {{if: ..., next: ...}} or a last {{else: x}}")
            try:
                condition = parse_condition(item["if"])
            except ConditionError as exc:
                raise self.fail(f"branch entry {number}: {exc}") from None
            entries.append(Branch(condition, self.target(item["next"], f"branch entry {number}")))
        if entries[-1].condition is not None:
            raise self.fail("'branch' must end with {else: step}")
        return tuple(entries)
