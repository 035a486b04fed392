"""End to end on Telegram: the real aiogram adapter against the Bot API stand-in, a volunteer
who joined by invite runs a procedure with inline buttons; duplicates and old buttons."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import App
from bot.config import Settings
from bot.seed_demo import seed_demo
from db.models import FlowRun, Household, StepRecord
from db.repo.areas import area_by_code
from db.repo.invites import create_invite
from tests.chat import Talker, all_rows, payload_of
from tests.fakes import FakeTelegramAPI, FakeUser
from tests.test_telegram import to, webhook_bot

RC = "Residence confirmation (CT07)"


@pytest.fixture
async def telegram(settings: Settings, app: App) -> AsyncIterator[FakeTelegramAPI]:
    """The bot serving webhooks (handled before the POST returns) against the stand-in."""
    async with webhook_bot(settings, app) as api:
        yield api


async def post(api: FakeTelegramAPI, update: dict[str, Any]) -> None:
    status, body = await api.post_webhook(update)
    assert status == 200, body


def keyboard(message: dict[str, Any]) -> list[tuple[str, str]]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [(b["text"], b["callback_data"]) for row in rows for b in row]


def data_of(message: dict[str, Any], label: str) -> str:
    found = [data for text, data in keyboard(message) if label in text]
    assert found, f"no button {label!r} on {message.get('text')!r}: {keyboard(message)}"
    return found[0]


async def press(api: FakeTelegramAPI, user: FakeUser, label: str, **kwargs: Any) -> dict[str, Any]:
    """Press the button `label` on the newest message; returns the callback update sent."""
    shown = api.last_message(user.id)
    update = api.callback(user, data_of(shown, label), shown["message_id"], **kwargs)
    await post(api, update)
    return update


async def step_records(app: App) -> list[tuple[str, int, str]]:
    return [(r.step_id, r.attempt, r.outcome) for r in await all_rows(app, StepRecord)]


async def join(app: App, api: FakeTelegramAPI, clock: Any, user: FakeUser) -> None:
    async with app.db.transaction() as session:
        area = await area_by_code(session, "danang.hai-van")
        code = (await create_invite(session, role="volunteer", area=area, now=clock())).code
    await post(api, api.message(user, f"/start {code}"))
    assert "volunteer" in api.sent_texts(user.id)[-1]


async def join_with_household(app: App, api: FakeTelegramAPI, clock: Any, user: FakeUser,
                              name: str) -> Talker:
    """`user` joins as a volunteer of the demo ward (already seeded) and the leader, Lan (in
    English), gives them HV-TL-002 by their name on the picker; returns Lan's chat."""
    await join(app, api, clock, user)
    lan = Talker(app, "lan", lang="en")
    await lan.say("/household HV-TL-002")
    await lan.press(payload_of(lan, "Reassign"))
    await lan.press(payload_of(lan, name))
    return lan


async def test_a_telegram_volunteer_runs_a_procedure_with_inline_buttons(telegram, app, clock):
    """Households → page → procedure: a pressed step becomes its outcome, the next arrives with buttons."""
    api = telegram
    await seed_demo(app)
    hanh = FakeUser(7101, "Hạnh", "Lê", language_code="en")
    lan = await join_with_household(app, api, clock, hanh, "Hạnh Lê")  # a household of the ward
    assert lan.text() == "HV-TL-002 is now looked after by Hạnh Lê."

    await post(api, api.message(hanh, "/households"))
    listing = api.last_message(hanh.id)
    assert listing["text"].startswith("Your households (1):")
    [(label, _)] = keyboard(listing)
    assert label == "HV-TL-002 Bríu Thị Hoa"
    await press(api, hanh, "HV-TL-002")
    assert api.last_message(hanh.id)["text"].startswith("🏠 HV-TL-002 · Bríu Thị Hoa")
    await press(api, hanh, "Start a procedure")
    await press(api, hanh, RC)
    first = api.last_message(hanh.id)
    assert first["text"].startswith(f"Step 1/5 · {RC}\n")
    assert [label for label, _ in keyboard(first)] == ["Continue"]
    await press(api, hanh, "Continue")
    await press(api, hanh, "In the VNeID app")

    task = api.last_message(hanh.id)
    assert task["text"].startswith(f"Step 3/5 · {RC}\nIn VNeID (level 2 account)")
    assert [label for label, _ in keyboard(task)] == ["✅ Done", "⏭ Skip", "⚠️ Problem"]
    sent_before = len(api.calls_to("sendMessage", to(hanh)))
    done = await press(api, hanh, "Done")

    [edit] = api.calls_to("editMessageText", lambda p: p["message_id"] == task["message_id"])
    assert edit["text"].startswith("✅ Done: In VNeID (level 2 account) find the procedure")
    assert "reply_markup" not in api.messages[(hanh.id, task["message_id"])]  # its buttons are gone
    following = api.calls_to("sendMessage", to(hanh))[sent_before:]
    assert len(following) == 1
    assert following[0]["text"].startswith(f"Step 4/5 · {RC}\nIt takes half a working day")
    assert [b["text"] for row in following[0]["reply_markup"]["inline_keyboard"] for b in row] == ["Continue"]
    assert await step_records(app) == [("intro", 1, "done"), ("channel", 1, "done"), ("via_vneid", 1, "done")]
    [run] = await all_rows(app, FlowRun)
    [household] = await all_rows(app, Household, Household.code == "HV-TL-002")
    assert (run.household_id, run.current_step) == (household.id, "wait_result")

    # Telegram delivers the same press again: nothing more is sent or recorded.
    calls_before = len([c for c in api.calls if c.method in ("sendMessage", "editMessageText")])
    await post(api, done)
    assert len([c for c in api.calls if c.method in ("sendMessage", "editMessageText")]) == calls_before
    assert await step_records(app) == [("intro", 1, "done"), ("channel", 1, "done"), ("via_vneid", 1, "done")]

    # The old Done button pressed again later (a new update): a toast on the tap, its keyboard
    # taken off, and no second copy of the current step.
    sent = len(api.calls_to("sendMessage", to(hanh)))
    again = api.callback(hanh, data_of(task, "Done"), task["message_id"])
    await post(api, again)
    [answered] = api.calls_to("answerCallbackQuery",
                              lambda p: p["callback_query_id"] == again["callback_query"]["id"])
    assert answered["text"] == "This button is out of date."
    assert "reply_markup" not in api.messages[(hanh.id, task["message_id"])]
    assert len(api.calls_to("sendMessage", to(hanh))) == sent
    assert [label for label, _ in keyboard(api.last_message(hanh.id))] == ["Continue"]
    assert len(await step_records(app)) == 3

    await press(api, hanh, "Continue")
    await press(api, hanh, "Done")
    assert api.last_message(hanh.id)["text"].startswith("Procedure finished.")
    assert [label for label, _ in keyboard(api.last_message(hanh.id))] == ["Back to the household"]
    assert await step_records(app) == [
        (s, 1, "done") for s in ("intro", "channel", "via_vneid", "wait_result", "check_result")]
    [run] = await all_rows(app, FlowRun)
    assert run.status == "completed"


async def test_a_telegram_volunteer_resumes_a_console_run_on_the_page(telegram, app, clock):
    """A run left on the console is resumed on Telegram by a ward volunteer with the page's Resume."""
    api = telegram
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    await an.say("/household HV-TL-001")
    await an.press(payload_of(an, "Start a procedure"))
    await an.press(payload_of(an, "Residence confirmation"))
    await an.press(payload_of(an, "Continue"))

    hanh = FakeUser(7102, "Hạnh", language_code="en")
    await join(app, api, clock, hanh)
    await post(api, api.message(hanh, "/household HV-TL-001"))
    assert f"  ⏳ {RC}: in progress" in api.last_message(hanh.id)["text"]
    await press(api, hanh, "▶️")
    assert api.last_message(hanh.id)["text"].startswith(f"Step 2/5 · {RC}\nHow will the resident apply?")
    await press(api, hanh, "At a commune police office")
    assert any(t.startswith("☑ How will the resident apply? → At a commune police office")
               for t in api.sent_texts(hanh.id))
    assert await step_records(app) == [("intro", 1, "done"), ("channel", 1, "done")]
    assert len(await all_rows(app, FlowRun)) == 1


async def test_a_telegram_user_of_another_ward_is_refused_a_runs_button(telegram, app, clock):
    """A volunteer of another ward pressing a copied step button is refused; nothing is recorded."""
    api = telegram
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    await an.say("/household HV-TL-001")
    await an.press(payload_of(an, "Start a procedure"))
    await an.press(payload_of(an, "Residence confirmation"))
    step = payload_of(an, "Continue")

    async with app.db.transaction() as session:
        area = await area_by_code(session, "danang.hoa-xuan")
        code = (await create_invite(session, role="volunteer", area=area, now=clock())).code
    mai = FakeUser(7103, "Mai", language_code="en")
    await post(api, api.message(mai, f"/start {code}"))
    await post(api, api.message(mai, "/households"))
    await post(api, api.callback(mai, step, api.last_message(mai.id)["message_id"]))
    assert api.last_message(mai.id)["text"] == "This household is not in your area, so you cannot open it."
    assert await step_records(app) == []
