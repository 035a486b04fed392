"""`seed_synthetic`: a deterministic synthetic city (Huế) whose data holds together the way the
bot's own data does: real flow steps and reasons, consistent run states a volunteer can resume,
`last_step_at` equal to the latest step record, about twenty households per volunteer, masked
citizen IDs only, and every run's records and state the ones the engine itself writes when fed
the same answers. Every test runs on SQLite and, when configured, on PostgreSQL.

The runs are made by the real engine (a seeded chooser presses its buttons), so the ranges
below are what the engine decides from the chooser's draws; the rows of a seed differ from
those of the seed's earlier, hand-walked version, never the checks."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.seed_demo import seed_demo
from bot.seed_synthetic import SeedError, SyntheticSummary, seed_synthetic
from conversations import engine
from conversations.flow_model import Flow, FlowRegistry, load_flows
from conversations.local_time import local_date
from conversations.state import RunState
from db.engine import Database
from db.models import (
    Area,
    FaqMiss,
    FlowRun,
    Household,
    Identity,
    Membership,
    Resident,
    StepRecord,
    SupportRequest,
    User,
)
from tests.chat import Talker

FLOWS_DIR = Path(__file__).resolve().parent.parent / "conversations" / "flows"
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)  # the FakeClock's start (tests/conftest.py)
TABLES: tuple[Any, ...] = (Area, User, Identity, Membership, Household, Resident, FlowRun, StepRecord,
                           SupportRequest, FaqMiss)
MASKED_CCCD = re.compile(r"046[0-3]\*{6}[0-9]{2}")
TWELVE_DIGITS = re.compile(r"[0-9]{12}")


@pytest.fixture(scope="module")
def flows() -> FlowRegistry:
    return load_flows(FLOWS_DIR)


def fresh_sqlite(template: Path, tmp_path: Path, name: str) -> str:
    target = tmp_path / f"{name}.db"
    shutil.copy(template, target)
    return f"sqlite+aiosqlite:///{target}"


async def seed(url: str, households: int, flows: FlowRegistry, *, seed: int = 1,
               now: datetime = NOW) -> SyntheticSummary:
    db = Database(url)
    try:
        return await seed_synthetic(db, households, seed=seed, now=now, flows=flows)
    finally:
        await db.dispose()


async def load(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of the tables the seed fills, by table name, in id order."""
    db = Database(url)
    try:
        async with db.transaction() as session:
            return {
                model.__tablename__: [
                    dict(row._mapping)
                    for row in await session.execute(select(model.__table__).order_by(model.__table__.c.id))
                ]
                for model in TABLES
            }
    finally:
        await db.dispose()


async def test_same_seed_same_city_on_any_database(
    database_url: str, sqlite_template: Path, tmp_path: Path, flows: FlowRegistry
) -> None:
    first = await seed(database_url, 300, flows, seed=7)
    # Another fresh database (SQLite: also when the first one is PostgreSQL), later the same day.
    again_url = fresh_sqlite(sqlite_template, tmp_path, "again")
    again = await seed(again_url, 300, flows, seed=7, now=NOW + timedelta(hours=9))
    other_url = fresh_sqlite(sqlite_template, tmp_path, "other")
    await seed(other_url, 300, flows, seed=8)

    assert {k: v for k, v in first.to_json().items() if k != "seconds"} == \
        {k: v for k, v in again.to_json().items() if k != "seconds"}
    rows, rows_again, rows_other = await load(database_url), await load(again_url), await load(other_url)
    for table in rows:
        assert rows[table] == rows_again[table], f"{table} differs between two seeds with the same seed"
    assert [h["head_name"] for h in rows["households"]] != [h["head_name"] for h in rows_other["households"]]
    assert [r["recorded_at"] for r in rows["step_records"]] != \
        [r["recorded_at"] for r in rows_other["step_records"]]


async def test_a_city_that_holds_together(database_url: str, flows: FlowRegistry) -> None:
    summary = await seed(database_url, 500, flows, seed=3)
    rows = await load(database_url)
    areas = {a["id"]: a for a in rows["areas"]}
    households, residents = rows["households"], rows["residents"]
    runs, records = rows["flow_runs"], rows["step_records"]

    # Counts: the summary says what was written.
    volunteers = [m for m in rows["memberships"] if m["role"] == "volunteer"]
    assert (summary.city_code, summary.households, summary.residents, summary.runs, summary.step_records) == \
        ("hue", 500, len(residents), len(runs), len(records))
    assert (summary.areas, summary.volunteers, summary.leaders) == \
        (len(areas), len(volunteers), sum(m["role"] == "leader" for m in rows["memberships"]))
    assert 15 * 500 <= len(records) <= 25 * 500  # about twenty step records per household
    assert 2.6 <= len(residents) / 500 <= 3.4

    # The area tree: Huế, real wards and communes, numbered groups and villages below them.
    [city] = [a for a in areas.values() if a["parent_id"] is None]
    assert (city["code"], city["level"], city["official_code"]) == ("hue", "city", "46")
    assert city["target_households"] >= 500 and city["target_digital_ready"]
    wards = [a for a in areas.values() if a["parent_id"] == city["id"]]
    assert len(wards) >= 2 and {w["level"] for w in wards} <= {"ward", "commune"}
    for ward in wards:
        assert re.fullmatch(r"hue\.[a-z0-9]+(-[a-z0-9]+)*", ward["code"]), ward["code"]
        assert ward["official_code"].isdigit() and ward["target_households"] >= 100
        villages = [a for a in areas.values() if a["parent_id"] == ward["id"]]
        assert len(villages) >= 2
        for village in villages:
            number = re.fullmatch(r"(Tổ dân phố|Thôn) ([0-9]+)", village["name"])
            assert number and village["level"] == "village"
            short = "to" if ward["level"] == "ward" else "thon"
            assert number.group(1) == ("Tổ dân phố" if short == "to" else "Thôn")
            assert village["code"] == f"{ward['code']}.{short}-{number.group(2)}"
    assert {areas[h["area_id"]]["level"] for h in households} == {"village"}

    # Volunteers: about twenty households each, on the ward of their households.
    ward_of_volunteer = {m["user_id"]: m["area_id"] for m in volunteers}
    loads = Counter(h["volunteer_id"] for h in households if h["volunteer_id"] is not None)
    assert set(loads) <= set(ward_of_volunteer)
    assert max(loads.values()) <= 25 and 17 <= sum(loads.values()) / len(ward_of_volunteer) <= 21
    assert sum(h["volunteer_id"] is None for h in households) <= 0.08 * 500
    for household in households:
        if household["volunteer_id"] is not None:
            assert areas[household["area_id"]]["parent_id"] == ward_of_volunteer[household["volunteer_id"]]
    identities = {i["user_id"]: i for i in rows["identities"]}
    assert {i["channel"] for i in identities.values()} == {"synthetic"}
    assert all(identities[m["user_id"]]["external_id"].startswith("vol-") for m in volunteers)
    assert [m["role"] for m in rows["memberships"] if m["area_id"] == city["id"]] == ["admin"]

    # Households and residents: codes, phones, names; citizen IDs only ever masked.
    assert len({h["code"] for h in households}) == 500
    assert all(re.fullmatch(r"HUE-[0-9]{7}", h["code"]) for h in households)
    phones = [h["phone"] for h in households if h["phone"]]
    assert 0.45 * 500 <= len(phones) <= 0.75 * 500
    assert all(re.fullmatch(r"0[35789][0-9]{8}", p) for p in phones)
    assert all(1935 <= r["birth_year"] <= NOW.year for r in residents)
    masked = [r["citizen_id_masked"] for r in residents if r["citizen_id_masked"] is not None]
    assert len(masked) > 0.4 * len(residents)
    assert all(MASKED_CCCD.fullmatch(m) for m in masked), masked[:5]
    stored = json.dumps([residents, records, [r["state"] for r in runs], households], default=str)
    assert not TWELVE_DIGITS.search(stored.replace("-", "")), "a 12-digit number is stored"
    ready = {r["household_id"] for r in residents if r["digital_ready"]}
    assert 0.45 <= len(ready) / 500 <= 0.75

    # Step records: times within the 16 weeks before now, increasing within a run.
    by_run: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_run[record["run_id"]].append(record)
    window = NOW - timedelta(weeks=16, days=1)
    assert all(window <= r["recorded_at"] < NOW for r in records)
    latest: dict[int, datetime] = {}
    run_by_id = {run["id"]: run for run in runs}
    for run_id, its in by_run.items():
        times = [r["recorded_at"] for r in its]
        assert times == sorted(times) and len(set(times)) == len(times)
        assert run_by_id[run_id]["started_at"] < times[0] and run_by_id[run_id]["updated_at"] == times[-1]
        household_id = run_by_id[run_id]["household_id"]
        latest[household_id] = max(latest.get(household_id, times[-1]), times[-1])
        assert {r["user_id"] for r in its} == {run_by_id[run_id]["volunteer_id"]}
        assert all(r["value"] is None or not r["value"].isdigit() for r in its)
    # /stats counts households reached from this column: it must be the latest record's time.
    assert {h["id"]: h["last_step_at"] for h in households} == \
        {h["id"]: latest.get(h["id"]) for h in households}
    assert 0.7 <= len(latest) / 500 <= 0.9
    assert all(h["created_at"] < latest.get(h["id"], NOW) for h in households)
    # Activity grows: more step records in the last four weeks than in the first four.
    first_weeks = sum(r["recorded_at"] < window + timedelta(weeks=4) for r in records)
    assert sum(r["recorded_at"] >= NOW - timedelta(weeks=4) for r in records) > 2 * first_weeks

    # Runs: real steps of their flow, states as the engine keeps them, statuses mixed as asked.
    statuses = Counter(run["status"] for run in runs)
    assert 0.5 <= statuses["completed"] / len(runs) <= 0.7
    assert 0.12 <= statuses["active"] / len(runs) <= 0.3
    assert 0.06 <= statuses["blocked"] / len(runs) <= 0.18
    assert 0.03 <= statuses["abandoned"] / len(runs) <= 0.13
    assert {run["flow_id"] for run in runs} == set(flows.ids())
    residents_by_id = {r["id"]: r for r in residents}
    for run in runs:
        flow = flows.get(run["flow_id"], run["flow_version"])
        assert flow is not None
        its = by_run[run["id"]]
        # Only a run cancelled at its first step has no record (as /cancel writes none).
        assert its or (run["status"] == "abandoned" and run["state"]["answered"] == 0)
        steps = {step.id for step in flow.steps}
        assert {r["step_id"] for r in its} <= steps
        assert len({(r["step_id"], r["attempt"]) for r in its}) == len(its)
        state = run["state"]
        assert (state["flow"], state["version"], state["status"], state["step"]) == \
            (flow.id, flow.version, run["status"], run["current_step"])
        assert state["answered"] == len(its)
        assert all(r["outcome"] != "abandoned" for r in its)  # /cancel writes no record
        resident = residents_by_id[run["resident_id"]]
        assert resident["household_id"] == run["household_id"]
        age = NOW.year - resident["birth_year"]
        if run["flow_id"] == "social_pension":
            assert age >= 75
        if run["flow_id"] == "birth_registration":
            assert age <= 5
        last = its[-1] if its else None
        if run["status"] == "completed":
            assert run["current_step"] is None and run["finished_at"] == last["recorded_at"]
            if (run["flow_id"], last["step_id"], last["outcome"]) == ("smartphone_skills", "solo", "done"):
                assert resident["digital_ready"]
        elif run["status"] == "blocked":
            # A blocked run ends with the Problem that stopped it, a reason from that step's list.
            step = flow.step(run["current_step"])
            assert step is not None and step.blocking
            assert (last["step_id"], last["outcome"]) == (run["current_step"], "blocked")
            assert last["reason"] in step.reasons and run["finished_at"] is None
        elif run["status"] == "abandoned":
            # Stopped with /cancel at its current step, which has no record.
            assert run["current_step"] in steps and run["finished_at"] is not None
            assert all(r["step_id"] != run["current_step"] for r in its[-1:])
            assert last is None or run["finished_at"] == last["recorded_at"]
        else:
            assert run["current_step"] in steps and run["finished_at"] is None
            # The engine picks the run up where it stands.
            transition = engine.resume(flow, RunState.from_json(state))
            [shown] = transition.events
            assert isinstance(shown, engine.ShowStep) and shown.step_id == run["current_step"]
            assert shown.position == state["answered"] + 1
            attempt = state["attempts"][run["current_step"]]
            assert all(engine.parse_token(b.token) == (run["current_step"], attempt, engine.parse_token(
                b.token)[2]) for b in shown.buttons)  # type: ignore[index]
            assert (run["current_step"], attempt) not in {(r["step_id"], r["attempt"]) for r in its}
    problems = [r for r in records if r["outcome"] == "blocked"]
    assert problems
    for record in problems:
        run = run_by_id[record["run_id"]]
        step = flows.get(run["flow_id"], run["flow_version"]).step(record["step_id"])  # type: ignore[union-attr]
        assert step is not None and record["reason"] in step.reasons
    assert rows["faq_misses"] and all(m["kind"] == "miss" and m["area_id"] for m in rows["faq_misses"])


def replay(flow: Flow, run: dict[str, Any], records: list[dict[str, Any]]) -> RunState:
    """Feed a run's step records back to the engine as a volunteer's answers (Done, Continue,
    Skip, a Problem with the recorded reason, the recorded option, the recorded value typed),
    each on the day it was recorded, with a Retry before an answer that follows a block; assert
    that every answer is one the step shown offers and that the engine writes exactly that
    record. Returns the state the engine leaves the run in."""
    transition = engine.start(flow, local_date(run["started_at"]))
    for record in records:
        today = local_date(record["recorded_at"])
        if transition.status == "blocked":  # "Retry": the step again, as a new attempt
            transition = engine.reopen(flow, transition.new_state)
        state = transition.new_state
        shown = transition.events[-1]
        assert transition.status == "active" and isinstance(shown, engine.ShowStep), (record, transition)
        assert shown.step_id == record["step_id"], (record, shown)
        transition = answer(flow, state, shown, record, today)
        [written] = transition.records
        assert (written.step_id, written.attempt, str(written.outcome), written.reason,
                None if written.value is None else str(written.value)) == \
            (record["step_id"], record["attempt"], record["outcome"], record["reason"], record["value"])
    return transition.new_state


def answer(flow: Flow, state: RunState, shown: engine.ShowStep, record: dict[str, Any],
           today: date) -> engine.Transition:
    """The press or text that writes `record` at the step shown, among the ones it offers."""
    actions = {engine.parse_token(b.token)[2]: b.token for b in shown.buttons}  # type: ignore[index]

    def press(action: str) -> engine.Transition:
        assert action in actions, (record, sorted(actions))
        return engine.advance(flow, state, engine.Pressed(actions[action]), today)

    if record["outcome"] == "blocked":
        asked = press("p")
        reasons = {b.label: b.token for b in asked.events[-1].buttons}  # type: ignore[union-attr]
        assert record["reason"] in reasons, (record, sorted(reasons))
        return engine.advance(flow, asked.new_state, engine.Pressed(reasons[record["reason"]]), today)
    if record["outcome"] == "skipped":
        return press("s" if "s" in actions else "k")
    if shown.expects_text:
        return engine.advance(flow, state, engine.Typed(record["value"]), today)
    if record["value"] is not None:
        return press(f"o:{record['value']}")
    return press("c" if "c" in actions else "d")


async def test_every_synthetic_run_is_one_the_engine_writes(database_url: str, flows: FlowRegistry) -> None:
    """The seed drives the engine; replaying each run's records through the engine from a new
    run must give back the same records and the stored state (a paused run stops where the next
    step is shown, a cancelled one is cancelled there), so no run strays off its flow's graph."""
    await seed(database_url, 300, flows, seed=11)
    rows = await load(database_url)
    by_run: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for record in sorted(rows["step_records"], key=lambda r: (r["recorded_at"], r["id"])):
        by_run[record["run_id"]].append(record)
    seen: Counter[str] = Counter()
    for run in rows["flow_runs"]:
        flow = flows.get(run["flow_id"], run["flow_version"])
        assert flow is not None
        state = replay(flow, run, by_run[run["id"]])
        if run["status"] == "abandoned":
            state = engine.cancel(state).new_state
        assert state.to_json() == run["state"], (run["id"], state.to_json(), run["state"])
        seen[run["status"]] += 1
        seen["retried"] += any(r["attempt"] > 1 for r in by_run[run["id"]])
    assert {"completed", "active", "blocked", "abandoned", "retried"} <= set(seen), seen


async def test_volunteers_resume_and_retry_synthetic_runs(app: App, flows: FlowRegistry) -> None:
    """Next to the demo data, through the real chat: a synthetic active run goes on from its step,
    a blocked one is retried as a new attempt, and new rows get fresh ids (sequences moved on)."""
    await seed_demo(app)
    now = app.core.services.clock()
    summary = await seed_synthetic(app.db, 120, seed=5, now=now, flows=app.core.services.flows)
    assert summary.households == 120
    async with app.db.transaction() as session:
        demo = select(func.count()).select_from(Household).where(Household.code.like("HV-%"))
        assert await session.scalar(demo) == 5
        picked: dict[str, FlowRun] = {}
        for status in ("active", "blocked"):
            candidates = await session.scalars(
                select(FlowRun).join(Household, Household.id == FlowRun.household_id)
                .where(FlowRun.status == status, Household.volunteer_id == FlowRun.volunteer_id)
                .order_by(FlowRun.id)
            )
            # A step with buttons (an input step waits for typed text instead).
            run = next(r for r in candidates if flows.get(r.flow_id, r.flow_version).step(  # type: ignore[union-attr]
                r.current_step).kind != "input")  # type: ignore[union-attr]
            picked[status] = run
            session.add(Identity(user_id=run.volunteer_id, channel="console", external_id=f"synth-{status}",
                                 created_at=now))
        codes = {status: (await session.get(Household, run.household_id)).code  # type: ignore[union-attr]
                 for status, run in picked.items()}

    for status, run in picked.items():
        volunteer = Talker(app, f"synth-{status}")
        await volunteer.say(f"/household {codes[status]}")
        # The household page offers Resume (active) or Retry (blocked) for the run.
        assert f"run:{run.id}:resume" in [p for _, p in volunteer.buttons()], volunteer.buttons()
        await volunteer.press(f"run:{run.id}:resume")
        step = run.current_step
        assert any(p.startswith(f"f:{run.id}:{step}:") for _, p in volunteer.buttons()), volunteer.text()
        before = run.state["attempts"][step]
        await volunteer.press(next(p for _, p in volunteer.buttons() if p.startswith(f"f:{run.id}:{step}:")))
        async with app.db.transaction() as session:
            newest = await session.scalar(
                select(StepRecord).where(StepRecord.run_id == run.id).order_by(StepRecord.id.desc()).limit(1))
            assert newest is not None and newest.step_id == step and newest.recorded_at == now
            assert newest.attempt == (before if status == "active" else before + 1)
            assert newest.id > summary.step_records  # after the synthetic ids
            household = await session.scalar(select(Household).where(Household.code == codes[status]))
            assert household is not None and household.last_step_at == now


async def test_seeding_twice_is_refused_and_writes_nothing(database_url: str, flows: FlowRegistry) -> None:
    await seed(database_url, 60, flows)
    before = {table: len(rows) for table, rows in (await load(database_url)).items()}
    with pytest.raises(SeedError, match="already has synthetic data"):
        await seed(database_url, 60, flows, seed=2)
    assert {table: len(rows) for table, rows in (await load(database_url)).items()} == before
    for wrong in (0, -5):
        with pytest.raises(SeedError, match="at least 1"):
            await seed(database_url, wrong, flows)
    with pytest.raises(SeedError, match="timezone"):
        await seed(database_url, 10, flows, now=NOW.replace(tzinfo=None))


@pytest.mark.parametrize("households", [1, 49])
async def test_a_small_city(
    households: int, sqlite_template: Path, tmp_path: Path, flows: FlowRegistry
) -> None:
    url = fresh_sqlite(sqlite_template, tmp_path, "small")
    summary = await seed(url, households, flows)
    rows = await load(url)
    assert summary.households == len(rows["households"]) == households
    assert summary.leaders == 1 and summary.volunteers >= 1 and summary.areas == 3
    assert {h["code"] for h in rows["households"]} >= {"HUE-0000001"}
