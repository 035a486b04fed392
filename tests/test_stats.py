"""/stats, /target and /export as leaders use them, on real databases: figures, scope, periods,
drop-off, chart, targets, exports and the audit log."""

from __future__ import annotations

import csv
import io
import zipfile

import openpyxl
import pytest
from sqlalchemy import select

from bot.stats_json import area_stats_json
from conversations.flow_order import in_flow_order
from db.models import Area, AuditLog, Household
from db.repo.stats import area_stats
from handlers.buttons import StatsButton
from handlers.validation import VIETNAM
from tests.chat import Talker, all_rows, count_rows, payload_of
from tests.test_flow_runs import RC_PATH, start_flow, step
from tests.test_households import CITIZEN_ID


async def area_id(app, code: str) -> int:
    async with app.db.transaction() as session:
        return int(await session.scalar(select(Area.id).where(Area.code == code)))


async def complete_rc(an: Talker, code: str) -> None:
    await start_flow(an, code, "residence_confirmation")
    for label, _step_id in RC_PATH:
        await step(an, label)


async def block_vneid(an: Talker, code: str, reason: str = "No smartphone") -> None:
    await start_flow(an, code, "vneid")
    await step(an, "Yes, chip card")
    await step(an, "Problem")
    await step(an, reason)


async def test_stats_counts_what_volunteers_recorded(demo, people, clock):
    an, lan, _ = people
    await complete_rc(an, "HV-TL-001")
    await block_vneid(an, "HV-TL-002")
    households = await count_rows(demo, Household, Household.code.like("HV-%"))

    await lan.say("/stats")
    text = lan.text()
    assert "Hải Vân" in text and "last 30 days" in text
    assert f"Households: {households}" in text
    assert f"Reached: 2 ({round(200 / households)}%)" in text
    assert "Residence confirmation (CT07): 1 / 1 / 0" in text
    assert "VNeID account (level 1 / level 2): 1 / 0 / 1" in text
    assert "Problems reported: 1 — No smartphone (1)" in text
    assert "Volunteers: " in text and "active in the last 7 days: 1" in text
    # Sub-areas are buttons; the leader's own area has no way up (Đà Nẵng is not hers).
    labels = [label for label, _ in lan.buttons()]
    assert any(label.startswith("Thôn Tà Lang") for label in labels)
    assert not any(label.startswith("⬆️") for label in labels)

    [ta_lang] = [label for label in labels if label.startswith("Thôn Tà Lang")]
    await lan.press(payload_of(lan, "Thôn Tà Lang"))
    assert "Thôn Tà Lang" in lan.text() and "Reached: 2" in lan.text()
    # The button shows the share the sub-area's own summary shows (both rounded the same way).
    assert ta_lang.endswith(lan.text().split("Reached: 2 ", 1)[1].split(")", 1)[0] + ")")
    up = payload_of(lan, "⬆️")
    await lan.press(up)
    assert "📊 Phường Hải Vân" in lan.text() or "Hải Vân ·" in lan.text()


async def test_periods_count_activity_inside_them(demo, people, clock):
    an, lan, _ = people
    await complete_rc(an, "HV-TL-001")
    clock.advance(days=40)
    await lan.say("/stats")
    assert "Reached: 0" in lan.text()
    assert "No procedures in this period yet." in lan.text()
    await lan.press(payload_of(lan, "All time"))
    assert "Reached: 1" in lan.text() and "Residence confirmation (CT07): 1 / 1 / 0" in lan.text()
    assert any(label.startswith("✓ All time") for label, _ in lan.buttons())


async def test_a_leader_never_sees_outside_her_area(demo, people):
    an, lan, _ = people
    hoa_xuan = await area_id(demo, "danang.hoa-xuan")
    await lan.say("/stats danang.hoa-xuan")
    assert "There is no area danang.hoa-xuan among yours" in lan.text()
    await lan.say("/stats danang")
    assert "There is no area danang among yours" in lan.text()
    # Forged buttons: another area, a chart of it, its export, its targets.
    forged_buttons = (f"st:{hoa_xuan}:30d", f"st:{hoa_xuan}:all:c", f"st:{hoa_xuan}:all:x:csv",
                      f"tg:{hoa_xuan}:households")
    for forged in forged_buttons:
        await lan.press(forged)
        assert lan.text() == "This area is not among yours.", forged
        assert not any(r.attachment for r in lan.last)
    denied = await all_rows(demo, AuditLog, AuditLog.action == "access.denied")
    assert len(denied) == 4 and all(d.target == f"area:{hoa_xuan}" for d in denied)
    # A volunteer has no /stats at all, and a forged stats button is refused and audited.
    await an.say("/stats")
    assert "not available to you" in an.text()
    await an.press(f"st:{await area_id(demo, 'danang.hai-van')}:30d")
    assert "not available to you" in an.text()
    assert await count_rows(demo, AuditLog, AuditLog.action == "access.denied") == 5


async def test_admin_drills_from_the_city_down(demo, people):
    an, _, admin = people
    await complete_rc(an, "HV-TL-001")
    await admin.say("/stats")
    assert "Đà Nẵng" in admin.text()
    await admin.press(payload_of(admin, "Phường Hải Vân"))
    assert "Reached: 1" in admin.text()
    await admin.press(payload_of(admin, "⬆️"))
    assert "Đà Nẵng" in admin.text()
    await admin.say("/stats ta-lang")
    assert "Thôn Tà Lang" in admin.text()


async def test_drop_off_per_step(demo, people):
    an, lan, _ = people
    await complete_rc(an, "HV-TL-001")
    await start_flow(an, "HV-TL-002", "residence_confirmation")
    await step(an, "Continue")  # then waits at "channel"
    await lan.say("/stats hai-van residence_confirmation")
    lines = lan.text().splitlines()
    assert "Residence confirmation (CT07)" in lines[0]
    first, second = lines[2], lines[3]
    assert first.startswith("1. ") and first.endswith(": 2 → 2")
    assert second.startswith("2. ") and ": 2 → 1 (1 waiting)" in second
    # The same through buttons.
    await lan.say("/stats")
    await lan.press(payload_of(lan, "Steps"))
    await lan.press(payload_of(lan, "Residence confirmation"))
    assert ": 2 → 1 (1 waiting)" in lan.text()


async def test_chart_is_a_png_photo(demo, people):
    an, lan, _ = people
    await complete_rc(an, "HV-TL-001")
    await lan.say("/stats")
    await lan.press(payload_of(lan, "Chart"))
    [reply] = lan.last
    assert reply.attachment is not None and reply.attachment.kind == "photo"
    assert reply.attachment.data.startswith(b"\x89PNG\r\n\x1a\n")


async def test_targets_by_chat(demo, people):
    _, lan, _ = people
    await lan.say("/target households 40")
    assert "Target set: households to reach in Phường Hải Vân: 40." in lan.text()
    await lan.say("/stats")
    assert "target 40: 0%" in lan.text()
    await lan.press(payload_of(lan, "Targets"))
    await lan.press(payload_of(lan, "digital-ready"))
    await lan.say("many")
    assert "whole number" in lan.text()
    await lan.say("1.200")
    assert "1,200" in lan.text()
    [area] = await all_rows(demo, Area, Area.code == "danang.hai-van")
    assert (area.target_households, area.target_digital_ready) == (40, 1200)
    changes = await all_rows(demo, AuditLog, AuditLog.action == "target.set")
    assert [c.details["to"] for c in changes] == [40, 1200]
    await lan.say("/target households 0")
    [area] = await all_rows(demo, Area, Area.code == "danang.hai-van")
    assert area.target_households is None


def unzipped(xlsx: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(xlsx)) as archive:
        return "".join(archive.read(name).decode("utf-8", "replace") for name in archive.namelist())


async def test_export_in_chat_is_a_spreadsheet_without_citizen_ids(demo, people):
    an, lan, _ = people
    await an.say("/household HV-TL-001")
    await an.press(payload_of(an, "Add a member"))
    for answer in ("Alăng Thị Nga", "1990", CITIZEN_ID):
        await an.say(answer)
    assert "Alăng Thị Nga added" in an.text()
    await complete_rc(an, "HV-TL-001")
    await block_vneid(an, "HV-TL-002")
    await lan.say("/export")
    [reply] = lan.last
    assert reply.attachment is not None and reply.attachment.filename.endswith(".xlsx")
    book = openpyxl.load_workbook(io.BytesIO(reply.attachment.data))
    records = book["Step records"]
    rows = list(records.iter_rows(values_only=True))
    assert rows[0][:3] == ("Area", "Household", "Procedure")
    assert len(rows) - 1 == 5 + 2  # five RC steps; VNeID: the chip-card choice and the Problem
    assert {r[1] for r in rows[1:]} == {"HV-TL-001", "HV-TL-002"}
    assert any(r[4] == "problem" and r[6] == "No smartphone" for r in rows[1:])
    assert "Phường Hải Vân" in book.sheetnames and "Unanswered questions" in book.sheetnames
    content = unzipped(reply.attachment.data)
    assert CITIZEN_ID not in content and "******" not in content
    [audit] = await all_rows(demo, AuditLog, AuditLog.action == "export")
    assert audit.details["rows"] == 7 and audit.target == "area:danang.hai-van"

    await lan.say("/stats")
    await lan.press(payload_of(lan, "CSV"))
    rows = list(csv.reader(io.StringIO(lan.last[0].attachment.data.decode("utf-8-sig"))))
    assert len(rows) == 1 + 7 and rows[0][0] == "Area"
    assert CITIZEN_ID.encode() not in lan.last[0].attachment.data
    assert await count_rows(demo, AuditLog, AuditLog.action == "export") == 2


async def test_the_picker_stats_and_export_list_procedures_in_one_order(demo, people):
    """conversations/flow_order.py is the one order: the household's procedure picker, /flows,
    the /stats summary and drop-off menu, the export's summary sheet and the JSON agree."""
    an, lan, _ = people
    await complete_rc(an, "HV-TL-001")  # residence_confirmation before vneid by id, after by order
    await block_vneid(an, "HV-TL-002")
    await start_flow(an, "HV-TL-003", "birth_registration")
    flows = demo.core.services.flows
    title = {flow_id: flows.latest(flow_id).title for flow_id in flows.ids()}
    in_order = in_flow_order(flows.ids())
    assert in_order[:2] == ["vneid", "public_service_account"] and in_order != sorted(in_order)

    await an.say("/household HV-TL-001")
    await an.press(payload_of(an, "Start a procedure"))
    picker = [p.rsplit(":flow:", 1)[1] for _, p in an.buttons() if ":flow:" in p]
    assert picker == in_order
    await an.say("/flows")
    listed = [line[2:].split(" — ")[0] for line in an.text().splitlines() if line.startswith("• ")]
    assert listed == [title[f] for f in in_order]

    await lan.say("/stats")
    section = lan.text().split("Procedures (started in the period", 1)[1].split("\n\n", 1)[0]
    summary = [line[2:].rsplit(": ", 1)[0] for line in section.splitlines() if line.startswith("• ")]
    started = ["vneid", "residence_confirmation", "birth_registration"]
    assert summary == [title[f] for f in in_order if f in started]
    await lan.press(payload_of(lan, "Steps"))
    menu = [StatsButton.unpack(p).arg for _, p in lan.buttons() if p.startswith("st:")]
    assert [f for f in menu if f] == in_order

    await lan.say("/export")
    book = openpyxl.load_workbook(io.BytesIO(lan.last[0].attachment.data))
    suffix = ": started in the period"
    sheet = [str(r[0])[: -len(suffix)] for r in book["Phường Hải Vân"].iter_rows(values_only=True)
             if str(r[0]).endswith(suffix)]
    assert sheet == [title[f] for f in in_order if f in started]

    async with demo.db.read_session() as session:
        [area] = (await session.scalars(select(Area).where(Area.code == "danang.hai-van"))).all()
        stats = await area_stats(session, area, now=demo.core.services.clock(), since=None, tz=VIETNAM)
    assert list(area_stats_json(stats)["flows"]) == [f for f in in_order if f in started]


async def test_the_city_scale_query_plans_count_the_same(app, clock, monkeypatch):
    """A city's report reads its runs differently (whole indexes, not area by area); the
    figures must be exactly those of the ward-sized plan, all time and for a period."""
    from bot.seed_synthetic import seed_synthetic
    from db.repo import stats as stats_repo
    from handlers.stats_text import since_of
    from handlers.validation import VIETNAM

    await seed_synthetic(app.db, 400, seed=5, now=clock(), flows=app.core.services.flows)
    results = {}
    for threshold in (10**9, 0):
        monkeypatch.setattr(stats_repo, "LARGE_SCOPE_HOUSEHOLDS", threshold)
        async with app.db.read_session() as session:
            city = await session.scalar(select(Area).where(Area.code == "hue"))
            results[threshold] = [
                area_stats_json(await stats_repo.area_stats(session, city, now=clock(), since=since,
                                                            tz=VIETNAM))
                for since in (None, since_of("30d", clock()))
            ]
    assert results[0] == results[10**9]
    all_time = results[0][0]
    assert all_time["residents_supported"] > 0 and all_time["volunteers_active_7d"] > 0
    assert sum(w["completed"] for w in all_time["weekly_completed"]) > 0


async def test_a_leader_of_two_areas_picks_one(demo, people, clock):
    from db.repo.invites import create_invite

    _, lan, _ = people
    async with demo.db.transaction() as session:
        hoa_xuan = await session.scalar(select(Area).where(Area.code == "danang.hoa-xuan"))
        invite = await create_invite(session, role="leader", area=hoa_xuan, now=clock())
    await lan.say(f"/join {invite.code}")
    await lan.say("/stats")
    assert lan.text() == "Which area?"
    labels = [label for label, _ in lan.buttons()]
    assert len(labels) == 2 and any("Hải Vân" in x for x in labels) and any("Xuân" in x for x in labels)
    await lan.press(lan.buttons()[0][1])
    assert "📊" in lan.text()
    await lan.say("/target households 30")
    assert "You lead several areas" in lan.text()
    await lan.say("/target hoa-xuan households 30")
    assert "Target set" in lan.text() and "30" in lan.text()
    await lan.say("/export")
    assert lan.text() == "Which area?" and all(":x:xlsx" in p for _, p in lan.buttons())


async def test_drop_off_counts_runs_stopped_with_cancel(demo, people):
    an, lan, _ = people
    await start_flow(an, "HV-TL-001", "residence_confirmation")
    await step(an, "Continue")
    await an.say("/cancel")  # stops the run at its second step; no step record for it
    await an.say("2")  # abandon it
    await lan.say("/stats hai-van residence_confirmation")
    second = lan.text().splitlines()[3]
    assert second.startswith("2. ") and ": 1 → 0 (1 stopped)" in second, lan.text()


@pytest.mark.parametrize("typed", ["ta lang", "Tà Lang", "Thôn Tà Lang", "thon ta lang", "ta-lang",
                                   "danang.hai-van.ta-lang", "TA LANG"])
async def test_stats_finds_a_village_by_its_name_typed_any_way(demo, people, typed):
    """`/stats ta lang` finds "Thôn Tà Lang": a code, its last part or the name, with or without
    diacritics, case or the level word."""
    _, lan, _ = people
    await lan.say(f"/stats {typed}")
    assert lan.text().startswith("📊 Thôn Tà Lang"), lan.text()


async def test_stats_by_name_stays_inside_the_leaders_scope(demo, people):
    """A name outside the leader's areas is not found, however it is typed."""
    _, lan, _ = people
    for typed in ("hoa xuan", "Phường Hòa Xuân", "da nang"):
        await lan.say(f"/stats {typed}")
        assert "among yours" in lan.text(), typed


async def test_the_one_plus_twenty_line_is_in_the_leaders_language(demo):
    """The 1+20 line is a plural; Babel once extracted it without its plural, and Vietnamese
    leaders read it in English."""
    from tests.chat import Talker

    lan = Talker(demo, "lan")
    await lan.say("/stats")
    assert "1+20: đã phân công" in lan.text() and "households assigned" not in lan.text()
