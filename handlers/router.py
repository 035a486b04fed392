"""Routers: what each feature module answers, and the one table dispatch routes with.

A feature module builds one `Router` and registers on it, by decorator, its commands (with the
roles that may use them and the help line that lists them), its buttons (one handler per kind
of button data, handlers/buttons.py, given the unpacked data), its dialogs (the handler of text
typed while the chat is in one, and the kinds of button that answer it), and at most once its
fallback for plain text and its /cancel hook. `Routes` includes the routers dispatch lists, in
that order, and raises DuplicateRoute at start-up if two register the same command, button
prefix or dialog (or two a text fallback), and RouteError if a dialog names a button nobody
handles.

Nothing here trusts button data: handlers re-check roles and ownership.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from handlers.buttons import ButtonData, StaleButton
from handlers.context import Context
from handlers.i18n import N_
from handlers.types import Reply

Handler = Callable[[Context, str], Awaitable[list[Reply]]]
D = TypeVar("D", bound=ButtonData)
ButtonHandler = Callable[[Context, Any], Awaitable[list[Reply]]]
StaleHandler = Callable[[Context, StaleButton], Awaitable[list[Reply]]]

OUT_OF_DATE = N_("This button is out of date. Type /help to see what you can do now.")
STALE_TOAST = N_("This button is out of date.")


def out_of_date(ctx: Context) -> Reply:
    """The answer to a button (or numbered option) that no longer fits what the chat is doing:
    on a tapped message a toast that takes its keyboard off (the chat keeps one live keyboard),
    elsewhere a message."""
    if ctx.incoming.tapped:
        return Reply(ctx.t(STALE_TOAST), toast=True)
    return Reply(ctx.t(OUT_OF_DATE))


EVERYONE = ("resident", "volunteer", "leader", "admin")
STAFF = ("volunteer", "leader", "admin")
LEADERS = ("leader", "admin")


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    roles: tuple[str, ...]
    help: str  # an English msgid; "" keeps it out of /help
    order: int


class RouteError(ValueError):
    """Routers that do not fit together: raised at start-up."""


class DuplicateRoute(RouteError):
    """Two registrations of one command, button prefix, dialog or text fallback."""


@dataclass(frozen=True)
class ButtonRoute:
    data: type[ButtonData]
    handler: ButtonHandler
    # Data that does not fit the kind: out of date, unless the kind answers it itself.
    stale: StaleHandler | None = None


@dataclass(frozen=True)
class DialogRoute:
    handler: Handler
    # The prefixes of the buttons that answer the dialog (any other button leaves it); None:
    # only a command leaves it.
    buttons: frozenset[str] | None


def _add(table: dict[str, Any], key: str, value: Any, what: str, owner: str) -> None:
    if key in table:
        raise DuplicateRoute(f"{what} {key!r} is registered twice ({owner})")
    table[key] = value


class Router:
    """The commands, buttons, dialogs, text fallback and cancel hook of one feature module."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.commands: dict[str, Command] = {}
        self.buttons: dict[str, ButtonRoute] = {}
        self.dialogs: dict[str, DialogRoute] = {}
        self.text_handler: Handler | None = None
        self.cancel_hook: Handler | None = None

    def __repr__(self) -> str:
        return f"Router({self.name!r})"

    def command(self, name: str, *, roles: tuple[str, ...] = EVERYONE, help: str = "", order: int = 50):
        def register(handler: Handler) -> Handler:
            _add(self.commands, name, Command(name, handler, roles, help, order), "command", self.name)
            return handler

        return register

    def button(self, data: type[D], *, stale: StaleHandler | None = None):
        """Registers the handler of buttons of kind `data`; it receives the unpacked data."""

        def register(handler: Callable[[Context, D], Awaitable[list[Reply]]]):
            _add(self.buttons, data.prefix, ButtonRoute(data, handler, stale), "button prefix", self.name)
            return handler

        return register

    def dialog(self, name: str, *, buttons: tuple[type[ButtonData], ...] | None = None):
        """Registers the handler for free text while the conversation is in dialog `name`;
        `buttons`: the kinds of button that answer it (pressing another leaves it)."""

        def register(handler: Handler) -> Handler:
            own = frozenset(b.prefix for b in buttons) if buttons is not None else None
            _add(self.dialogs, name, DialogRoute(handler, own), "dialog", self.name)
            return handler

        return register

    def text(self, handler: Handler) -> Handler:
        """Plain text outside any dialog goes here (the residents' FAQ)."""
        if self.text_handler is not None:
            raise DuplicateRoute(f"a second text fallback ({self.name})")
        self.text_handler = handler
        return handler

    def cancel(self, handler: Handler) -> Handler:
        """Called by /cancel (in the order of the routers); the first that cancels something
        returns its replies, an empty list lets the next try."""
        if self.cancel_hook is not None:
            raise DuplicateRoute(f"a second cancel hook ({self.name})")
        self.cancel_hook = handler
        return handler


async def _no_text_handler(ctx: Context, text: str) -> list[Reply]:
    return [Reply(ctx.t("Type /help to see what I can do."))]


class Routes:
    """The routers dispatch includes, merged into one table; built once at import."""

    def __init__(self, routers: Iterable[Router]) -> None:
        self.routers = tuple(routers)
        self.commands: dict[str, Command] = {}
        self.buttons: dict[str, ButtonRoute] = {}
        self.dialogs: dict[str, DialogRoute] = {}
        text: list[Handler] = []
        for router in self.routers:
            where = f"{router.name}, already by another router"
            for name, cmd in router.commands.items():
                _add(self.commands, name, cmd, "command", where)
            for prefix, route in router.buttons.items():
                _add(self.buttons, prefix, route, "button prefix", where)
            for name, dialog in router.dialogs.items():
                _add(self.dialogs, name, dialog, "dialog", where)
            if router.text_handler is not None:
                if text:
                    raise DuplicateRoute(f"a second text fallback ({where})")
                text.append(router.text_handler)
        for name, dialog in self.dialogs.items():
            unknown = sorted((dialog.buttons or frozenset()) - self.buttons.keys())
            if unknown:
                raise RouteError(f"dialog {name!r} is answered by buttons nobody handles: {unknown}")
        self.text: Handler = text[0] if text else _no_text_handler
        self.cancel_hooks: tuple[Handler, ...] = tuple(
            r.cancel_hook for r in self.routers if r.cancel_hook is not None)

    def commands_for(self, ctx: Context) -> list[Command]:
        """The commands /help lists to this user, in their order."""
        return sorted((c for c in self.commands.values() if c.help and allowed(c, ctx)),
                      key=lambda c: (c.order, c.name))


def allowed(cmd: Command, ctx: Context) -> bool:
    return ctx.role in cmd.roles or any(g.role in cmd.roles for g in ctx.grants)


def split_command(text: str) -> tuple[str, str]:
    """'/Start@GoCuaBot  ABC' -> ('/start', 'ABC')."""
    head, _, rest = text.strip().partition(" ")
    name = head.split("@", 1)[0].lower()
    return name, rest.strip()
