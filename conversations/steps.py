"""The kinds of flow step, one class each (design.md section 3).

    InfoStep    a text to read; button Continue
    TaskStep    something to do; buttons Done, Skip (unless `skippable: false`) and Problem,
                then the Problem's sub-steps (the flow's reasons, or a typed one)
    ChoiceStep  a question; one button per option, each option with its own next step
    InputStep   a typed answer checked by a validator; Skip when `optional`
    BranchStep  no text and no answer: routes on saved variables (conditions.py), never shown

Each class owns what differs between kinds: its YAML keys and how they are read (`from_yaml`,
called by the loader in flow_model.py), its buttons (`buttons`), its ways out (`edges`, from
which `targets` and `routes` follow for the flow graph, the step counter and the diagram), and
what a press or a typed text means (`press`, `typed`). Those return a Move: an Answer to
record and leave the step with, an Ask that moves to a sub-step, or a Refusal of a typed
text; None is a press or text this step does not take. The engine (engine.py) turns moves
into the new state, records and events; a step never changes state, so it is as pure as the
engine.

Button actions (the last part of a token, engine.make_token), each defined by the class that
offers it: `c` continue (info); `d` done, `s` skip, `p` problem, `r<i>` reason i of the
task's list, `x` other reason (typed), `b` back from the reasons to the task (task);
`o:<option id>` (choice); `k` skip an optional input (input).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from conversations import texts
from conversations.conditions import Condition, evaluate
from conversations.flow_graph import END
from conversations.state import Awaiting, StepOutcome
from conversations.validators import (
    HINTS,
    VALIDATORS,
    ErrorMessage,
    hash_cccd,
    mask_cccd,
    validate,
    validate_text,
)

if TYPE_CHECKING:
    from conversations.flow_model import FlowError

OPTION_ID = re.compile(r"[a-z][a-z0-9_]{0,15}")
VARIABLE = re.compile(r"[a-z][a-z0-9_]{0,31}")
MAX_OPTIONS = 10
MAX_REASONS = 10
MAX_LABEL = 64
_REASON = re.compile(r"r[0-9]{1,2}")


@dataclass(frozen=True)
class Option:
    id: str
    label: str
    next: str


@dataclass(frozen=True)
class Branch:
    """One `branch:` entry; `condition` None is the final `else`."""

    condition: Condition | None
    next: str


@dataclass(frozen=True)
class DateValue:
    """A `dates:` entry: the text's {name} shows the `years`-th birthday of the date in `var`."""

    name: str
    var: str
    years: int


@dataclass(frozen=True)
class Edge:
    """One way out of a step: plainly, by an option, by a branch entry, or by a task's Problem
    (`problem`: the `on_blocked` detour, which the step counter leaves out until taken)."""

    target: str
    option: Option | None = None
    branch: Branch | None = None
    problem: bool = False


# What a press or a typed text means ---------------------------------------------------------

@dataclass(frozen=True)
class Answer:
    """The step is answered: record `outcome` and leave it for `target` (None: the step's own
    next, given the variables after `save`)."""

    outcome: StepOutcome
    value: str | int | None = None
    value_hash: str | None = None
    reason: str | None = None  # a Problem's reason: a msgid from the flow, or typed text
    reason_typed: bool = False
    target: str | None = None
    save: tuple[str, str | int | None] | None = None  # (variable, value); value None forgets it
    stops: bool = False  # a Problem that ends the run as blocked


@dataclass(frozen=True)
class Ask:
    """Move to a sub-step of the same step (a task's Problem: its reasons, or a typed one);
    None is back to the step itself. Nothing is recorded."""

    awaiting: Awaiting | None


@dataclass(frozen=True)
class Refusal:
    """Typed text that does not answer: say why, then show the step (at `awaiting`) again."""

    error: ErrorMessage
    awaiting: Awaiting | None = None


Move = Answer | Ask | Refusal
Button = tuple[str, str]  # (label msgid, action)


class Reader(Protocol):
    """What a step's `from_yaml` uses of the loader (flow_model._Parser)."""

    def fail(self, problem: str) -> FlowError: ...
    def text(
        self, raw: dict[str, Any], key: str, *, required: bool = True, limit: int = ...
    ) -> str | None: ...
    def text_value(self, value: Any, what: str, limit: int = ...) -> str: ...
    def flag(self, raw: dict[str, Any], key: str, default: bool) -> bool: ...
    def slug(self, value: Any, what: str, pattern: re.Pattern[str], longest: int) -> str: ...
    def target(self, value: Any, what: str) -> str: ...
    def branch(self, raw: Any) -> tuple[Branch, ...]: ...
    def dates(self, raw: Any, text: str) -> tuple[DateValue, ...]: ...


# The kinds --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """What every step has; a step is always one of the kinds below (STEP_TYPES)."""

    id: str
    text: str = ""

    kind: ClassVar[str]
    keys: ClassVar[frozenset[str]]  # the YAML keys a step of this kind may have
    shown: ClassVar[bool] = True  # False: a branch step, never shown nor counted
    expects_text: ClassVar[bool] = False  # the answer is typed, not pressed

    @classmethod
    def from_yaml(cls, raw: dict[str, Any], read: Reader, following: str) -> Step:
        """Build the step from its YAML mapping (keys already checked against `keys`);
        `following` is the next step in the file (or END), the default target."""
        raise NotImplementedError

    @property
    def mark_digital_ready(self) -> bool:
        """Whether answering Done marks the resident digital-ready (info and task steps)."""
        return False

    @property
    def dates(self) -> tuple[DateValue, ...]:
        """The birthdays shown in the text's {placeholders} (info and task steps)."""
        return ()

    def edges(self) -> tuple[Edge, ...]:
        raise NotImplementedError

    def targets(self) -> tuple[str, ...]:
        """Every step this one can lead to (END included), in file order, without repeats."""
        return tuple(dict.fromkeys(edge.target for edge in self.edges()))

    def routes(self) -> tuple[str, ...]:
        """Where the step's own answers lead (targets() without a Problem's detour)."""
        return tuple(dict.fromkeys(edge.target for edge in self.edges() if not edge.problem))

    def next_for(self, variables: dict[str, Any], today: date) -> str:
        """Where the run goes after an Answer that names no target."""
        raise LookupError(f"step '{self.id}' goes where its answer says")

    def saves(self) -> tuple[str, frozenset[str] | None] | None:
        """The variable this step saves its answer in and, for a choice, the values it can
        hold (None: any); None if it saves nothing."""
        return None

    def buttons(self, awaiting: Awaiting | None) -> tuple[Button, ...]:
        """The buttons shown at the step (or at its sub-step `awaiting`)."""
        return ()

    def hint(self) -> str | None:
        """A line shown under the text (msgid), for steps that want typing."""
        return None

    def press(self, action: str) -> Move | None:
        """What pressing the button with `action` means; None for a button this step lacks."""
        return None

    def typed(
        self, text: str, today: date, awaiting: Awaiting | None, cccd_key: bytes | None
    ) -> Move | None:
        """What typed text means; None where the step wants a button instead."""
        return None

    def texts(self) -> list[str]:
        """Every text of this step a person may see."""
        return [self.text] if self.text else []


@dataclass(frozen=True, kw_only=True)
class _Routed(Step):
    """A step that leaves by `next`, or by the first `branch` entry whose condition holds."""

    next: str = END
    branch: tuple[Branch, ...] = ()

    @staticmethod
    def _route(raw: dict[str, Any], read: Reader, following: str) -> dict[str, Any]:
        values: dict[str, Any] = {"next": read.target(raw["next"], "'next'") if "next" in raw else following}
        if "branch" in raw:
            values["branch"] = read.branch(raw["branch"])
        return values

    def edges(self) -> tuple[Edge, ...]:
        if self.branch:
            return tuple(Edge(entry.next, branch=entry) for entry in self.branch)
        return (Edge(self.next),)

    def next_for(self, variables: dict[str, Any], today: date) -> str:
        for entry in self.branch:
            if entry.condition is None or evaluate(entry.condition, variables, today):
                return entry.next
        return self.next


@dataclass(frozen=True, kw_only=True)
class InfoStep(_Routed):
    kind: ClassVar[str] = "info"
    keys: ClassVar[frozenset[str]] = frozenset(
        {"id", "kind", "text", "next", "branch", "mark_digital_ready", "dates"})

    mark_digital_ready: bool = False
    dates: tuple[DateValue, ...] = ()

    @classmethod
    def from_yaml(cls, raw: dict[str, Any], read: Reader, following: str) -> InfoStep:
        text = read.text(raw, "text") or ""
        route = cls._route(raw, read, following)
        ready = read.flag(raw, "mark_digital_ready", False)
        dates = read.dates(raw.get("dates", {}), text)
        return cls(raw["id"], text, **route, mark_digital_ready=ready, dates=dates)

    def buttons(self, awaiting: Awaiting | None) -> tuple[Button, ...]:
        return ((texts.BUTTON_CONTINUE, "c"),)

    def press(self, action: str) -> Move | None:
        return Answer(StepOutcome.DONE) if action == "c" else None


@dataclass(frozen=True, kw_only=True)
class TaskStep(_Routed):
    kind: ClassVar[str] = "task"
    keys: ClassVar[frozenset[str]] = frozenset(
        {"id", "kind", "text", "next", "branch", "reasons", "blocking", "on_blocked", "skippable",
         "mark_digital_ready", "dates"})

    reasons: tuple[str, ...] = ()
    blocking: bool = False  # a Problem ends the run as blocked
    on_blocked: str | None = None  # or: a Problem continues at this step
    skippable: bool = True
    mark_digital_ready: bool = False
    dates: tuple[DateValue, ...] = ()

    @classmethod
    def from_yaml(cls, raw: dict[str, Any], read: Reader, following: str) -> TaskStep:
        text = read.text(raw, "text") or ""
        route = cls._route(raw, read, following)
        reasons = raw.get("reasons", [])
        if not isinstance(reasons, list) or len(reasons) > MAX_REASONS:
            raise read.fail(f"'reasons' must be a list of at most {MAX_REASONS} texts")
        parsed = tuple(read.text_value(r, "reasons", MAX_LABEL) for r in reasons)
        if len(set(parsed)) != len(parsed):
            raise read.fail("'reasons' lists the same reason twice")
        blocking = read.flag(raw, "blocking", False)
        on_blocked = read.target(raw["on_blocked"], "'on_blocked'") if "on_blocked" in raw else None
        if blocking and on_blocked:
            raise read.fail("has both 'blocking' and 'on_blocked'; a Problem either ends the run or goes on")
        return cls(
            raw["id"], text, **route, reasons=parsed, blocking=blocking, on_blocked=on_blocked,
            skippable=read.flag(raw, "skippable", True),
            mark_digital_ready=read.flag(raw, "mark_digital_ready", False),
            dates=read.dates(raw.get("dates", {}), text),
        )

    def edges(self) -> tuple[Edge, ...]:
        found = super().edges()
        return (*found, Edge(self.on_blocked, problem=True)) if self.on_blocked else found

    def buttons(self, awaiting: Awaiting | None) -> tuple[Button, ...]:
        if awaiting == Awaiting.REASON:
            reasons = tuple((reason, f"r{i}") for i, reason in enumerate(self.reasons))
            return (*reasons, (texts.BUTTON_OTHER_REASON, "x"), (texts.BUTTON_BACK, "b"))
        if awaiting == Awaiting.REASON_TEXT:
            return ((texts.BUTTON_BACK, "b"),)
        skip = ((texts.BUTTON_SKIP, "s"),) if self.skippable else ()
        return ((texts.BUTTON_DONE, "d"), *skip, (texts.BUTTON_PROBLEM, "p"))

    def press(self, action: str) -> Move | None:
        if action == "d":
            return Answer(StepOutcome.DONE)
        if action == "s" and self.skippable:
            return Answer(StepOutcome.SKIPPED)
        if action in ("p", "x", "b"):
            ask_list = Awaiting.REASON if self.reasons else Awaiting.REASON_TEXT
            return Ask({"p": ask_list, "x": Awaiting.REASON_TEXT, "b": None}[action])
        if _REASON.fullmatch(action) and int(action[1:]) < len(self.reasons):
            return self._problem(self.reasons[int(action[1:])], typed=False)
        return None

    def typed(
        self, text: str, today: date, awaiting: Awaiting | None, cccd_key: bytes | None
    ) -> Move | None:
        if awaiting is None:  # the task itself wants Done, Skip or Problem
            return None
        reason, error = validate_text(text, today)
        if error is not None:
            return Refusal(error, Awaiting.REASON_TEXT)
        return self._problem(str(reason), typed=True)

    def _problem(self, reason: str, *, typed: bool) -> Answer:
        return Answer(StepOutcome.BLOCKED, reason=reason, reason_typed=typed, target=self.on_blocked,
                      stops=self.blocking)

    def texts(self) -> list[str]:
        return super().texts() + list(self.reasons)


@dataclass(frozen=True, kw_only=True)
class ChoiceStep(Step):
    kind: ClassVar[str] = "choice"
    keys: ClassVar[frozenset[str]] = frozenset({"id", "kind", "text", "options", "save_as"})

    options: tuple[Option, ...] = ()
    save_as: str | None = None

    @classmethod
    def from_yaml(cls, raw: dict[str, Any], read: Reader, following: str) -> ChoiceStep:
        text = read.text(raw, "text") or ""
        options = cls._options(raw.get("options"), read, following)
        save_as = read.slug(raw["save_as"], "'save_as'", VARIABLE, 32) if "save_as" in raw else None
        read.dates({}, text)  # no {placeholders}: only info and task steps show dates
        return cls(raw["id"], text, options=options, save_as=save_as)

    @staticmethod
    def _options(raw: Any, read: Reader, following: str) -> tuple[Option, ...]:
        if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_OPTIONS:
            raise read.fail(f"'options' must be a list of 2 to {MAX_OPTIONS} options")
        options: list[Option] = []
        for item in raw:
            if not isinstance(item, dict) or set(map(str, item)) - {"id", "label", "next"}:
                raise read.fail("each option is a mapping with id, label and optionally next")
            option_id = read.slug(item.get("id"), "option id", OPTION_ID, 16)
            if any(o.id == option_id for o in options):
                raise read.fail(f"option id '{option_id}' is used twice")
            label = read.text_value(item.get("label"), f"label of option '{option_id}'", MAX_LABEL)
            target = read.target(item["next"], f"option '{option_id}'") if "next" in item else following
            options.append(Option(option_id, label, target))
        return tuple(options)

    def option(self, option_id: str | None) -> Option | None:
        return next((o for o in self.options if o.id == option_id), None)

    def edges(self) -> tuple[Edge, ...]:
        return tuple(Edge(option.next, option=option) for option in self.options)

    def saves(self) -> tuple[str, frozenset[str] | None] | None:
        return (self.save_as, frozenset(o.id for o in self.options)) if self.save_as else None

    def buttons(self, awaiting: Awaiting | None) -> tuple[Button, ...]:
        return tuple((option.label, f"o:{option.id}") for option in self.options)

    def press(self, action: str) -> Move | None:
        option = self.option(action[2:]) if action.startswith("o:") else None
        if option is None:
            return None
        save = (self.save_as, option.id) if self.save_as else None
        return Answer(StepOutcome.DONE, value=option.id, target=option.next, save=save)

    def texts(self) -> list[str]:
        return super().texts() + [option.label for option in self.options]


@dataclass(frozen=True, kw_only=True)
class InputStep(_Routed):
    kind: ClassVar[str] = "input"
    keys: ClassVar[frozenset[str]] = frozenset(
        {"id", "kind", "text", "next", "branch", "validator", "optional", "save_as", "hint"})
    expects_text: ClassVar[bool] = True

    validator: str = "text"  # a key of validators.VALIDATORS
    optional: bool = False
    save_as: str | None = None
    hint_text: str | None = None  # the YAML's `hint`; default: the validator's

    @classmethod
    def from_yaml(cls, raw: dict[str, Any], read: Reader, following: str) -> InputStep:
        text = read.text(raw, "text") or ""
        route = cls._route(raw, read, following)
        validator = raw.get("validator")
        if validator not in VALIDATORS:
            raise read.fail(f"unknown validator {validator!r}; use one of {', '.join(VALIDATORS)}")
        optional = read.flag(raw, "optional", False)
        hint = read.text(raw, "hint", required=False, limit=200)
        save_as = read.slug(raw["save_as"], "'save_as'", VARIABLE, 32) if "save_as" in raw else None
        read.dates({}, text)  # no {placeholders}: only info and task steps show dates
        return cls(raw["id"], text, **route, validator=validator, optional=optional, save_as=save_as,
                   hint_text=hint)

    def saves(self) -> tuple[str, frozenset[str] | None] | None:
        return (self.save_as, None) if self.save_as else None

    def buttons(self, awaiting: Awaiting | None) -> tuple[Button, ...]:
        return ((texts.BUTTON_SKIP, "k"),) if self.optional else ()

    def hint(self) -> str | None:
        return self.hint_text or HINTS.get(self.validator)

    def press(self, action: str) -> Move | None:
        if action != "k" or not self.optional:
            return None
        return Answer(StepOutcome.SKIPPED, save=(self.save_as, None) if self.save_as else None)

    def typed(
        self, text: str, today: date, awaiting: Awaiting | None, cccd_key: bytes | None
    ) -> Move | None:
        value, error = validate(self.validator, text, today)
        if error is not None or value is None:
            return Refusal(error or ErrorMessage(texts.USE_BUTTONS))
        value_hash = None
        if self.validator == "cccd":
            value_hash = hash_cccd(str(value), cccd_key) if cccd_key else None
            value = mask_cccd(str(value))
        save = (self.save_as, value) if self.save_as else None
        return Answer(StepOutcome.DONE, value=value, value_hash=value_hash, save=save)

    def texts(self) -> list[str]:
        return super().texts() + ([self.hint_text] if self.hint_text else [])


@dataclass(frozen=True, kw_only=True)
class BranchStep(_Routed):
    kind: ClassVar[str] = "branch"
    keys: ClassVar[frozenset[str]] = frozenset({"id", "kind", "branch"})
    shown: ClassVar[bool] = False

    @classmethod
    def from_yaml(cls, raw: dict[str, Any], read: Reader, following: str) -> BranchStep:
        if "branch" not in raw:
            raise read.fail("a branch step needs a 'branch' list")
        return cls(raw["id"], branch=read.branch(raw["branch"]))  # which ends with an `else`


STEP_TYPES: dict[str, type[Step]] = {
    cls.kind: cls for cls in (InfoStep, TaskStep, ChoiceStep, InputStep, BranchStep)
}
KINDS = tuple(STEP_TYPES)
