"""Decides which handler an update goes to.

A typed answer is first read against the options the chat is answering (handlers/options.py):
a number, a label or a distinctive part of one presses that option; an answer that fits several
asks which one; a number not on the list says so and asks again. A /command always works and
leaves the dialog it interrupts; a button of something else leaves it too.

The handlers are the routers of the feature modules in ROUTERS, one explicit list (the order
/cancel asks their cancel hooks in); `Routes` raises at import if two register the same
command, button prefix or dialog. A button's data is unpacked by the codec of its prefix
(handlers/buttons.py) before its handler sees it; data that does not fit answers as out of date.
"""

from __future__ import annotations

from dataclasses import replace

from handlers import (
    announce,
    basic,
    come_back,
    exports,
    faq,
    flows,
    follow_ups,
    household_edit,
    households,
    link,
    reminders,
    stats,
    targets,
    visit_limits,
    visits,
)
from handlers.buttons import StaleButton
from handlers.choices import numbered, which_one, wrong_answer
from handlers.context import Context
from handlers.options import Ambiguous, NoSuchNumber, Picked, read_answer
from handlers.router import Routes, allowed, out_of_date, split_command
from handlers.types import Reply

ROUTERS = (
    basic.router, flows.router, households.router, household_edit.router, visits.router,
    visit_limits.router, stats.router, exports.router, targets.router, faq.router, link.router,
    come_back.router, follow_ups.router, reminders.router, announce.router,
)
ROUTES = Routes(ROUTERS)


async def dispatch(ctx: Context) -> list[Reply]:
    incoming = ctx.incoming
    t = ctx.t
    if incoming.unsupported:
        return [Reply(t("I can only read text messages. Type /help to see what I can do."))]
    payload = incoming.payload
    text = (incoming.text or "").strip()
    offered = ctx.conversation.offered
    if payload is None and offered and not text.startswith("/"):
        answer = read_answer(text, [label for label, _ in offered], numbered=numbered(ctx),
                             tolerant=not ctx.state.get("expects_text"))
        if isinstance(answer, Picked):
            payload = offered[answer.index][1]
            ctx.incoming = replace(incoming, payload=payload, text=None)
        elif isinstance(answer, Ambiguous):
            return [which_one(ctx, text, answer.indices)]
        elif isinstance(answer, NoSuchNumber) or not text:
            return wrong_answer(ctx)
    if payload is not None:
        return await route_payload(ctx, payload)
    if text.startswith("/"):
        return await route_command(ctx, text)
    dialog = ctx.state.get("dialog")
    if dialog and dialog in ROUTES.dialogs:
        return await ROUTES.dialogs[dialog].handler(ctx, text)
    if not text:
        return [Reply(t("Type /help to see what I can do."))]
    return await ROUTES.text(ctx, text)


def leave_dialog(ctx: Context, prefix: str | None = None) -> None:
    """The user went elsewhere (a command, or a button `prefix` of something else): typed text
    and /cancel no longer go to the dialog. A procedure stays as it is, resumable from the
    household page; a half-typed new household or member is dropped."""
    dialog = ctx.state.get("dialog")
    if not dialog:
        return
    if prefix is not None:
        route = ROUTES.dialogs.get(dialog)
        if route is None or route.buttons is None or prefix in route.buttons:
            return
    ctx.set_state(None)


async def route_command(ctx: Context, text: str) -> list[Reply]:
    name, args = split_command(text)
    if name != "/cancel":
        leave_dialog(ctx)
    cmd = ROUTES.commands.get(name)
    if cmd is None:
        return [Reply(ctx.t("I don't know the command {command}. Type /help to see the commands.",
                            command=name[:40]))]
    if not allowed(cmd, ctx):
        return [Reply(ctx.t("The command {command} is not available to you. Type /help to see yours.",
                            command=name))]
    return await cmd.handler(ctx, args)


async def route_payload(ctx: Context, payload: str) -> list[Reply]:
    prefix = payload.partition(":")[0]
    leave_dialog(ctx, prefix)
    route = ROUTES.buttons.get(prefix)
    if route is None:
        return [out_of_date(ctx)]
    try:
        data = route.data.unpack(payload)
    except StaleButton as stale:
        return await route.stale(ctx, stale) if route.stale is not None else [out_of_date(ctx)]
    return await route.handler(ctx, data)
