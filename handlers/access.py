"""Who may see and change what: checked on the server for every button, never trusted."""

from __future__ import annotations

from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from conversations.redact import redact_citizen_ids
from db.models import Area, Household
from db.repo.audit import audit
from handlers.buttons import button_id
from handlers.context import Context
from handlers.router import LEADERS, STAFF

__all__ = ["button_id", "can_reassign", "can_work_on", "covers", "refuse", "row_of_button"]

T = TypeVar("T")


async def row_of_button(session: AsyncSession, model: type[T], raw: str) -> T | None:
    """The row of `model` whose id button data names (`button_id`), or None."""
    row_id = button_id(raw)
    return await session.get(model, row_id) if row_id is not None else None


def covers(ctx: Context, area_code: str, roles: tuple[str, ...] = STAFF) -> bool:
    return any(g.role in roles and g.covers(area_code) for g in ctx.grants)


def can_work_on(ctx: Context, household: Household, area: Area) -> bool:
    """The assigned volunteer, or staff of the household's area (they cover for each other)."""
    return household.volunteer_id == ctx.user.id or covers(ctx, area.code, STAFF)


def can_reassign(ctx: Context, area: Area) -> bool:
    return covers(ctx, area.code, LEADERS)


def refuse(ctx: Context, action: str, target: str) -> None:
    """Record a refused action (a forged or foreign button) in the audit log; a forged button's
    data is anyone's text, so a citizen ID in it is masked."""
    audit(ctx.session, ctx.now, ctx.user.id, "access.denied", redact_citizen_ids(target),
          {"attempted": redact_citizen_ids(action)[:100], "channel": ctx.incoming.channel})
