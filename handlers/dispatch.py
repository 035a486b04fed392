"""Decides which handler an update goes to."""

from __future__ import annotations

from dataclasses import replace

from handlers import router
from handlers.context import Context
from handlers.options import NUMBERED_CHANNELS, match_offered
from handlers.types import Reply

# Importing the handler modules registers their commands, payloads and dialogs.
from handlers import basic, exports, faq, flows, households, link, stats, targets, visits  # noqa: F401  isort: skip


async def dispatch(ctx: Context) -> list[Reply]:
    incoming = ctx.incoming
    t = ctx.t
    if incoming.unsupported:
        return [Reply(t("I can only read text messages. Type /help to see what I can do."))]
    payload = incoming.payload
    text = (incoming.text or "").strip()
    if payload is None and text and not text.startswith("/") and ctx.conversation.offered:
        numbered = incoming.channel in NUMBERED_CHANNELS and not ctx.state.get("expects_text")
        match = match_offered(text, ctx.conversation.offered, numbered=numbered)
        if match.payload is not None:
            payload = match.payload
            ctx.incoming = replace(incoming, payload=payload, text=None)
        elif match.out_of_range and not ctx.state.get("dialog"):
            return [router.out_of_date(ctx)]
    if payload is not None:
        return await route_payload(ctx, payload)
    if not text:
        return [Reply(t("Type /help to see what I can do."))]
    if text.startswith("/"):
        return await route_command(ctx, text)
    dialog = ctx.state.get("dialog")
    if dialog and dialog in router.DIALOGS:
        return await router.DIALOGS[dialog](ctx, text)
    return await router.TEXT_HANDLER(ctx, text)


# Payload prefixes that act on the procedure the chat is in; anything else leaves it.
RUN_PAYLOADS = frozenset({"f", "run"})


def leave_run(ctx: Context) -> None:
    """The volunteer went elsewhere: the run stays as it is (resumable from the household page),
    but typed text and /cancel no longer go to it."""
    if ctx.state.get("dialog") == "flow_run":
        ctx.set_state(None)


async def route_command(ctx: Context, text: str) -> list[Reply]:
    name, args = router.split_command(text)
    if name != "/cancel":
        leave_run(ctx)
    cmd = router.COMMANDS.get(name)
    if cmd is None:
        return [Reply(ctx.t("I don't know the command {command}. Type /help to see the commands.",
                            command=name[:40]))]
    if not router.allowed(cmd, ctx):
        return [Reply(ctx.t("The command {command} is not available to you. Type /help to see yours.",
                            command=name))]
    return await cmd.handler(ctx, args)


async def route_payload(ctx: Context, payload: str) -> list[Reply]:
    prefix, _, rest = payload.partition(":")
    if prefix not in RUN_PAYLOADS:
        leave_run(ctx)
    handler = router.PAYLOADS.get(prefix)
    if handler is None:
        return [router.out_of_date(ctx)]
    return await handler(ctx, rest)
