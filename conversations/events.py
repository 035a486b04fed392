"""What the engine takes and returns: inputs, step records, events and the Transition.

Every event has `msgid` and `values`: an English text and its {placeholders}, which the
handler translates and formats. Events never carry translated text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from conversations import texts
from conversations.state import RunState, RunStatus, StepOutcome

# Inputs -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Pressed:
    """A button press carrying the token the engine put on the button."""

    token: str


@dataclass(frozen=True)
class Typed:
    """Text the user typed."""

    text: str


# Outputs ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class FlowButton:
    label: str  # msgid
    token: str


@dataclass(frozen=True)
class StepRecord:
    """One answered step (design.md section 2); unique per (run, step_id, attempt)."""

    step_id: str
    attempt: int
    outcome: StepOutcome
    reason: str | None = None  # a reason msgid from the flow, or typed text (reason_typed)
    reason_typed: bool = False
    value: str | int | None = None  # validated, minimised (a cccd is masked)
    value_hash: str | None = None  # keyed hash of a cccd when a key was given


@dataclass(frozen=True)
class ShowStep:
    """Show a step: header STEP_POSITION with n/total, the text, a hint for inputs, buttons."""

    step_id: str
    kind: str
    text: str
    position: int
    total: int
    buttons: tuple[FlowButton, ...] = ()
    hint: str | None = None
    expects_text: bool = False
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def msgid(self) -> str:
        return self.text

    @property
    def header(self) -> tuple[str, dict[str, int]]:
        """The "Step {n}/{total}" msgid and its values."""
        return texts.STEP_POSITION, {"n": self.position, "total": self.total}


@dataclass(frozen=True)
class AskReason:
    """After Problem: the flow's reasons as buttons, plus Other reason and Back."""

    step_id: str
    buttons: tuple[FlowButton, ...]
    msgid: str = texts.ASK_REASON
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AskReasonText:
    """After Other reason: the next typed text is the reason."""

    step_id: str
    buttons: tuple[FlowButton, ...]
    msgid: str = texts.ASK_REASON_TEXT
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InvalidInput:
    """What is wrong with the typed answer; the step is shown again after it."""

    step_id: str
    msgid: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StaleButton:
    step_id: str | None = None  # the button's step, if the token could be read
    msgid: str = texts.STALE_BUTTON
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepMissing:
    """The run is pinned to a step its flow version does not have; nothing can go on."""

    step_id: str | None
    msgid: str = texts.STEP_MISSING
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunNotActive:
    status: RunStatus
    msgid: str = texts.RUN_NOT_ACTIVE
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProblemNoted:
    """A non-blocking Problem; `values["reason"]` is a msgid unless reason_typed."""

    step_id: str
    reason: str
    reason_typed: bool = False
    msgid: str = texts.PROBLEM_NOTED

    @property
    def values(self) -> dict[str, Any]:
        return {"reason": self.reason}


@dataclass(frozen=True)
class Blocked:
    """The run ended blocked; `values["reason"]` is a msgid unless reason_typed."""

    step_id: str
    reason: str
    reason_typed: bool = False
    msgid: str = texts.BLOCKED

    @property
    def values(self) -> dict[str, Any]:
        return {"reason": self.reason}


@dataclass(frozen=True)
class Completed:
    flow_id: str
    done_text: str | None = None  # the flow's own closing text (msgid), if any
    msgid: str = texts.COMPLETED
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Abandoned:
    step_id: str | None
    msgid: str = texts.ABANDONED
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MarkDigitalReady:
    """Set the run's resident (or household member) digital_ready."""

    step_id: str
    msgid: str = texts.DIGITAL_READY
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoopLimit:
    """Branch steps ran more than MAX_AUTO_STEPS times in one call: the flow is broken."""

    step_id: str
    msgid: str = texts.LOOP_LIMIT
    values: dict[str, Any] = field(default_factory=dict)


Event = (
    ShowStep | AskReason | AskReasonText | InvalidInput | StaleButton | StepMissing | RunNotActive
    | ProblemNoted | Blocked | Completed | Abandoned | MarkDigitalReady | LoopLimit
)


@dataclass(frozen=True)
class Transition:
    new_state: RunState
    records: tuple[StepRecord, ...] = ()
    events: tuple[Event, ...] = ()

    @property
    def status(self) -> RunStatus:
        return self.new_state.status

    @property
    def finished(self) -> bool:
        return self.status != RunStatus.ACTIVE
