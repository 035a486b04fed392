"""Guided procedures for a household: start, step, leave, resume, retry, pause or abandon.

The pure engine (conversations.engine) decides; this module loads and locks the run, checks
who may touch it, writes the engine's step records in the same transaction as the new run
state, and turns the engine's events into one message per step.

/cancel inside a procedure asks whether to keep it paused (the default: the run stays active,
resumable from the household's page) or to abandon it (kept, audited, shown on the page with
the day and step it stopped at, and a button to start it again). While the chat is at that
question its state carries `asking: "cancel"`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select

from conversations import engine, texts
from conversations.events import (
    AskReason,
    AskReasonText,
    Blocked,
    Completed,
    MarkDigitalReady,
    ProblemNoted,
    ShowStep,
    StaleButton,
)
from conversations.flow_model import ChoiceStep, Flow, FlowRegistry, InfoStep, InputStep
from conversations.flow_order import in_flow_order
from conversations.state import RunStatus, StepOutcome
from db.models import FlowRun, Household, Resident
from db.repo.audit import audit
from db.repo.flows import (
    abandoned_runs,
    load_run_for_step,
    open_run,
    run_state,
    write_run_state,
    write_step,
)
from db.repo.households import members_of
from handlers import come_back
from handlers.access import button_id, can_work_on, refuse
from handlers.buttons import ComeBackButton, HouseholdButton, RunButton, StepButton
from handlers.choices import numbered
from handlers.context import Context
from handlers.i18n import N_
from handlers.router import STAFF, Router, out_of_date
from handlers.types import Address, Button, Reply, button_label, person_label
from handlers.validation import VIETNAM, local_date

OUTCOME_MARKS = {StepOutcome.DONE: "✅", StepOutcome.SKIPPED: "⏭", StepOutcome.BLOCKED: "⛔"}
OUTCOME_NAMES = {StepOutcome.DONE: N_("Done"), StepOutcome.SKIPPED: N_("Skipped"),
                 StepOutcome.BLOCKED: N_("Problem")}
ASKING_CANCEL = "cancel"
KEEP = "k"  # a household button's arg: open the page as a new message, keep the pressed one
# Marks on a task's buttons where buttons are drawn (numbered channels read the words).
STEP_BUTTON_MARKS = {"d": "✅", "s": "⏭", "p": "⚠️"}

router = Router("flows")


def registry(ctx: Context) -> FlowRegistry:
    flows = ctx.services.flows
    assert flows is not None, "the flow registry is loaded at start-up"
    return flows


def title(ctx: Context, flow_id: str) -> str:
    flows = ctx.services.flows
    return ctx.t(flows.title(flow_id)) if flows is not None else flow_id


def reason(ctx: Context, text: str) -> str:
    """A reason from a flow's list is a msgid; a typed one comes back unchanged."""
    return ctx.t(text)


def ordered_flows(ctx: Context) -> list[Flow]:
    """The procedures one can start now, in the one flow order (conversations/flow_order.py)."""
    flows = registry(ctx)
    # Only flows that have a file now: stored versions of removed flows serve their old runs.
    current = frozenset(flows.ids()) - ctx.services.retired_flows
    return [flows.latest(f) for f in in_flow_order(current)]


def needs_person(flow: Flow) -> bool:
    return any(step.mark_digital_ready for step in flow.steps)


@router.command("/flows", roles=STAFF, help=N_("the procedures GoCua can guide"), order=13)
async def list_flows(ctx: Context, args: str) -> list[Reply]:
    lines = [ctx.t("Procedures (start one from a household's page, /households):")]
    for flow in ordered_flows(ctx):
        line = f"• {ctx.t(flow.title)}"
        if flow.description:
            line += f" — {ctx.t(flow.description)}"
        lines.append(line)
    return [Reply("\n".join(lines))]


def in_place(replies: list[Reply]) -> list[Reply]:
    """`replies` with the first replacing the message whose button was pressed (where the
    channel can edit it): a menu walked through stays one message with one live keyboard."""
    if replies and replies[0].to is None and not replies[0].toast:
        replies[0] = replace(replies[0], edit=True)
    return replies


def back_to_household(ctx: Context, household_id: int) -> Button:
    return Button("↩️ " + ctx.t("Back"), HouseholdButton(household_id))


async def offer_flows(ctx: Context, household: Household) -> list[Reply]:
    buttons = tuple(Button(button_label(ctx.t(f.title)), HouseholdButton(household.id, "flow", f.id))
                    for f in ordered_flows(ctx))
    return [Reply(ctx.t("Which procedure for {code}?", code=household.code),
                  buttons=(*buttons, back_to_household(ctx, household.id)), edit=True)]


async def choose_person(
    ctx: Context, household: Household, flow_id: str, raw_person: str = ""
) -> list[Reply]:
    """`flow_id` alone asks for whom (if the household has members); with the resident's id
    (or 0: the household) in `raw_person`, as button data carries it, starts."""
    flows = registry(ctx)
    if flow_id not in flows:
        return [out_of_date(ctx)]
    flow = flows.latest(flow_id)
    add = Button(ctx.t("Add a member"), HouseholdButton(household.id, "add", flow.id))
    members = await members_of(ctx.session, household.id)
    if raw_person == "":
        if not members:
            if needs_person(flow):
                return [Reply(ctx.t("First add the person this is for: press “Add a member”."),
                              buttons=(add,))]
            return await start_run(ctx, household, flow, None)
        buttons = [Button(button_label(m.name), HouseholdButton(household.id, "flow", flow.id, str(m.id)))
                   for m in members]
        if not needs_person(flow):
            household_run = HouseholdButton(household.id, "flow", flow.id, "0")
            buttons.append(Button(ctx.t("The household"), household_run))
        buttons.append(add)
        buttons.append(Button("↩️ " + ctx.t("Back"), HouseholdButton(household.id, "start")))
        return [Reply(ctx.t("{flow}: for whom?", flow=ctx.t(flow.title)), buttons=tuple(buttons),
                      edit=True)]
    person = button_id(raw_person)
    if person == 0 and not needs_person(flow):
        return await start_run(ctx, household, flow, None)
    if person not in {m.id for m in members}:
        refuse(ctx, "start_flow", f"household:{household.id}/resident:{raw_person[:20]}")
        return [out_of_date(ctx)]
    return await start_run(ctx, household, flow, person)


async def start_run(ctx: Context, household: Household, flow: Flow, resident_id: int | None) -> list[Reply]:
    if not ctx.services.is_sqlite:
        # Two staff starting the same procedure at once must share one run: serialise on the
        # household row (SQLite serialises all writers already).
        await ctx.session.execute(select(Household.id).where(Household.id == household.id).with_for_update())
    existing = await open_run(ctx.session, household.id, flow.id, resident_id)
    if existing is not None:
        # Resuming continues the same run: it is not counted as a new start.
        return await _continue(ctx, existing)
    transition = engine.start(flow, local_date(ctx.now))
    run = FlowRun(
        flow_id=flow.id, flow_version=flow.version, household_id=household.id, area_id=household.area_id,
        resident_id=resident_id, volunteer_id=ctx.user.id, status=RunStatus.ACTIVE, state={},
        started_at=ctx.now, updated_at=ctx.now,
    )
    ctx.session.add(run)
    await ctx.session.flush()
    return await _apply(ctx, run, flow, transition, household)


async def _continue(ctx: Context, run: FlowRun) -> list[Reply]:
    """Show an unfinished run where it stands: resume an active one, reopen a blocked one."""
    flow = registry(ctx).get(run.flow_id, run.flow_version)
    if flow is None:
        return [Reply(ctx.t(texts.STEP_MISSING))]
    household = await ctx.session.get(Household, run.household_id)
    state = run_state(run)
    transition = engine.reopen(flow, state) if run.status == RunStatus.BLOCKED else engine.resume(flow, state)
    return await _apply(ctx, run, flow, transition, household)


async def _load_run(ctx: Context, ref: int | str, action: str) -> tuple[FlowRun, Flow, Household] | Reply:
    """The run a button (its id) or the chat's state names, if this user may work on it."""
    run_id = ref if isinstance(ref, int) else button_id(ref)
    run, household, area = await load_run_for_step(ctx.session, run_id, lock=not ctx.services.is_sqlite) \
        if run_id is not None else (None, None, None)
    if run is None:
        return out_of_date(ctx)
    if household is None or area is None or not can_work_on(ctx, household, area):
        refuse(ctx, action, f"run:{run.id}")
        return Reply(ctx.t("This household is not in your area, so you cannot open it."))
    flow = registry(ctx).get(run.flow_id, run.flow_version)
    if flow is None:
        return Reply(ctx.t(texts.STEP_MISSING))
    return run, flow, household


@router.button(RunButton)
async def run_button(ctx: Context, data: RunButton) -> list[Reply]:
    action = data.action
    loaded = await _load_run(ctx, data.run_id, f"run:{action}")
    if isinstance(loaded, Reply):
        return [loaded]
    run, flow, household = loaded
    # The run (or the pause question's answer) replaces the message the button was on.
    if action == "resume" and RunStatus(run.status).open:
        return in_place(await _continue(ctx, run))
    if action == "pause" and run.status == RunStatus.ACTIVE:
        return in_place([_paused(ctx, run, flow)])
    if action == "abandon" and run.status == RunStatus.ACTIVE and _asking_cancel(ctx, run):
        return in_place(await _abandon(ctx, run, flow, household))
    if action == "restart" and run.status == RunStatus.ABANDONED:
        return in_place(await _start_again(ctx, run, household))
    return [out_of_date(ctx)]


@router.button(StepButton)
async def step_button(ctx: Context, data: StepButton) -> list[Reply]:
    token = data.token
    loaded = await _load_run(ctx, data.run_id, "step")
    if isinstance(loaded, Reply):
        return [loaded]
    run, flow, household = loaded
    transition = engine.advance(flow, run_state(run), engine.Pressed(token), local_date(ctx.now),
                                cccd_key=_cccd_key(ctx))
    return await _apply(ctx, run, flow, transition, household, pressed=token)


# A come-back day chosen while the procedure goes on (handlers/come_back.py) keeps the dialog.
@router.dialog("flow_run", buttons=(StepButton, RunButton, ComeBackButton))
async def step_text(ctx: Context, text: str) -> list[Reply]:
    loaded = await _load_run(ctx, str(ctx.state.get("run_id", "")), "step_text")
    if isinstance(loaded, Reply):
        ctx.set_state(None)
        return [loaded]
    run, flow, household = loaded
    if _asking_cancel(ctx, run) and run.status == RunStatus.ACTIVE:
        return [_pause_question(ctx, run, flow, again=True)]
    transition = engine.advance(flow, run_state(run), engine.Typed(text), local_date(ctx.now),
                                cccd_key=_cccd_key(ctx))
    return await _apply(ctx, run, flow, transition, household)


@router.cancel
async def cancel_run(ctx: Context, args: str) -> list[Reply]:
    """/cancel in a procedure asks pause-or-abandon; /cancel at that question keeps it paused."""
    if ctx.state.get("dialog") != "flow_run":
        return []
    loaded = await _load_run(ctx, str(ctx.state.get("run_id", "")), "cancel")
    if isinstance(loaded, Reply) or loaded[0].status != RunStatus.ACTIVE:
        ctx.set_state(None)
        return []
    run, flow, _ = loaded
    if _asking_cancel(ctx, run):
        return [_paused(ctx, run, flow)]
    ctx.set_state({"dialog": "flow_run", "run_id": run.id, "expects_text": False, "asking": ASKING_CANCEL})
    return [_pause_question(ctx, run, flow)]



def _asking_cancel(ctx: Context, run: FlowRun) -> bool:
    return ctx.state.get("asking") == ASKING_CANCEL and ctx.state.get("run_id") == run.id


def _step_number(run: FlowRun) -> int:
    """The n of "Step n/N" the run stands at (answered steps + 1)."""
    return run_state(run).answered + 1


def _pause_question(ctx: Context, run: FlowRun, flow: Flow, *, again: bool = False) -> Reply:
    t = ctx.t
    lines = [t("Please choose one of the options.")] if again else []
    lines += [t("Stop “{flow}” at step {n}?", flow=t(flow.title), n=_step_number(run)),
              t("Keep it paused to go on later from the household's page, or abandon it.")]
    buttons = (Button(t("Keep it paused"), RunButton(run.id, "pause")),
               Button(t("Abandon it"), RunButton(run.id, "abandon")))
    return Reply("\n".join(lines), buttons=buttons)


def _paused(ctx: Context, run: FlowRun, flow: Flow) -> Reply:
    """The run stays active where it is; the chat leaves it."""
    if ctx.state.get("run_id") == run.id:
        ctx.set_state(None)
    t = ctx.t
    return Reply(
        t("Paused: {flow} at step {n}. Resume it from the household's page whenever you are ready.",
          flow=t(flow.title), n=_step_number(run)),
        buttons=(Button(t("Resume now"), RunButton(run.id, "resume")),
                 Button(t("Back to the household"), HouseholdButton(run.household_id))),
    )


async def _abandon(ctx: Context, run: FlowRun, flow: Flow, household: Household) -> list[Reply]:
    transition = engine.cancel(run_state(run))
    audit(ctx.session, ctx.now, ctx.user.id, "run.abandon", f"run:{run.id}",
          {"step": run.current_step, "flow": run.flow_id})
    return await _apply(ctx, run, flow, transition, household)


async def _start_again(ctx: Context, run: FlowRun, household: Household) -> list[Reply]:
    """A new run of an abandoned run's procedure, for the same person, from its first step."""
    flows = registry(ctx)
    if run.flow_id not in flows or run.flow_id in ctx.services.retired_flows:
        return [out_of_date(ctx)]
    if run.resident_id is not None and run.resident_id not in {
        m.id for m in await members_of(ctx.session, household.id)
    }:
        return [out_of_date(ctx)]
    return await start_run(ctx, household, flows.latest(run.flow_id), run.resident_id)


async def abandoned_section(
    ctx: Context, household_id: int, names: dict[int, str]
) -> tuple[list[str], list[Button]]:
    """Household-page lines for abandoned runs not started again since, with "Start again"."""
    t = ctx.t
    lines: list[str] = []
    buttons: list[Button] = []
    current = frozenset(registry(ctx).ids()) - ctx.services.retired_flows
    for run in await abandoned_runs(ctx.session, household_id):
        who = f" ({names[run.resident_id]})" if run.resident_id in names else ""
        day = (run.finished_at or run.updated_at).astimezone(VIETNAM).strftime("%d/%m")
        lines.append("  ⏹ " + t("{flow}{who}: abandoned on {day} at step {n}", flow=title(ctx, run.flow_id),
                                 who=who, day=day, n=_step_number(run)))
        if run.flow_id in current:
            label = person_label("🔄", names.get(run.resident_id or 0),
                                 t("Start again: {flow}", flow=title(ctx, run.flow_id)))
            buttons.append(Button(label, RunButton(run.id, "restart")))
    return lines, buttons


def _cccd_key(ctx: Context) -> bytes:
    return ctx.services.settings.secret_key.encode("utf-8")


async def _apply(
    ctx: Context, run: FlowRun, flow: Flow, transition: engine.Transition, household: Household | None,
    *, pressed: str | None = None,
) -> list[Reply]:
    """Write what the engine decided (records + state, one transaction) and render it."""
    if transition.records:
        # The records, the household's last step and the run's state (one statement on PostgreSQL).
        await write_step(ctx.session, run, transition.records, transition.new_state, user_id=ctx.user.id,
                         now=ctx.now, source_update=f"{ctx.incoming.channel}:{ctx.incoming.update_id}")
    elif transition.new_state.to_json() != run.state:
        await write_run_state(ctx.session, run, transition.new_state, ctx.now)
    for event in transition.events:
        if isinstance(event, MarkDigitalReady) and run.resident_id is not None:
            resident = await ctx.session.get(Resident, run.resident_id)
            if resident is not None:
                resident.digital_ready = True
    tapped = pressed is not None and ctx.incoming.tapped
    # The message the typed-reason question is on (it replaced the tapped step): the typed
    # reason turns it into the log line, as a pressed one does.
    live_ref = ctx.state.get("live_ref") if pressed is None and ctx.state.get("run_id") == run.id else None
    if run.status == RunStatus.ACTIVE:
        # While an input step waits for a typed answer, "1" is the answer, not option 1.
        typing = any(isinstance(e, ShowStep) and e.expects_text for e in transition.events)
        state: dict[str, Any] = {"dialog": "flow_run", "run_id": run.id, "expects_text": typing}
        if tapped and any(isinstance(e, AskReasonText) for e in transition.events):
            state["live_ref"] = ctx.incoming.message_ref
        elif live_ref and not transition.records:
            state["live_ref"] = live_ref
        ctx.set_state(state)
    elif ctx.state.get("run_id") == run.id:
        ctx.set_state(None)
    if tapped and any(isinstance(e, StaleButton) for e in transition.events):
        # An old step's button: a toast, and its keyboard goes; the live step stays the one.
        return [Reply(ctx.t(texts.STALE_BUTTON), toast=True)]
    replies = []
    confirmation = _confirmation(ctx, flow, transition, pressed if live_ref is None else "typed")
    if confirmation is not None and live_ref is not None:
        here = Address(ctx.incoming.channel, ctx.incoming.chat_id)
        confirmation = replace(confirmation, edit=False, to=here, edit_ref=str(live_ref))
    if confirmation is not None:
        replies.append(confirmation)
    elif tapped and transition.records:
        replies.append(Reply("", toast=True))  # a read info step: its Continue goes
    shown = _render(ctx, run, flow, transition, household)
    if pressed is not None and not transition.records:
        # Problem, Other reason, Back: the step's own message becomes its sub-step and back.
        shown = replace(shown, edit=True)
    replies.append(shown)
    return come_back.with_offer(ctx, run, transition, replies)


def _confirmation(
    ctx: Context, flow: Flow, transition: engine.Transition, pressed: str | None
) -> Reply | None:
    """After a press that recorded a step: the pressed message becomes its outcome (edited in
    place where the channel can), so the chat reads as a log of what was done."""
    if pressed is None or not transition.records:
        return None
    record = transition.records[-1]
    step = flow.step(record.step_id)
    if step is None or isinstance(step, InfoStep):
        return None
    text = ctx.t(step.text)
    short = text if len(text) <= 80 else text[:77].rstrip() + "…"
    if record.outcome == StepOutcome.DONE:
        match step:
            case ChoiceStep():
                option = step.option(str(record.value))
                chosen = ctx.t(option.label) if option else str(record.value)
                return Reply(f"☑ {short} → {chosen}", edit=True)
            case InputStep():
                return Reply(f"☑ {short} → {record.value}", edit=True)
    outcome = ctx.t(OUTCOME_NAMES.get(record.outcome, record.outcome))
    line = f"{OUTCOME_MARKS.get(record.outcome, '•')} {outcome}: {short}"
    if record.outcome == StepOutcome.BLOCKED and record.reason:
        line += f" — {record.reason if record.reason_typed else ctx.t(record.reason)}"
    return Reply(line, edit=True)


def _render(ctx: Context, run: FlowRun, flow: Flow, transition: engine.Transition,
            household: Household | None) -> Reply:
    t = ctx.t
    lines: list[str] = []
    buttons: tuple[Button, ...] = ()
    # The message stays as the log's last line: a new page is sent, this keyboard goes.
    back = (Button(t("Back to the household"), HouseholdButton(run.household_id, "", KEEP)),) \
        if household else ()
    rows: tuple[int, ...] = ()
    # A flow's closing text says how it ended: a note from its last step saying the same just
    # before it (marked digital-ready) would repeat it.
    closing = any(isinstance(e, Completed) and e.done_text for e in transition.events)
    for event in transition.events:
        values: dict[str, Any] = dict(getattr(event, "values", {}) or {})
        if isinstance(event, MarkDigitalReady) and closing:
            continue
        if isinstance(event, ShowStep):
            lines += _step_lines(ctx, flow, event)
            if event.hint:
                lines.append(f"({t(event.hint)})")
            buttons = _step_buttons(ctx, run, event.buttons)
            if event.kind == "task":
                rows = (1,)  # Done alone, then Skip | Problem
        elif isinstance(event, AskReason | AskReasonText):
            # The question replaces the step's message (or comes back with the run): it says
            # again which step and procedure it is about.
            view = engine.step_view(flow, run_state(run))
            if view is not None:
                lines += _step_lines(ctx, flow, view)
            lines.append(t(event.msgid))
            buttons = _step_buttons(ctx, run, event.buttons)
        elif isinstance(event, ProblemNoted | Blocked):
            shown = event.reason if event.reason_typed else t(event.reason)
            lines.append(t(event.msgid, reason=shown))
            if isinstance(event, Blocked):
                lines.append(t(
                    "It is kept on the household's page; retry it there when the problem is solved."
                ))
                buttons = back
        elif isinstance(event, Completed):
            lines.append(t(event.msgid) + (" " + t(event.done_text) if event.done_text else ""))
            buttons = back
        else:
            lines.append(t(event.msgid, **values) if values else t(event.msgid))
            if run.status != RunStatus.ACTIVE:
                buttons = back
    return Reply("\n".join(lines), buttons=buttons, rows=rows, columns=2 if rows else 1)


def _step_lines(ctx: Context, flow: Flow, event: ShowStep) -> list[str]:
    """ "Step n/N · procedure" and the step's text."""
    t = ctx.t
    n_msgid, n_values = event.header
    values = dict(event.values or {})
    return [f"{t(n_msgid, **n_values)} · {t(flow.title)}",
            t(event.text, **values) if values else t(event.text)]


def _step_buttons(ctx: Context, run: FlowRun, buttons: tuple[Any, ...]) -> tuple[Button, ...]:
    """A step's buttons; where buttons are drawn, Done, Skip and Problem carry a mark."""
    marks = {} if numbered(ctx) else STEP_BUTTON_MARKS
    out = []
    for b in buttons:
        parsed = engine.parse_token(b.token)
        mark = marks.get(parsed[2]) if parsed else None
        label = ctx.t(b.label)
        out.append(Button(f"{mark} {label}" if mark else label, StepButton(run.id, b.token)))
    return tuple(out)
