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
owned by the user running GoCua that nobody else can write to, and written atomically (a
temporary file renamed into place), so a crash mid-write leaves no half file. A file that cannot be
read (truncated, another format, permissions) is trained anew and replaced; the cache never stops
GoCua from answering.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import platform
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import numpy as np
import structlog

log = structlog.get_logger("gocua.faq_cache")

CONVERSATIONS = Path(__file__).resolve().parent
OFF = "off"
KEEP = 3  # index files kept: the current one and two others (another checkout, the last version)
_T = TypeVar("_T")


def cache_directory(environ: dict[str, str] | os._Environ[str] = os.environ) -> Path | None:
    """Where the index is kept, or None when the cache is off (GOCUA_CACHE_DIR=off)."""
    chosen = environ.get("GOCUA_CACHE_DIR", "").strip()
    if chosen.lower() == OFF:
        return None
    if chosen:
        return Path(chosen)
    xdg = environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "gocua"


def shipped_inputs() -> list[Path]:
    """What the shipped index is made from: the FAQ's YAML files and the matcher's code."""
    return sorted([*(CONVERSATIONS / "faq").rglob("*.yaml"), *CONVERSATIONS.glob("*.py")])


def key_of(inputs: Iterable[Path]) -> str:
    """A hash of the inputs' names and bytes and of the Python and numpy versions."""
    digest = hashlib.sha256(f"{platform.python_version()} numpy {np.__version__}".encode())
    for path in inputs:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def _private(path: Path) -> bool:
    """Owned by this user and writable by nobody else (a symlink is not followed)."""
    info = path.lstat()
    return (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)) \
        and info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _load(path: Path, kind: type[_T]) -> _T | None:
    try:
        if not (_private(path.parent) and _private(path)):
            log.warning("faq_cache_not_private", path=str(path))
            return None
        with path.open("rb") as file:
            found = pickle.load(file)  # our own file, checked private above
    except FileNotFoundError:
        return None
    except Exception as exc:  # a bad file is trained anew, never fatal
        log.warning("faq_cache_unreadable", path=str(path), error=repr(exc))
        return None
    return found if isinstance(found, kind) else None


def _store(path: Path, value: object) -> None:
    """Write `value` to `path` atomically; then keep only the KEEP newest index files."""
    temporary: Path | None = None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(path.parent):
            log.warning("faq_cache_not_private", path=str(path.parent))
            return
        with tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=".faq-", delete=False) as file:
            temporary = Path(file.name)
            pickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        temporary = None
        older = sorted(path.parent.glob("faq-*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in older[KEEP:]:
            stale.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("faq_cache_not_written", path=str(path), error=repr(exc))
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)


def load_or_build(build: Callable[[], _T], kind: type[_T], inputs: Iterable[Path],
                  directory: Path | None) -> _T:
    """The value kept under the inputs' key in `directory`, else `build()` (then kept there).
    `directory` None: always `build()`."""
    if directory is None:
        return build()
    path = directory / f"faq-{key_of(inputs)}.pickle"
    found = _load(path, kind)
    if found is not None:
        return found
    built = build()
    _store(path, built)
    return built
