"""/volunteers: a leader sees who works and who does not, pages through 70+ volunteers, hands a
volunteer's households over and ends their role; all within the leader's own areas."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from db.models import Area, AuditLog, FlowRun, Household, Identity, Membership, StepRecord, User
from db.repo.roster import roster
from handlers.buttons import RosterButton
from tests.chat import Talker, all_rows, count_rows, payload_of
from tests.test_cli import gocua


async def _ids(app) -> tuple[dict[str, int], dict[str, int]]:
    """(area code -> id, console name -> user id) of the demo."""
    async with app.db.transaction() as session:
        areas = dict(list(await session.execute(select(Area.code, Area.id))))
        users = dict(list(await session.execute(
            select(Identity.external_id, Identity.user_id).where(Identity.channel == "console"))))
    return areas, users


async def _add_volunteers(app, clock, area_code: str, names: list[str]) -> dict[str, int]:
    """Volunteers (console accounts) with a volunteer role in `area_code`; name -> user id."""
    made = {}
    async with app.db.transaction() as session:
        area_id = await session.scalar(select(Area.id).where(Area.code == area_code))
        for name in names:
            user = User(display_name=name, created_at=clock())
            session.add(user)
            await session.flush()
            session.add(Identity(user_id=user.id, channel="console", external_id=name, created_at=clock()))
            session.add(Membership(user_id=user.id, area_id=area_id, role="volunteer", granted_at=clock()))
            made[name] = user.id
    return made


async def _record_step(app, clock, household_code: str, user_id: int, step: str = "s1") -> None:
    """One step recorded by `user_id` at the household, now."""
    async with app.db.transaction() as session:
        household = await session.scalar(select(Household).where(Household.code == household_code))
        assert household is not None
        run = FlowRun(flow_id="vneid", flow_version=1, household_id=household.id, area_id=household.area_id,
                      volunteer_id=user_id, status="active", state={}, started_at=clock(), updated_at=clock())
        session.add(run)
        await session.flush()
        session.add(StepRecord(run_id=run.id, flow_id="vneid", area_id=household.area_id, step_id=step,
                               attempt=1, outcome="done", user_id=user_id, recorded_at=clock()))
        household.last_step_at = clock()


async def _lan(demo) -> Talker:
    lan = Talker(demo, "lan", lang="en")
    await lan.say("/lang en")
    return lan


async def test_roster_shows_the_figures_and_puts_the_inactive_first(demo, clock):
    """an (5 households) recorded steps this week; the two newcomers never did: they come first,
    marked, and an's line says 5 households, 2 reached, 3 steps this week."""
    await _add_volunteers(demo, clock, "danang.hai-van.ta-lang", ["Zơ Râm Mới", "Alăng Hai"])
    _, users = await _ids(demo)
    await _record_step(demo, clock, "HV-TL-001", users["an"])
    clock.advance(days=20)
    await _record_step(demo, clock, "HV-TL-002", users["an"], "s1")
    await _record_step(demo, clock, "HV-TL-002", users["an"], "s2")
    await _record_step(demo, clock, "HV-TL-002", users["an"], "s3")
    lan = await _lan(demo)
    await lan.say("/volunteers")
    text = lan.text()
    assert "3, of whom 2 inactive" in text
    lines = [line for line in text.splitlines() if line.startswith("• ")]
    assert len(lines) == 3 and lines[0].startswith("• ⚠️ ") and lines[1].startswith("• ⚠️ ")
    assert "Nguyễn Văn An: 5 households, 2 reached, 3 steps this week" in lines[2]
    assert "never" in lines[0] and "⚠️" not in lines[2]


async def test_seventy_five_volunteers_are_paged_with_buttons_and_numbers(demo, clock):
    """76 volunteers: 8 pages of 10; "Next page" pages on; on the console (numbered, like Zalo)
    typing the number of "Next page" does too."""
    await _add_volunteers(demo, clock, "danang.hai-van", [f"TNV {i:02d}" for i in range(75)])
    lan = await _lan(demo)
    await lan.say("/volunteers hai van")
    assert "Page 1 of 8" in lan.text()
    assert len([b for b in lan.buttons() if b[1].startswith("vol:") and ":u:" in b[1]]) == 10
    await lan.press(payload_of(lan, "Next page"))
    assert "Page 2 of 8" in lan.text() and "TNV 09" in lan.text() and "TNV 08" not in lan.text()
    labels = [label for label, _ in lan.buttons()]
    await lan.say(str(labels.index("Next page ▶") + 1))  # the option's number, as on Zalo
    assert "Page 3 of 8" in lan.text()
    for _ in range(5):
        await lan.press(payload_of(lan, "Next page"))
    assert "Page 8 of 8" in lan.text() and lan.text().count("\n• ") == 6
    assert not any("Next page" in label for label in [b[0] for b in lan.buttons()])


async def test_hand_over_to_one_volunteer_then_end_the_role(demo, clock):
    """Ending an's role is refused while he has households; handed over to Bắc, it ends: the
    membership goes, the user and his records stay, and both are audited."""
    made = await _add_volunteers(demo, clock, "danang.hai-van", ["Hồ Văn Bắc"])
    areas, users = await _ids(demo)
    await _record_step(demo, clock, "HV-TL-001", users["an"])
    ward = areas["danang.hai-van"]
    lan = await _lan(demo)
    await lan.press(RosterButton(ward, "end", str(users["an"])).pack())
    assert "still looks after 5 households" in lan.text()
    await lan.press(RosterButton(ward, "endok", str(users["an"])).pack())  # forged past the question
    assert "still looks after 5 households" in lan.text()
    assert await count_rows(demo, Membership, Membership.user_id == users["an"]) == 1
    await lan.press(payload_of(lan, "Hand over to one volunteer"))
    await lan.press(payload_of(lan, "Hồ Văn Bắc"))
    assert "5 households of Nguyễn Văn An are now looked after by Hồ Văn Bắc" in lan.text()
    assert await count_rows(demo, Household, Household.volunteer_id == made["Hồ Văn Bắc"]) == 5
    # The procedure an had open there goes with the household: its reminders reach Bắc now.
    assert await count_rows(demo, FlowRun, FlowRun.volunteer_id == made["Hồ Văn Bắc"]) == 1
    assert await count_rows(demo, StepRecord, StepRecord.user_id == users["an"]) == 1  # history stays his
    await lan.press(RosterButton(ward, "end", str(users["an"])).pack())
    await lan.press(payload_of(lan, "Yes, end the role"))
    assert "no longer a volunteer" in lan.text()
    # An is told in his own chat, in his language, and his "/" menu becomes a resident's.
    [told] = [r for r in lan.last if r.to is not None]
    assert (told.to.channel, told.to.chat_id) == ("console", "an")
    assert told.text.startswith("Vai trò tình nguyện viên của bạn ở Phường Hải Vân đã kết thúc.")
    assert told.menu == ("resident", "vi")
    assert await count_rows(demo, Membership, Membership.user_id == users["an"]) == 0
    assert await count_rows(demo, User, User.id == users["an"]) == 1
    assert await count_rows(demo, StepRecord, StepRecord.user_id == users["an"]) == 1
    ended = await all_rows(demo, AuditLog, AuditLog.action == "role.end")
    assert len(ended) == 1 and ended[0].target == f"user:{users['an']}"
    assert await count_rows(demo, AuditLog, AuditLog.action == "household.reassign") == 5
    an = Talker(demo, "an", lang="en")
    await an.say("/households")
    assert "not available to you" in an.text()


async def test_spread_gives_each_household_to_a_volunteer_of_its_village(demo, clock):
    made = await _add_volunteers(demo, clock, "danang.hai-van.ta-lang", ["TL Một", "TL Hai"])
    made |= await _add_volunteers(demo, clock, "danang.hai-van.gian-bi", ["GB Một"])
    areas, users = await _ids(demo)
    lan = await _lan(demo)
    await lan.press(RosterButton(areas["danang.hai-van"], "u", str(users["an"])).pack())
    await lan.press(payload_of(lan, "Spread"))
    assert "5 households of Nguyễn Văn An handed over" in lan.text()
    rows = {h.code: h.volunteer_id for h in await all_rows(demo, Household, Household.code.like("HV-%"))}
    assert {rows["HV-GB-001"], rows["HV-GB-002"]} == {made["GB Một"]}
    assert sorted(rows[c] for c in ("HV-TL-001", "HV-TL-002", "HV-TL-003")).count(made["TL Một"]) in (1, 2)
    assert {rows[c] for c in ("HV-TL-001", "HV-TL-002", "HV-TL-003")} == {made["TL Một"], made["TL Hai"]}


async def test_scope_is_checked_on_the_server(demo, clock):
    """Another ward's roster, a volunteer of another ward, a receiver from another ward: refused
    and audited, nothing changes. Volunteers have no /volunteers."""
    areas, users = await _ids(demo)
    lan = await _lan(demo)
    await lan.press(RosterButton(areas["danang.hoa-xuan"], "p", "0").pack())
    assert "not among yours" in lan.text()
    await lan.press(RosterButton(areas["danang.hai-van"], "u", str(users["binh"])).pack())
    assert "not a volunteer of" in lan.text()
    await lan.press(RosterButton(areas["danang.hai-van"], "to", f"{users['an']}:{users['binh']}").pack())
    assert "out of date" in lan.text()
    await lan.press("vol:99999999999:p:0")
    assert "not among yours" in lan.text()
    assert await count_rows(demo, Household, Household.volunteer_id == users["binh"]) == 2
    assert await count_rows(demo, AuditLog, AuditLog.action == "access.denied") == 4
    an = Talker(demo, "an", lang="en")
    await an.say("/volunteers")
    assert "not available to you" in an.text()


async def test_roster_repository_counts_only_the_area(demo, clock):
    """Hòa Xuân's roster is Bình alone, with her 2 households."""
    async with demo.db.transaction() as session:
        area = await session.scalar(select(Area).where(Area.code == "danang.hoa-xuan"))
        lines = await roster(session, area, clock() + timedelta(days=1))  # type: ignore[arg-type]
    assert [(line.name, line.households, line.reached) for line in lines] == [("Trần Thị Bình", 2, 0)]


def test_cli_volunteers_list(tmp_path, demo_cli):
    result = gocua(tmp_path, "volunteers", "list", "--area", "danang.hai-van", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["area"]["code"] == "danang.hai-van"
    assert [(v["name"], v["households"], v["inactive"]) for v in data["volunteers"]] == [
        ("Nguyễn Văn An", 5, True)]
    text = gocua(tmp_path, "volunteers", "list", "--area", "danang.hai-van", "--lang", "en")
    assert "1. ⚠️ Nguyễn Văn An: 5 households" in text.stdout
    missing = gocua(tmp_path, "volunteers", "list", "--area", "nowhere")
    assert missing.returncode == 2 and "nowhere" in missing.stderr
