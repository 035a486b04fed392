"""Exports reach a Zalo leader as a download link (Zalo cannot receive files), served by the bot
like the charts: from the database, under an unguessable name, for a day."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import openpyxl
from aiohttp import ClientSession

from bot.app import App
from bot.channels.zalo import DOWNLOAD_NOTE, FILE_NOTE
from bot.config import Settings
from handlers.i18n import translator
from tests.fakes.zalo_api import FakeZaloAPI
from tests.test_zalo import _no_public_url, api, ask, free_port, invite, running, zalo_settings  # noqa: F401

EN = translator("en")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LINK = re.compile(r"https?://\S+")


async def test_a_zalo_leader_downloads_the_export_by_link(zalo_settings: Settings, app: App,  # noqa: F811
                                                          api: FakeZaloAPI, clock: Any,  # noqa: F811
                                                          tmp_path: Path) -> None:
    """With GOCUA_PUBLIC_BASE_URL, /export answers with a link that downloads the XLSX (and the
    CSV) under its own name for 24 hours; a guessed or expired link finds nothing."""
    code = await invite(app, "leader")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with running(zalo_settings, app, api.wait_for("getUpdates"), host="127.0.0.1", port=port,
                       public_url=f"{base}/"):
        await ask(api, "lead", f"/join {code}")  # one message (issue 16 §4)
        await ask(api, "lead", "/lang en")
        answer = await ask(api, "lead", "/export")
        assert EN(FILE_NOTE) not in answer
        assert EN(DOWNLOAD_NOTE, url="") in answer, answer
        [url] = LINK.findall(answer)
        # the file's name says the area and the period (all time: up to today)
        named = r"gocua_phuong-hai-van_den-\d{4}-\d\d-\d\d\.xlsx"
        assert re.fullmatch(rf"{base}/files/[0-9a-f]{{32}}/{named}", url)
        csv_answer = await ask(api, "lead", "/export csv")
        [csv_url] = LINK.findall(csv_answer)
        assert csv_url.endswith(".csv") and csv_url.split("/")[-2] != url.split("/")[-2]
        async with ClientSession() as http:
            async with http.get(url) as resp:
                assert resp.status == 200
                assert resp.content_type == XLSX_TYPE
                saved_as = url.rsplit("/", 1)[1]
                assert resp.headers["Content-Disposition"] == f'attachment; filename="{saved_as}"'
                assert "no-store" in resp.headers["Cache-Control"]
                book = openpyxl.load_workbook(io.BytesIO(await resp.read()))
            assert "Step records" in book.sheetnames
            async with http.get(csv_url) as resp:
                assert resp.status == 200 and resp.content_type == "text/csv"
                assert (await resp.read()).decode("utf-8-sig").startswith("Area,Household,Procedure,Step")
            token = url.split("/")[-2]
            for wrong in (url.replace(token, "0" * 32), f"{base}/files/{token}.xlsx",
                          url.replace(".xlsx", ".csv"), f"{base}/files/{token}/..%2Fx.xlsx"):
                async with http.get(wrong) as resp:
                    assert resp.status == 404, wrong
            clock.advance(hours=25)
            async with http.get(url) as resp:
                assert resp.status == 404
