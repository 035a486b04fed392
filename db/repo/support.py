"""Support requests (a resident asks for a visit) and FAQ misses."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Area, FaqMiss, Household, Identity, Membership, Resident, SupportRequest, User
from db.repo.areas import within


async def household_of_user(session: AsyncSession, user_id: int) -> Household | None:
    """The household a resident belongs to, if a volunteer linked them as a member."""
    return await session.scalar(
        select(Household).join(Resident, Resident.household_id == Household.id)
        .where(Resident.user_id == user_id).limit(1)
    )


async def volunteers_covering(session: AsyncSession, area: Area) -> list[int]:
    """Users with a volunteer (or leader) role in the area or an area above it."""
    parts = area.code.split(".")
    ancestors = [".".join(parts[: i + 1]) for i in range(len(parts))]
    rows = await session.scalars(
        select(Membership.user_id).join(Area, Area.id == Membership.area_id)
        .where(Area.code.in_(ancestors), Membership.role == "volunteer").distinct()
    )
    return list(rows)


async def addresses_of(session: AsyncSession, user_ids: list[int]) -> list[tuple[int, str, str]]:
    """(user id, channel, chat id) of every channel account of these users (direct chats)."""
    if not user_ids:
        return []
    rows = await session.execute(
        select(Identity.user_id, Identity.channel, Identity.external_id)
        .where(Identity.user_id.in_(user_ids)).order_by(Identity.user_id, Identity.id)
    )
    return [(uid, channel, external) for uid, channel, external in rows]


async def take_request(session: AsyncSession, request_id: int, volunteer_id: int, now: datetime) -> bool:
    """Assign an open request; of two volunteers pressing at once, exactly one gets it."""
    result = cast(CursorResult[Any], await session.execute(
        update(SupportRequest)
        .where(SupportRequest.id == request_id, SupportRequest.status == "open")
        .values(status="taken", volunteer_id=volunteer_id, taken_at=now)
    ))  # an UPDATE's result is a CursorResult (execute is typed for any statement)
    return result.rowcount == 1


async def requests_for_volunteer(session: AsyncSession, user_id: int, area_codes: list[str]) -> list[
    tuple[SupportRequest, str | None, str]
]:
    """Open requests in the volunteer's areas and the ones they took, oldest first."""
    conditions = [SupportRequest.volunteer_id == user_id]
    if area_codes:
        conditions.append(
            (SupportRequest.status == "open") & or_(*(within(Area.code, c) for c in area_codes))
        )
    rows = await session.execute(
        select(SupportRequest, Area.name, User.display_name)
        .outerjoin(Area, Area.id == SupportRequest.area_id)
        .join(User, User.id == SupportRequest.requester_id)
        .where(SupportRequest.status.in_(("open", "taken")), or_(*conditions))
        .order_by(SupportRequest.created_at)
        .limit(30)
    )
    return [(req, area_name, name) for req, area_name, name in rows]


def record_miss(
    session: AsyncSession, *, question: str, normalized: str, locale: str, kind: str,
    faq_id: str | None, user_id: int | None, area_id: int | None, now: datetime,
) -> None:
    session.add(FaqMiss(
        question=question[:1000], normalized=normalized[:1000], locale=locale, kind=kind, faq_id=faq_id,
        user_id=user_id, area_id=area_id, created_at=now,
    ))


async def top_misses(
    session: AsyncSession, area_codes: list[str] | None, *, limit: int = 15, since: datetime | None = None
) -> list[tuple[str, int, str]]:
    """The most frequent unanswered questions (normalised), with one original wording each.

    `area_codes` None means everywhere; otherwise misses in those areas and those whose asker's
    area is unknown (residents who never said where they live)."""
    stmt = (
        select(FaqMiss.normalized, func.count(), func.min(FaqMiss.question))
        .outerjoin(Area, Area.id == FaqMiss.area_id)
        .group_by(FaqMiss.normalized)
        .order_by(func.count().desc(), FaqMiss.normalized)
        .limit(limit)
    )
    if area_codes is not None:
        stmt = stmt.where(or_(FaqMiss.area_id.is_(None), *(within(Area.code, c) for c in area_codes)))
    if since is not None:
        stmt = stmt.where(FaqMiss.created_at >= since)
    rows = await session.execute(stmt)
    return [(normalized, count, example) for normalized, count, example in rows]


OPEN_STATUSES = ("open", "taken")


async def open_requests_of(session: AsyncSession, user_id: int) -> list[SupportRequest]:
    """The resident's requests not closed yet (open or taken), oldest first."""
    return list(await session.scalars(
        select(SupportRequest)
        .where(SupportRequest.requester_id == user_id, SupportRequest.status.in_(OPEN_STATUSES))
        .order_by(SupportRequest.created_at, SupportRequest.id)
    ))


async def requests_made_since(session: AsyncSession, user_id: int, since: datetime) -> int:
    """How many requests the user made after `since` (flood control)."""
    return int(await session.scalar(
        select(func.count()).select_from(SupportRequest)
        .where(SupportRequest.requester_id == user_id, SupportRequest.created_at > since)
    ) or 0)
