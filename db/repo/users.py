"""Users, their channel identities, conversations and roles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Area, Conversation, Identity, Membership, User

ROLE_RANK = {"resident": 0, "volunteer": 1, "leader": 2, "admin": 3}


@dataclass(frozen=True)
class RoleGrant:
    role: str
    area_id: int
    area_code: str
    area_name: str

    def covers(self, area_code: str) -> bool:
        return area_code == self.area_code or area_code.startswith(self.area_code + ".")


async def user_for_identity(
    session: AsyncSession, channel: str, external_id: str, display_name: str, now: datetime
) -> User:
    """The user behind a channel account, created as a resident on first contact."""
    user = await session.scalar(
        select(User)
        .join(Identity, Identity.user_id == User.id)
        .where(Identity.channel == channel, Identity.external_id == external_id)
    )
    if user is not None:
        return user
    user = User(display_name=(display_name or external_id)[:200], created_at=now)
    session.add(user)
    await session.flush()
    session.add(Identity(user_id=user.id, channel=channel, external_id=external_id, created_at=now))
    await session.flush()
    return user


async def conversation_for_chat(
    session: AsyncSession, channel: str, chat_id: str, user_id: int, now: datetime, *, lock: bool
) -> Conversation:
    """The chat's conversation row, locked for this transaction where the database can."""
    stmt = select(Conversation).where(Conversation.channel == channel, Conversation.chat_id == chat_id)
    if lock:
        stmt = stmt.with_for_update()
    conversation = await session.scalar(stmt)
    if conversation is None:
        conversation = Conversation(
            channel=channel, chat_id=chat_id, user_id=user_id, state={}, offered=[], version=1,
            updated_at=now,
        )
        session.add(conversation)
        await session.flush()
    return conversation


async def role_grants(session: AsyncSession, user_id: int) -> list[RoleGrant]:
    rows = await session.execute(
        select(Membership.role, Area.id, Area.code, Area.name)
        .join(Area, Area.id == Membership.area_id)
        .where(Membership.user_id == user_id)
        .order_by(Area.code)
    )
    return [RoleGrant(role, area_id, code, name) for role, area_id, code, name in rows]


def top_role(grants: list[RoleGrant]) -> str:
    return max((g.role for g in grants), key=ROLE_RANK.__getitem__, default="resident")
