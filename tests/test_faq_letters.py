"""Our own residents'-style letters (conversations/faq/letters/, issue 14 §3): a measuring set
until 2026-12-06, now training data for the matcher's opinions beside the residents' questions.
They must stay apart from the measuring sets: no letter copies a held-out or calibration question,
nor comes from a page the real set was taken from.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from rapidfuzz import fuzz, process

from conversations.faq_model import LETTERS_DIR, load_faq
from conversations.folding import strip_marks

DATA = Path(__file__).resolve().parent / "faq_data"  # the measuring sets (not data/: .gitignore ignores it)
KEPT_APART = ("faq_real.yaml", "faq_eval.yaml", "faq_calibration.yaml")


def _fold(text: str) -> str:
    """Without marks, case or punctuation: a copy is found however it was retyped."""
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9 ]", " ", strip_marks(text))).strip()


@pytest.fixture(scope="module")
def letters() -> list[dict]:
    return yaml.safe_load((LETTERS_DIR / "letters.yaml").read_text(encoding="utf-8"))


def test_letters_have_their_shape(letters):
    ids = {entry.id for entry in load_faq()}
    assert len(letters) >= 600
    assert all(set(row) == {"q", "id", "source"} for row in letters)
    assert all(isinstance(row["q"], str) and row["q"].strip() for row in letters)
    assert all(row["source"] == "written" or row["source"].startswith("https://") for row in letters)
    assert {row["id"] for row in letters} - {None} == ids  # every entry has letters
    assert sum(row["id"] is None for row in letters) >= 150
    assert sum(len(row["q"]) >= 200 for row in letters) >= 250  # long letters, not one-liners


def test_no_letter_copies_a_held_out_or_calibration_question(letters):
    held: list[str] = []
    sources: set[str] = set()
    for name in KEPT_APART:
        for row in yaml.safe_load((DATA / name).read_text(encoding="utf-8")):
            held.append(_fold(row["q"]))
            if row.get("source"):
                sources.add(row["source"].split("#")[0].rstrip("/"))
    long_held = [text for text in held if len(text) >= 60]
    texts = [_fold(row["q"]) for row in letters]
    near = (process.cdist(texts, held, scorer=fuzz.ratio, score_cutoff=80).max(axis=1) > 0) \
        | (process.cdist(texts, held, scorer=fuzz.token_sort_ratio, score_cutoff=80).max(axis=1) > 0) \
        | (process.cdist(texts, long_held, scorer=fuzz.partial_ratio, score_cutoff=90).max(axis=1) > 0)
    copies = [row["q"][:60] for row, close in zip(letters, near, strict=True)
              if close or row["source"].split("#")[0].rstrip("/") in sources]
    assert copies == []
