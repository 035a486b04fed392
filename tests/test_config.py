"""Settings from the environment: defaults, normalisation and one-line errors."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings


def test_defaults_are_sqlite_and_vietnamese():
    """With nothing set, GoCua uses ./data/gocua.db and speaks Vietnamese."""
    settings = load_settings({})
    assert settings.database_url == "sqlite+aiosqlite:///./data/gocua.db"
    assert settings.locale == "vi"
    assert settings.telegram_api_base == "https://api.telegram.org"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u:p@h:5433/db", "postgresql+asyncpg://u:p@h:5433/db"),
    ],
)
def test_plain_database_urls_get_the_async_driver(raw, expected):
    """Plain sqlite:// and postgresql:// URLs are accepted and given the async driver."""
    assert load_settings({"GOCUA_DATABASE_URL": raw}).database_url == expected


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"GOCUA_DATABASE_URL": "not a url"}, "GOCUA_DATABASE_URL"),
        ({"GOCUA_DATABASE_URL": "mysql://u@h/db"}, "unsupported database"),
        ({"GOCUA_DATABASE_URL": "postgresql+psycopg2://u@h/db"}, "asyncpg"),
        ({"GOCUA_DATABASE_URL": "postgresql://u@h"}, "names no database"),
        ({"GOCUA_LOCALE": "fr"}, "GOCUA_LOCALE"),
        ({"TELEGRAM_API_BASE": "ftp://x"}, "TELEGRAM_API_BASE"),
        ({"GOCUA_WEBHOOK_SECRET": "short"}, "8 to 256"),
        ({"GOCUA_WEBHOOK_SECRET": "has spaces in it"}, "letters, digits"),
    ],
)
def test_wrong_values_name_the_setting(env, fragment):
    """A wrong setting raises ConfigError whose one line names what is wrong."""
    with pytest.raises(ConfigError) as excinfo:
        load_settings(env)
    assert fragment in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_a_sqlite_too_old_for_returning_is_refused_at_start(monkeypatch: pytest.MonkeyPatch):
    """A Python linked with SQLite 3.34 (Debian 11) is told at start which SQLite GoCua needs and
    that PostgreSQL works, instead of failing every first message with a syntax error; the same
    URL with PostgreSQL is accepted."""
    monkeypatch.setattr("bot.config.SQLITE_VERSION", (3, 34, 1))
    with pytest.raises(ConfigError) as excinfo:
        load_settings({})
    message = str(excinfo.value)
    assert "SQLite 3.34.1 is too old" in message and "3.35.0" in message and "PostgreSQL" in message
    assert load_settings({"GOCUA_DATABASE_URL": "postgresql://u@h/db"}).database_url


def test_the_postgresql_pool_size_is_a_setting():
    """GOCUA_DB_POOL_SIZE sets the connections a worker keeps on PostgreSQL (20 by default, so
    that 4 + 2 workers fit under a server's 100 with a smaller value); SQLite gets no pool
    option, and a value that is no count names the setting."""
    from bot.config import pool_options

    postgres = {"GOCUA_DATABASE_URL": "postgresql://u@h/db"}
    assert pool_options(load_settings(postgres)) == {"pool_size": 20}
    assert pool_options(load_settings({**postgres, "GOCUA_DB_POOL_SIZE": "12"})) == {"pool_size": 12}
    assert pool_options(load_settings({"GOCUA_DB_POOL_SIZE": "12"})) == {}
    for wrong in ("0", "ten", "-3", "500"):
        with pytest.raises(ConfigError, match="GOCUA_DB_POOL_SIZE"):
            load_settings({**postgres, "GOCUA_DB_POOL_SIZE": wrong})
