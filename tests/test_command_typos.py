"""A mistyped command names the command the person meant (handlers/command_typos.py)."""

from __future__ import annotations

import pytest

from handlers.command_typos import closest_command

VOLUNTEER = ["/start", "/join", "/help", "/lang", "/households", "/household", "/new", "/flows",
             "/requests", "/visit", "/link", "/reminders", "/cancel"]
LEADER = [*VOLUNTEER, "/stats", "/export", "/announce", "/target", "/misses", "/volunteers",
          "/import", "/invite"]


@pytest.mark.parametrize(("typed", "meant"), [
    ("/hlep", "/help"),        # two letters swapped
    ("/hepl", "/help"),
    ("/targets", "/target"),   # a plural
    ("/exprot", "/export"),
    ("/annouce", "/announce"),
    ("/invte", "/invite"),
    ("/houshold", "/household"),
])
def test_a_near_miss_names_the_command(typed: str, meant: str) -> None:
    assert closest_command(typed, LEADER) == meant


@pytest.mark.parametrize("typed", ["/xyz", "/", "/areas", "/khaisinh"])
def test_nothing_close_names_nothing(typed: str) -> None:
    assert closest_command(typed, LEADER) is None


def test_only_the_users_own_commands_are_named() -> None:
    """A volunteer typing /exprot is not pointed at a leader's command."""
    assert closest_command("/exprot", VOLUNTEER) is None


def test_two_equally_close_commands_name_neither() -> None:
    """/stat is one letter from /stats and from /start: a guess would be a coin toss."""
    assert closest_command("/stat", LEADER) is None
