"""The shape of a flow as a graph of steps: load-time checks and path lengths.

Works on any sequence of steps that have `id`, `shown`, `edges()`, `targets()`, `routes()` and
`saves()` (steps.Step); raises GraphProblem, which the loader turns into a FlowError.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from conversations.conditions import Condition, Not, Test, variables_of

if TYPE_CHECKING:
    from conversations.steps import Step

END = "end"


class GraphProblem(ValueError):
    def __init__(self, step: str | None, problem: str) -> None:
        super().__init__(problem)
        self.step = step
        self.problem = problem


def longest_from(steps: Sequence[Step], root: str) -> int:
    """The most visible steps on a path from `root` to the end, `root` included, following the
    steps' own routes (routes(): no Problem detours), after dropping the edges that go back to a
    step already on the path of a depth-first walk from `root` (so a loop is counted once, not
    forever). Branch steps are invisible and count 0."""
    index = {step.id: step for step in steps}
    back: set[tuple[str, str]] = set()
    on_path: set[str] = set()
    seen: set[str] = set()

    def walk(node: str) -> None:
        seen.add(node)
        on_path.add(node)
        for target in index[node].routes():
            if target in on_path:
                back.add((node, target))
            elif target in index and target not in seen:
                walk(target)
        on_path.discard(node)

    if root not in index:
        return 1
    walk(root)
    memo: dict[str, int] = {}

    def longest(node: str) -> int:
        if node not in memo:
            step = index[node]
            ahead = [longest(t) for t in step.routes() if t in index and (node, t) not in back]
            memo[node] = int(step.shown) + max(ahead, default=0)
        return memo[node]

    return longest(root)


class _OverBudget(Exception):
    pass


class StepCounter:
    """How many steps can still be shown from a step, this one included: the "N" of "Step n/N".

    It follows the steps' own routes (choices, branches, next; a Problem's detour is not
    counted until it is taken) and counts a step at most VISITS times on a run, the visits so
    far included: a run may go round each loop once. So along a route N stays the same, and
    it changes only after an answer that picks a route. Past that bound (a second time round a
    loop) it falls back to longest_from, which counts the loop once from here.
    """

    VISITS = 2
    BUDGET = 2_000  # new (step, visits) states one count may explore

    def __init__(self, steps: Sequence[Step]) -> None:
        self._index = {step.id: step for step in steps}
        self._looping = tuple(s.id for s in steps if s.shown and self._on_loop(s.id))
        self._position = {step_id: i for i, step_id in enumerate(self._looping)}
        self._fallback = {step.id: longest_from(steps, step.id) for step in steps}
        self._memo: dict[tuple[str, tuple[int, ...]], int | None] = {}
        self._budget = self.BUDGET

    def _on_loop(self, step_id: str) -> bool:
        todo, seen = list(self._index[step_id].routes()), set()
        while todo:
            node = todo.pop()
            if node == step_id:
                return True
            if node in self._index and node not in seen:
                seen.add(node)
                todo += self._index[node].routes()
        return False

    def remaining(self, step_id: str, visits: Mapping[str, int] | None = None) -> int:
        """Steps still to show from `step_id` (included), given the visits so far per step
        (the engine's attempts, which already count the current visit)."""
        if step_id not in self._index:
            return 1
        visits = visits or {}
        counts = tuple(min(visits.get(s, 0), self.VISITS) for s in self._looping)
        self._budget = self.BUDGET
        try:
            found = self._best(step_id, counts, frozenset())
        except _OverBudget:
            found = None
        return found if found is not None else self._fallback[step_id]

    def _best(self, node: str, counts: tuple[int, ...], routing: frozenset[str]) -> int | None:
        key = (node, counts)
        if key in self._memo:
            return self._memo[key]
        self._budget -= 1
        if self._budget < 0:  # a flow of many tangled loops: count it the simple way instead
            raise _OverBudget
        step = self._index[node]
        best: int | None = None
        for target in step.routes():
            ahead: int | None = 0 if target == END else None
            if target in self._index and target not in routing:
                after = counts
                if target in self._position:
                    i = self._position[target]
                    if counts[i] >= self.VISITS:
                        continue
                    after = (*counts[:i], counts[i] + 1, *counts[i + 1:])
                through = frozenset() if step.shown else routing | {node}
                ahead = self._best(target, after, through)
            if ahead is not None and (best is None or ahead > best):
                best = ahead
        result = None if best is None else best + int(step.shown)
        self._memo[key] = result
        return result


def check_graph(steps: Sequence[Step]) -> None:
    """Every target exists, every step is reachable and can reach the end, branch steps never
    loop among themselves, and conditions read variables that some step saves."""
    index = {step.id: step for step in steps}
    for step in steps:
        for edge in step.edges():
            if edge.target != END and edge.target not in index:
                by = f"option '{edge.option.id}' " if edge.option else ""
                raise GraphProblem(step.id, f"{by}goes to unknown step '{edge.target}'")

    reached: set[str] = set()
    todo = [steps[0].id]
    while todo:
        node = todo.pop()
        if node not in reached and node != END:
            reached.add(node)
            todo += index[node].targets()
    for step in steps:
        if step.id not in reached:
            raise GraphProblem(step.id, "cannot be reached from the first step")

    finishing = {END}
    changed = True
    while changed:
        changed = False
        for step in steps:
            if step.id not in finishing and any(t in finishing for t in step.targets()):
                finishing.add(step.id)
                changed = True
    for step in steps:
        if step.id not in finishing:
            raise GraphProblem(step.id, "can never reach the end of the flow")

    _check_router_cycles(steps)
    _check_variables(steps)


def _check_router_cycles(steps: Sequence[Step]) -> None:
    routers = {step.id: step for step in steps if not step.shown}
    state: dict[str, int] = {}  # 1: on the current path, 2: finished

    def walk(node: str) -> None:
        state[node] = 1
        for target in routers[node].targets():
            if target not in routers:
                continue
            if state.get(target) == 1:
                raise GraphProblem(node, f"branch steps loop back to '{target}' without asking anything")
            if target not in state:
                walk(target)
        state[node] = 2

    for node in routers:
        if node not in state:
            walk(node)


def _check_variables(steps: Sequence[Step]) -> None:
    saved: dict[str, set[str] | None] = {}  # variable -> its option ids if only choices save it
    for step in steps:
        saves = step.saves()
        if saves is None:
            continue
        name, values = saves
        if values is not None and saved.get(name, set()) is not None:
            saved[name] = (saved.get(name) or set()) | values
        else:
            saved[name] = None
    for step in steps:
        for edge in step.edges():
            if edge.branch is None or edge.branch.condition is None:
                continue
            condition = edge.branch.condition
            for name in sorted(variables_of(condition)):
                if name not in saved:
                    raise GraphProblem(step.id, f"a condition reads '{name}' but no step saves it (save_as)")
            for test in _tests(condition):
                choices = saved.get(test.var)
                wanted = (test.value,) if test.op == "equals" else test.value if test.op == "one_of" else ()
                if choices is not None and any(w not in choices for w in wanted):
                    raise GraphProblem(
                        step.id,
                        f"a condition compares '{test.var}' with {', '.join(map(str, wanted))}, "
                        f"which is not one of its options ({', '.join(sorted(choices))})",
                    )


def _tests(condition: Condition) -> Iterator[Test]:
    if isinstance(condition, Test):
        yield condition
    elif isinstance(condition, Not):
        yield from _tests(condition.item)
    else:
        for item in condition.items:
            yield from _tests(item)
