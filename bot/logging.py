"""structlog set-up: key=value lines on stderr; the console chat keeps stdout for the chat.

No log line holds a full citizen ID: every text value of GoCua's lines (tracebacks included)
and every line of the libraries' own loggers is masked as free text is (conversations/redact.py),
whatever a handler, an error message or a library quoted. The platforms' ids (chat, sender and
update ids, a bot's id) are kept as they are: they are not citizen IDs and a log without them
would not serve.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from conversations.redact import redact_citizen_ids

KEPT_AS_IS = frozenset({"timestamp", "level", "chat_id", "sender_id", "update_id", "bot_id", "to",
                        "notice_id", "pid"})


def mask_citizen_ids(logger: Any, method: str,
                     event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: citizen IDs masked in every text value but the platforms' ids."""
    for key, value in event_dict.items():
        if isinstance(value, str) and key not in KEPT_AS_IS:
            event_dict[key] = redact_citizen_ids(value)
    return event_dict


class MaskingFormatter(logging.Formatter):
    """The standard library's lines (aiogram, aiohttp, asyncio …), citizen IDs masked."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_citizen_ids(super().format(record))


def configure_logging(level: str = "INFO") -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    logging.basicConfig(stream=sys.stderr, level=numeric, format="%(message)s", force=True)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(MaskingFormatter("%(message)s"))
    # aiosqlite logs every statement with its parameters at DEBUG: names, phone numbers and
    # whatever else is written would end up in the logs.
    for noisy in ("aiogram.event", "aiohttp.access", "alembic", "aiosqlite", "fontTools"):
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_citizen_ids,
            structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
