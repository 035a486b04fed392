"""A visit request carries a way to find the resident (a phone, mobile or landline, an address
or landmark, or "the volunteer knows where I live"), and its notice's buttons show only in the
chat of the volunteer who can press them."""

from __future__ import annotations

import io
from datetime import date

import pytest

from bot.channels.console import run_console
from bot.seed_demo import seed_demo
from conversations.validators import validate_phone
from db.models import SupportRequest
from tests.chat import Talker, all_rows, payload_of

TODAY = date(2026, 12, 4)


@pytest.mark.parametrize(("typed", "value"), [
    ("0905 123 456", "0905123456"),
    ("0236 3822 123", "02363822123"),  # Da Nang landline with its area code: 11 digits
    ("+84 236 3822 123", "02363822123"),
    ("024.3825.1234", "02438251234"),
    ("0221234567", "0221234567"),  # 10 digits
])
def test_a_contact_phone_is_a_mobile_or_a_landline(typed, value):
    """Mobiles and landlines (02…, 10 or 11 digits) are both numbers to call a resident on."""
    assert validate_phone(typed, TODAY) == (value, None)


@pytest.mark.parametrize(("typed", "msgid"), [
    ("0236 382", "A landline number (02…) has 10 or 11 digits; you sent {count}."),
    ("0905 123", "A Vietnamese mobile number has 10 digits; you sent {count}."),
    ("goi em", "A phone number has only digits (0–9), optionally starting with +84."),
])
def test_a_wrong_contact_phone_says_what_is_wrong(typed, msgid):
    """A number that is neither a mobile nor a landline is refused with the precise reason."""
    value, error = validate_phone(typed, TODAY)
    assert value is None and error is not None and error.msgid == msgid


async def _to_the_phone_question(app, name: str) -> Talker:
    await seed_demo(app)
    resident = Talker(app, name, lang="en")
    await resident.say("/visit help with VNeID")
    await resident.press(payload_of(resident, "Hải Vân"))
    await resident.press(payload_of(resident, "Tà Lang"))
    assert "Your phone number" in resident.text()
    return resident


async def test_without_a_phone_the_request_needs_an_address_or_the_volunteers_knowledge(app):
    """Skipping the phone leads to an address question with no Skip: "The volunteer knows where
    I live" or a phone instead; nothing is sent until one is given."""
    resident = await _to_the_phone_question(app, "ba-muoi")
    await resident.press(payload_of(resident, "Skip"))
    assert "Without a phone number the volunteer must find your house" in resident.text()
    labels = [label for label, _ in resident.buttons()]
    assert labels == ["The volunteer knows where I live", "Give a phone number instead"]
    await resident.press("visit:skip")  # an old Skip button changes nothing
    assert "Without a phone number" in resident.text()
    await resident.say("!!!")
    assert "in words or numbers" in resident.text()
    assert [label for label, _ in resident.buttons()] == labels
    assert await all_rows(app, SupportRequest) == []
    await resident.say("Nhà sàn cạnh suối, sau trường")
    [request] = await all_rows(app, SupportRequest)
    assert (request.phone, request.address) == (None, "Nhà sàn cạnh suối, sau trường")


async def test_the_volunteer_knows_me_is_said_in_the_notice(app):
    """Choosing "The volunteer knows where I live" sends the request, and the volunteer's notice
    says so."""
    resident = await _to_the_phone_question(app, "ong-tu")
    await resident.press(payload_of(resident, "Skip"))
    await resident.press(payload_of(resident, "The volunteer knows where I live"))
    [request] = await all_rows(app, SupportRequest)
    assert (request.phone, request.address) == (None, None)
    [notice] = [r for r in resident.last if r.to is not None]
    assert "Người dân cho biết bạn đã biết nhà họ." in notice.text  # an's console speaks Vietnamese


async def test_a_landline_is_taken_as_the_phone(app):
    """A landline with its area code is accepted at the phone question; the address stays optional."""
    resident = await _to_the_phone_question(app, "co-nam")
    await resident.say("0236 3822 123")
    assert "Your address or a landmark near your house? (optional)" in resident.text()
    await resident.press(payload_of(resident, "Skip"))
    [request] = await all_rows(app, SupportRequest)
    assert request.phone == "02363822123"


async def test_a_wrong_phone_asks_again_with_the_skip_option(app):
    """A number that is neither mobile nor landline says why and asks again, Skip still offered."""
    resident = await _to_the_phone_question(app, "ba-sau")
    await resident.say("0905 123")
    assert resident.text().startswith("A Vietnamese mobile number has 10 digits; you sent 7.")
    assert "Your phone number" in resident.text()
    assert [label for label, _ in resident.buttons()] == ["Skip"]


async def test_the_residents_console_shows_no_volunteer_button(app):
    """On the resident's console a visit request shows the confirmation only; the volunteer's
    notice shows on the volunteer's console when it starts, where its word “nhận 1” takes the
    request (numbers stay for the console's own options)."""
    await seed_demo(app)
    script = "/visit cần làm VNeID\n2\n0905123456\nCạnh chợ Hòa Xuân\n"  # 2: Hòa Xuân (Hải Vân is 1)
    out = io.StringIO()
    await run_console(app, user="hoa", lang="vi", stdin=io.StringIO(script), stdout=out)
    shown = out.getvalue()
    assert "đã gửi yêu cầu #1 đến 1 tình nguyện viên" in shown, shown
    assert "Tôi nhận" not in shown and "Yêu cầu hỗ trợ tại nhà mới" not in shown

    out = io.StringIO()
    await run_console(app, user="binh", lang="vi", stdin=io.StringIO("nhận 1\n"), stdout=out)
    shown = out.getvalue()
    assert shown.startswith("Trong lúc bạn vắng mặt:\n\nYêu cầu hỗ trợ tại nhà mới #1 · Phường Hòa Xuân:\n"
                            "“cần làm VNeID”"), shown
    assert "gõ NHẬN 1" in shown and "[1] Tôi nhận" not in shown and "Bạn đã nhận yêu cầu #1." in shown
    [request] = await all_rows(app, SupportRequest)
    assert request.status == "taken"
    out = io.StringIO()
    await run_console(app, user="hoa", lang="vi", stdin=io.StringIO(""), stdout=out)
    told = out.getvalue()  # who took it, once, with no button
    assert "Trần Thị Bình sẽ đến hỗ trợ" in told and "[1]" not in told
