"""Routers (handlers/router.py): each feature module registers on its own Router and dispatch
includes them from one list; a second registration of a command, button prefix, dialog, text
fallback or cancel hook raises at start-up instead of silently replacing the first."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from handlers import dispatch
from handlers.buttons import ButtonData, HouseholdButton, RunButton
from handlers.router import DuplicateRoute, RouteError, Router, Routes


async def _handler(ctx, arg):
    return []


@dataclass(frozen=True)
class OtherHouseholdButton(ButtonData, prefix="hh"):
    """Another kind claiming the prefix of HouseholdButton."""

    code: str


def test_the_routes_dispatch_uses_are_its_routers_in_order():
    assert dispatch.ROUTES.routers == dispatch.ROUTERS
    assert len({r.name for r in dispatch.ROUTERS}) == len(dispatch.ROUTERS)
    assert {"/start", "/help", "/cancel", "/stats", "/households"} <= set(dispatch.ROUTES.commands)
    assert dispatch.ROUTES.cancel_hooks  # the procedure's pause-or-abandon question


def test_a_command_registered_twice_on_one_router_raises():
    router = Router("one")
    router.command("/x")(_handler)
    with pytest.raises(DuplicateRoute, match="/x"):
        router.command("/x", help="again")(_handler)


@pytest.mark.parametrize("register", [
    lambda r: r.command("/start")(_handler),
    lambda r: r.button(HouseholdButton)(_handler),
    lambda r: r.button(OtherHouseholdButton)(_handler),
    lambda r: r.dialog("flow_run")(_handler),
    lambda r: r.text(_handler),
])
def test_a_second_router_registering_what_another_has_raises_at_start_up(register):
    """Against the real routers: a feature module that took /start, the `hh` prefix, the
    procedure's dialog or a second plain-text fallback would not start."""
    intruder = Router("intruder")
    register(intruder)
    with pytest.raises(DuplicateRoute):
        Routes([*dispatch.ROUTERS, intruder])


def test_one_router_has_one_text_fallback_and_one_cancel_hook():
    router = Router("one")
    router.text(_handler)
    router.cancel(_handler)
    with pytest.raises(DuplicateRoute):
        router.text(_handler)
    with pytest.raises(DuplicateRoute):
        router.cancel(_handler)
    with pytest.raises(DuplicateRoute):
        router.button(RunButton)(_handler)
        router.button(RunButton)(_handler)


def test_a_dialog_answered_by_buttons_nobody_handles_raises():
    router = Router("one")
    router.dialog("d", buttons=(RunButton,))(_handler)
    with pytest.raises(RouteError, match="run"):
        Routes([router])
    router.button(RunButton)(_handler)
    assert Routes([router]).dialogs["d"].buttons == {"run"}


def test_cancel_hooks_are_asked_in_the_order_of_the_routers():
    first, second = Router("first"), Router("second")

    async def hook_a(ctx, args):
        return []

    async def hook_b(ctx, args):
        return []

    second.cancel(hook_b)
    first.cancel(hook_a)
    assert Routes([first, second]).cancel_hooks == (hook_a, hook_b)
    assert Routes([second, first]).cancel_hooks == (hook_b, hook_a)
