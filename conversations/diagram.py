"""A Mermaid diagram of a flow, to keep beside its YAML (like PTB's conversationbot.mmd).

    python -m conversations.diagram conversations/flows/vneid.yaml > vneid.mmd
"""

from __future__ import annotations

import sys

from conversations.conditions import AllOf, AnyOf, Condition, Not, Test
from conversations.flow_model import END, Flow, Step, load_flow_file

_SHAPES = {
    "info": ('("', '")'),
    "task": ('["', '"]'),
    "choice": ('{"', '"}'),
    "input": ('[/"', '"/]'),
    "branch": ('{{"', '"}}'),
}


def _label(text: str, limit: int = 48) -> str:
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text.replace('"', "#quot;")


def _describe(condition: Condition) -> str:
    if isinstance(condition, Test):
        return f"{condition.var} {condition.op} {condition.value}"
    if isinstance(condition, Not):
        return f"not ({_describe(condition.item)})"
    joiner = " and " if isinstance(condition, AllOf) else " or "
    assert isinstance(condition, AllOf | AnyOf)
    return joiner.join(f"({_describe(item)})" for item in condition.items)


def _node(step: Step) -> str:
    left, right = _SHAPES[step.kind]
    text = step.text or "route"
    if step.kind == "input":
        text = f"{text} ({step.validator})"
    return f"    {step.id}{left}{_label(text)}{right}"


def flow_to_mermaid(flow: Flow) -> str:
    """A `flowchart TD` with one node per step, labelled edges, and end/blocked terminals."""
    lines = ["flowchart TD", f"    %% {flow.id} v{flow.version}: {_label(flow.title, 80)}",
             f"    start((start)) --> {flow.first.id}"]
    blocked = False
    for step in flow.steps:
        lines.append(_node(step))
        if step.kind == "choice":
            edges = [(option.next, _label(option.label, 24)) for option in step.options]
        elif step.branch:
            edges = [
                (entry.next, "else" if entry.condition is None else _label(_describe(entry.condition), 40))
                for entry in step.branch
            ]
        else:
            edges = [(step.next, "")]
        for target, label in edges:
            arrow = f' -- "{label}" --> ' if label else " --> "
            lines.append(f"    {step.id}{arrow}{'done((end))' if target == END else target}")
        if step.on_blocked:
            lines.append(f'    {step.id} -. "problem" .-> {step.on_blocked}')
        elif step.blocking:
            lines.append(f'    {step.id} -. "problem" .-> blocked((blocked))')
            blocked = True
        if step.mark_digital_ready:
            lines.append(f"    class {step.id} ready")
    lines.append("    classDef ready stroke-width:3px")
    if blocked:
        lines.append("    style blocked stroke-dasharray: 4 2")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    for path in argv:
        sys.stdout.write(flow_to_mermaid(load_flow_file(path)))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
