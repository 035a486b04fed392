"""Hostile input (#7): random texts, commands, button payloads and mixed sequences, sent through
the real core by volunteers, a leader, an admin and unknown residents, in Vietnamese and English.

After every update: nothing escapes `core.handle`, no handler crashed (the core's HANDLER_FAILED
answer), a duplicate delivery answers nothing, and a Vietnamese user sees no English text of the
catalog that has a translation. After every example the database is consistent: foreign keys,
step records agree with their run, every run's current step exists in its pinned flow,
households.last_step_at is the time of their last step record, each update was processed once,
and no full citizen ID that was typed is stored anywhere or sent to anyone (replies, visit notices),
whatever separated its digits.

One app (one database, seeded once) per test function; each example resets the actors'
conversations and languages and uses residents of its own. Examples are derandomised, so a run
in CI sees the same inputs as a run here.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache

from babel.messages.pofile import read_po
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text, update

from bot.app import App
from bot.seed_demo import seed_demo
from db.models import Base, Conversation, FaqMiss, FlowRun, Household, ProcessedUpdate, StepRecord, User
from handlers.dispatch import ROUTES
from handlers.i18n import LOCALES_DIR, translator
from handlers.pipeline import HANDLER_FAILED
from handlers.stats_text import PERIODS
from handlers.types import Incoming, Reply
from tests.chat import Talker, all_rows

PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, derandomize=True, database=None, print_blob=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.data_too_large],
)

# ---------------------------------------------------------------- who talks


@dataclass(frozen=True)
class Actor:
    key: str  # console name of a seeded user, or "resident-vi" / "resident-en"
    channel: str
    hint: str | None  # the platform's language hint


ACTORS = (
    Actor("an", "console", "vi"),  # volunteer, Hải Vân
    Actor("binh", "console", "en"),  # volunteer, Hòa Xuân
    Actor("lan", "console", "vi-VN"),  # leader, Hải Vân
    Actor("admin", "console", "en-US"),  # admin, Đà Nẵng
    Actor("resident-vi", "console", None),
    Actor("resident-en", "telegram", "en"),
)
SEEDED = ("an", "binh", "lan", "admin")
_example_numbers = itertools.count(1)
_update_ids = itertools.count(1)

# ---------------------------------------------------------------- what they send

PROVINCE_PREFIXES = ("001", "048", "079", "092", "046")


def citizen_ids() -> st.SearchStrategy[str]:
    """12-digit numbers shaped like a căn cước (a valid province code first)."""
    return st.builds(lambda p, rest: p + rest, st.sampled_from(PROVINCE_PREFIXES),
                     st.from_regex(r"\A[0-3][0-9]{8}\Z"))


SAMPLES = (
    "làm căn cước cho con thế nào", "lam can cuoc cho con the nao", "đăng ký khai sinh online",
    "dang ky khai sinh", "xin chào", "Xin chao!", "VNeID mức 2", "vneid muc2 lam sao", "vnied",
    "xác nhận cư trú", "xac nhan cu tru", "lương hưu xã hội", "chữ ký số", "tài khoản dịch vụ công",
    "Nguyễn Văn An", "Trần Thị Bé", "Ông Bà", "A", "0905123456", "+84 905 123 456", "02363123456",
    "09051234", "05/03/2025", "31/02/2024", "01/01/2999", "2025-13-40", "1/1/1899", "29/02/2024",
    "1950", "1899", "3000", "12", "0", "-1", "1.000.000", "99999999999999999999", "1", "2", "3",
    "9", "[1]", "2.", "hello", "help", "Skip", "Bỏ qua", "Done", "Xong", "Continue", "Tiếp tục",
    "👍🏽", "🏠🏠🏠", "\x00", "\x1b[31mred", "\u200f", "\u202eevil", "مرحبا", "שלום", "\ufeff",
    "", " ", "\n\t ", "a" * 5000, "đ" * 4100, "🙂" * 300, "x" * 301, "/", "//", "@", "%", "_",
    "'; DROP TABLE users; --", "{name}", "{0}", "%s", "<b>bold</b>", "*_markdown_*",
    "HV-TL-001", "hv-tl-001", "danang", "danang.hai-van", "hai-van", "Hải Vân", "csv", "xlsx",
    "households 500", "digital 300", "hộ 12", "vi", "en", "EN", "fr", "²", "١٢", "１２", "3²",
)


# IDs typed with separators between digit groups (#13): spaces, dots, dashes of any width,
# underscores, slashes, commas, zero-width characters, full-width and other decimal digits.
# A known few, so that the database check can look for them whatever form they were typed in.
GROUPED_IDS = ("048190731246", "079385204117", "273918465")
ID_SEPARATORS = (" ", ".", "-", "_", "/", ",", "—", "–", "\u200b", "\u2060", "\u00a0", " - ", "．", "／")
DIGIT_ZEROS = (ord("0"), 0xFF10, 0x0660)


@st.composite
def grouped_ids(draw: st.DrawFn) -> str:
    number = draw(st.sampled_from(GROUPED_IDS))
    cuts = sorted(draw(st.sets(st.integers(1, len(number) - 1), max_size=5)))
    zero = draw(st.sampled_from(DIGIT_ZEROS))
    groups = ["".join(chr(zero + int(d)) for d in number[a:b])
              for a, b in zip([0, *cuts], [*cuts, len(number)], strict=True)]
    return groups[0] + "".join(draw(st.sampled_from(ID_SEPARATORS)) + g for g in groups[1:])


def texts() -> st.SearchStrategy[str]:
    fragment = st.one_of(
        st.sampled_from(SAMPLES),
        citizen_ids(),
        grouped_ids(),
        st.from_regex(r"\A[0-9]{9}\Z"),
        st.text(max_size=30),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
    )
    answers = st.sampled_from(["Nguyễn Văn An", "Lê Thị Hoa", "1985", "0905123456", "05/03/2020",
                               "048090001234", "không có mạng", "Kiệt 5 Nguyễn Lương Bằng"])
    return st.one_of(answers, fragment, st.lists(fragment, min_size=2, max_size=4).map(" ".join))


COMMAND_NAMES = [*sorted(ROUTES.commands), "/unknown", "/START", "/start@GoCuaBot", "/stats@x", "/"]


def commands() -> st.SearchStrategy[str]:
    args = st.one_of(st.just(""), texts(), st.sampled_from(
        ["HV-TL-001", "AV-001", "danang", "hai-van", "Hòa Xuân", "households 500", "digital 0",
         "vneid", "danang.hai-van vneid", "csv", "hai-van csv", "99999999999", "vi", "en"]))
    return st.builds(lambda name, arg: f"{name} {arg}".rstrip(" ") if arg else name,
                     st.sampled_from(COMMAND_NAMES), args)


IDS = st.one_of(st.integers(0, 40).map(str), st.sampled_from(
    ["-1", "1e3", "", "x", "99999999999", "999999999999999999999", "007", " 1", "１", "²", "١"]))
FLOW_IDS = st.sampled_from(["vneid", "birth_registration", "residence_confirmation",
                            "social_pension", "digital_signature", "public_service_account",
                            "smartphone_skills", "nope", ""])
TOKENS = st.one_of(
    st.builds(lambda step, attempt, action: f"{step}:{attempt}:{action}",
              st.sampled_from(["intro", "channel", "has_nfc", "via_vneid", "x", ""]),
              st.integers(-1, 3),
              st.sampled_from(["c", "d", "s", "p", "x", "b", "k", "r0", "r1", "r99", "o:yes", "o:", "z"])),
    st.text(max_size=60),
)
WORDS = st.sampled_from(["", "start", "add", "reassign", "to", "flow", "resume", "take", "close",
                         "area", "skip", "show", "ok", "no", "households", "digital", "vi", "en"])


def payloads() -> st.SearchStrategy[str]:
    """Well-formed payloads of every prefix the handlers read, with any ids, and garbage."""
    join = ":".join
    return st.one_of(
        st.builds(lambda i, v, a: join(x for x in ("hh", i, v, a) if x is not None), IDS,
                  st.sampled_from([None, "", "start", "add", "reassign", "to", "flow", "edit", "x"]),
                  st.one_of(st.none(), IDS, FLOW_IDS, st.builds(lambda f, i: f"{f}:{i}", FLOW_IDS, IDS))),
        st.builds(lambda i, a: f"run:{i}:{a}", IDS, st.sampled_from(["resume", "", "x"])),
        st.builds(lambda i, tok: f"f:{i}:{tok}", IDS, TOKENS),
        st.builds(lambda i, p, view, arg: join(x for x in ("st", i, p, view, arg) if x is not None),
                  IDS, st.sampled_from([*PERIODS, "", "forever"]),
                  st.sampled_from([None, "", "f", "fl", "c", "v", "x", "zz"]),
                  st.one_of(st.none(), FLOW_IDS, st.sampled_from(["csv", "xlsx", "pdf"]))),
        st.builds(lambda i, k: f"tg:{i}:{k}" if k is not None else f"tg:{i}", IDS,
                  st.sampled_from([None, "", "households", "digital", "x"])),
        st.builds(lambda v, a: f"new:{v}:{a}",
                  st.sampled_from(["area", "skip", "keep", "retype", "stop", "x", ""]), IDS),
        st.builds(lambda v, a: f"visit:{v}:{a}", st.sampled_from(["start", "area", "skip", "x", ""]), IDS),
        st.builds(lambda i, v: f"req:{i}:{v}", IDS, st.sampled_from(["take", "close", "", "x"])),
        st.builds(lambda v, f: f"faq:{v}:{f}", st.sampled_from(["show", "ok", "no", "x"]),
                  st.sampled_from(["vneid_level2", "x", ""])),
        st.builds(lambda r: f"member:{r}", st.sampled_from(["skip", "keep", "cardyear", "retype", "", "x"])),
        st.builds(lambda i, v, a: join(x for x in ("ed", i, v, a) if x is not None), IDS,
                  st.sampled_from(["head", "address", "phone", "nophone", "area", "to", "archive", "archived",
                                   "restore", "keep", "cardyear", "retype", "", "x"]),
                  st.one_of(st.none(), IDS)),
        st.builds(lambda i, v, a: join(x for x in ("mb", i, v, a) if x is not None), IDS,
                  st.sampled_from(["", "name", "year", "cccd", "ready", "remove", "removed", "x"]),
                  st.one_of(st.none(), st.sampled_from(["0", "1", "x"]))),
        st.builds(lambda c: f"lang:{c}", st.sampled_from(["vi", "en", "fr", "", "VI"])),
        st.builds(lambda p, rest: f"{p}:{rest}", st.sampled_from(sorted(ROUTES.buttons)),
                  st.text(max_size=40)),
        st.text(max_size=80),
    )


@dataclass(frozen=True)
class Action:
    kind: str  # text | command | payload | press | dup
    actor: int  # index into ACTORS
    value: str = ""
    number: int = 0


ACTOR_INDEX = st.integers(0, len(ACTORS) - 1)
PRESSER = st.sampled_from([0, 0, 0, 2, 3, 1, 4])  # mostly the volunteer "an", so procedures advance
KINDS = st.sampled_from(["press"] * 6 + ["text", "text", "command", "payload", "dup"])


@st.composite
def actions(draw: st.DrawFn) -> Action:
    """Mostly presses of buttons just shown (so procedures advance), mixed with everything else."""
    kind = draw(KINDS)
    if kind in ("press", "dup"):
        return Action(kind, draw(PRESSER), number=draw(st.integers(0, 40)))
    value = draw({"text": texts(), "command": commands(), "payload": payloads()}[kind])
    return Action(kind, draw(st.one_of(PRESSER, ACTOR_INDEX)), value)


OPENINGS = st.sampled_from([
    [], ["/household HV-TL-001"], ["/household HV-TL-002"], ["/household HV-GB-001"],
    ["/household HX-001"], ["/households"], ["/stats"], ["/new"],
    ["/visit"], ["/target"], ["/requests"], ["/help"], ["/household AV-001"],
])

# ---------------------------------------------------------------- one example's chat


@dataclass
class Session:
    """The actors of one example, what each saw last, and everything sent."""

    app: App
    residents: dict[str, str]  # actor key -> chat id of this example's resident
    last: dict[int, list[Reply]] = field(default_factory=dict)
    sent: list[tuple[int, Incoming]] = field(default_factory=list)
    typed: list[str] = field(default_factory=list)

    def chat_of(self, actor: Actor) -> str:
        return self.residents.get(actor.key, actor.key)

    def incoming(self, index: int, *, text: str | None = None, payload: str | None = None) -> Incoming:
        actor = ACTORS[index]
        chat = self.chat_of(actor)
        return Incoming(channel=actor.channel, chat_id=chat, sender_id=chat, display_name=chat,
                        update_id=f"p{next(_update_ids)}", text=text, payload=payload,
                        language_hint=actor.hint)

    async def perform(self, action: Action) -> None:
        if action.kind == "dup":
            await self._duplicate(action)
            return
        if action.kind == "press":
            buttons = [b for r in self.last.get(action.actor, []) if r.to is None for b in r.buttons]
            if buttons:
                incoming = self.incoming(action.actor, payload=buttons[action.number % len(buttons)].payload)
            else:  # nothing to press: answer by number, as a console user would
                incoming = self.incoming(action.actor, text=str(action.number % 5 + 1))
        elif action.kind == "payload":
            incoming = self.incoming(action.actor, payload=action.value)
        else:
            incoming = self.incoming(action.actor, text=action.value)
        if incoming.text:
            self.typed.append(incoming.text)
        replies = await self.send(incoming)
        self.sent.append((action.actor, incoming))
        self.last[action.actor] = replies
        await self.check_replies(action.actor, incoming, replies)

    async def send(self, incoming: Incoming) -> list[Reply]:
        self.app.core.services.clock.advance(seconds=7)  # type: ignore[attr-defined]
        replies = await self.app.core.handle(incoming)
        await self.app.core.mark_sent(incoming)
        return replies

    async def _duplicate(self, action: Action) -> None:
        if not self.sent:
            return
        _, incoming = self.sent[action.number % len(self.sent)]
        if action.number % 2:
            await self.app.core.flush_sent()  # the redelivery then meets the database's mark
        replies = await self.send(incoming)
        assert replies == [], f"a redelivered update was answered again: {incoming!r} -> {replies!r}"

    async def check_replies(self, index: int, incoming: Incoming, replies: list[Reply]) -> None:
        failed = {translator(code)(HANDLER_FAILED) for code in ("vi", "en")}
        for reply in replies:
            assert reply.text not in failed, f"a handler crashed on {incoming!r}"
            shown = ascii_digits(" ".join((reply.text, *(b.label for b in reply.buttons))))
            assert not [n for n in GROUPED_IDS if n[1:-1] in shown], (
                f"a citizen ID sent in {reply.text!r} (to {reply.to}), after {incoming!r}")
        locales = await self.locales()
        for reply in replies:
            target = self.chat_of(ACTORS[index]) if reply.to is None else reply.to.chat_id
            if locales.get(target, "vi") != "vi":
                continue
            for shown in (reply.text, *(b.label for b in reply.buttons)):
                english = untranslated(shown)
                assert english is None, (
                    f"English {english!r} shown to a Vietnamese user in {shown!r}, after {incoming!r}")

    async def locales(self) -> dict[str, str]:
        """chat id -> the language its user reads (stored choice, else the hint, else vi)."""
        from db.models import Identity
        from handlers.i18n import pick_locale

        hints = {self.chat_of(a): a.hint for a in ACTORS}
        async with self.app.db.transaction() as session:
            rows = await session.execute(
                select(Identity.external_id, User.locale).join(User, User.id == Identity.user_id)
                .where(Identity.external_id.in_(list(hints))))
            return {chat: pick_locale(locale, hints.get(chat)) for chat, locale in rows}


@cache
def english_fragments() -> tuple[str, ...]:
    """Placeholder-free pieces (over 25 characters) of the English msgids that have a different
    Vietnamese translation."""
    with (LOCALES_DIR / "vi" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh, locale="vi")
    pieces = set()
    for message in catalog:
        msgid = message.id[0] if isinstance(message.id, tuple) else message.id
        msgstr = message.string[0] if isinstance(message.string, tuple) else message.string
        if not msgid or not msgstr or msgstr == msgid:
            continue
        pieces |= {p.strip() for p in re.split(r"\{[^}]*\}", msgid) if len(p.strip()) > 25}
    return tuple(sorted(pieces))


def untranslated(shown: str) -> str | None:
    return next((piece for piece in english_fragments() if piece in shown), None)


async def start_example(app: App) -> Session:
    """Seed once per app; then forget the seeded users' conversations and language choices."""
    if not getattr(app, "_props_seeded", False):
        await seed_demo(app)
        app._props_seeded = True  # type: ignore[attr-defined]
    n = next(_example_numbers)
    async with app.db.transaction() as session:
        await session.execute(update(Conversation).where(Conversation.chat_id.in_(SEEDED))
                              .values(state={}, offered=[]))
        await session.execute(update(User).values(locale=None))
    return Session(app, residents={"resident-vi": f"rv{n}", "resident-en": f"re{n}"})


# ---------------------------------------------------------------- the database stays sound

CITIZEN_ID = re.compile(r"(?<!\d)\d{12}(?!\d)")


async def check_database(chat: Session) -> None:
    app = chat.app
    await app.core.flush_sent()  # what is kept after sending, not the outbox in flight
    async with app.db.transaction() as session:
        if app.db.is_sqlite:
            broken = (await session.execute(text("PRAGMA foreign_key_check"))).all()
            assert broken == [], f"foreign keys broken: {broken}"
        mismatched = (await session.execute(
            select(StepRecord.id, StepRecord.flow_id, FlowRun.flow_id, StepRecord.area_id, FlowRun.area_id)
            .join(FlowRun, FlowRun.id == StepRecord.run_id)
            .where((StepRecord.flow_id != FlowRun.flow_id) | (StepRecord.area_id != FlowRun.area_id))
        )).all()
        assert mismatched == [], f"step records disagree with their run: {mismatched}"
        flows = app.core.services.flows
        assert flows is not None
        for run in await session.scalars(select(FlowRun).where(FlowRun.current_step.is_not(None))):
            flow = flows.get(run.flow_id, run.flow_version)
            assert flow is not None and flow.step(run.current_step) is not None, (
                f"run {run.id} of {run.flow_id} v{run.flow_version} stands on {run.current_step!r}")
        last = (await session.execute(
            select(Household.code, Household.last_step_at, func.max(StepRecord.recorded_at))
            .outerjoin(FlowRun, FlowRun.household_id == Household.id)
            .outerjoin(StepRecord, StepRecord.run_id == FlowRun.id)
            .group_by(Household.id, Household.code, Household.last_step_at)
        )).all()
        wrong = [row for row in last if row[1] != row[2]]
        assert wrong == [], f"households.last_step_at is not their last step record: {wrong}"
        ids = {(i.channel, i.update_id) for _, i in chat.sent}
        stored = (await session.execute(
            select(ProcessedUpdate.channel, ProcessedUpdate.update_id)
            .where(ProcessedUpdate.update_id.in_([u for _, u in ids])))).all()
        assert sorted(stored) == sorted(ids), "an update was not recorded exactly once"
        needles = {m for typed in chat.typed for m in CITIZEN_ID.findall(typed)}
        if needles:
            found = await _stored(session, needles)
            assert found == [], f"full citizen IDs stored: {found}"
        found = await _stored_as_digits(session, {n[1:-1] for n in GROUPED_IDS})
        assert found == [], f"citizen IDs typed with separators stored: {found}"


async def _stored(session, needles: set[str]) -> list[tuple[str, str]]:
    found = []
    for table in Base.metadata.sorted_tables:
        for row in (await session.execute(select(table))).mappings():
            for column, value in row.items():
                shown = str(value) if value is not None else ""
                found += [(f"{table.name}.{column}", n) for n in needles if n in shown]
    return found


def ascii_digits(text: str) -> str:
    return "".join(str(unicodedata.decimal(ch)) for ch in text if ch.isdecimal())


async def _stored_as_digits(session, needles: set[str]) -> list[tuple[str, str]]:
    """Text values that hold a needle once every character but a decimal digit is removed."""
    found = []
    for table in Base.metadata.sorted_tables:
        for row in (await session.execute(select(table))).mappings():
            for column, value in row.items():
                if isinstance(value, str | dict | list):
                    digits = ascii_digits(str(value))
                    found += [(f"{table.name}.{column}", n) for n in needles if n in digits]
    return found


async def run_example(app: App, opening: list[str], actions: list[Action]) -> None:
    chat = await start_example(app)
    for line in opening:
        for index in (0, 2, 3):  # the volunteer, the leader and the admin open it alike
            await chat.perform(Action("command", index, line))
    for action in actions:
        await chat.perform(action)
    await check_database(chat)


# ---------------------------------------------------------------- the properties


@settings(PROPERTY_SETTINGS, max_examples=60)
@given(opening=OPENINGS, actions=st.lists(actions(), min_size=8, max_size=30))
async def test_mixed_sequences_never_crash_and_keep_the_database_sound(app, opening, actions):
    """Any mix of typing, commands, forged and real button presses and redeliveries, by anyone."""
    await run_example(app, opening, actions)


@PROPERTY_SETTINGS
@given(actions=st.lists(st.builds(Action, st.just("payload"), ACTOR_INDEX, payloads()),
                        min_size=1, max_size=10))
async def test_any_button_payload_from_anyone_is_answered(app, actions):
    """Well-formed payloads with out-of-range ids, areas, periods and tokens, and garbage."""
    await run_example(app, [], actions)


@PROPERTY_SETTINGS
@given(actions=st.lists(st.one_of(st.builds(Action, st.just("command"), ACTOR_INDEX, commands()),
                                  st.builds(Action, st.just("text"), ACTOR_INDEX, texts())),
                        min_size=1, max_size=10))
async def test_any_command_or_text_from_anyone_is_answered(app, actions):
    """Every command with random arguments, and random texts, in and out of dialogs."""
    await run_example(app, [], actions)


async def test_a_nul_character_is_dropped_instead_of_failing_on_postgres(app):
    """Found by the properties above: PostgreSQL cannot store "\x00", so a question or a
    button with one failed the whole update there (database unavailable) and not on SQLite."""
    await seed_demo(app)
    resident = Talker(app, "nul-resident", lang="en")
    await resident.say("qwxz\x00 plop vrrt")
    assert "something went wrong" not in resident.text()
    assert [m.question for m in await all_rows(app, FaqMiss)] == ["qwxz plop vrrt"]
    await resident.press("hh:1\x00:start")
    assert resident.text() == "This household is not in your area, so you cannot open it."


async def test_a_superscript_digit_as_a_target_is_asked_again(app):
    """"²" passes str.isdigit but not int(): typed as a target it crashed the handler."""
    await seed_demo(app)
    leader = Talker(app, "lan", lang="en")
    await leader.say("/target")
    await leader.press(next(p for _, p in leader.buttons() if p.endswith(":households")))
    await leader.say("²")
    assert leader.text().startswith("Please write a whole number from 0 to")
