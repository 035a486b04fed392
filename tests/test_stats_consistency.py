"""Statistics that never contradict themselves (issue 12 §3), each pinned by what was seen:
blocked runs against problems reported, a village's volunteers, the chart's periods, small
shares and targets summed from sub-areas — in the text, the buttons, the chart and the JSON."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.stats_json import area_stats_json
from db.models import Area, Household
from db.repo.stats import area_stats
from handlers.validation import VIETNAM
from tests.chat import Talker, payload_of
from tests.test_flow_runs import RC_PATH, start_flow, step


async def stats_json(app, code: str | None, *, since=None) -> dict:
    """What `gocua stats [--area CODE] --json` prints (the same function, in this process)."""
    async with app.db.read_session() as session:
        area = None if code is None else await session.scalar(select(Area).where(Area.code == code))
        stats = await area_stats(session, area, now=app.core.services.clock(), since=since, tz=VIETNAM,
                                 all_name="All areas")
    return area_stats_json(stats)


async def birth_registration_with_two_problems(an: Talker, code: str, *, finish: bool) -> None:
    """A Problem on a step the procedure goes on without, then a Problem that stops it; retried
    and finished when `finish`."""
    await start_flow(an, code, "birth_registration")
    await step(an, "Continue")
    await an.say("01/11/2026")
    await step(an, "Where the mother lives")
    await step(an, "Problem")
    await step(an, "Birth certificate (giấy")
    await step(an, "Continue")
    await step(an, "In the VNeID app")
    await step(an, "Problem")
    await step(an, "No network")
    assert "Stopped here because of a problem" in an.text()
    if not finish:
        return
    await an.say(f"/household {code}")
    await an.press(payload_of(an, "🔁"))
    for label in ("Done", "Continue", "Done"):
        await step(an, label)
    assert "Procedure finished." in an.text()


async def test_problems_reported_are_told_apart_from_runs_blocked_now(demo, people):
    """A finished run with two Problems reads 0 blocked now and 2 problems reported, each labelled."""
    an, lan, _ = people
    await birth_registration_with_two_problems(an, "HV-TL-001", finish=True)
    await lan.say("/stats")
    text = lan.text()
    assert "Procedures (started in the period / completed / blocked now):" in text
    assert "Birth registration online (linked group): 1 / 1 / 0" in text
    assert "Blocked by" not in text
    assert ("Problems reported: 2 — Birth certificate (giấy chứng sinh) missing (1), "
            "No network / weak signal (1)") in text
    figures = (await stats_json(demo, "danang.hai-van"))["flows"]["birth_registration"]
    assert (figures["started"], figures["completed"], figures["blocked"]) == (1, 1, 0)
    assert figures["problems_reported"] == 2
    assert {r["reason"]: r["count"] for r in figures["top_problem_reasons"]} == {
        "Birth certificate (giấy chứng sinh) missing": 1, "No network / weak signal": 1}

    await lan.say("/stats hai-van birth_registration")  # per step: the Problem, not "blocked"
    [documents] = [line for line in lan.text().splitlines() if "Get ready: the original birth" in line]
    assert documents.endswith(": 1 → 1 (1 with a problem)") and "blocked" not in lan.text()

    # A second run left standing on its problem is blocked now.
    await birth_registration_with_two_problems(an, "HV-TL-002", finish=False)
    await lan.say("/stats")
    assert "Birth registration online (linked group): 2 / 1 / 1" in lan.text()
    assert "Problems reported: 4 — " in lan.text()
    figures = (await stats_json(demo, "danang.hai-van"))["flows"]["birth_registration"]
    assert (figures["started"], figures["completed"], figures["blocked"], figures["problems_reported"]) \
        == (2, 1, 1, 4)


async def test_a_village_counts_the_volunteer_who_looks_after_its_households(demo, people):
    """Tà Lang, whose households An looks after, has one volunteer, the one active there, and 1+20 room."""
    an, lan, _ = people
    await start_flow(an, "HV-TL-001", "residence_confirmation")
    await step(an, "Continue")
    await lan.say("/stats ta-lang")
    text = lan.text()
    assert "Volunteers: 1, active in the last 7 days: 1" in text
    assert "1 volunteer × 20 = 20 households" in text
    assert "needed for 1+20" not in text
    village = await stats_json(demo, "danang.hai-van.ta-lang")
    figures = (village["volunteers"], village["volunteers_active_7d"], village["volunteer_capacity"])
    assert figures == (1, 1, 20)
    # The ward counts An once, whether through his role or his households.
    assert (await stats_json(demo, "danang.hai-van"))["volunteers"] == 1


async def test_the_chart_titles_state_the_period_their_bars_cover(demo, people, monkeypatch):
    """The weekly bars are titled with their twelve weeks, the target bars with the chosen period."""
    import reports.chart as chart

    an, lan, _ = people
    drawn = []
    real = chart.render_progress_chart

    def capture(text, weeks, bars):
        drawn.append((text, weeks, bars))
        return real(text, weeks, bars)

    monkeypatch.setattr(chart, "render_progress_chart", capture)
    await start_flow(an, "HV-TL-001", "residence_confirmation")
    for label, _step_id in RC_PATH:
        await step(an, label)
    await lan.say("/stats")
    await lan.press(payload_of(lan, "Chart"))
    [(text, weeks, _bars)] = drawn
    assert len(weeks) == 12
    assert "last 30 days" not in text.title + text.weekly_title
    assert "12 weeks" in text.weekly_title
    assert weeks[0].label in text.weekly_title and "20/11" in text.weekly_title  # first Monday → today
    assert "last 30 days" in text.target_title
    await lan.press(payload_of(lan, "Back"))
    await lan.press(payload_of(lan, "All time"))
    await lan.press(payload_of(lan, "Chart"))
    assert "12 weeks" in drawn[-1][0].weekly_title and "all time" in drawn[-1][0].target_title


async def test_one_household_in_three_hundred_is_less_than_one_percent_not_zero(demo, people, clock):
    """1 of 300 reads "<1%" in the text, on the sub-area's button and on the chart's bar."""
    from reports.chart import ChartText, TargetBar, build_progress_figure

    an, lan, _ = people
    async with demo.db.transaction() as session:
        ta_lang = await session.scalar(select(Area).where(Area.code == "danang.hai-van.ta-lang"))
        session.add_all(Household(code=f"HV-TL-X{i:03d}", area_id=ta_lang.id, head_name="Hộ thử",
                                  address="Tà Lang", created_at=clock()) for i in range(297))
    await start_flow(an, "HV-TL-001", "residence_confirmation")
    await step(an, "Continue")
    await lan.say("/target ta-lang households 300")
    await lan.say("/stats ta-lang")
    assert "Households: 300" in lan.text()
    assert "Reached: 1 (<1%) · target 300: <1%" in lan.text()
    await lan.press(payload_of(lan, "⬆️"))
    assert "• Thôn Tà Lang: 1 (<1%)" in lan.text()
    assert any(label == "Thôn Tà Lang (<1%)" for label, _ in lan.buttons())

    fig = build_progress_figure(ChartText("T", "W", "N", "Targets", "none", "no data"), [],
                                [TargetBar("Households reached", 1, 300)])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "<1%  ·  1 / 300" in texts


async def test_a_city_without_a_target_shows_its_wards_targets_summed_and_says_so(demo, people):
    """Đà Nẵng with no target of its own shows the sum of its wards' targets, labelled, in text and JSON."""
    _, _, admin = people
    await admin.say("/target hai-van households 500")
    await admin.say("/stats danang")
    text = admin.text()
    assert "target 500" not in text
    assert "sum of the wards' and communes' targets (1 of 3 set) 500: 0%" in text
    city = await stats_json(demo, "danang")
    assert city["targets"]["households"] == 500 and city["target_source"]["households"] == "children"
    assert city["targets"]["digital_ready"] is None and city["target_source"]["digital_ready"] is None
    [hai_van] = [c for c in city["children"] if c["code"] == "danang.hai-van"]
    assert (hai_van["target_households"], hai_van["target_source"]) == (500, "own")
    assert [c["target_source"] for c in city["children"] if c["code"] != "danang.hai-van"] == [None, None]
    everything = await stats_json(demo, None)
    assert everything["target_source"]["households"] == "children"
    assert everything["children"][0]["target_source"] == "children"

    await admin.say("/target danang")
    assert "• households to reach: not set · sum of the wards' and communes' targets (1 of 3 set): 500" \
        in admin.text()

    await admin.say("/target danang households 800")
    await admin.say("/stats danang")
    assert "· target 800: 0%" in admin.text() and "sum of the" not in admin.text()
    city = await stats_json(demo, "danang")
    assert (city["targets"]["households"], city["target_source"]["households"]) == (800, "own")


async def test_the_flow_line_counts_the_runs_started_in_the_period(demo, people, clock):
    """Over a period, completed and blocked-now never exceed the runs started in it."""
    an, lan, _ = people
    await start_flow(an, "HV-TL-001", "residence_confirmation")
    await step(an, "Continue")
    clock.advance(days=40)
    for label, _step_id in RC_PATH[1:]:
        await step(an, label)
    await lan.say("/stats")  # last 30 days: the run was started before them
    assert "No procedures in this period yet." in lan.text()
    since = clock() - timedelta(days=29)
    figures = (await stats_json(demo, "danang.hai-van", since=since))["flows"]
    assert all(f["completed"] <= f["started"] and f["blocked"] <= f["started"] for f in figures.values())
    await lan.press(payload_of(lan, "All time"))
    assert "Residence confirmation (CT07): 1 / 1 / 0" in lan.text()
