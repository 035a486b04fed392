"""Settings read from the environment (design.md section 4), validated up front.

A wrong value raises ConfigError with one line a person can act on; the command line turns it
into that line and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

SUPPORTED_LOCALES = ("vi", "en")
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/gocua.db"
DEFAULT_DB_POOL_SIZE = 20
DEFAULT_TELEGRAM_API_BASE = "https://api.telegram.org"
DEFAULT_ZALO_API_BASE = "https://bot-api.zaloplatforms.com"
DEFAULT_OUT_DIR = "./data/out"
FLOWS_DIR = Path(__file__).resolve().parent.parent / "conversations" / "flows"


class ConfigError(Exception):
    """A setting is missing or malformed; the message says which and why."""


class UsageError(Exception):
    """A command-line value is wrong; the message says which."""


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    locale: str = "vi"
    telegram_bot_token: str | None = None
    telegram_api_base: str = DEFAULT_TELEGRAM_API_BASE
    # The bot's @username without the "@", for invite deep links (t.me/<username>?start=CODE).
    telegram_bot_username: str | None = None
    zalo_bot_token: str | None = None
    zalo_api_base: str = DEFAULT_ZALO_API_BASE
    webhook_secret: str | None = None
    secret_key: str = "gocua-dev-key"
    # Where the webhook server is reached from outside; Zalo gets charts as URLs under it.
    public_base_url: str | None = None
    # How long a worker may take to send an update's replies before a redelivery of that update
    # takes them over (the outbox lease, handlers/pipeline.py).
    send_lease_seconds: float = 30.0
    # Where the console chat writes the photos and documents it is sent (GOCUA_OUT_DIR).
    out_dir: str = DEFAULT_OUT_DIR
    # PostgreSQL connections a worker keeps open (GOCUA_DB_POOL_SIZE): workers × machines × this
    # must stay under the server's max_connections.
    db_pool_size: int = DEFAULT_DB_POOL_SIZE

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


# The update path writes a first message's user and conversation with INSERT … RETURNING
# (db/fast_sql.py, db/repo/users.py), which SQLite has from 3.35 (March 2021). Python links the
# system's SQLite: Debian 11's is 3.34.
MIN_SQLITE = (3, 35, 0)
SQLITE_VERSION: tuple[int, int, int] = sqlite3.sqlite_version_info


def normalise_database_url(raw: str) -> str:
    """Return an async SQLAlchemy URL, accepting the plain sqlite:// and postgresql:// forms."""
    try:
        url: URL = make_url(raw)
    except ArgumentError as exc:
        raise ConfigError(
            f"GOCUA_DATABASE_URL is not a database URL: {raw!r} "
            "(expected e.g. sqlite+aiosqlite:///./data/gocua.db or "
            "postgresql+asyncpg://user@host/dbname)"
        ) from exc
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.drivername not in ("sqlite", "sqlite+aiosqlite"):
            raise ConfigError(
                f"GOCUA_DATABASE_URL: SQLite needs the aiosqlite driver, not {url.drivername!r}"
            )
        if SQLITE_VERSION < MIN_SQLITE:
            raise ConfigError(
                f"SQLite {'.'.join(map(str, SQLITE_VERSION))} is too old: GoCua needs SQLite "
                f"{'.'.join(map(str, MIN_SQLITE))} or newer (a Python built on a newer system, "
                "e.g. Debian 12 or Ubuntu 22.04), or PostgreSQL (GOCUA_DATABASE_URL)"
            )
        url = url.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        if url.drivername not in ("postgresql", "postgres", "postgresql+asyncpg"):
            raise ConfigError(
                f"GOCUA_DATABASE_URL: PostgreSQL needs the asyncpg driver, not {url.drivername!r}"
            )
        if not url.database:
            raise ConfigError("GOCUA_DATABASE_URL: the PostgreSQL URL names no database")
        url = url.set(drivername="postgresql+asyncpg")
    else:
        raise ConfigError(
            f"GOCUA_DATABASE_URL: unsupported database {backend!r}; use SQLite or PostgreSQL"
        )
    return url.render_as_string(hide_password=False)


def validate_http_url(name: str, raw: str, *, require_path: bool = False) -> str:
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http(s) URL with a host, got {raw!r}")
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ConfigError(f"{name} has a malformed port: {raw!r}") from exc
    if require_path and parts.path in ("", "/"):
        raise ConfigError(f"{name} must include a path for the bot to serve, e.g. https://host/telegram")
    return raw.rstrip("/") if not require_path else raw


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)

    def get(name: str) -> str | None:
        value = env.get(name)
        return value.strip() if value and value.strip() else None

    locale = get("GOCUA_LOCALE") or "vi"
    if locale not in SUPPORTED_LOCALES:
        raise ConfigError(f"GOCUA_LOCALE must be one of {', '.join(SUPPORTED_LOCALES)}, got {locale!r}")
    secret = get("GOCUA_WEBHOOK_SECRET")
    if secret is not None and not (8 <= len(secret) <= 256):
        raise ConfigError("GOCUA_WEBHOOK_SECRET must be 8 to 256 characters long")
    if secret is not None and not all(c.isalnum() or c in "_-" for c in secret):
        raise ConfigError("GOCUA_WEBHOOK_SECRET may contain only letters, digits, '_' and '-'")
    return Settings(
        database_url=normalise_database_url(get("GOCUA_DATABASE_URL") or DEFAULT_DATABASE_URL),
        locale=locale,
        telegram_bot_token=get("TELEGRAM_BOT_TOKEN"),
        telegram_api_base=validate_http_url(
            "TELEGRAM_API_BASE", get("TELEGRAM_API_BASE") or DEFAULT_TELEGRAM_API_BASE
        ),
        telegram_bot_username=_bot_username(get("TELEGRAM_BOT_USERNAME")),
        zalo_bot_token=get("ZALO_BOT_TOKEN"),
        zalo_api_base=validate_http_url("ZALO_API_BASE", get("ZALO_API_BASE") or DEFAULT_ZALO_API_BASE),
        webhook_secret=secret,
        secret_key=get("GOCUA_SECRET_KEY") or "gocua-dev-key",
        public_base_url=(validate_http_url("GOCUA_PUBLIC_BASE_URL", get("GOCUA_PUBLIC_BASE_URL") or "")
                         if get("GOCUA_PUBLIC_BASE_URL") else None),
        send_lease_seconds=_seconds("GOCUA_SEND_LEASE_SECONDS", get("GOCUA_SEND_LEASE_SECONDS"),
                                    default=30.0, low=1.0, high=600.0),
        out_dir=get("GOCUA_OUT_DIR") or DEFAULT_OUT_DIR,
        db_pool_size=_pool_size(get("GOCUA_DB_POOL_SIZE")),
    )


def _bot_username(raw: str | None) -> str | None:
    if raw is None:
        return None
    name = raw.removeprefix("@")
    if not (5 <= len(name) <= 32 and name.isascii() and all(c.isalnum() or c == "_" for c in name)):
        raise ConfigError(f"TELEGRAM_BOT_USERNAME must be the bot's username (5-32 letters, digits "
                          f"or '_', e.g. GoCuaBot), got {raw!r}")
    return name


def pool_options(settings: Settings) -> dict[str, Any]:
    """The engine options of `settings` for Database(): the PostgreSQL pool's size (SQLite keeps
    its own one writer connection)."""
    if make_url(settings.database_url).get_backend_name() == "sqlite":
        return {}
    return {"pool_size": settings.db_pool_size}


def _pool_size(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_DB_POOL_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= 200:
        raise ConfigError(f"GOCUA_DB_POOL_SIZE must be a whole number of connections from 1 to 200, "
                          f"got {raw!r}")
    return int(raw)


def _seconds(name: str, raw: str | None, *, default: float, low: float, high: float) -> float:
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low:g} and {high:g} seconds, got {raw!r}")
    return value
