"""Decides which handler an update goes to.

A typed answer is first read against the options the chat is answering (handlers/options.py):
a number, a label or a distinctive part of one presses that option; an answer that fits several
asks which one; a number not on the list says so and asks again. A /command always works and
leaves the dialog it interrupts, except /help, which answers in passing and asks the dialog's
question again; a button of something else leaves it too. A command that does not
exist (or is another role's) leaves nothing: it names the closest command the person has, and
the question they were answering comes again with its options.

The handlers are the routers of the feature modules in ROUTERS, one explicit list (the order
/cancel asks their cancel hooks in); `Routes` raises at import if two register the same
command, button prefix or dialog. A button's data is unpacked by the codec of its prefix
(handlers/buttons.py) before its handler sees it; data that does not fit answers as out of date.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import replace

from conversations.small_talk import SmallTalk, small_talk
from handlers import (
    announce,
    basic,
    choices,
    come_back,
    exports,
    faq,
    flows,
    follow_ups,
    household_edit,
    household_upload,
    households,
    invites,
    link,
    reminders,
    roster,
    stats,
    targets,
    visit_limits,
    visits,
)
from handlers.buttons import MoreButton, RequestButton, StaleButton
from handlers.choices import ask_again, numbered, which_one, wrong_answer
from handlers.command_typos import closest_command
from handlers.context import Context
from handlers.i18n import N_
from handlers.options import Ambiguous, NoSuchNumber, Picked, is_everyday, read_answer
from handlers.router import STAFF, Routes, allowed, out_of_date, split_command
from handlers.types import Reply

ROUTERS = (
    choices.router, basic.router, flows.router, households.router, household_edit.router, visits.router,
    visit_limits.router, stats.router, exports.router, targets.router, invites.router, roster.router,
    faq.router, link.router, household_upload.router,
    come_back.router, follow_ups.router, reminders.router, announce.router,
)
ROUTES = Routes(ROUTERS)


async def dispatch(ctx: Context) -> list[Reply]:
    incoming = ctx.incoming
    t = ctx.t
    if incoming.unsupported:
        return [Reply(t("I can only read text messages. Type /help to see what I can do."))]
    if incoming.file is not None and incoming.payload is None and not (incoming.text or "").startswith("/"):
        return await household_upload.on_file(ctx)
    payload = incoming.payload
    text = (incoming.text or "").strip()
    offered = ctx.conversation.offered
    if payload is None and ctx.has_role(*STAFF) and (word := visits.request_word(text)) is not None:
        return await _by_word(ctx, word)
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
        elif (ctx.state.get("dialog") and not ctx.state.get("expects_text")
              and (warm := _warm_word(ctx, text)) is not None):
            # "cảm ơn" mid-dialog, or an "ok" no single option means: a warm word, and the
            # question again so that what to answer stays in sight. (Outside a dialog the FAQ's
            # small talk answers it.)
            return ask_again(ctx, warm)
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


WARM_THANKS = N_("You're welcome! To go on, choose one of the options below.")
WARM_OK = N_("All right. To go on, choose one of the options below.")


def _warm_word(ctx: Context, text: str) -> str | None:
    """The friendly answer to "cảm ơn", "ok", "không" … typed where no option means it; None
    for anything else (a greeting goes on to its own answer)."""
    kind = small_talk(text)
    if kind is SmallTalk.THANKS:
        return ctx.t(WARM_THANKS)
    if kind in (SmallTalk.OK, SmallTalk.BYE) or is_everyday(text):
        return ctx.t(WARM_OK)
    return None


async def _by_word(ctx: Context, word: RequestButton) -> list[Reply]:
    """A request taken or closed with its word ("NHẬN 12"): the dialog in progress stays, and
    its question comes again after the answer, with its options, if the word left it as it was."""
    state_before = copy.deepcopy(ctx.conversation.state)
    replies = await visits.request_button(ctx, word)
    if ctx.conversation.offered and ctx.conversation.state == state_before and ctx.state.get("dialog"):
        replies = [*replies, *ask_again(ctx)]
    return replies


def leave_dialog(ctx: Context, prefix: str | None = None) -> None:
    """The user went elsewhere (a command, or a button `prefix` of something else): typed text
    and /cancel no longer go to the dialog. A procedure stays as it is, resumable from the
    household page; a half-typed new household or member is dropped."""
    dialog = ctx.state.get("dialog")
    if not dialog or prefix == MoreButton.prefix:  # "More" shows the rest of the dialog's options
        return
    if prefix is not None:
        route = ROUTES.dialogs.get(dialog)
        if route is None or route.buttons is None or prefix in route.buttons:
            return
    ctx.set_state(None)


async def route_command(ctx: Context, text: str) -> list[Reply]:
    name, args = split_command(text)
    cmd = ROUTES.commands.get(name)
    if cmd is None or not allowed(cmd, ctx):
        return _no_such_command(ctx, name, known=cmd is not None)
    if name in ASIDE_COMMANDS:
        return await _aside(ctx, cmd.handler, args)
    if name != "/cancel":
        # /start is "start over": the one command that leaves without asking.
        asked = households.interrupted_member(ctx, text) if name != "/start" else None
        if asked is not None:  # what was typed is not lost silently: keep it or drop it
            return asked
        leave_dialog(ctx)
    return await cmd.handler(ctx, args)


ASIDE_COMMANDS = frozenset({"/help"})  # asked in passing: what the person was doing stays
STILL_WAITS = N_("The question above still waits for your answer (or /cancel to stop).")


async def _aside(ctx: Context, handler: Callable[[Context, str], Awaitable[list[Reply]]],
                 args: str) -> list[Reply]:
    """/help in the middle of a dialog answers, then asks the dialog's question again with its
    options (or says that it still waits for a typed answer): looking up the commands is not a
    way out of registering a household or a /visit request."""
    replies = await handler(ctx, args)
    if not ctx.state.get("dialog"):
        return replies
    if ctx.conversation.offered:
        return [*replies, *ask_again(ctx)]
    return [*replies, Reply(ctx.t(STILL_WAITS))]


def _no_such_command(ctx: Context, name: str, *, known: bool) -> list[Reply]:
    """A mistyped command, or one of another role's: say so, name the closest command this user
    has, and leave the dialog as it was, its question asked again with its options (a typo is
    not a way out of what the person was doing)."""
    if known:
        note = ctx.t("The command {command} is not available to you. Type /help to see yours.",
                     command=name)
    else:
        note = ctx.t("I don't know the command {command}. Type /help to see the commands.",
                     command=name[:40])
        close = closest_command(name, [c.name for c in ROUTES.commands_for(ctx)])
        if close is not None:
            note += "\n" + ctx.t("Did you mean {command}?", command=close)
    if ctx.conversation.offered:
        return ask_again(ctx, note)
    if ctx.state.get("dialog"):
        note += "\n" + ctx.t(STILL_WAITS)
    return [Reply(note)]


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
