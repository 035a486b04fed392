"""The FAQ on real questions (issue 14 §4): tests/faq_data/faq_real.yaml, questions residents sent
to newspaper Q&A columns, legal-advice pages, government answer pages and forums, plus phone-style
rewrites. The set was committed before the matcher was changed and is held out: never tune
conversations/faq_match.py or the entries on it, and never edit it to fit the matcher.

The thresholds not met yet stay strict xfail (bench/README.md has the figures); the mark comes
off each one as it is met. Out-of-scope declines met it with the §3 matcher and the §2 entries;
few wrong answers with confidence met it with the opinions' agreement (issue 14 §3), and still
do since the residents' questions (conversations/faq/questions/) train the matcher.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.faq import figures
from conversations.faq_model import load_faq
from conversations.yaml_load import safe_load

DATA = Path(__file__).resolve().parent / "faq_data"  # not data/: .gitignore ignores it

# Entries issue 14 §2 adds; the set may already expect them.
PLANNED_IDS = {"residence.temporary", "residence.permanent", "idcard.reissue",
               "health.elderly_card", "death.registration", "allowance.disability",
               "vneid.cost", "vneid.has_account"}
NOT_YET = "issue 14 §3: target not met yet (bench/README.md, FAQ matcher)"


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return safe_load((DATA / "faq_real.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def result(rows) -> dict:
    return figures([{"q": row["q"], "id": row["id"]} for row in rows])


def test_the_real_set_has_its_shape(rows):
    """>= 150 originals, each with a page address, >= 50 phone rewrites pointing at an original,
    ids that are FAQ entries (or the §2 ones), and a mix of in and out of scope."""
    ids = {entry.id for entry in load_faq()} | PLANNED_IDS
    originals = [row for row in rows if row.get("style") != "phone"]
    phone = [row for row in rows if row.get("style") == "phone"]
    assert len(originals) >= 150 and len(phone) >= 50
    assert all(set(row) <= {"q", "source", "id", "note"} for row in originals)
    assert all(set(row) == {"q", "id", "style", "from"} for row in phone)
    assert all(isinstance(row["q"], str) and row["q"].strip() for row in rows)
    assert all(row["source"].startswith(("http://", "https://")) for row in originals)
    assert len({row["source"] for row in originals}) == len(originals)
    sources = {row["source"]: row["id"] for row in originals}
    assert all(row["from"] in sources and sources[row["from"]] == row["id"] for row in phone)
    assert {row["id"] for row in rows} - {None} <= ids
    inside = sum(row["id"] is not None for row in originals) / len(originals)
    assert 0.5 <= inside <= 0.75
    assert all(row["q"] == row["q"].encode("ascii", "ignore").decode() for row in phone)


def test_the_real_set_is_not_made_of_examples(rows):
    """No real question is one of the entries' example phrasings."""
    from conversations.faq_match import normalize

    examples = {normalize(text) for entry in load_faq() for text in entry.examples}
    assert [row["q"] for row in rows if normalize(row["q"]) in examples] == []


@pytest.mark.xfail(strict=True, reason=NOT_YET)
def test_in_scope_questions_get_the_right_entry(result):
    """>= 85% of the in-scope real questions are answered with the expected entry."""
    assert result["in_scope_right"] >= 0.85 * result["in_scope"], result


def test_out_of_scope_questions_are_declined(result):
    """>= 85% of the out-of-scope real questions get no answer."""
    assert result["out_of_scope_declined"] >= 0.85 * result["out_of_scope"], result


def test_few_questions_are_answered_wrongly_with_confidence(result):
    """<= 5% of all real questions get an answer that is not the expected one."""
    assert result["wrong_confident"] <= 0.05 * result["questions"], result
