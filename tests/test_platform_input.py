"""Hostile platform input (#7): whatever a Zalo webhook body or a Telegram update holds, the
adapter turns it into something the core can store, or ignores it; it never fails the update
(which would make the platform deliver it again and again)."""

from __future__ import annotations

from typing import Any

from aiogram.types import Update
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.channels import telegram_render, zalo
from bot.channels.zalo_api import webhook_update
from handlers.pipeline import HANDLER_FAILED

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

IDS = st.one_of(st.text(max_size=300), st.integers(), st.floats(allow_nan=False), st.booleans(),
                st.none(), st.just(""), st.text(alphabet="0123456789", min_size=1, max_size=200))
TEXTS = st.one_of(st.none(), st.text(max_size=5000), st.integers(), st.lists(st.text(), max_size=3))
JSONISH = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=50)),
                       lambda inner: st.dictionaries(st.text(max_size=10), inner, max_size=4)
                       | st.lists(inner, max_size=4), max_leaves=10)


@st.composite
def zalo_bodies(draw: st.DrawFn) -> Any:
    message = {
        "message_id": draw(IDS), "text": draw(TEXTS), "date": draw(IDS),
        "chat": draw(st.one_of(st.fixed_dictionaries(
            {"id": IDS, "chat_type": st.sampled_from(["PRIVATE", "GROUP", "private", "", None])}),
            JSONISH)),
        "from": draw(st.one_of(st.fixed_dictionaries(
            {"id": IDS, "display_name": st.one_of(st.text(max_size=500), st.integers(), st.none())}),
            JSONISH)),
    }
    update = {"event_name": draw(st.sampled_from(["message.text.received", "message.image.received",
                                                  "", "other"])),
              "message": draw(st.one_of(st.just(message), JSONISH))}
    return draw(st.one_of(st.just(update), st.just({"ok": True, "result": update}), JSONISH))


@SETTINGS
@given(body=zalo_bodies())
async def test_any_zalo_webhook_body_is_stored_or_ignored(app, body):
    update = webhook_update(body)
    incoming = zalo.incoming_from_update(update) if update is not None else None
    if incoming is None:
        return
    assert max(len(incoming.chat_id), len(incoming.sender_id), len(incoming.update_id)) <= 100
    replies = await app.core.handle(incoming)  # raises if the database refused what it got
    await app.core.mark_sent(incoming)
    assert all(HANDLER_FAILED not in r.text for r in replies)


@st.composite
def telegram_updates(draw: st.DrawFn) -> Any:
    user = {"id": draw(st.integers(min_value=-(2**70), max_value=2**70)), "is_bot": False,
            "first_name": draw(st.text(max_size=300)),
            "language_code": draw(st.one_of(st.none(), st.text(max_size=12)))}
    chat = {"id": draw(st.integers(min_value=-(2**70), max_value=2**70)),
            "type": draw(st.sampled_from(["private", "group", "supergroup", "channel"]))}
    message = {"message_id": draw(st.integers(min_value=-(2**40), max_value=2**40)), "date": 0,
               "chat": chat, "from": user, "text": draw(st.one_of(st.none(), st.text(max_size=5000)))}
    update_id = draw(st.integers(min_value=-(2**70), max_value=2**70))
    if draw(st.booleans()):
        return {"update_id": update_id, "message": message}
    return {"update_id": update_id, "callback_query": {
        "id": draw(st.text(max_size=20)), "from": user, "chat_instance": "x", "message": message,
        "data": draw(st.one_of(st.none(), st.text(max_size=300)))}}


@SETTINGS
@given(raw=telegram_updates())
async def test_any_telegram_update_is_stored_or_ignored(app, raw):
    try:
        update = Update.model_validate(raw)
    except ValidationError:
        return  # aiogram refuses it before GoCua sees it
    incoming = telegram_render.incoming_from_update(update)
    if incoming is None:
        return
    assert max(len(incoming.chat_id), len(incoming.sender_id), len(incoming.update_id)) <= 100
    replies = await app.core.handle(incoming)
    await app.core.mark_sent(incoming)
    assert all(HANDLER_FAILED not in r.text for r in replies)


async def test_a_nul_in_a_display_name_does_not_fail_the_update(app):
    """A name with a NUL character (PostgreSQL stores none in text) still gets its answer, and
    the user is kept under the name without it."""
    from db.models import User
    from tests.chat import all_rows

    incoming = zalo.incoming_from_update({
        "event_name": "message.text.received",
        "message": {"message_id": "m1", "text": "/help", "chat": {"id": "z-nul", "chat_type": "PRIVATE"},
                    "from": {"id": "z-nul", "display_name": "Bà\x00 Tư"}}})
    assert incoming is not None and "\x00" in incoming.display_name
    assert await app.core.handle(incoming)
    assert [u.display_name for u in await all_rows(app, User)] == ["Bà Tư"]
