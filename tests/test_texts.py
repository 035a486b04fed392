"""Texts as people read them: residents addressed politely, plurals, small talk, names, buttons."""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from pathlib import Path

import pytest

from bot.app import FLOWS_DIR
from bot.seed_demo import seed_demo
from conversations import texts as engine_texts
from conversations.faq_model import load_faq
from conversations.flow_model import ChoiceStep, TaskStep, load_flows
from conversations.small_talk import SmallTalk, small_talk
from db.models import FaqMiss
from db.repo.areas import area_by_code
from db.repo.invites import create_invite
from handlers.i18n import LOCALES, RESIDENT, translator
from tests import catalogs
from tests.chat import Talker, count_rows, payload_of

ROOT = Path(__file__).resolve().parent.parent
POLITE = "ông/bà"


async def _visit_until_ward_question(talker: Talker) -> str:
    """The texts of /visit up to the ward question, one reply per step."""
    await talker.say("/visit")
    asked = talker.text()
    await talker.say("giúp cài VNeID")
    return asked + "\n" + talker.text()


async def test_resident_start_help_and_visit_address_the_resident_as_ong_ba(app):
    """A resident's /start, /help and /visit say “ông/bà” and ask the ward politely."""
    await seed_demo(app)
    hoa = Talker(app, "hoa")
    await hoa.say("/start")
    assert POLITE in hoa.text().lower()
    await hoa.say("/help")
    assert POLITE in hoa.text().lower()
    visit = await _visit_until_ward_question(hoa)
    assert visit.lower().count(POLITE) >= 2
    assert "Ông/bà đang ở phường, xã nào ạ?" in visit


async def test_volunteer_keeps_ban_in_start_and_visit(app):
    """A volunteer's /start and /visit say “bạn”-style texts, never “ông/bà”."""
    await seed_demo(app)
    an = Talker(app, "an")
    await an.say("/start")
    start = an.text()
    visit = await _visit_until_ward_question(an)
    assert POLITE not in (start + visit).lower()
    assert "Bạn cần giúp việc gì?" in visit


async def test_resident_register_stays_in_english(app):
    """In English a resident reads the same /visit texts as staff (the register is Vietnamese)."""
    await seed_demo(app)
    visit = await _visit_until_ward_question(Talker(app, "hoa", lang="en"))
    assert "What do you need help with?" in visit
    assert "Which ward or commune do you live in?" in visit


async def test_empty_display_name_greets_without_a_stray_space(app):
    """A blank display name is greeted “Xin chào ông/bà!” / “Hello!”, with no space before “!”."""
    for lang, expected in (("vi", "Xin chào ông/bà!"), ("en", "Hello!")):
        talker = Talker(app, f"nameless-{lang}", lang=lang)
        await talker.send(replace(talker.incoming("/start"), display_name="   "))
        assert talker.text().startswith(expected)
        assert " !" not in talker.text() and " ," not in talker.text()


async def _join(app, clock, who: str, area: str) -> None:
    async with app.db.transaction() as session:
        found = await area_by_code(session, area)
        code = (await create_invite(session, role="volunteer", area=found, now=clock())).code
    await Talker(app, who).say(f"/join {code}")


async def _visit_hai_van(talker: Talker) -> str:
    await talker.say("/visit need help with VNeID")
    await talker.press(payload_of(talker, "Hải Vân"))
    await talker.press(payload_of(talker, "Tà Lang"))
    await talker.press("visit:skip")
    await talker.press("visit:known")  # no phone, no address
    return talker.last[0].text


async def test_visit_request_counts_volunteers_in_proper_english(app, clock):
    """The request is “sent to 1 volunteer” with one volunteer and “to 2 volunteers” with two."""
    await seed_demo(app)
    one = await _visit_hai_van(Talker(app, "ba-mot", lang="en"))
    assert "sent to 1 volunteer." in one
    await _join(app, clock, "dung", "danang.hai-van")
    two = await _visit_hai_van(Talker(app, "ba-hai", lang="en"))
    assert "sent to 2 volunteers." in two
    assert "(s)" not in one + two


async def test_volunteer_greeting_counts_households_in_proper_english(app):
    """A volunteer with one household is greeted with “1 household”, one with two “2 households”."""
    await seed_demo(app)
    cuong, binh = Talker(app, "cuong", lang="en"), Talker(app, "binh", lang="en")
    await cuong.say("/start")
    await binh.say("/start")
    assert "look after 1 household." in cuong.text()
    assert "look after 2 households." in binh.text()


@pytest.mark.parametrize("locale, n, expected", [
    ("en", 1, "1 volunteer."), ("en", 2, "2 volunteers."), ("en", 0, "0 volunteers."),
    ("vi", 1, "1 tình nguyện viên."), ("vi", 2, "2 tình nguyện viên."),
])
def test_plural_picks_the_form_for_the_count(locale, n, expected):
    """Translator.plural gives Babel's plural form for the count: one or two forms in en, one in vi."""
    text = translator(locale).plural(
        "Your request #{id} was sent to {n} volunteer. I will tell you when they take it.",
        "Your request #{id} was sent to {n} volunteers. I will tell you who takes it.", n, id=7)
    assert expected in text


@pytest.mark.parametrize("text, kind", [
    ("cảm ơn", SmallTalk.THANKS), ("Cám ơn bạn nhiều nhé!", SmallTalk.THANKS),
    ("cam on", SmallTalk.THANKS), ("thanks", SmallTalk.THANKS), ("Thank you very much!", SmallTalk.THANKS),
    ("ok", SmallTalk.OK), ("OK.", SmallTalk.OK), ("oke bạn", SmallTalk.OK), ("vâng ạ", SmallTalk.OK),
    ("👍", SmallTalk.OK),
    ("chào", SmallTalk.GREETING), ("Xin chào!", SmallTalk.GREETING), ("hello", SmallTalk.GREETING),
    ("chào bạn GoCua", SmallTalk.GREETING),
    ("tạm biệt", SmallTalk.BYE), ("bye", SmallTalk.BYE),
    ("cảm ơn, cho hỏi làm VNeID ở đâu", None), ("ok làm khai sinh cần gì", None),
    ("chào, tôi muốn hỏi về lương hưu", None), ("bà ơi", None), ("0", None), ("", None),
    ("thanks " * 20, None),
])
def test_small_talk_is_recognised_only_as_a_whole_message(text, kind):
    """Thanks, ok, greetings and goodbyes are small talk only when nothing else is said."""
    assert small_talk(text) is kind


@pytest.mark.parametrize("said, lang", [
    ("cảm ơn", "vi"), ("cam on", "vi"), ("ok", "vi"), ("chào", "vi"), ("xin chào", "vi"),
    ("thanks", "en"), ("hello", "en"), ("tạm biệt", "vi"),
])
async def test_small_talk_gets_a_friendly_answer_and_no_miss(app, said, lang):
    """“cảm ơn”, “ok”, “chào”, “thanks” get a friendly answer with what to type next, never
    “I don't know”, and are not stored as FAQ misses."""
    resident = Talker(app, "ba-tu", lang=lang)
    await resident.say(said)
    text = resident.text()
    assert "chưa biết" not in text and "don't know" not in text
    assert "not sure I understood" not in text and "chưa chắc" not in text
    assert "/visit" in text or "/help" in text
    assert await count_rows(app, FaqMiss) == 0


async def test_resident_thanks_is_polite_and_staff_thanks_is_plain(app):
    """A resident's “cảm ơn” is answered with “ông/bà”; a volunteer's with their commands."""
    await seed_demo(app)
    resident, volunteer = Talker(app, "hoa"), Talker(app, "an")
    await resident.say("cảm ơn")
    await volunteer.say("cảm ơn")
    assert POLITE in resident.text().lower()
    assert POLITE not in volunteer.text().lower() and "/help" in volunteer.text()


def test_every_resident_version_belongs_to_a_text_the_code_shows(tmp_path):
    """Each text marked for a resident version (handlers/resident_texts.py) is also a plain text of
    the code, so a reworded text cannot leave its resident version behind."""
    extracted = catalogs.extracted(tmp_path)
    plain = {m.id if isinstance(m.id, str) else m.id[0] for m in extracted if m.context is None}
    resident = [m.id for m in extracted if m.context == RESIDENT]
    assert resident, "no resident versions extracted"
    assert [m for m in resident if (m if isinstance(m, str) else m[0]) not in plain] == []


def test_no_msgid_hides_a_plural_behind_s_in_brackets(tmp_path):
    """No text says “volunteer(s)”: counted texts use plural forms."""
    ids = [m.id for m in catalogs.extracted(tmp_path) if m.id]
    assert [i for i in ids if "(s)" in str(i)] == []


# Words that keep a capital inside a button label: proper names and product names.
PROPER = {"English", "Excel", "Google", "Play", "App", "Store", "Telegram", "Zalo", "Tiếng", "Việt",
          "I", "GoCua", "Mẫu", "Viettel", "VNPT",
          "January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"}


def is_sentence_case(label: str) -> bool:
    """First letter capital; later words lower case unless a name or an acronym (VNeID, CT07)."""
    words = re.findall(r"[^\W\d_][\w./-]*", label)
    if not words or not words[0][0].isupper():
        return False
    return all(not w[0].isupper() or w in PROPER or any(c.isupper() or c.isdigit() for c in w[1:])
               for w in words[1:])


def _button_msgids() -> set[str]:
    """Every translated button label: flow options and reasons, flow and FAQ titles, the engine's
    buttons and the labels the handlers put on Button(...)."""
    labels: set[str] = set()
    for flow in load_flows(FLOWS_DIR):
        labels.add(flow.title)
        for step in flow.steps:
            if isinstance(step, ChoiceStep):
                labels.update(o.label for o in step.options)
            if isinstance(step, TaskStep):
                labels.update(step.reasons)
    labels.update(entry.title for entry in load_faq())
    labels.update(v for k, v in vars(engine_texts).items() if k.startswith("BUTTON_"))
    for path in (ROOT / "handlers").glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        marked = {node.targets[0].id: node.value.args[0].value for node in ast.walk(tree)
                  if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                  and getattr(node.value.func, "id", "") == "N_" and isinstance(node.targets[0], ast.Name)}
        for call in ast.walk(tree):
            if not (isinstance(call, ast.Call) and getattr(call.func, "id", "") == "Button" and call.args):
                continue
            for inner in ast.walk(call.args[0]):
                if isinstance(inner, ast.Call) and "t" in (getattr(inner.func, "id", ""),
                                                            getattr(inner.func, "attr", "")):
                    arg = inner.args[0]
                    if isinstance(arg, ast.Constant):
                        labels.add(arg.value)
                    elif isinstance(arg, ast.Name) and arg.id in marked:
                        labels.add(marked[arg.id])
    return labels


@pytest.mark.parametrize("locale", LOCALES)
def test_button_labels_are_in_sentence_case(locale):
    """Every button reads in sentence case in both languages (“Tại công an xã/phường”, not
    “Tại Công an xã/phường”)."""
    t = translator(locale)
    labels = _button_msgids()
    assert len(labels) > 50
    # placeholders ({id}, {year} …) read as a number, whatever their name
    wrong = sorted(shown for label in labels
                   if not is_sentence_case(shown := re.sub(r"\{\w+\}", "1", t(label))))
    assert wrong == []


async def test_nothing_a_resident_reads_calls_them_ban(app):
    """A resident's whole tour (start, help, language, visit with mistakes, FAQ, small talk,
    unknown and staff commands, invite and link codes) never says “bạn” in Vietnamese."""
    await seed_demo(app)
    hoa = Talker(app, "hoa")
    seen: list[str] = []

    async def say(text: str) -> None:
        await hoa.say(text)
        seen.append(hoa.text())

    async def press(label: str) -> None:
        await hoa.press(payload_of(hoa, label))
        seen.append(hoa.text())

    for text in ("/start", "/help", "/lang"):
        await say(text)
    await press("Tiếng Việt")
    for text in ("/cancel", "/foo", "/stats", "/visit", "/cancel", "/visit", "", "giúp cài VNeID"):
        await say(text)
    ward = payload_of(hoa, "Hải Vân")
    await say("abc")
    await hoa.press(ward)
    await press("Tà Lang")
    await say("0905")
    await say("0905123456")
    await say("Nhà sàn cạnh suối")
    for text in ("gia vang hom nay", "lam khai sinh can gi", "cảm ơn", "ok", "tạm biệt", "/join",
                 "SAI-MA", "/link", "/link 000000"):
        await say(text)
    await hoa.press("hh:1")
    seen.append(hoa.text())
    said = "\n".join(seen)
    assert POLITE in said.lower()
    assert [line for line in said.splitlines() if re.search(r"\bbạn\b", line, re.IGNORECASE)] == []


@pytest.mark.parametrize("lang, periods", [
    ("en", {"Last 7 days", "Last 30 days", "All time"}),
    ("vi", {"7 ngày qua", "30 ngày qua", "Toàn bộ thời gian"}),
])
async def test_period_buttons_start_with_a_capital(app, lang, periods):
    """The period buttons under /stats are in sentence case like every other button."""
    await seed_demo(app)
    lan = Talker(app, "lan", lang=lang)
    await lan.say("/stats")
    labels = {label.removeprefix("✓ ") for label, _ in lan.buttons()}
    assert periods <= labels
