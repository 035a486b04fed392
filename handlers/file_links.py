"""Download links: a file served by the bot's HTTP server under an unguessable name, for a day.

A file is kept in the database (shared_files), so that whichever worker a fetch reaches can
serve it (bot/channels/file_store.py serves GET /files/…); the housekeeping deletes it when it
expires. Its URL is `{GOCUA_PUBLIC_BASE_URL}/files/<32 hex>/<file name>`: 128 random bits find
the file, the name is what a browser saves. Used for exports a platform cannot take (Zalo takes
no files; Telegram none over 50 MB) and, by the Zalo channel, for charts sent by URL.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from db.repo.files import put_file
from handlers.file_limits import LINK_MAX_AGE

FILE_NAME = re.compile(r"^[0-9a-f]{32}\.(png|xlsx|csv|zip|pdf)$")  # as stored
# The name a browser saves: exports (xlsx, csv, zip) and invite sheets (pdf, png).
DOWNLOAD_NAME = re.compile(r"^[\w.\-]{1,120}\.(xlsx|csv|zip|pdf|png)$", re.ASCII)
DOCUMENT_SUFFIXES = ("xlsx", "csv", "zip", "pdf", "png")
TOKEN = re.compile(r"^[0-9a-f]{32}$")
MEDIA_TYPES = {
    "png": "image/png",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv; charset=utf-8",
    "zip": "application/zip",
    "pdf": "application/pdf",
}
STORED_TYPE_MAX = 40  # characters shared_files.media_type holds; the served type comes from the suffix

Transaction = Callable[[], AbstractAsyncContextManager[AsyncSession]]


def new_token() -> str:
    return secrets.token_hex(16)


def stored_name(token: str, suffix: str) -> str:
    return f"{token}.{suffix}"


def stored_type(suffix: str) -> str:
    media_type = MEDIA_TYPES[suffix]
    return media_type if len(media_type) <= STORED_TYPE_MAX else "application/octet-stream"


def download_url(public_base: str, token: str, filename: str) -> str:
    suffix = filename.rpartition(".")[2].lower()
    shown = filename if DOWNLOAD_NAME.match(filename) else f"gocua.{suffix}"
    return f"{public_base.rstrip('/')}/files/{token}/{shown}"


async def share_file(transaction: Transaction, path: str, filename: str, public_base: str,
                     now: datetime, max_age: float = LINK_MAX_AGE) -> str:
    """Keep the file at `path` (an export: .xlsx, .csv or .zip, at most file_limits.LINK_MAX)
    for `max_age` seconds; returns its download URL."""
    suffix = filename.rpartition(".")[2].lower()
    if suffix not in ("xlsx", "csv", "zip"):
        raise ValueError(f"not an export file: {filename!r}")
    data = await asyncio.to_thread(Path(path).read_bytes)
    token = new_token()
    async with transaction() as session:
        await put_file(session, stored_name(token, suffix), data, stored_type(suffix), now,
                       now + timedelta(seconds=max_age))
    return download_url(public_base, token, filename)
