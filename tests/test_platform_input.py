"""Hostile platform input (#7): whatever a Zalo webhook body or a Telegram update holds, the
adapter turns it into something the core can store, or ignores it; it never fails the update
(which would make the platform deliver it again and again)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest
import structlog
from aiogram.types import Update
from aiohttp import ClientSession
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bot.app import App
from bot.channels import telegram_render, zalo
from bot.channels.zalo_api import webhook_update
from bot.config import Settings
from bot.logging import configure_logging
from db.models import ProcessedUpdate
from handlers.pipeline import HANDLER_FAILED
from tests.chat import count_rows
from tests.fakes import FakeTelegramAPI, FakeUser
from tests.fakes.zalo_api import FakeZaloAPI
from tests.test_telegram import webhook_bot as telegram_webhook

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


# -- the webhooks: hostile requests are answered, never failed (issue 13) ------------------------

SECRET = "test-secret-123"  # the `settings` fixture's GOCUA_WEBHOOK_SECRET
TG_HEADER, ZALO_HEADER = "X-Telegram-Bot-Api-Secret-Token", "X-Bot-Api-Secret-Token"


@pytest.fixture
def log_text(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], str]]:
    """bot/logging.py's configuration at INFO (as deployed), writing to a buffer; calling the
    fixture's value returns what was written so far."""
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("INFO")
    try:
        yield stream.getvalue
    finally:
        root.handlers[:], root.level = saved
        structlog.reset_defaults()


@asynccontextmanager
async def zalo_webhook(settings: Settings, app: App) -> AsyncIterator[FakeZaloAPI]:
    from tests.test_zalo import free_port, running

    async with FakeZaloAPI() as api:
        port = free_port()
        zs = settings.with_overrides(zalo_bot_token=api.token, zalo_api_base=api.base_url)
        async with running(zs, app, api.wait_for("setWebhook"), host="127.0.0.1", port=port,
                           webhook_url=f"http://127.0.0.1:{port}/zalo/hook"):
            yield api


@pytest.fixture(autouse=True)
def _no_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GOCUA_PUBLIC_BASE_URL", raising=False)


@pytest.fixture
async def tg_hook(settings: Settings, app: App) -> AsyncIterator[FakeTelegramAPI]:
    async with telegram_webhook(settings, app) as api:
        yield api


@pytest.fixture
async def zalo_hook(settings: Settings, app: App) -> AsyncIterator[FakeZaloAPI]:
    async with zalo_webhook(settings, app) as api:
        yield api


@pytest.fixture(params=["telegram", "zalo"])
async def hook(request: pytest.FixtureRequest, settings: Settings,
               app: App) -> AsyncIterator[FakeTelegramAPI | FakeZaloAPI]:
    """The Telegram or the Zalo bot in webhook mode against its stand-in."""
    serving = telegram_webhook if request.param == "telegram" else zalo_webhook
    async with serving(settings, app) as api:
        yield api


async def raw_post(url: str, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    """POST with header bytes exactly as given (no client encodes them); the status code."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = [f"POST {parts.path} HTTP/1.1".encode(), f"Host: {parts.netloc}".encode(),
            b"Content-Type: application/json", f"Content-Length: {len(body)}".encode(),
            b"Connection: close", *(name + b": " + value for name, value in headers)]
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    return int(status_line.split()[1])


NON_ASCII_SECRETS = ["sécret-ü", "test-secret-123é", "тест", "🔑"]
RAW_SECRETS = [b"\xff\xfe\xfd", b"test-secret-123" + b"\xe9", "sécret".encode("latin-1")]


async def test_a_non_ascii_secret_header_is_a_401(hook, log_text):
    """A secret header with non-ASCII text (UTF-8 from an aiohttp client) or raw bytes that are
    not UTF-8 is refused with 401 and one log line, never a 500 with a traceback; the right
    secret still gets through."""
    api, channel = hook, "telegram" if isinstance(hook, FakeTelegramAPI) else "zalo"
    header = TG_HEADER if channel == "telegram" else ZALO_HEADER
    update = (api.message(FakeUser(8101, "Tám", language_code="en"), "/help") if channel == "telegram"
              else api.text("z8101", "/help"))
    url = api.webhook["url"]
    async with ClientSession() as http:
        for secret in NON_ASCII_SECRETS:
            async with http.post(url, json=update, headers={header: secret}) as resp:
                assert resp.status == 401, (secret, await resp.text())
    for secret in RAW_SECRETS:
        assert await raw_post(url, [(header.encode(), secret)], json.dumps(update).encode()) == 401
    assert api.calls_to("sendMessage") == []
    assert (await api.post_webhook(update))[0] == 200
    assert len(api.calls_to("sendMessage")) == 1
    text = log_text()
    assert "Traceback" not in text and "Error handling request" not in text
    assert text.count("webhook_bad_secret") == len(NON_ASCII_SECRETS) + len(RAW_SECRETS)


async def test_zalo_updates_it_does_not_serve_are_answered_200_and_logged_once(zalo_hook, app, log_text):
    """A group message, `{}`, an update without a message, ids no column can hold, another event,
    a body that is not JSON or not an object: 200, one log line each, nothing stored or sent;
    Zalo has no reason to deliver them again."""
    api = zalo_hook
    group = api.text("z8201", "/help", chat_type="GROUP")
    long_ids = api.text("z8202", "/help")
    long_ids["message"]["chat"]["id"] = long_ids["message"]["from"]["id"] = "9" * 150
    bodies: list[Any] = [group, {}, {"event_name": "message.text.received"}, long_ids,
                         {"event_name": "user.follow", "follower": {"id": "z8203"}},
                         {"event_name": "message.text.received", "message": None}]
    for body in bodies:
        status, answer = await api.post_webhook(body)
        assert status == 200, (body, answer)
    for raw in (b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"):
        status, answer = await api.post_webhook(raw)
        assert status == 200, (raw, answer)
    assert api.calls_to("sendMessage") == [] and await count_rows(app, ProcessedUpdate) == 0
    text = log_text()
    assert "Traceback" not in text
    assert text.count("zalo.update_ignored") == len(bodies)
    assert text.count("zalo.update_malformed") == 4
    assert (await api.post_webhook(api.text("z8204", "/help")))[0] == 200
    assert len(api.calls_to("sendMessage")) == 1


async def test_malformed_telegram_updates_are_answered_200_and_logged_once(tg_hook, app, log_text):
    """With the right secret, a body that is not JSON, not an object, or not an update Telegram
    could send (no update_id, wrong types) gets 200 and one short log line, not a 500 with a
    traceback that Telegram would retry."""
    api = tg_hook
    nan = FakeUser(8301, "Nan", language_code="en")
    wrong_types = api.message(nan, "/help")
    wrong_types["message"]["chat"] = "not a chat"
    bodies: list[Any] = [{}, [], "text", {"update_id": "x"}, {"update_id": 1, "message": {"bad": 1}},
                         wrong_types]
    for body in bodies:
        status, answer = await api.post_webhook(body)
        assert status == 200, (body, answer)
    for raw in (b"{not json", b"\xff\xfe"):
        assert await raw_post(api.webhook["url"], [(TG_HEADER.encode(), SECRET.encode())], raw) == 200
    assert api.calls_to("sendMessage") == [] and await count_rows(app, ProcessedUpdate) == 0
    text = log_text()
    assert "Traceback" not in text and "Error handling request" not in text
    assert text.count("telegram.update_malformed") == len(bodies) + 2
    assert all(len(line) < 300 for line in text.splitlines() if "update_malformed" in line)
    assert (await api.post_webhook(api.message(nan, "/help")))[0] == 200
    assert len(api.calls_to("sendMessage")) == 1


async def test_a_redelivery_refused_during_the_lease_is_one_log_line(hook, app, log_text):
    """A redelivery of an update whose replies another sender holds the lease on is answered
    500 (delivered again later) and logged in one line, without a traceback."""
    api = hook
    if isinstance(api, FakeTelegramAPI):
        update = api.message(FakeUser(8401, "Bốn", language_code="en"), "/help")
        incoming = telegram_render.incoming_from_update(Update.model_validate(update))
    else:
        update = api.text("z8401", "/help")
        incoming = zalo.incoming_from_update(update)
    assert incoming is not None
    assert await app.core.handle(incoming)  # processed, its replies leased and not sent yet
    before = log_text().count("\n")
    status, _ = await api.post_webhook(update)
    assert status == 500 and api.calls_to("sendMessage") == []
    new = log_text().splitlines()[before:]
    assert "Traceback" not in "\n".join(new)
    assert len([line for line in new if line.strip()]) == 1, new
    assert "update.duplicate_in_flight" in new[0]


HEADER_BYTES = st.binary(min_size=1, max_size=40).filter(
    lambda raw: not set(raw) & set(b"\r\n\x00") and raw.strip() != SECRET.encode())


@SETTINGS
@given(secret=HEADER_BYTES, body=st.one_of(JSONISH, zalo_bodies(), telegram_updates()))
async def test_any_secret_header_or_body_is_answered_without_a_500(hook, secret, body):
    """Any bytes as the secret header are refused (401, or 400 from the HTTP parser for bytes
    HTTP forbids); any JSON body with the right secret is answered 200; never a 500."""
    header = (TG_HEADER if isinstance(hook, FakeTelegramAPI) else ZALO_HEADER).encode()
    raw = json.dumps(body).encode()
    assert await raw_post(hook.webhook["url"], [(header, secret)], raw) in (400, 401)
    assert await raw_post(hook.webhook["url"], [(header, SECRET.encode())], raw) == 200
