"""A citizen ID typed into free text (a resident's question, a visit request, a volunteer's
reason or note) is never stored in full: not in the database, not in the replies kept."""

from __future__ import annotations

import pytest

from bot.seed_demo import seed_demo
from conversations.redact import redact_citizen_ids
from db.models import FaqMiss, SupportRequest
from tests.chat import Talker, all_rows, stored_anywhere
from tests.test_households import CITIZEN_ID


@pytest.mark.parametrize(("typed", "kept"), [
    ("cccd 048090001234 bi sai", "cccd 048*******34 bi sai"),
    ("số 048 090 001 234 nhé", "số 048*******34 nhé"),
    ("so 0480-9000-1234", "so 048*******34"),
    ("cmnd cu 201234567", "cmnd cu 201****67"),
    ("goi 0905123456 giup toi", "goi 0905123456 giup toi"),  # a phone number stays
    ("500.000.000 dong", "500.000.000 dong"),
    ("nam 2025, 12 ho", "nam 2025, 12 ho"),
    ("1048090001234", "1048090001234"),  # 13 digits: not an ID
])
def test_ids_in_text_are_masked_and_nothing_else(typed: str, kept: str) -> None:
    assert redact_citizen_ids(typed) == kept


async def test_a_resident_typing_an_id_leaves_it_nowhere(app):
    await seed_demo(app)
    resident = Talker(app, "ba-hoa", lang="en")
    await resident.say(f"so cccd cua toi la {CITIZEN_ID} bi sai ten")
    await resident.say(f"/visit sửa thông tin căn cước {CITIZEN_ID}")
    for _ in range(5):
        if await all_rows(app, SupportRequest):
            break
        await resident.press(resident.buttons()[0][1])
    [miss] = await all_rows(app, FaqMiss)
    [request] = await all_rows(app, SupportRequest)
    assert "048*******34" in miss.question and "048*******34" in request.question
    assert await stored_anywhere(app, CITIZEN_ID) == []
