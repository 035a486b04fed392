"""Linking accounts: one GoCua user behind several channel identities (Telegram and Zalo).

A user asks for a one-time code on one channel and sends it from the other; the second account's
user is merged into the first: every row that points at it (identities, roles, households, runs,
step records, requests …) is moved, found from the schema's foreign keys so that a table added
later is not forgotten, and the emptied user is deleted.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import AuditLog, Base, LinkCode, Membership, User
from db.repo.audit import audit
from db.repo.invites import CODE_ALPHABET, normalise_code

CODE_LENGTH = 8  # 31^8 ≈ 8.5e11 codes, valid for minutes, a few tries an hour: not guessable
VALIDITY = timedelta(minutes=15)
MAX_FAILURES_PER_HOUR = 5


class LinkResult(StrEnum):
    LINKED = "linked"
    UNKNOWN = "unknown"  # no such code, or used, or expired: the same answer (nothing to learn)
    SAME_USER = "same_user"
    TOO_MANY = "too_many"


async def create_link_code(session: AsyncSession, user_id: int, now: datetime) -> LinkCode:
    await session.execute(delete(LinkCode).where(LinkCode.user_id == user_id, LinkCode.used_at.is_(None)))
    code = LinkCode(code="".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH)),
                    user_id=user_id, created_at=now, expires_at=now + VALIDITY)
    session.add(code)
    await session.flush()
    return code


async def _recent_failures(session: AsyncSession, user_id: int, now: datetime) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(AuditLog).where(
            AuditLog.actor_id == user_id, AuditLog.action == "link.failed",
            AuditLog.at >= now - timedelta(hours=1),
        )
    ) or 0)


async def use_link_code(
    session: AsyncSession, raw_code: str, user: User, now: datetime, channel: str
) -> tuple[LinkResult, int | None]:
    """Join `user` (the account that sent the code) into the code's owner; (result, owner id)."""
    if await _recent_failures(session, user.id, now) >= MAX_FAILURES_PER_HOUR:
        return LinkResult.TOO_MANY, None
    code = await session.scalar(
        select(LinkCode).where(LinkCode.code == normalise_code(raw_code)).with_for_update()
    )
    if code is None or code.used_at is not None or code.expires_at <= now:
        audit(session, now, user.id, "link.failed", f"user:{user.id}", {"channel": channel})
        return LinkResult.UNKNOWN, None
    if code.user_id == user.id:
        return LinkResult.SAME_USER, code.user_id
    code.used_at = now
    keep = code.user_id
    await merge_users(session, keep=keep, drop=user.id)
    audit(session, now, keep, "identity.link", f"user:{keep}", {"merged_user": user.id, "channel": channel})
    return LinkResult.LINKED, keep


async def merge_users(session: AsyncSession, *, keep: int, drop: int) -> None:
    """Move everything of user `drop` to user `keep`, then delete `drop`."""
    # A role both hold would break memberships' unique (user, area, role): keep one.
    held = select(Membership.area_id, Membership.role).where(Membership.user_id == keep)
    await session.execute(delete(Membership).where(
        Membership.user_id == drop, tuple_(Membership.area_id, Membership.role).in_(held)
    ))
    users = Base.metadata.tables["users"]
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if any(fk.column is users.c.id for fk in column.foreign_keys):
                await session.execute(
                    update(table).where(column == drop).values({column.name: keep})
                    .execution_options(synchronize_session=False)
                )
    await session.execute(delete(User).where(User.id == drop).execution_options(synchronize_session=False))
