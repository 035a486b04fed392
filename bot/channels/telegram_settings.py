"""What `gocua run telegram` checks before it starts, without importing aiogram: a worker group's
parent reports a missing or malformed token and bad webhook settings once (bot/cli.py), and
importing aiogram would cost it about 4 s of CPU for nothing (its workers are forked from a fork
server that imports it, bot/workers.py). The adapter (bot/channels/telegram.py) checks the same
way, so the two cannot disagree."""

from __future__ import annotations

from typing import TypeVar

from bot.channels.runner import Channel
from bot.config import ConfigError, Settings

CHANNEL = "telegram"  # Incoming.channel, the log prefix
NOT_SET = "TELEGRAM_BOT_TOKEN is not set (get a token from @BotFather and export it)"
MALFORMED = ("TELEGRAM_BOT_TOKEN is malformed (expected digits, a colon and a secret, "
             "e.g. 123456:ABC-DEF...)")


def check_telegram_token(token: str | None) -> str:
    """The token, or a ConfigError: what aiogram's own check accepts (digits, a colon, a
    secret, no spaces), with GoCua's message."""
    if not token:
        raise ConfigError(NOT_SET)
    bot_id, colon, secret = token.partition(":")
    if not colon or not bot_id.isdigit() or not secret or any(c.isspace() for c in token):
        raise ConfigError(MALFORMED)
    return token


U = TypeVar("U")


class TelegramSettingsCheck(Channel[U]):
    """The Telegram channel as its settings see it: its name, title and checks. The adapter's
    TelegramChannel (bot/channels/telegram.py) is one of these."""

    name = CHANNEL
    title = "Telegram"

    @staticmethod
    def check_token_setting(settings: Settings) -> None:
        check_telegram_token(settings.telegram_bot_token)


check_settings = TelegramSettingsCheck.check_settings

__all__ = ["CHANNEL", "MALFORMED", "NOT_SET", "TelegramSettingsCheck", "check_settings",
           "check_telegram_token"]
