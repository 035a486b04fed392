"""Residents' questions that train the FAQ matcher (conversations/faq/questions/*.yaml, issue 14
§3). They come from public pages other than the measuring sets' and must stay apart from those
sets: a question too close in wording to a measuring-set question, or taken from one of their
pages, would let the matcher learn the answers it is measured on.
"""

from __future__ import annotations

import re

import pytest
from rapidfuzz import fuzz, process

from conversations import faq_match
from conversations.faq_model import FaqError, load_faq, load_questions, load_training, parse_questions
from conversations.folding import strip_marks
from conversations.yaml_load import safe_load
from tests.test_faq_real import DATA

MEASURING_SETS = ("faq_real.yaml", "faq_eval.yaml", "faq_calibration.yaml")


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9 ]", " ", strip_marks(text))).strip()


def _page(url: str) -> str:
    """A page's address without scheme, www./m. or a trailing slash: the same page however linked."""
    return re.sub(r"^https?://(www\.|m\.)?", "", url.split("#")[0]).rstrip("/")


@pytest.fixture(scope="module")
def questions():
    return load_questions(load_faq())


def test_the_questions_cover_the_topics_and_their_neighbours(questions):
    originals = [q for q in questions if not q.phone_style]
    assert len(originals) >= 300
    assert len({q.source for q in originals}) == len(originals)  # one question a page
    assert {q.source for q in questions if q.phone_style} <= {q.source for q in originals}
    declined = sum(q.entry_id is None for q in originals)
    assert 0.25 <= declined / len(originals) <= 0.45  # near-misses to learn to decline


def test_no_question_comes_from_or_copies_a_measuring_set(questions):
    held: list[str] = []
    pages: set[str] = set()
    for name in MEASURING_SETS:
        for row in safe_load((DATA / name).read_text(encoding="utf-8")):
            held.append(_fold(row["q"]))
            for key in ("source", "from"):
                if str(row.get(key, "")).startswith("http"):
                    pages.add(_page(row[key]))
    texts = [_fold(q.text) for q in questions]
    near = (process.cdist(texts, held, scorer=fuzz.ratio, score_cutoff=75).max(axis=1) > 0) \
        | (process.cdist(texts, held, scorer=fuzz.token_sort_ratio, score_cutoff=75).max(axis=1) > 0)
    copies = [q.text[:60] for q, close in zip(questions, near, strict=True)
              if close or _page(q.source) in pages]
    assert copies == []


def test_a_question_with_an_unknown_entry_is_refused_with_its_place():
    text = "- q: mất căn cước làm lại ở đâu\n  id: idcard.lost\n  source: https://example.org/a\n"
    with pytest.raises(FaqError, match=r"civil\.yaml: question 1: unknown entry id 'idcard.lost'"):
        parse_questions(text, ["idcard.reissue"], "civil.yaml")
    with pytest.raises(FaqError, match="source must be the page's http"):
        parse_questions("- q: hỏi\n  id: null\n  source: written\n", [], "x.yaml")
    with pytest.raises(FaqError, match="unknown entry id"):
        parse_questions("- q: hỏi\n  id: [a]\n  source: https://example.org/b\n", [], "x.yaml")
    with pytest.raises(FaqError, match="style is 'phone' or absent"):
        parse_questions("- q: hỏi\n  id: null\n  source: https://example.org/c\n  style: sms\n", [], "x.yaml")


def test_the_matcher_learns_from_them(questions):
    """Trained on four fifths of the questions (by page), the matcher ranks the residents'
    letters of the fifth it has not seen better than the entries' examples alone do."""
    assert faq_match.default_index().questions == load_training(load_faq())
    assert set(questions) < set(faq_match.default_index().questions)  # the letters besides
    pages = sorted({q.source for q in questions})
    held = set(pages[::5])
    trained = faq_match.FaqIndex(load_faq(), questions=[q for q in questions if q.source not in held])
    untrained = faq_match.FaqIndex(load_faq())
    unseen = [q for q in questions if q.source in held and q.entry_id is not None]
    assert len(unseen) >= 100

    def first(index: faq_match.FaqIndex) -> int:
        return sum(1 for q in unseen if (best := index.best(q.text)) is not None and best.id == q.entry_id)

    assert first(trained) > first(untrained) + len(unseen) // 20
