"""Replies made after the update's commit: `Reply(deferred={"kind": K, ...})`.

A handler that would build something heavy (an export of thousands of rows) inside the
update's transaction would hold its write lock all that while (SQLite: every other chat waits).
It returns a deferred reply instead; the core commits, then `render` turns it into the real
reply with the renderer registered for K, reading through the read-only reports session; the
deferred reply's own buttons (offered to numbered channels at commit) are kept. The
outbox keeps the small description, so a redelivery whose replies were never sent makes it
again. A renderer that fails gives a translated apology, never an exception.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.context import Services
from handlers.i18n import N_, translator
from handlers.types import Reply

log = structlog.get_logger("gocua.deferred")

RENDER_FAILED = N_("Sorry, that could not be prepared just now. Please try again in a moment.")


@dataclass(frozen=True)
class RenderContext:
    services: Services
    # A short write transaction of its own (an audit entry), after the update's commit.
    transaction: Callable[[], AbstractAsyncContextManager[AsyncSession]]

    @property
    def reader(self) -> Callable[[], AbstractAsyncContextManager[AsyncSession]]:
        """Where renderers read: the read-only reports session when the app has one."""
        return self.services.read_session or self.transaction


Renderer = Callable[[RenderContext, dict[str, Any]], Awaitable[Reply]]
RENDERERS: dict[str, Renderer] = {}


def renderer(kind: str) -> Callable[[Renderer], Renderer]:
    def register(fn: Renderer) -> Renderer:
        RENDERERS[kind] = fn
        return fn

    return register


async def render(ctx: RenderContext, replies: list[Reply]) -> list[Reply]:
    """`replies` with every deferred one made (the others as they are)."""
    if not any(r.deferred for r in replies):
        return replies
    return [await _render_one(ctx, r) if r.deferred else r for r in replies]


async def _render_one(ctx: RenderContext, reply: Reply) -> Reply:
    spec = reply.deferred or {}
    make = RENDERERS.get(str(spec.get("kind")))
    try:
        if make is None:
            raise LookupError(f"no renderer for {spec.get('kind')!r}")
        made = await make(ctx, spec)
    except Exception:
        log.exception("deferred.render_failed", kind=spec.get("kind"))
        return Reply(translator(spec.get("locale"))(RENDER_FAILED), to=reply.to)
    # The deferred reply's buttons are what was offered at commit (numbered channels map "1" to
    # them), so they are the ones shown.
    return replace(made, buttons=reply.buttons or made.buttons, columns=reply.columns,
                   to=reply.to or made.to)
