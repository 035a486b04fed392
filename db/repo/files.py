"""Files the bot serves by URL (shared_files): written by one worker, read by any."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import SharedFile


async def put_file(session: AsyncSession, name: str, content: bytes, media_type: str,
                   now: datetime, expires_at: datetime) -> None:
    await session.execute(insert(SharedFile).values(
        name=name, content=content, media_type=media_type, created_at=now, expires_at=expires_at))


async def get_file(session: AsyncSession, name: str, now: datetime) -> tuple[bytes, str] | None:
    """(content, media type) of a file that has not expired, or None."""
    row = (await session.execute(
        select(SharedFile.content, SharedFile.media_type)
        .where(SharedFile.name == name, SharedFile.expires_at > now))).first()
    return (bytes(row[0]), row[1]) if row is not None else None
