"""The vocabulary of runs and the typed state of a run (design.md sections 2 and 3).

`RunStatus` and `StepOutcome` are the only spellings of a run's status and a step record's
outcome: the engine, the repositories, the reports and the handlers use them, and the schema
refuses any other value (CHECK constraints, migration 0010_status_checks). Being `StrEnum`s,
they compare equal to, and are stored as, their plain strings.

`RunState` is what a run carries between two updates (the `flow_runs.state` JSON column):

    {"flow": "vneid", "version": 2, "status": "active", "step": "has_nfc",
     "awaiting": null, "attempts": {"has_nfc": 1}, "vars": {"birth_date": "2025-01-31"},
     "answered": 4}

The engine never changes a state it is given: it works on `copy()` and returns the new one in
its Transition, which the handler stores with `to_json()`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

_ATOMIC = (str, int, float, bool, type(None))


class RunStatus(StrEnum):
    ACTIVE = "active"          # waiting for the step's answer (also when paused)
    BLOCKED = "blocked"        # stopped by a blocking Problem; can be reopened at that step
    COMPLETED = "completed"    # reached the end
    ABANDONED = "abandoned"    # stopped with /cancel; can be restarted

    @property
    def open(self) -> bool:
        """Active or blocked: the run can still go on (one per household, flow and person)."""
        return self in (RunStatus.ACTIVE, RunStatus.BLOCKED)

    @property
    def finished(self) -> bool:
        """Completed or abandoned: the run has its `finished_at`."""
        return self in (RunStatus.COMPLETED, RunStatus.ABANDONED)


class StepOutcome(StrEnum):
    DONE = "done"              # answered (Done, Continue, a choice, a valid input)
    SKIPPED = "skipped"        # Skip on a task or an optional input
    BLOCKED = "blocked"        # a Problem, with its reason (the run may go on: on_blocked)


class Awaiting(StrEnum):
    """A task's Problem sub-step: the reasons as buttons, or a typed reason."""

    REASON = "reason"
    REASON_TEXT = "reason_text"


@dataclass(eq=True)
class RunState:
    flow: str
    version: int
    status: RunStatus = RunStatus.ACTIVE
    step: str | None = None              # the current step; where it stopped when blocked/abandoned
    awaiting: Awaiting | None = None
    attempts: dict[str, int] = field(default_factory=dict)   # visits per step
    vars: dict[str, Any] = field(default_factory=dict)       # save_as values (a cccd only masked)
    answered: int = 0                    # step records written so far

    def copy(self) -> RunState:
        """A copy that shares nothing mutable with this one. The engine makes one per answer:
        built field by field (saved values are strings and numbers, copied deeply only when they
        are not), about a tenth of the time of `copy.deepcopy`."""
        return RunState(
            self.flow, self.version, self.status, self.step, self.awaiting, dict(self.attempts),
            {k: v if isinstance(v, _ATOMIC) else copy.deepcopy(v) for k, v in self.vars.items()},
            self.answered,
        )

    @property
    def attempt(self) -> int:
        """The current attempt at the current step (0 before any)."""
        return self.attempts.get(self.step, 0) if self.step else 0

    def to_json(self) -> dict[str, Any]:
        """A new plain dict (JSON types only), in the stored shape."""
        return {
            "flow": self.flow, "version": self.version, "status": str(self.status), "step": self.step,
            "awaiting": None if self.awaiting is None else str(self.awaiting),
            "attempts": dict(self.attempts), "vars": copy.deepcopy(self.vars), "answered": self.answered,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RunState:
        """Read a stored state; ValueError for an unknown status or a malformed one."""
        if not isinstance(data, dict):
            raise ValueError(f"a run state must be a mapping, got {data!r}")
        awaiting = data.get("awaiting")
        return cls(
            flow=str(data.get("flow")), version=int(data.get("version") or 0),
            status=RunStatus(data.get("status", RunStatus.ACTIVE)), step=data.get("step"),
            awaiting=None if awaiting is None else Awaiting(awaiting),
            attempts={str(k): int(v) for k, v in (data.get("attempts") or {}).items()},
            vars=copy.deepcopy(dict(data.get("vars") or {})), answered=int(data.get("answered") or 0),
        )
