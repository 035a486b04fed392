"""What a chat platform takes as a file, in one place, and how a channel tells the core.

The core builds an export or a chart after the update's commit (handlers/deferred.py). The
channel adapter hands `Core.handle` a `FileDelivery`: the platform's limits (checked BEFORE an
upload), the public base URL when files may be offered as a download link, and `preparing`,
which the core awaits just before a slow build, so the adapter can answer the button at once
("⏳ Preparing the file…") and show "sending a document" while the file is made.

Limits (bytes):
- Telegram Bot API: a document up to 50 MB, a photo up to 10 MB (sendDocument / sendPhoto
  "multipart/form-data" uploads).
- Zalo Bot Platform: cannot receive a file at all; a photo is sent by URL (sendPhoto `photo`,
  /work/shared/zalo.md), so a chart needs a public base URL; no documented size limit for it,
  the Telegram photo limit is assumed.
- A download link: the file is kept in the database (shared_files, any worker serves it) for
  `LINK_MAX_AGE`; `LINK_MAX` keeps that table sane.

Temporary files: an export is streamed to a file in `export_dir()`; the channel deletes it once
sent (`discard`), and `sweep` removes what a crash left behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from handlers.i18n import N_

MB = 1024 * 1024
TELEGRAM_DOCUMENT = 50 * MB
TELEGRAM_PHOTO = 10 * MB
ZALO_PHOTO = TELEGRAM_PHOTO  # assumed (by URL; not documented)
LINK_MAX = 100 * MB
LINK_MAX_AGE = 24 * 3600.0  # seconds a download link works
TEMP_MAX_AGE = 24 * 3600.0  # seconds a left-over temporary export is kept

PREPARING = N_("⏳ Preparing the file…")
TOO_BIG_LIMIT = N_("This file is too big to send here ({size} MB; at most {limit} MB).")

# kind of file ("document" | "photo"), translated "preparing" toast
Preparing = Callable[[str, str], Awaitable[None]]


@dataclass(frozen=True)
class FileLimits:
    """The largest file a platform takes, per kind; None: it cannot receive that kind."""

    document: int | None
    photo: int | None
    link: int = LINK_MAX  # the largest file offered by link (with a public base URL)

    def of(self, kind: str) -> int | None:
        return self.photo if kind == "photo" else self.document


TELEGRAM = FileLimits(document=TELEGRAM_DOCUMENT, photo=TELEGRAM_PHOTO)
ZALO = FileLimits(document=None, photo=ZALO_PHOTO)
UNLIMITED = FileLimits(document=None, photo=None)  # see FileDelivery.unlimited


@dataclass(frozen=True)
class FileDelivery:
    """What a channel tells the core about files (see the module's doc)."""

    limits: FileLimits = UNLIMITED
    public_base: str | None = None  # GOCUA_PUBLIC_BASE_URL: files may go as download links
    preparing: Preparing | None = None
    # No size limit at all (the console, tests): every file is sent as it is.
    unlimited: bool = False

    def fits(self, kind: str, size: int) -> bool:
        if self.unlimited:
            return True
        limit = self.limits.of(kind)
        return limit is not None and size <= limit

    def can_link(self, size: int) -> bool:
        return self.public_base is not None and size <= self.limits.link

    def can_receive(self, kind: str) -> bool:
        """Whether a file of `kind` can reach this chat at all (sent, or as a link)."""
        return self.unlimited or self.limits.of(kind) is not None or self.public_base is not None


ANYTHING = FileDelivery(unlimited=True)  # Core.handle's default: the console and older callers


EXPORT_DIR: Path | None = None  # None: "gocua-exports" in the system's temporary folder (tests set one)


def export_dir() -> Path:
    """Where exports are written while they are built and sent."""
    path = EXPORT_DIR or Path(tempfile.gettempdir()) / f"gocua-exports-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    if path.stat().st_uid != os.getuid():  # a shared /tmp: someone else's folder is not used
        raise PermissionError(f"{path} belongs to another user")
    return path


def discard(path: str | None) -> None:
    """Delete a temporary export (sent, or no longer needed)."""
    if path is not None:
        with contextlib.suppress(OSError):
            os.unlink(path)


def sweep(max_age: float = TEMP_MAX_AGE) -> int:
    """Delete temporary exports older than `max_age` seconds (left by a crash or an unsent
    reply); returns how many."""
    removed, cutoff = 0, time.time() - max_age
    for entry in os.scandir(export_dir()):
        with contextlib.suppress(OSError):
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
    return removed


def megabytes(size: int) -> str:
    """A size as people read it: "387" (MB, rounded up; at least 1)."""
    return str(max(1, -(-size // MB)))
