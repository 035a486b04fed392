"""What an export shows of a step record, in the export's language: pure, for the writers.

A People's Committee reads the step as its title ("Check the phone: a smartphone with a SIM in
the resident's own name."), never as the flow's internal id (`phone_ready`), and the answer as
the option chosen ("Yes, chip card") or the value typed ("05/03/2025"). Values are what the
step record keeps: validated, a citizen ID only as its mask; anything that still looks like a
citizen ID number is masked again here, so no export can carry one whole.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from functools import cache

from conversations.flow_model import ChoiceStep, Flow, FlowRegistry, Step
from conversations.redact import redact_citizen_ids
from handlers.i18n import Translator
from handlers.types import button_label

HEADING_MAX = 100  # characters of a step's title in an export
_SENTENCE_END = re.compile(r"(?<=[.?!])\s")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def step_heading(t: Translator, step: Step | None, step_id: str) -> str:
    """The step's title in `t`'s language: the first sentence of its text, at most HEADING_MAX
    characters. A step no loaded version knows (or one without text) gets its id in words."""
    if step is None or not step.text:
        return step_id.replace("_", " ").capitalize()
    text = " ".join(t(step.text).split())
    first = _SENTENCE_END.split(text, maxsplit=1)[0]
    return button_label(first, HEADING_MAX)


def answer_text(t: Translator, step: Step | None, value: str | None) -> str | None:
    """The option chosen (its label, translated) or the value typed, as a person reads it."""
    if value is None or value == "":
        return None
    if isinstance(step, ChoiceStep):
        option = step.option(value)
        if option is not None:
            return t(option.label)
    if _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value).strftime("%d/%m/%Y")
        except ValueError:
            pass
    return redact_citizen_ids(value)


class StepColumns:
    """The step and answer columns of an export, with the flows looked up once per step."""

    def __init__(self, t: Translator, flows: FlowRegistry | None) -> None:
        self.t = t
        self.flows = flows
        self.step = cache(self._step)
        self.heading: Callable[[str, int, str], str] = cache(self._heading)

    def _step(self, flow_id: str, version: int, step_id: str) -> Step | None:
        """The step in the version the run was pinned to, else in the latest version."""
        if self.flows is None or flow_id not in self.flows:
            return None
        for flow in (self.flows.get(flow_id, version), self.flows.latest(flow_id)):
            found = flow.step(step_id) if isinstance(flow, Flow) else None
            if found is not None:
                return found
        return None

    def _heading(self, flow_id: str, version: int, step_id: str) -> str:
        return step_heading(self.t, self.step(flow_id, version, step_id), step_id)

    def answer(self, flow_id: str, version: int, step_id: str, value: str | None) -> str | None:
        return answer_text(self.t, self.step(flow_id, version, step_id), value)
