"""Single-use, expiring invites that grant a role in an area and the areas below it.

Guessing is made hopeless (README, "Invites"): codes are 12 symbols of 31 (about 7.9e17 codes),
every failed try is counted in `invite_attempts` and audited, a sender with MAX_WRONG_PER_HOUR
wrong codes within an hour is held off for HOLD_OFF (even the right code waits), and past
GLOBAL_WRONG_PER_MINUTE wrong codes a minute from everyone no code is looked at until the minute
has passed. Everything is counted in the database, so every worker holds the same limits.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Area, Invite, InviteAttempt, Membership
from db.repo.audit import audit

# No 0/O, 1/I/L: codes are read aloud and typed on phones.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 12  # shown in groups of CODE_GROUP: ABCD-EFGH-JKMN
CODE_GROUP = 4
DEFAULT_VALIDITY = timedelta(days=7)

MAX_WRONG_PER_HOUR = 5  # wrong codes of one sender within LOCKOUT_WINDOW before a hold-off
LOCKOUT_WINDOW = timedelta(hours=1)
HOLD_OFF = timedelta(hours=1)
GLOBAL_WRONG_PER_MINUTE = 30  # wrong codes a minute, from everyone, before no code is looked at
GLOBAL_WINDOW = timedelta(minutes=1)


class ClaimResult(StrEnum):
    GRANTED = "granted"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    ALREADY_HELD = "already_held"
    HELD_OFF = "held_off"  # this sender tried too many wrong codes: wait until `retry_at`
    BUSY = "busy"  # too many wrong codes from everyone this minute: wait until `retry_at`


WRONG = (ClaimResult.UNKNOWN, ClaimResult.USED, ClaimResult.EXPIRED)


@dataclass(frozen=True)
class Claim:
    result: ClaimResult
    invite: Invite | None = None
    area: Area | None = None
    retry_at: datetime | None = None  # HELD_OFF and BUSY: when a code is looked at again


def new_code() -> str:
    """A fresh code in its grouped form, e.g. `ABCD-EFGH-JKMN` (stored and shown so)."""
    return _grouped("".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH)))


def normalise_code(raw: str) -> str:
    """What a person typed as the stored code: any case, with or without dashes or spaces.
    Codes of the current length come back grouped; shorter ones (older invites, /link codes)
    as typed, letters and digits only."""
    plain = "".join(ch for ch in raw.strip().upper() if ch.isalnum())[:40]
    return _grouped(plain) if len(plain) == CODE_LENGTH else plain


def _grouped(plain: str) -> str:
    return "-".join(plain[i:i + CODE_GROUP] for i in range(0, len(plain), CODE_GROUP))


def held_until(wrong_times: list[datetime]) -> datetime | None:
    """When a sender whose wrong codes came at `wrong_times` may try again, or None if never
    held off: MAX_WRONG_PER_HOUR wrong codes within LOCKOUT_WINDOW hold the sender off for
    HOLD_OFF from the last of them (the latest such hold counts)."""
    times = sorted(wrong_times, reverse=True)
    n = MAX_WRONG_PER_HOUR
    for i in range(len(times) - n + 1):
        if times[i] - times[i + n - 1] < LOCKOUT_WINDOW:
            return times[i] + HOLD_OFF
    return None


def guess_odds(codes_alive: int, days: float = 7.0) -> float:
    """An upper bound on the chance that guessing at the global ceiling for `days` hits one of
    `codes_alive` valid codes (each try hits at most one: tries × codes / all codes)."""
    tries = GLOBAL_WRONG_PER_MINUTE * 60 * 24 * days
    return tries * codes_alive / len(CODE_ALPHABET) ** CODE_LENGTH


async def _wrong_times(session: AsyncSession, user_id: int, now: datetime) -> list[datetime]:
    """The sender's wrong codes that can still matter for a hold-off (the last two hours)."""
    return list(await session.scalars(
        select(InviteAttempt.at)
        .where(InviteAttempt.user_id == user_id, InviteAttempt.at > now - LOCKOUT_WINDOW - HOLD_OFF,
               InviteAttempt.outcome == "wrong")
        .order_by(InviteAttempt.at.desc()).limit(50)
    ))


async def wrong_codes_everywhere(session: AsyncSession, now: datetime) -> int:
    """Wrong codes from everyone within the last GLOBAL_WINDOW (up to the ceiling)."""
    recent = (select(InviteAttempt.id)
              .where(InviteAttempt.outcome == "wrong", InviteAttempt.at > now - GLOBAL_WINDOW)
              .limit(GLOBAL_WRONG_PER_MINUTE).subquery())
    return int(await session.scalar(select(func.count()).select_from(recent)) or 0)


async def _first_wrong_in_window(session: AsyncSession, now: datetime) -> datetime:
    first = await session.scalar(
        select(func.min(InviteAttempt.at))
        .where(InviteAttempt.outcome == "wrong", InviteAttempt.at > now - GLOBAL_WINDOW))
    return (first or now) + GLOBAL_WINDOW


def _failed(session: AsyncSession, user_id: int, now: datetime, outcome: str, action: str,
            target: str, **details: object) -> None:
    session.add(InviteAttempt(user_id=user_id, at=now, outcome=outcome))
    audit(session, now, user_id, action, target, details)


def _shown(code: str) -> str:
    """A typed code as the audit log keeps it: enough to recognise a typo of a real code, never
    a long number someone pasted (a citizen ID typed as a code)."""
    return code if len(code) <= CODE_LENGTH + 2 and sum(ch.isdigit() for ch in code) < 9 \
        else f"{code[:4]}…({len(code)})"


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
    audit(session, now, created_by, "invite.create", f"area:{area.code}",
          {"role": role, "code": invite.code, "expires_at": invite.expires_at.isoformat()})
    await session.flush()
    return invite


MAX_BATCH = 100  # invites one sheet (or one `gocua invite create --count`) makes at most


async def create_invites(
    session: AsyncSession,
    *,
    role: str,
    area: Area,
    now: datetime,
    count: int,
    validity: timedelta = DEFAULT_VALIDITY,
    created_by: int | None = None,
) -> list[Invite]:
    """`count` (1 to MAX_BATCH) invites alike, each single-use and audited like one alone."""
    if not 1 <= count <= MAX_BATCH:
        raise ValueError(f"count must be between 1 and {MAX_BATCH}")
    return [await create_invite(session, role=role, area=area, now=now, validity=validity,
                                created_by=created_by) for _ in range(count)]


def plain_code(code: str) -> str:
    """The code without its dashes, as a Telegram deep link carries it (`?start=ABCDEFGHJKMN`)."""
    return code.replace("-", "")


async def claim_invite(session: AsyncSession, raw_code: str, user_id: int, now: datetime) -> Claim:
    """Claim `raw_code` for the user, within the lockout and the global ceiling. Every outcome
    but GRANTED and ALREADY_HELD is recorded in invite_attempts and the audit log."""
    code = normalise_code(raw_code)
    until = held_until(await _wrong_times(session, user_id, now))
    if until is not None and until > now:
        _failed(session, user_id, now, "held_off", "invite.held_off", f"user:{user_id}",
                until=until.isoformat(), tried=_shown(code))
        return Claim(ClaimResult.HELD_OFF, retry_at=until)
    if await wrong_codes_everywhere(session, now) >= GLOBAL_WRONG_PER_MINUTE:
        _failed(session, user_id, now, "ceiling", "invite.ceiling", f"user:{user_id}",
                tried=_shown(code))
        return Claim(ClaimResult.BUSY, retry_at=await _first_wrong_in_window(session, now))
    invite = await session.scalar(select(Invite).where(Invite.code == code)) if code else None
    if invite is None:
        _failed(session, user_id, now, "wrong", "invite.unknown", f"user:{user_id}", tried=_shown(code))
        return Claim(ClaimResult.UNKNOWN)
    area = await session.get(Area, invite.area_id)
    if invite.used_at is not None:
        _failed(session, user_id, now, "wrong", "invite.replay", f"invite:{code}",
                used_by=invite.used_by)
        return Claim(ClaimResult.USED, invite, area)
    if invite.expires_at <= now:
        _failed(session, user_id, now, "wrong", "invite.expired", f"invite:{code}",
                expired_at=invite.expires_at.isoformat())
        return Claim(ClaimResult.EXPIRED, invite, area)
    held = await session.scalar(
        select(Membership.id).where(
            Membership.user_id == user_id, Membership.area_id == invite.area_id,
            Membership.role == invite.role,
        )
    )
    # Mark used with a guarded UPDATE: of two simultaneous claims only one changes the row.
    claimed = cast(CursorResult[Any], await session.execute(
        update(Invite)
        .where(Invite.code == code, Invite.used_at.is_(None))
        .values(used_at=now, used_by=user_id)
    ))  # an UPDATE's result is a CursorResult (execute is typed for any statement)
    if claimed.rowcount != 1:
        _failed(session, user_id, now, "wrong", "invite.replay", f"invite:{code}",
                used_by=invite.used_by)
        return Claim(ClaimResult.USED, invite, area)
    if held is not None:
        return Claim(ClaimResult.ALREADY_HELD, invite, area)
    session.add(
        Membership(user_id=user_id, area_id=invite.area_id, role=invite.role, granted_at=now,
                   invite_code=code)
    )
    audit(session, now, user_id, "role.grant", f"area:{area.code if area else '?'}",
          {"role": invite.role, "invite": code})
    await session.flush()
    return Claim(ClaimResult.GRANTED, invite, area)
