"""Exports a People's Committee can read: step titles in the export's language, never internal
ids, and each record's answer (the option chosen or the value typed, a citizen ID masked)."""

from __future__ import annotations

import csv
import io

import openpyxl
import pytest

from conversations.flow_model import ChoiceStep, InputStep, Option, TaskStep
from handlers.export_columns import answer_text, step_heading
from handlers.i18n import translator
from tests.chat import Talker, payload_of
from tests.test_flow_runs import start_flow, step

EN, VI = translator("en"), translator("vi")


async def record_some_steps(an: Talker) -> None:
    """A choice and a Problem on VNeID, a typed birth date on birth registration."""
    await start_flow(an, "HV-TL-001", "vneid")
    await step(an, "Yes, chip card")
    await step(an, "Problem")
    await step(an, "No smartphone")
    await start_flow(an, "HV-TL-002", "birth_registration")
    await step(an, "Continue")
    await an.say("05/03/2025")


def step_ids(app) -> set[str]:
    flows = app.core.services.flows
    return {s.id for flow in flows for s in flow.steps}


async def test_xlsx_export_shows_step_titles_and_answers(demo):
    """The XLSX's step column is the step's English title and each record carries its answer."""
    an, lan = Talker(demo, "an", lang="en"), Talker(demo, "lan", lang="en")
    for talker in (an, lan):
        await talker.say("/lang en")
    await record_some_steps(an)
    await lan.say("/export")
    book = openpyxl.load_workbook(io.BytesIO(lan.last[0].attachment.data))
    header, *rows = list(book["Step records"].iter_rows(values_only=True))
    assert header == ("Area", "Household", "Procedure", "Step", "Outcome", "Answer", "Reason",
                      "Volunteer", "Time")
    by_step = {row[3]: row for row in rows}
    chip = by_step["Does the resident have a chip ID card (CCCD or căn cước card with a chip)?"]
    assert chip[4] == "done" and chip[5] == "Yes, chip card"
    phone = next(row for title, row in by_step.items() if title.startswith("Check the phone"))
    assert phone[4] == "problem" and phone[5] is None and phone[6] == "No smartphone"
    born = by_step["What is the child's date of birth?"]
    assert born[5] == "05/03/2025"
    ids = step_ids(demo)
    assert not any(row[3] in ids or any(i in str(row[3]) for i in ("_", "submit_vneid")) for row in rows)


async def test_csv_export_in_vietnamese_names_steps_and_options_in_vietnamese(demo):
    """A Vietnamese CSV shows the step's Vietnamese title and the chosen option's Vietnamese label."""
    an, lan = Talker(demo, "an", lang="en"), Talker(demo, "lan")
    await an.say("/lang en")
    await record_some_steps(an)
    await lan.say("/stats")
    await lan.press(payload_of(lan, "CSV"))
    header, *rows = list(csv.reader(io.StringIO(lan.last[0].attachment.data.decode("utf-8-sig"))))
    assert header[3:6] == ["Bước", "Kết quả", "Câu trả lời"]
    chip_title = VI("Does the resident have a chip ID card (CCCD or căn cước card with a chip)?")
    assert chip_title != "Does the resident have a chip ID card (CCCD or căn cước card with a chip)?"
    [chip] = [row for row in rows if row[3] == chip_title]
    assert chip[5] == VI("Yes, chip card") == "Có thẻ gắn chip"
    assert not {row[3] for row in rows} & step_ids(demo)


@pytest.mark.parametrize(("step", "value", "shown"), [
    (ChoiceStep("has_chip", "Chip?", options=(Option("yes", "Yes, chip card", "x"),)), "yes",
     "Yes, chip card"),
    (InputStep("born", "Born?", validator="date"), "2025-03-05", "05/03/2025"),
    (InputStep("year", "Year?", validator="year"), "1960", "1960"),
    (InputStep("id", "ID?", validator="cccd"), "048090001234", "048*******34"),
    (InputStep("id", "ID?", validator="cccd"), "0480******34", "0480******34"),
    (InputStep("note", "Note?", validator="text"), "so 048 090 001 234", "so 048*******34"),
    (None, "yes", "yes"),
    (TaskStep("task", "Do it."), None, None),
])
def test_answer_text_is_readable_and_never_a_whole_citizen_id(step, value, shown):
    """An answer shows the option's label, a date as dd/mm/yyyy, and never a whole citizen ID."""
    assert answer_text(EN, step, value) == shown


def test_step_heading_is_the_first_sentence_or_the_id_in_words():
    """A heading is the step text's first sentence, shortened; a step no flow knows is named in words."""
    long = TaskStep("x", "Check the phone: a smartphone. The account is tied to that number.")
    assert step_heading(EN, long, "x") == "Check the phone: a smartphone."
    assert step_heading(EN, None, "submit_vneid") == "Submit vneid"
    wordy = TaskStep("x", "word " * 60)
    assert len(step_heading(EN, wordy, "x")) <= 100
