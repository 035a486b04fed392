"""Runs: which procedures a household does, and the real engine walking them.

Every run and step record here comes from `conversations/engine.py`: `start`, then `advance`
with a press or a typed text that a seeded `Chooser` picks from what the engine shows (Done,
Skip, Problem with one of the step's reasons, a choice's options, a typed date; back at a
choice, another option), `reopen` for a retry and `cancel` for /cancel. The chooser reads only
the engine's events and transitions, never a step's fields: what a Problem does at a task
(end the run, go elsewhere, or be noted) it learns by asking the engine once per step.

A run is made in two passes: the chooser first walks the flow as if nothing stopped the run
(never pressing a Problem that would end it), then the run's fate is drawn (completed 60%, in
progress 20%, blocked 12%, abandoned 8%) and the walk is cut where the run stands: an active
run keeps the state the engine had when its next step was shown, an abandoned one is that
state cancelled, a blocked one ends with the engine's answer to a Problem at a step where it
blocks. A few completed runs were blocked once and retried on a later visit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import Any

from bot.seed_synthetic.draws import WINDOW_DAYS, Draws, Ids
from bot.seed_synthetic.people import Person
from conversations import engine
from conversations.engine import (
    AskReason,
    MarkDigitalReady,
    Pressed,
    RunState,
    RunStatus,
    ShowStep,
    Transition,
    Typed,
)
from conversations.flow_model import Flow

CHANNEL = "synthetic"
# The order a volunteer usually takes a household through (the plausible order of synthetic runs);
# listing procedures to people uses conversations/flow_order.py.
DOORSTEP_ORDER = ("vneid", "smartphone_skills", "birth_registration", "social_pension",
                  "residence_confirmation", "public_service_account", "digital_signature")
STATUSES = (RunStatus.COMPLETED, RunStatus.ACTIVE, RunStatus.BLOCKED, RunStatus.ABANDONED)
STATUS_WEIGHTS = (60, 20, 12, 8)
RUN_COUNTS = (1, 2, 3, 4, 5, 6)  # runs per reached household
RUN_COUNT_WEIGHTS = (6, 12, 18, 24, 22, 18)
RETRIED = 0.06  # completed runs that were blocked once, then retried on a later visit
MAX_WALK = 80  # answers in one walk at most (a guard; shipped flows are far shorter)
_STATUS_CUMULATIVE = list(accumulate(STATUS_WEIGHTS))
_RUN_COUNT_CUMULATIVE = list(accumulate(RUN_COUNT_WEIGHTS))
# How volunteers answer choices, by (flow, step): option id -> weight (others: the first option
# twice as often as each of the rest).
CHOICE_WEIGHTS: dict[tuple[str, str], dict[str, float]] = {
    ("vneid", "has_chip"): {"yes": 85, "no": 15},
    ("vneid", "has_nfc"): {"nfc": 55, "no_nfc": 45},
    ("vneid", "level2_offer"): {"now": 45, "later": 55},
    ("birth_registration", "account"): {"vneid": 55, "portal": 30, "none": 15},
    ("social_pension", "household"): {"poor": 40, "other": 60},
    ("social_pension", "pension_check"): {"none": 70, "lower": 15, "higher": 15},
    ("residence_confirmation", "channel"): {"vneid": 50, "portal": 20, "police": 30},
    ("digital_signature", "where"): {"vneid": 60, "provider": 40},
}
_REASON = re.compile(r"r[0-9]{1,2}")


@dataclass(frozen=True)
class _TaskShape:
    """What a Problem does at one task step, as the engine answered it."""

    reasons: bool  # the step lists reasons (without, a Problem asks for a typed one)
    blocks: bool  # a Problem ends the run blocked
    detour: bool  # else it goes on elsewhere than Done would (the step's on_blocked)


@dataclass(frozen=True)
class Answer:
    """One answered step: the engine's state when the step was shown (where a run paused
    here stands), and the transition that recorded the answer."""

    before: RunState
    shown: ShowStep
    after: Transition
    saves: int = 1  # state writes the handler makes for it: two for a Problem (press, reason)
    task: bool = False  # a task: more minutes pass before the next answer
    blocks: bool = False  # a Problem here would stop the run

    @property
    def marks(self) -> bool:
        return any(isinstance(event, MarkDigitalReady) for event in self.after.events)


@dataclass(frozen=True)
class Walk:
    answers: list[Answer]
    end: Transition  # the engine's last transition (the run's state after the last answer)


def _actions(shown: ShowStep | AskReason) -> dict[str, str]:
    """The shown buttons' tokens by action (`d`, `s`, `p`, `o:yes`, `r0` ...): a token is
    `<step>:<attempt>:<action>` (engine.make_token)."""
    return {button.token.split(":", 2)[2]: button.token for button in shown.buttons}


def _shown(transition: Transition) -> ShowStep | None:
    """The step the engine asks to answer next, if the run goes on."""
    if transition.status != RunStatus.ACTIVE or not transition.events:
        return None
    last = transition.events[-1]
    return last if isinstance(last, ShowStep) else None


class Chooser:
    """Answers the engine as volunteers tend to, from the shared random stream."""

    def __init__(self, draws: Draws) -> None:
        self.draws = draws
        self._shapes: dict[tuple[str, int, str], _TaskShape] = {}
        self._reason_weights: dict[int, list[int]] = {}

    def walk(self, flow: Flow, today: date, typed: tuple[str, ...],
             begin: Transition | None = None) -> Walk:
        """Answer from `begin` (a new run by default) until the run ends, never with a Problem
        that would end it: a walk as far as it goes when nothing stops the run. `typed`: what is
        typed at input steps, tried in order until the engine accepts one."""
        transition = begin if begin is not None else engine.start(flow, today)
        used: dict[str, set[str]] = {}
        answers: list[Answer] = []
        for _ in range(MAX_WALK):
            shown = _shown(transition)
            if shown is None:
                break
            answer = self._answer(flow, transition.new_state, shown, today, typed, used)
            if answer is None:  # nothing this chooser can answer (a future kind of step)
                break
            answers.append(answer)
            transition = answer.after
        return Walk(answers, transition)

    def problem(self, flow: Flow, answer: Answer, today: date) -> Answer:
        """Instead of `answer`, a Problem at the same step with one of its reasons (the first
        ones commonest)."""
        return self._problem(flow, answer.before, _actions(answer.shown), today, blocks=answer.blocks)

    def _answer(self, flow: Flow, state: RunState, shown: ShowStep, today: date,
                typed: tuple[str, ...], used: dict[str, set[str]]) -> Answer | None:
        actions = _actions(shown)
        random = self.draws.random

        def press(action: str) -> Answer:
            return Answer(state, shown, engine.advance(flow, state, Pressed(actions[action]), today))

        if shown.expects_text:
            if "k" in actions and random() < 0.1:
                return press("k")
            for text in typed:
                after = engine.advance(flow, state, Typed(text), today)
                if after.records:
                    return Answer(state, shown, after)
            return press("k") if "k" in actions else None
        if "c" in actions:
            return press("c")
        options = [action[2:] for action in actions if action.startswith("o:")]
        if options:
            used_here = used.setdefault(shown.step_id, set())
            return press("o:" + self._option(flow.id, shown.step_id, options, used_here))
        if "d" not in actions:
            return None
        shape = self._shape(flow, state, actions, shown.step_id, today)
        draw = random()
        if shape.reasons and ((shape.detour and draw < 0.1) or (not shape.blocks and draw < 0.04)):
            return self._problem(flow, state, actions, today, blocks=False)
        action = "s" if "s" in actions and draw < (0.02 if shape.blocks else 0.07) else "d"
        after = engine.advance(flow, state, Pressed(actions[action]), today)
        return Answer(state, shown, after, task=True, blocks=shape.blocks)

    def _option(self, flow_id: str, step_id: str, options: list[str], used: set[str]) -> str:
        """A choice as volunteers tend to answer it; back at a choice, another way than before."""
        offered = [o for o in options if o not in used] or options
        weights = CHOICE_WEIGHTS.get((flow_id, step_id), {})
        option = self.draws.rng.choices(
            offered, [weights.get(o, 2.0 if o == options[0] else 1.0) for o in offered])[0]
        used.add(option)
        return option

    def _problem(self, flow: Flow, state: RunState, actions: dict[str, str], today: date,
                 *, blocks: bool) -> Answer:
        asked = engine.advance(flow, state, Pressed(actions["p"]), today)
        reasons = [token for action, token in _actions(asked.events[-1]).items()  # type: ignore[arg-type]
                   if _REASON.fullmatch(action)]
        if len(reasons) not in self._reason_weights:  # 4, 3, 2, 1, 1 ...: the first reasons commonest
            self._reason_weights[len(reasons)] = list(accumulate(max(1, 4 - i) for i in range(len(reasons))))
        token = self.draws.pick(reasons, self._reason_weights[len(reasons)])
        after = engine.advance(flow, asked.new_state, Pressed(token), today)
        shown = engine.resume(flow, state).events[-1]
        assert isinstance(shown, ShowStep)
        return Answer(state, shown, after, saves=2, task=True, blocks=blocks)

    def _shape(self, flow: Flow, state: RunState, actions: dict[str, str], step_id: str,
               today: date) -> _TaskShape:
        """What a Problem does at this task: asked of the engine once per (flow version, step)."""
        key = (flow.id, flow.version, step_id)
        shape = self._shapes.get(key)
        if shape is None:
            asked = engine.advance(flow, state, Pressed(actions["p"]), today)
            listed = asked.events[-1]
            reasons = ([token for action, token in _actions(listed).items() if _REASON.fullmatch(action)]
                       if isinstance(listed, AskReason) else [])
            if not reasons:
                shape = _TaskShape(reasons=False, blocks=False, detour=False)
            else:
                problem = engine.advance(flow, asked.new_state, Pressed(reasons[0]), today)
                done = engine.advance(flow, state, Pressed(actions["d"]), today)
                blocks = problem.status == RunStatus.BLOCKED
                detour = not blocks and (problem.status, problem.new_state.step) != \
                    (done.status, done.new_state.step)
                shape = _TaskShape(reasons=True, blocks=blocks, detour=detour)
            self._shapes[key] = shape
        return shape


@dataclass(frozen=True)
class _Fate:
    """How a run went: the answers it recorded and the state it was left in."""

    answers: list[Answer]
    state: RunState
    extra_saves: int = 0  # state writes without an answer: a reopen, a cancel
    retry_at: int | None = None  # the position of the Problem a retry followed
    retry_day: int = 0  # the day of the retry's visit


@dataclass(frozen=True)
class RunPlan:
    """A run to make: its flow and the household member it is for (index in the members)."""

    flow: Flow
    person: int


class Runs:
    """A household's runs and their step records, as rows."""

    def __init__(self, draws: Draws, flows: dict[str, Flow]) -> None:
        self.draws = draws
        self.flows = flows
        self.chooser = Chooser(draws)
        self.ids: Ids | None = None
        self.record_no = 0
        self.runs = 0
        self.step_records = 0

    def household(
        self, runs: list[dict[str, Any]], records: list[dict[str, Any]], household_id: int, area_id: int,
        members: list[Person], volunteer: int,
    ) -> tuple[datetime | None, datetime | None]:
        """Append the household's run rows (with a `person` index for the resident) and record
        rows; (first run's start, latest record)."""
        draws = self.draws
        chosen = self._choose(members)
        if not chosen:
            return None, None
        # Runs come in visits (often two or three in one); each visit's day is drawn from the
        # campaign's activity curve, then the visits are put in order.
        new_visit = [position == 0 or draws.random() < 0.55 for position in range(len(chosen))]
        visit_days = iter(sorted(draws.campaign_day() for _ in range(sum(new_visit))))
        day = clock = -1
        first = last = None
        for position, plan in enumerate(chosen):
            planned = next(visit_days) if new_visit[position] else day
            if planned > day:
                day, clock = planned, draws.visit_start()
            else:
                clock += draws.between(3, 15)  # the same visit (or the day a retried run ended)
            start = draws.moment(day, clock)
            first = first or start
            day, clock, ended = self._run(runs, records, plan, household_id, area_id, members[plan.person],
                                          volunteer, day, clock, start)
            if ended is not None:
                last = ended if last is None or ended > last else last
        return first, last

    def _choose(self, members: list[Person]) -> list[RunPlan]:
        """Up to six (flow, member) pairs that fit the household, in a plausible order."""
        draws, year = self.draws, self.draws.year
        candidates: list[tuple[str, int, float]] = []
        for index, member in enumerate(members):
            age = year - member.birth_year
            if age >= 14:
                candidates.append(("vneid", index, 3.0 if age < 80 else 1.2))
            if 14 <= age <= 80:
                candidates.append(("smartphone_skills", index, 2.6))
            if age >= 18:
                candidates.append(("public_service_account", index, 1.0))
                candidates.append(("residence_confirmation", index, 0.7))
            if 18 <= age <= 65:
                candidates.append(("digital_signature", index, 0.45))
            if age >= 75:
                candidates.append(("social_pension", index, 3.0))
            if age <= 5:
                candidates.append(("birth_registration", index, 3.5))
        wanted = draws.pick(RUN_COUNTS, _RUN_COUNT_CUMULATIVE)
        # Weighted sampling without replacement (Efraimidis-Spirakis keys), then the usual order.
        keyed = sorted((c for c in candidates if c[0] in self.flows),
                       key=lambda c: -(draws.random() ** (1.0 / c[2])))[:wanted]
        keyed.sort(key=lambda c: DOORSTEP_ORDER.index(c[0]) + draws.random() * 2.5)
        return [RunPlan(self.flows[flow_id], index) for flow_id, index, _ in keyed]

    def _typed(self, member: Person, today: date) -> tuple[str, ...]:
        """What the volunteer types at an input step, tried in order until one is accepted: the
        member's date of birth as people write it, the year, a number (never anything ID-like)."""
        first = date(member.birth_year, 1, 1)
        latest = min(date(member.birth_year, 12, 31), today - timedelta(days=3))
        born = first + timedelta(days=self.draws.between(0, max(0, (latest - first).days)))
        return (f"{born.day:02d}/{born.month:02d}/{born.year}", str(member.birth_year), "1")

    def _fate(self, flow: Flow, walk: Walk, day: int, typed: tuple[str, ...]) -> _Fate:
        """Draw how the run went and cut the walk there."""
        draws = self.draws
        answers = walk.answers
        today = draws.local_date(day)
        status = draws.pick(STATUSES, _STATUS_CUMULATIVE)
        blocking = [i for i, answer in enumerate(answers) if answer.blocks]
        if status == RunStatus.BLOCKED and not blocking:
            status = RunStatus.ACTIVE
        if status in (RunStatus.ACTIVE, RunStatus.ABANDONED) and len(answers) < 2:
            status = RunStatus.COMPLETED
        if status == RunStatus.COMPLETED and walk.end.status != RunStatus.COMPLETED:
            status = RunStatus.ACTIVE
        if status == RunStatus.BLOCKED:
            stop = draws.rng.choice(blocking)
            stopped = self.chooser.problem(flow, answers[stop], today)
            return _Fate([*answers[:stop], stopped], stopped.after.new_state)
        if status == RunStatus.ACTIVE:
            stop = draws.between(1, len(answers) - 1)
            return _Fate(answers[:stop], answers[stop].before)
        if status == RunStatus.ABANDONED:  # /cancel: the run stops at its step, no record is written
            stop = int(draws.random() * len(answers))
            return _Fate(answers[:stop], engine.cancel(answers[stop].before).new_state, extra_saves=1)
        if blocking and draws.random() < RETRIED and day + 1 < WINDOW_DAYS:
            # Blocked once, then "Retry" on a later visit: the step again as a new attempt.
            at = draws.rng.choice(blocking)
            blocked = self.chooser.problem(flow, answers[at], today)
            later = min(WINDOW_DAYS - 1, day + draws.between(1, 10))
            rest = self.chooser.walk(flow, draws.local_date(later), typed,
                                     engine.reopen(flow, blocked.after.new_state))
            return _Fate([*answers[:at], blocked, *rest.answers], rest.end.new_state, 1, at, later)
        return _Fate(answers, walk.end.new_state)

    def _run(
        self, runs: list[dict[str, Any]], records: list[dict[str, Any]], plan: RunPlan, household_id: int,
        area_id: int, member: Person, volunteer: int, day: int, clock: int, start: datetime,
    ) -> tuple[int, int, datetime | None]:
        """One run: its walk, its fate, its step records and its row; (day, clock, time of the
        last record or None)."""
        assert self.ids is not None
        draws, flow = self.draws, plan.flow
        run_id = self.ids.take("flow_runs")
        today = draws.local_date(day)
        typed = self._typed(member, today)
        walk = self.chooser.walk(flow, today, typed)
        fate = self._fate(flow, walk, day, typed)
        kept, state = fate.answers, fate.state

        clock += draws.between(1, 3)
        moment = start
        random = draws.random
        append = records.append
        number = self.record_no
        written = 0
        for position, answer in enumerate(kept):
            if fate.retry_at is not None and position == fate.retry_at + 1:
                day, clock = fate.retry_day, draws.visit_start()
            for record in answer.after.records:
                moment = draws.moment(day, clock)
                number += 1
                written += 1
                append({
                    "run_id": run_id, "flow_id": flow.id, "area_id": area_id, "step_id": record.step_id,
                    "attempt": record.attempt, "outcome": record.outcome,
                    "reason": (record.reason or None) and str(record.reason)[:300],
                    "value": None if record.value is None else str(record.value)[:300],
                    "user_id": volunteer, "recorded_at": moment, "source_update": f"{CHANNEL}:{number}",
                })
            clock += (2 + int(random() * 6)) if answer.task else (1 + int(random() * 2))
        self.record_no = number

        # The handler marks the resident digital-ready when the engine says so; whoever was
        # coached in such a procedure is not counted among those who could already.
        if any(answer.marks for answer in walk.answers):
            member.trained = True
        if any(answer.marks for answer in kept):
            member.ready = True
        runs.append({
            "id": run_id, "flow_id": flow.id, "flow_version": flow.version, "household_id": household_id,
            "area_id": area_id, "person": plan.person, "volunteer_id": volunteer, "status": state.status,
            "current_step": state.step, "state": state.to_json(),
            # one state save per engine answer (two for a Problem), plus the start, a reopen, a cancel
            "version": 1 + sum(answer.saves for answer in kept) + fate.extra_saves,
            "started_at": start, "updated_at": moment,
            "finished_at": moment if state.status.finished else None,
        })
        self.runs += 1
        self.step_records += written
        return day, clock, moment if written else None  # the run's latest record, if any
