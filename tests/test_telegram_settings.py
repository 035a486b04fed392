"""`gocua run telegram --workers N` checks its token in the parent without aiogram
(bot/channels/telegram_settings.py): the check must accept exactly what aiogram accepts, or a
group would start workers that all fail, or refuse a token that works."""

from __future__ import annotations

import subprocess
import sys

import pytest
from aiogram.utils.token import TokenValidationError, validate_token
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.telegram_settings import MALFORMED, NOT_SET, check_telegram_token
from bot.config import ConfigError
from tests.process_env import clean_env
from tests.scale_harness import ROOT

TOKENS = st.one_of(
    st.text(),
    st.builds(lambda a, sep, b: f"{a}{sep}{b}", st.text("0123456789٣ ", max_size=12),
              st.sampled_from([":", "", "::", " :"]), st.text(max_size=40)),
    st.builds(lambda n, s: f"{n}:{s}", st.integers(0, 10**12), st.from_regex(r"[\w-]{1,40}", fullmatch=True)),
)


def _aiogram_accepts(token: str) -> bool:
    validate_token.cache_clear()
    try:
        return validate_token(token)
    except TokenValidationError:
        return False


@given(TOKENS)
def test_the_parent_accepts_exactly_the_tokens_aiogram_accepts(token: str) -> None:
    try:
        ours = check_telegram_token(token) == token
    except ConfigError as exc:
        assert str(exc) in (MALFORMED, NOT_SET)
        ours = False
    assert ours == _aiogram_accepts(token)


@pytest.mark.parametrize(("token", "message"), [(None, NOT_SET), ("", NOT_SET), ("123:", MALFORMED),
                                                 ("abc:def", MALFORMED), ("12 3:x", MALFORMED)])
def test_a_missing_or_malformed_token_is_named(token: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN") as caught:
        check_telegram_token(token)
    assert str(caught.value) == message


def test_the_settings_check_does_not_import_aiogram() -> None:
    """What a worker group's parent imports (bot/cli.py SETTINGS_CHECKS)."""
    code = ("import sys, bot.cli, bot.workers, bot.channels.telegram_settings, bot.channels.zalo; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'aiogram'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean_env(), capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
