"""The trained FAQ index, kept on disk between processes.

Training the shipped index (TF-IDF, naive Bayes and five perceptrons over some 1,700 residents'
questions and letters) takes about two seconds of CPU; every `gocua run` process and worker, every
`gocua chat` and `gocua faq ask` pays it at start. Loading the same index from a file takes a
tenth of that. The file's name is a hash of everything the index is made from: the FAQ, questions
and letters files (conversations/faq/**.yaml), the matcher's code (conversations/*.py) and the
Python and numpy versions. A change to any of them names another file, so a stale index is never
loaded; writing a new file removes all but the three newest.

Where: $GOCUA_CACHE_DIR, else $XDG_CACHE_HOME/gocua, else ~/.cache/gocua. GOCUA_CACHE_DIR=off
turns the cache off (the index is then trained in every process, as before).

The file is a pickle, so it is trusted like the code: it is read only from a directory and a file
owned by the user running GoCua that nobody else can write to (the file is checked once opened,
without following a symbolic link), and written atomically (a temporary file renamed into place),
so a crash mid-write leaves no half file (a temporary file left by a killed process is removed
after an hour). A file that cannot be read (truncated, another format, permissions) is trained
anew and replaced; the cache never stops GoCua from answering. A service user without a usable
home directory sets GOCUA_CACHE_DIR (or XDG_CACHE_HOME) to a folder of its own.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import platform
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

import numpy as np
import structlog

log = structlog.get_logger("gocua.faq_cache")

CONVERSATIONS = Path(__file__).resolve().parent
OFF = "off"
KEEP = 3  # index files kept: the current one and two others (another checkout, the last version)
ABANDONED_SECONDS = 3600  # a temporary file this old was left by a process killed mid-write
_T = TypeVar("_T")


def cache_directory(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where the index is kept, or None when the cache is off (GOCUA_CACHE_DIR=off) or there is
    no folder to keep it in (no GOCUA_CACHE_DIR, XDG_CACHE_HOME nor home directory)."""
    chosen = environ.get("GOCUA_CACHE_DIR", "").strip()
    if chosen.lower() == OFF:
        return None
    if chosen:
        return Path(chosen)
    xdg = environ.get("XDG_CACHE_HOME", "").strip()
    if xdg:
        return Path(xdg) / "gocua"
    try:
        return Path.home() / ".cache" / "gocua"
    except RuntimeError:  # no HOME and no passwd entry (a container's bare uid)
        return None


def shipped_inputs() -> list[Path]:
    """What the shipped index is made from: the FAQ's YAML files and the matcher's code."""
    return sorted([*(CONVERSATIONS / "faq").rglob("*.yaml"), *CONVERSATIONS.glob("*.py")])


def key_of(inputs: Iterable[Path]) -> str:
    """A hash of the inputs' paths (below conversations/ where they are) and bytes, and of the
    Python and numpy versions: a file moved from questions/ to letters/ trains otherwise."""
    digest = hashlib.sha256(f"{platform.python_version()} numpy {np.__version__}".encode())
    for path in inputs:
        try:
            name = path.resolve().relative_to(CONVERSATIONS).as_posix()
        except ValueError:
            name = path.name
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def _private(info: os.stat_result, kind: Callable[[int], bool]) -> bool:
    """Of that kind, owned by this user and writable by nobody else."""
    return kind(info.st_mode) and info.st_uid == os.getuid() \
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _private_folder(folder: Path) -> bool:
    return _private(folder.stat(), stat.S_ISDIR)


def _load(path: Path, kind: type[_T]) -> _T | None:
    try:
        if not _private_folder(path.parent):
            log.warning("faq_cache_not_private", path=str(path.parent))
            return None
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(descriptor, "rb") as file:
            if not _private(os.fstat(file.fileno()), stat.S_ISREG):  # the file opened, not its name
                log.warning("faq_cache_not_private", path=str(path))
                return None
            found = pickle.load(file)  # our own file, checked private above
    except FileNotFoundError:
        return None
    except Exception as exc:  # a bad file is trained anew, never fatal
        log.warning("faq_cache_unreadable", path=str(path), error=repr(exc))
        return None
    return found if isinstance(found, kind) else None


def _store(path: Path, value: object) -> None:
    """Write `value` to `path` atomically, then `_prune` its folder."""
    temporary: Path | None = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private_folder(path.parent):
            log.warning("faq_cache_not_private", path=str(path.parent))
            return
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=".faq-", delete=False) as file:
            temporary = Path(file.name)
            pickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        temporary = None
    except Exception as exc:  # an index that cannot be kept is only trained again next time
        log.warning("faq_cache_not_written", path=str(path), error=repr(exc))
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
    _prune(path.parent)


def _prune(folder: Path) -> None:
    """Keep the KEEP newest index files; remove temporary files older than ABANDONED_SECONDS.
    Another process pruning at the same time is no error."""
    def modified(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    try:
        for stale in sorted(folder.glob("faq-*.pickle"), key=modified, reverse=True)[KEEP:]:
            stale.unlink(missing_ok=True)
        for abandoned in folder.glob(".faq-*"):
            if modified(abandoned) < time.time() - ABANDONED_SECONDS:
                abandoned.unlink(missing_ok=True)
    except OSError as exc:
        log.info("faq_cache_not_pruned", path=str(folder), error=repr(exc))


def load_or_build(build: Callable[[], _T], kind: type[_T], inputs: Iterable[Path],
                  directory: Path | None) -> _T:
    """The value kept under the inputs' key in `directory`, else `build()` (then kept there).
    `directory` None: always `build()`. Nothing about the cache makes this fail but `build()`
    itself. A folder given through a symbolic link (systemd's CacheDirectory= with
    DynamicUser=) is checked and used where the link leads."""
    if directory is None:
        return build()
    try:
        path = directory.resolve() / f"faq-{key_of(inputs)}.pickle"
    except (OSError, RuntimeError) as exc:
        log.warning("faq_cache_unusable", path=str(directory), error=repr(exc))
        return build()
    found = _load(path, kind)
    if found is not None:
        return found
    built = build()
    _store(path, built)
    return built
