"""A chat's dialog state (the `conversations.state` JSON column), read-only once read.

Handlers read it as `ctx.state` and replace it with `ctx.set_state(...)`; they never change it in
place. `ConversationState` is a frozen mapping whose nested dicts and lists are frozen too
(still a dict and a list for `isinstance` and JSON), so
`ctx.state["step"] = ...` or `ctx.state["data"]["phone"] = ...` raises TypeError instead of
changing a value the pipeline would not notice. `to_json()` gives a new plain dict, in the shape
stored:

    {"dialog": "flow_run", "run_id": 12, "expects_text": true}          # a procedure's step
    {"dialog": "new_household", "step": "phone", "data": {...}, "pending": null}
    {"last_question": "..."}                                            # for "was this helpful?"

`dialog` names the handler the next typed text goes to (handlers/router.py `@dialog`); the other
keys belong to that dialog. `expects_text`: the dialog waits for typed text, so a digit is an
answer rather than a numbered option (handlers/choices.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any


def _refuse(self: Any, *args: Any, **kwargs: Any) -> Any:
    raise TypeError("a conversation state is read-only: build a new one and pass it to ctx.set_state")


class FrozenDict(dict[str, Any]):
    """A dict (JSON-serialisable, `isinstance(x, dict)`) that refuses every change;
    `dict(x)` or `{**x}` gives a plain copy to change."""

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse


class FrozenList(list[Any]):
    """A list that refuses every change; `list(x)` gives a plain copy to change."""

    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse
    append = clear = extend = insert = pop = remove = reverse = sort = _refuse


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return FrozenDict({str(k): _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return FrozenList(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thaw(v) for v in value]
    return value


@dataclass(frozen=True, eq=False)
class ConversationState(Mapping[str, Any]):
    # Not named `values`: that would hide Mapping.values() (`state.values()` would fail).
    entries: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", _freeze(self.entries))

    # The keys every dialog shares ------------------------------------------------------------

    @property
    def dialog(self) -> str | None:
        dialog = self.entries.get("dialog")
        return dialog if isinstance(dialog, str) and dialog else None

    @property
    def expects_text(self) -> bool:
        return bool(self.entries.get("expects_text"))

    # A read-only mapping ---------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self.entries[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ConversationState):
            return self.to_json() == other.to_json()
        if isinstance(other, Mapping):
            return self.to_json() == _thaw(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def replace(self, **changes: Any) -> ConversationState:
        """A new state with these keys changed (the dialog's next step)."""
        return ConversationState({**self.entries, **changes})

    # Stored form -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """A new plain dict (lists and dicts, nothing shared with this state)."""
        return _thaw(self.entries)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ConversationState:
        """Read the stored state; None or an empty value is the empty state."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError(f"a conversation state must be a mapping, got {data!r}")
        return cls(data)
