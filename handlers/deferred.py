"""Replies made after the update's commit: `Reply(deferred={"kind": K, ...})`.

A handler that would build something heavy (an export of thousands of rows) inside the
update's transaction would hold its write lock all that while (SQLite: every other chat waits).
It returns a deferred reply instead; the core commits, then `render` turns it into the real
reply with the renderer registered for K, reading through the read-only reports session; the
deferred reply's own buttons (offered to numbered channels at commit) are kept. The
outbox keeps the small description, so a redelivery whose replies were never sent makes it
again. A renderer that fails gives a translated apology, never an exception.

A renderer registered with `file=` ("document" | "photo") makes a file: before it runs, the
channel's `FileDelivery.preparing` is awaited (handlers/file_limits.py: the channel answers the
button at once and shows "sending a document" while the file is built), and a chat that cannot
receive that kind of file at all (Zalo without a public base URL) is told how to get it instead,
with the same options, and nothing is built. The renderer reads the platform's limits from
`RenderContext.delivery`; the buttons it returns (alternatives to a file over the limit) are
shown before the deferred reply's own on a channel with real buttons.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Services
from handlers.file_limits import ANYTHING, PREPARING, TOO_BIG_LIMIT, FileDelivery, discard, megabytes
from handlers.i18n import N_, translator
from handlers.options import NUMBERED_CHANNELS
from handlers.types import Reply

log = structlog.get_logger("gocua.deferred")

RENDER_FAILED = N_("Sorry, that could not be prepared just now. Please try again in a moment.")


@dataclass(frozen=True)
class RenderContext:
    services: Services
    # A short write transaction of its own (an audit entry), after the update's commit.
    transaction: Callable[[], AbstractAsyncContextManager[AsyncSession]]
    delivery: FileDelivery = ANYTHING  # the channel's limits and "preparing" (Core.handle's)

    @property
    def reader(self) -> Callable[[], AbstractAsyncContextManager[AsyncSession]]:
        """Where renderers read: the read-only reports session when the app has one."""
        return self.services.read_session or self.transaction


Renderer = Callable[[RenderContext, dict[str, Any]], Awaitable[Reply]]
RENDERERS: dict[str, Renderer] = {}
FILE_KINDS: dict[str, str] = {}  # renderer kind → the kind of file it makes

NO_FILES_HERE = N_("Files and charts cannot be sent in this chat. To get them, open GoCua on "
                   "Telegram, or ask an administrator to make the file for you.")


def renderer(kind: str, *, file: str | None = None) -> Callable[[Renderer], Renderer]:
    def register(fn: Renderer) -> Renderer:
        RENDERERS[kind] = fn
        if file is not None:
            FILE_KINDS[kind] = file
        return fn

    return register


async def render(ctx: RenderContext, replies: list[Reply], *,
                 delivery: FileDelivery | None = None) -> list[Reply]:
    """`replies` with every deferred one made (the others as they are), for a channel that
    takes files as `delivery` says (default: the context's)."""
    if not any(r.deferred for r in replies):
        return replies
    if delivery is not None:
        ctx = replace(ctx, delivery=delivery)
    return [await _render_one(ctx, r) if r.deferred else r for r in replies]


def _within_limits(ctx: RenderContext, made: Reply, locale: str) -> Reply:
    """`made`, or its text with a note instead of an attachment the chat would refuse (checked
    before any upload; an export's renderer offers alternatives itself, handlers/exports.py)."""
    file = made.attachment
    delivery = ctx.delivery
    if file is None or delivery.fits(file.kind, size := file.size):
        return made
    if file.kind == "document" and delivery.limits.document is None and delivery.public_base:
        return made  # the channel offers it by link itself (Zalo)
    discard(file.path)
    limit = delivery.limits.of(file.kind)
    t = translator(locale)
    note = (t(TOO_BIG_LIMIT, size=megabytes(size), limit=megabytes(limit)) if limit is not None
            else t(NO_FILES_HERE))
    return replace(made, text="\n\n".join(x for x in (made.text, note) if x), attachment=None)


async def _render_one(ctx: RenderContext, reply: Reply) -> Reply:
    spec = reply.deferred or {}
    kind = str(spec.get("kind"))
    make = RENDERERS.get(kind)
    file_kind = FILE_KINDS.get(kind)
    if file_kind is not None:
        t = translator(spec.get("locale"))
        if not ctx.delivery.can_receive(file_kind):
            return Reply(t(NO_FILES_HERE), buttons=reply.buttons, columns=reply.columns, to=reply.to)
        if ctx.delivery.preparing is not None:
            try:
                await ctx.delivery.preparing(file_kind, t(PREPARING))
            except Exception:  # a toast that could not be shown does not stop the file
                log.warning("deferred.preparing_failed", kind=kind, exc_info=True)
    try:
        if make is None:
            raise LookupError(f"no renderer for {kind!r}")
        made = await make(ctx, spec)
    except Exception:
        log.exception("deferred.render_failed", kind=spec.get("kind"))
        return Reply(translator(spec.get("locale"))(RENDER_FAILED), to=reply.to)
    made = _within_limits(ctx, made, str(spec.get("locale")))
    # The deferred reply's buttons are what was offered at commit (numbered channels map "1" to
    # them), so they are the ones shown; a channel with real buttons also gets the renderer's
    # own first (alternatives to a file too big to send).
    buttons = reply.buttons or made.buttons
    if made.buttons and reply.buttons and spec.get("channel") not in NUMBERED_CHANNELS:
        buttons = made.buttons + reply.buttons
    return replace(made, buttons=buttons, columns=reply.columns if buttons == reply.buttons else made.columns,
                   to=reply.to or made.to)
