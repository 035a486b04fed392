"""Single-use, expiring invites that grant a role in an area and the areas below it."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Area, AuditLog, Invite, Membership

# No 0/O, 1/I/L: codes are read aloud and typed on phones.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
DEFAULT_VALIDITY = timedelta(days=7)


class ClaimResult(StrEnum):
    GRANTED = "granted"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    ALREADY_HELD = "already_held"


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(raw: str) -> str:
    return "".join(ch for ch in raw.strip().upper() if ch.isalnum())[:40]


async def create_invite(
    session: AsyncSession,
    *,
    role: str,
    area: Area,
    now: datetime,
    validity: timedelta = DEFAULT_VALIDITY,
    created_by: int | None = None,
) -> Invite:
    invite = Invite(
        code=new_code(), role=role, area_id=area.id, created_at=now, expires_at=now + validity,
        created_by=created_by,
    )
    session.add(invite)
    session.add(
        AuditLog(
            at=now, actor_id=created_by, action="invite.create", target=f"area:{area.code}",
            details={"role": role, "code": invite.code, "expires_at": invite.expires_at.isoformat()},
        )
    )
    await session.flush()
    return invite


async def claim_invite(
    session: AsyncSession, raw_code: str, user_id: int, now: datetime
) -> tuple[ClaimResult, Invite | None, Area | None]:
    code = normalise_code(raw_code)
    invite = await session.scalar(select(Invite).where(Invite.code == code)) if code else None
    if invite is None:
        return ClaimResult.UNKNOWN, None, None
    area = await session.get(Area, invite.area_id)
    if invite.used_at is not None:
        session.add(
            AuditLog(
                at=now, actor_id=user_id, action="invite.replay", target=f"invite:{code}",
                details={"used_by": invite.used_by},
            )
        )
        return ClaimResult.USED, invite, area
    if invite.expires_at <= now:
        session.add(
            AuditLog(
                at=now, actor_id=user_id, action="invite.expired", target=f"invite:{code}",
                details={"expired_at": invite.expires_at.isoformat()},
            )
        )
        return ClaimResult.EXPIRED, invite, area
    held = await session.scalar(
        select(Membership.id).where(
            Membership.user_id == user_id, Membership.area_id == invite.area_id,
            Membership.role == invite.role,
        )
    )
    # Mark used with a guarded UPDATE: of two simultaneous claims only one changes the row.
    claimed = await session.execute(
        update(Invite)
        .where(Invite.code == code, Invite.used_at.is_(None))
        .values(used_at=now, used_by=user_id)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return ClaimResult.USED, invite, area
    if held is not None:
        return ClaimResult.ALREADY_HELD, invite, area
    session.add(
        Membership(user_id=user_id, area_id=invite.area_id, role=invite.role, granted_at=now,
                   invite_code=code)
    )
    session.add(
        AuditLog(
            at=now, actor_id=user_id, action="role.grant", target=f"area:{area.code if area else '?'}",
            details={"role": invite.role, "invite": code},
        )
    )
    await session.flush()
    return ClaimResult.GRANTED, invite, area
