"""Routes an update to the handler for its command, button payload or open dialog.

Handlers register in plain tables; a command names the roles that may use it and the help text
that lists it. Nothing here trusts button data: handlers re-check roles and ownership.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from handlers.context import Context
from handlers.i18n import N_
from handlers.types import Reply

Handler = Callable[[Context, str], Awaitable[list[Reply]]]

OUT_OF_DATE = N_("This button is out of date. Type /help to see what you can do now.")


def out_of_date(ctx: Context) -> Reply:
    """The answer to a button (or numbered option) that no longer fits what the chat is doing."""
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


COMMANDS: dict[str, Command] = {}
PAYLOADS: dict[str, Handler] = {}
DIALOGS: dict[str, Handler] = {}
# The button payload prefixes that belong to a dialog: any other button leaves it (a dialog
# registered without them is left only by a command).
DIALOG_PAYLOADS: dict[str, frozenset[str]] = {}


def command(name: str, *, roles: tuple[str, ...] = EVERYONE, help: str = "", order: int = 50):
    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, handler, roles, help, order)
        return handler

    return register


def payload(prefix: str):
    """Registers a handler for button payloads `prefix:rest`; it receives `rest`."""

    def register(handler: Handler) -> Handler:
        PAYLOADS[prefix] = handler
        return handler

    return register


def dialog(name: str, *, payloads: tuple[str, ...] | None = None):
    """Registers the handler for free text while the conversation is in dialog `name`;
    `payloads`: the prefixes of the buttons that answer it (pressing another leaves it)."""

    def register(handler: Handler) -> Handler:
        DIALOGS[name] = handler
        if payloads is not None:
            DIALOG_PAYLOADS[name] = frozenset(payloads)
        return handler

    return register


def allowed(cmd: Command, ctx: Context) -> bool:
    return ctx.role in cmd.roles or any(g.role in cmd.roles for g in ctx.grants)


def commands_for(ctx: Context) -> list[Command]:
    return sorted(
        (c for c in COMMANDS.values() if c.help and allowed(c, ctx)), key=lambda c: (c.order, c.name)
    )


def split_command(text: str) -> tuple[str, str]:
    """'/Start@GoCuaBot  ABC' -> ('/start', 'ABC')."""
    head, _, rest = text.strip().partition(" ")
    name = head.split("@", 1)[0].lower()
    return name, rest.strip()


async def _no_text_handler(ctx: Context, text: str) -> list[Reply]:
    return [Reply(ctx.t("Type /help to see what I can do."))]


TEXT_HANDLER: Handler = _no_text_handler


def set_text_handler(handler: Handler) -> None:
    """Plain text outside any dialog goes here (the residents' FAQ once it is installed)."""
    global TEXT_HANDLER
    TEXT_HANDLER = handler


# Called in order by /cancel; the first that cancels something returns its replies.
CANCEL_HOOKS: list[Handler] = []
