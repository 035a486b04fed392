"""/invite and /volunteers for a leader on Zalo: options answered by number, the invite sheet
as a photo and a PDF download link (Zalo cannot receive files), the roster paged by number."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import ClientSession

from bot.app import App
from bot.config import Settings
from tests.fakes.zalo_api import FakeZaloAPI
from tests.test_zalo import _no_public_url, api, ask, free_port, invite, number_of, running, zalo_settings  # noqa: F401

LINK = re.compile(r"https?://\S+")


async def test_a_zalo_leader_invites_by_numbers_and_gets_the_sheet(zalo_settings: Settings, app: App,  # noqa: F811
                                                                   api: FakeZaloAPI, clock: Any) -> None:  # noqa: F811
    code = await invite(app, "leader")
    app.core.services.bot_username = "GoCuaTestBot"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with running(zalo_settings, app, api.wait_for("getUpdates"), host="127.0.0.1", port=port,
                       public_url=f"{base}/"):
        await ask(api, "lead", f"/join {code}")
        await ask(api, "lead", "/lang en")
        menu = await ask(api, "lead", "/invite")
        areas = await ask(api, "lead", number_of(menu, "Volunteers"))
        count = await ask(api, "lead", number_of(areas, "Giàn Bí"))
        assert "How many invites for volunteer in Thôn Giàn Bí? Type a number" in count
        assert "[2]" not in count and "2." not in count.split("\n")[-1]  # no "[2] 5" to misread
        photos_before = len(api.calls_to("sendPhoto"))
        answer = await ask(api, "lead", "2", messages=3)  # "2" typed: the number 2, not option 2
        codes = re.findall(r"• ([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})", answer)
        assert len(codes) == 2 and "/start CODE" in answer
        assert len(api.calls_to("sendPhoto")) == photos_before + 1
        pdf_url = next(u for u in LINK.findall(answer) if u.endswith(".pdf"))
        async with ClientSession() as http, http.get(pdf_url) as resp:
            assert resp.status == 200 and resp.content_type == "application/pdf"
            assert (await resp.read()).startswith(b"%PDF")
        roster = await ask(api, "lead", "/volunteers")
        assert "Nguyễn Văn An: 5 households" in roster
        card = await ask(api, "lead", number_of(roster, "Nguyễn Văn An"))
        assert "End the volunteer role" in card
