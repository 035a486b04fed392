"""/import in the chat (issue 17 §2): a leader sends the household spreadsheet, reads the dry
run's report, then imports with a button; on real databases, the file fetched through the
channel's fetcher (a stand-in here; Telegram's getFile in bot/channels/telegram.py)."""

from __future__ import annotations

import io
from dataclasses import replace

import openpyxl
from aiogram.types import Update
from sqlalchemy import func, select

from bot.channels.telegram_render import incoming_from_update
from db.models import AuditLog, Household
from handlers.types import IncomingFile
from tests.chat import Talker, count_rows, payload_of

HEADER = ["Thôn/Tổ", "Chủ hộ", "Địa chỉ / mốc", "Điện thoại", "Thành viên", "Năm sinh"]


def spreadsheet(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def send_file(talker: Talker, ref: str, name: str = "ds.xlsx", size: int = 1000) -> None:
    await talker.send(replace(talker.incoming(), file=IncomingFile(ref, name, size)))


GOOD = [["Thôn Tà Lang", "Hồ Văn Một", "Nhà 1", "0905000001", "Hồ Văn Một", 1970],
        ["Thôn Giàn Bí", "Hồ Văn Hai", "Nhà 2", "", "", ""],
        ["Thôn Tà Lang", "Hồ Văn Ba", "Nhà 3", "0905", "", ""]]  # row 4: a bad phone


async def test_a_leader_imports_a_spreadsheet_after_a_dry_run(demo, people) -> None:
    """/import sends the template; the file gets a report of what would happen (nothing written),
    and "Import 2 households" writes the good rows once."""
    _, lan, _ = people
    files = {"f1": spreadsheet(GOOD)}
    fetched: list[str] = []

    async def fetch(ref: str) -> bytes:
        fetched.append(ref)
        return files[ref]

    demo.core.services.fetch_file["console"] = fetch
    before = await count_rows(demo, Household)
    await lan.say("/import")
    assert "Hải Vân" in lan.text() and lan.last[0].attachment is not None
    template = openpyxl.load_workbook(io.BytesIO(lan.last[0].attachment.data))
    assert template.worksheets[0]["A1"].value == "Thôn/Tổ"

    await send_file(lan, "f1")
    text = lan.text()
    assert "New households: 2" in text and "Row 4, Điện thoại:" in text and "Nothing is written yet" in text
    assert await count_rows(demo, Household) == before  # the dry run was rolled back
    go = payload_of(lan, "Import 2 households")

    await lan.press(go)
    assert "New households: 2." in lan.text() and "Rejected rows left out: 1." in lan.text()
    assert await count_rows(demo, Household) == before + 2 and fetched == ["f1", "f1"]
    await lan.press(go)  # pressed again: the offer is gone
    assert await count_rows(demo, Household) == before + 2
    async with demo.db.transaction() as session:
        audits = await session.scalar(select(func.count()).select_from(AuditLog)
                                      .where(AuditLog.action == "households.import"))
    assert audits == 1


async def test_files_outside_the_dialog_and_hostile_files_are_answered(demo, people) -> None:
    """A file without /import, a volunteer's /import, junk and a file too large: each a clear
    answer and nothing written."""
    an, lan, _ = people

    async def fetch(ref: str) -> bytes:
        return b"\x89PNG\r\n\x1a\n" + bytes(100)

    demo.core.services.fetch_file["console"] = fetch
    before = await count_rows(demo, Household)
    await send_file(lan, "x")
    assert "/import" in lan.text()
    await an.say("/import")
    assert "not available to you" in an.text()
    await lan.say("/import")
    await send_file(lan, "x", name="anh.png")
    assert "not a spreadsheet" in lan.text()
    await send_file(lan, "x", size=60 * 1024 * 1024)
    assert "too large (60 MB" in lan.text()
    await lan.say("/cancel")
    assert "nothing was written" in lan.text()
    assert await count_rows(demo, Household) == before


async def test_a_forged_import_button_for_another_area_is_refused(demo, people) -> None:
    """An import button naming an area that is not the leader's does nothing and is audited."""
    _, lan, _ = people
    async with demo.db.transaction() as session:
        from db.repo.areas import area_by_code

        other = await area_by_code(session, "danang.hoa-xuan")
        assert other is not None
    await lan.press(f"imp:{other.id}:go")
    assert "out of date" in lan.text()


def test_telegram_documents_become_files_of_the_update() -> None:
    """A document in a private Telegram chat reaches the core as a file reference, not text."""
    update = Update.model_validate({"update_id": 7, "message": {
        "message_id": 1, "date": 0, "chat": {"id": 42, "type": "private"},
        "from": {"id": 42, "is_bot": False, "first_name": "Lan"},
        "document": {"file_id": "BQAC", "file_unique_id": "u1", "file_name": "ds.xlsx", "file_size": 1234},
    }})
    incoming = incoming_from_update(update)
    assert incoming is not None and incoming.file == IncomingFile("BQAC", "ds.xlsx", 1234)
    assert not incoming.unsupported and incoming.text is None


async def test_by_village_assignment_prefers_the_villages_own_volunteers(demo) -> None:
    """--assign by-village gives a village's households to the volunteers invited to that
    village, the least loaded first, and warns when one goes past 20."""
    from datetime import date

    from conversations.household_sheet import parse_households
    from conversations.sheet_file import read_table
    from db.models import Membership, User
    from db.repo.areas import area_by_code
    from db.repo.household_import import OVERLOADED, import_households

    now = demo.core.services.clock()
    rows = [["Thôn Tà Lang", f"Hồ Văn {chr(65 + i % 26)}{chr(97 + i // 26)}", f"Nhà {i}", "", "", ""]
            for i in range(30)]
    rows += [["Thôn Giàn Bí", f"Lê Văn {chr(65 + i)}", f"Nhà {i}", "", "", ""] for i in range(4)]
    sheet = parse_households(read_table(spreadsheet(rows)), date(2026, 12, 5), str)
    async with demo.db.transaction() as session:
        ward = await area_by_code(session, "danang.hai-van")
        ta_lang = await area_by_code(session, "danang.hai-van.ta-lang")
        gian_bi = await area_by_code(session, "danang.hai-van.gian-bi")
        assert ward and ta_lang and gian_bi
        people = [User(display_name=name, created_at=now) for name in ("Tà Lang 1", "Tà Lang 2", "Giàn Bí 1")]
        session.add_all(people)
        await session.flush()
        session.add_all(Membership(user_id=u.id, area_id=a.id, role="volunteer", granted_at=now)
                        for u, a in zip(people, (ta_lang, ta_lang, gian_bi), strict=True))
        await session.flush()
        report = await import_households(session, ward, sheet, now=now, assign="by-village")
        ids = [u.id for u in people]
        loads = dict((await session.execute(
            select(Household.volunteer_id, func.count()).where(Household.volunteer_id.in_(ids))
            .group_by(Household.volunteer_id))).all())
    assert report.imported == 34 and report.assigned == 34
    assert [loads.get(u.id) for u in people] == [15, 15, 4]
    assert not any(w.msgid == OVERLOADED for w in report.warnings)


async def test_where_no_file_can_come_in_import_says_where_to_go(demo, people) -> None:
    """On the console (and Zalo) no document reaches the bot: /import says where a list can be
    sent instead of waiting for a file that cannot come."""
    _, lan, _ = people
    await lan.say("/import")
    assert "Telegram" in lan.text() and "administrator to import for Phường Hải Vân" in lan.text()
    await lan.say("1")
    assert "Send the spreadsheet as a file" not in lan.text()
