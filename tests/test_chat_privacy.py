"""A clean, private chat (issue 16 §5) on the Telegram stand-in: a citizen ID typed in the chat
is deleted from it once stored masked, FAQ answers carry no link preview, counts are written
the same everywhere, and a command typed while adding a member does not lose the member."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.app import App
from bot.config import Settings
from bot.seed_demo import seed_demo
from db.models import Household, Resident
from handlers.i18n import translator
from tests.chat import Talker, all_rows, payload_of, stored_anywhere
from tests.fakes import FakeTelegramAPI, FakeUser
from tests.test_command_menu import invite_code
from tests.test_flows_telegram_e2e import post, press
from tests.test_telegram import to, webhook_bot

CITIZEN_ID = "048090001234"
VI = translator("vi")
REMOVED = VI("🔒 Your message with the citizen ID number was removed from this chat; GoCua keeps "
             "only its masked form.")


@pytest.fixture
async def telegram(settings: Settings, app: App) -> AsyncIterator[FakeTelegramAPI]:
    async with webhook_bot(settings, app) as api:
        yield api


async def test_a_typed_citizen_id_is_deleted_from_the_chat_after_it_is_stored(telegram, app, clock):
    """A volunteer types a member's citizen ID: the member is stored with the ID masked, then the
    message with the ID is deleted from the chat (deleteMessage) and a note says so."""
    api = telegram
    await seed_demo(app)
    vol = FakeUser(8101, "Bảy", "Trần")  # a Vietnamese app
    await post(api, api.message(vol, f"/start {await invite_code(app, clock, 'volunteer')}"))
    await post(api, api.message(vol, "/household HV-TL-001"))
    await press(api, vol, VI("Add a member"))
    await post(api, api.message(vol, "Alăng Thị Nga"))
    await post(api, api.message(vol, "1990"))
    assert api.calls_to("deleteMessage") == []  # a year is no citizen ID

    typed = api.message(vol, CITIZEN_ID)
    before = len(api.calls)
    await post(api, typed)
    [deleted] = api.calls_to("deleteMessage")
    assert deleted == {"chat_id": vol.id, "message_id": typed["message"]["message_id"]}
    after = [c.method for c in api.calls[before:]]
    assert after[0] == "deleteMessage" and "sendMessage" in after[1:]  # once stored, before the replies
    texts = api.sent_texts(vol.id)
    assert REMOVED in texts and any("0480******34" in t for t in texts)
    [member] = await all_rows(app, Resident)
    assert member.citizen_id_masked == "0480******34"
    assert await stored_anywhere(app, CITIZEN_ID) == []


async def test_an_faq_answer_has_no_link_preview(telegram) -> None:
    """An FAQ answer, whose last line cites its source, is sent with link previews off."""
    api = telegram
    resident = FakeUser(8102, "Hoa", "Lê")
    await post(api, api.message(resident, "đăng ký tài khoản định danh điện tử mức 1 như thế nào"))
    [answer] = api.calls_to("sendMessage", to(resident))
    assert answer["link_preview_options"] == {"is_disabled": True}
    await post(api, api.message(resident, "/help"))
    assert "link_preview_options" not in api.calls_to("sendMessage", to(resident))[-1]


@pytest.mark.parametrize("locale, expected", [("vi", "21.544"), ("en", "21,544")])
def test_counts_are_written_the_same_everywhere(locale: str, expected: str) -> None:
    """A count in any text, counted (plural) or not, is grouped as the language writes it; an id
    or a year is not."""
    t = translator(locale)
    assert expected in t("{area} · {period}: {rows} step records.", area="A", period="P", rows=21544)
    assert expected in t.plural("{n} volunteer", "{n} volunteers", 21544)
    assert "#21544" in t("Request #{id} closed. Thank you!", id=21544)
    assert "1990" in t("Year of birth of {name}? (optional)", name="1990")


async def test_a_command_while_adding_a_member_asks_to_keep_it(app) -> None:
    """A command typed after the member's name asks whether to keep the member: keep asks the
    member's question again, drop says so and runs the command."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    await an.say("/household HV-TL-001")
    await an.press(payload_of(an, "Add a member"))
    await an.say("Alăng Thị Nga")
    await an.say("/households")
    assert an.text().startswith("You were adding Alăng Thị Nga as a member. Keep the member")
    await an.say("1")  # the year question waits for typed text, but these are options
    assert an.text() == "Year of birth of Alăng Thị Nga? (optional)"
    await an.say("1990")
    assert "Citizen ID number (12 digits)?" in an.text()

    await an.say("/households")
    await an.press(payload_of(an, "Drop it"))
    assert an.text().startswith("The member was not added.") and "Your households (5):" in an.text()
    assert await all_rows(app, Resident) == []
    [hv] = [h for h in await all_rows(app, Household) if h.code == "HV-TL-001"]
    assert hv is not None
