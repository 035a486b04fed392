"""A Mermaid diagram of a flow, to keep beside its YAML (like PTB's conversationbot.mmd).

    python -m conversations.diagram conversations/flows/vneid.yaml > vneid.mmd
"""

from __future__ import annotations

import sys

from conversations.conditions import AllOf, AnyOf, Condition, Not, Test
from conversations.flow_model import END, Flow, InputStep, Step, TaskStep, load_flow_file
from conversations.steps import Edge

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
    if isinstance(step, InputStep):
        text = f"{text} ({step.validator})"
    return f"    {step.id}{left}{_label(text)}{right}"


def _edge(step_id: str, edge: Edge) -> str:
    target = "done((end))" if edge.target == END else edge.target
    if edge.problem:
        return f'    {step_id} -. "problem" .-> {target}'
    if edge.option is not None:
        label = _label(edge.option.label, 24)
    elif edge.branch is not None:
        condition = edge.branch.condition
        label = "else" if condition is None else _label(_describe(condition), 40)
    else:
        label = ""
    arrow = f' -- "{label}" --> ' if label else " --> "
    return f"    {step_id}{arrow}{target}"


def flow_to_mermaid(flow: Flow) -> str:
    """A `flowchart TD` with one node per step, labelled edges, and end/blocked terminals."""
    lines = ["flowchart TD", f"    %% {flow.id} v{flow.version}: {_label(flow.title, 80)}",
             f"    start((start)) --> {flow.first.id}"]
    blocked = False
    for step in flow.steps:
        lines.append(_node(step))
        lines += [_edge(step.id, edge) for edge in step.edges()]
        if isinstance(step, TaskStep) and step.blocking:
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
