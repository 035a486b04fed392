"""The "/" menu fits the person (issue 16 §4) on the Telegram stand-in: setMyCommands for the
chat (BotCommandScopeChat) after a role is granted and after /lang; `/start CODE` answers once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import App, open_app
from bot.config import Settings
from bot.seed_demo import seed_demo
from db.repo.areas import area_by_code
from db.repo.invites import create_invite
from handlers.dispatch import ROUTES
from handlers.i18n import translator
from tests.fakes import FakeTelegramAPI, FakeUser
from tests.test_flows_telegram_e2e import post, press
from tests.test_telegram import to, webhook_bot


@pytest.fixture
async def telegram(settings: Settings, app: App) -> AsyncIterator[FakeTelegramAPI]:
    async with webhook_bot(settings, app) as api:
        yield api


def chat_menus(api: FakeTelegramAPI, user: FakeUser) -> list[dict[str, Any]]:
    """The setMyCommands calls for `user`'s chat, oldest first."""
    return [c for c in api.calls_to("setMyCommands")
            if (c.get("scope") or {}) == {"type": "chat", "chat_id": user.id}]


def names(call: dict[str, Any]) -> list[str]:
    return [c["command"] for c in call["commands"]]


async def invite_code(app: App, clock: Any, role: str) -> str:
    async with app.db.transaction() as session:
        area = await area_by_code(session, "danang.hai-van")
        return (await create_invite(session, role=role, area=area, now=clock())).code


async def test_start_code_answers_once_and_sets_the_volunteers_menu(telegram, app, clock) -> None:
    """/start CODE answers in one message, and the chat's menu becomes a volunteer's (with
    /households), in Vietnamese; /lang English makes it English."""
    api = telegram
    await seed_demo(app)
    vol = FakeUser(8201, "Bảy", "Trần")
    await post(api, api.message(vol, "/start"))
    assert chat_menus(api, vol) == []  # a first contact: the default menu is a resident's in Vietnamese
    await post(api, api.message(vol, "/start"))  # a known chat's /start puts its menu right
    [resident_menu] = chat_menus(api, vol)
    assert "households" not in names(resident_menu) and "visit" in names(resident_menu)

    code = await invite_code(app, clock, "volunteer")
    before = len(api.calls_to("sendMessage", to(vol)))
    await post(api, api.message(vol, f"/start {code}"))
    [welcome] = api.calls_to("sendMessage", to(vol))[before:]
    assert welcome["text"].startswith("Chào mừng!") and "/households" in welcome["text"]
    menu = chat_menus(api, vol)[-1]
    assert {"households", "household", "requests"} <= set(names(menu)) and "stats" not in names(menu)
    assert "language_code" not in menu

    await post(api, api.message(vol, "/lang"))
    await press(api, vol, "English")
    english = chat_menus(api, vol)[-1]
    assert names(english) == names(menu)
    households = next(c for c in english["commands"] if c["command"] == "households")
    assert households["description"] == "the households you look after"


async def test_a_leader_gets_stats_and_export(telegram, app, clock) -> None:
    """A leader who joins sees /stats and /export in the chat's menu; /help changes nothing."""
    api = telegram
    await seed_demo(app)
    lead = FakeUser(8202, "Lan", "Lê")
    await post(api, api.message(lead, f"/start {await invite_code(app, clock, 'leader')}"))
    [menu] = chat_menus(api, lead)
    assert {"stats", "export"} <= set(names(menu))
    await post(api, api.message(lead, "/help"))
    assert len(chat_menus(api, lead)) == 1


@pytest.mark.parametrize(("hint", "locale", "menu"), [
    (None, "vi", None), ("en", "vi", None), ("fr", "vi", None), ("en-GB", "en", None),
    (None, "en", "en"), ("vi", "en", None), ("fr", "en", "en"),
])
async def test_a_first_contact_gets_a_menu_of_its_own_only_where_the_default_differs(
        settings, clock, hint, locale, menu) -> None:
    """A new resident's /start sets the chat's menu only when the default menu (Vietnamese, or
    English for English-language apps) is not theirs: here, when GOCUA_LOCALE makes them English."""
    app = await open_app(settings.with_overrides(locale=locale), migrate=False, clock=clock)
    try:
        async with webhook_bot(settings.with_overrides(locale=locale), app) as api:
            new = FakeUser(8301, "Tư", language_code=hint)
            await post(api, api.message(new, "/start"))
            set_menus = chat_menus(api, new)
            if menu is None:
                assert set_menus == []
            else:
                [only] = set_menus
                assert "visit" in names(only) and "households" not in names(only)
                visit = next(c for c in only["commands"] if c["command"] == "visit")
                assert visit["description"] == translator(menu)(ROUTES.commands["/visit"].help)
    finally:
        await app.close()
