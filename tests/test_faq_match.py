"""The residents' FAQ: the entries, the normaliser, the matcher and its held-out accuracy."""

from __future__ import annotations

import unicodedata
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conversations import faq_match
from conversations.babel_yaml import translatable_strings
from conversations.faq_match import MAX_QUESTION_CHARS, FaqIndex, answer_payload, normalize
from conversations.faq_model import FAQ_DIR, REQUIRED_IDS, FaqError, load_faq, parse_faq, validate
from conversations.yaml_load import safe_load

DATA = Path(__file__).resolve().parent / "faq_data"  # not data/: .gitignore ignores it


@pytest.fixture(scope="module")
def entries():
    return load_faq()


@pytest.fixture(scope="module")
def index() -> FaqIndex:
    """The shipped matcher: the entries, trained also on the residents' questions."""
    return faq_match.default_index()


# -- the entries ---------------------------------------------------------------------------

def test_every_required_topic_exists(entries):
    """Each topic id the issue asks for is an entry."""
    assert REQUIRED_IDS - {e.id for e in entries} == set()


def test_related_ids_exist_and_are_not_the_entry_itself(entries):
    """Every related id names another existing entry."""
    ids = {e.id for e in entries}
    for entry in entries:
        assert set(entry.related) <= ids - {entry.id}, entry.id


def test_texts_fit_a_phone_screen(entries):
    """Titles fit a button (<= 40 chars) and answers one phone screen (<= 600 chars)."""
    for entry in entries:
        assert len(entry.title) <= 40, entry.id
        assert len(entry.answer) <= 600, entry.id


def test_every_entry_has_varied_examples_in_both_languages(entries):
    """At least 5 Vietnamese and 2 English example phrasings, none repeated after normalising."""
    for entry in entries:
        assert len(entry.examples_vi) >= 5 and len(entry.examples_en) >= 2, entry.id
        normalised = [normalize(text) for text in entry.examples]
        assert len(set(normalised)) == len(normalised), entry.id


def test_entries_cite_a_source_link(entries):
    """Every entry but the home-visit request (GoCua's own service) links its source."""
    for entry in entries:
        if entry.id != "visit.request":
            assert entry.source and entry.source[0].startswith(("https://", "http://")), entry.id


def test_only_titles_and_answers_are_extracted_for_translation(entries):
    """The Babel extractor sees each title and answer, and never the example phrasings."""
    extracted = []
    for path in sorted(FAQ_DIR.glob("*.yaml")):
        extracted += translatable_strings(path.read_text(encoding="utf-8"))
    assert sorted(extracted) == sorted([e.title for e in entries] + [e.answer for e in entries])


_ENTRY = """
- id: a.one
  title: One
  answer: The answer.
  source: [https://example.org/a]
  related: {related}
  checked: 2026-12-04
  examples: {{vi: [m1, m2, m3, m4, m5], en: [e1, e2]}}
"""


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (_ENTRY.format(related="[a.missing]"), "entry 'a.one': related id 'a.missing' does not exist"),
        (_ENTRY.format(related="[a.one]"), "entry 'a.one': related lists the entry itself"),
        (_ENTRY.format(related="[]") * 2, "entry 'a.one': duplicate id"),
        (_ENTRY.format(related="[]").replace("title: One", "title: " + "x" * 41), "title is 41"),
        (_ENTRY.format(related="[]").replace("m4, ", ""), "examples.vi has 4, at least 5"),
        (_ENTRY.format(related="[]").replace("https://example.org/a", "example.org"), "not an http"),
        (_ENTRY.format(related="[]").replace("  title:", "  titel: x\n  title:"), "unknown keys ['titel']"),
        ("- id: Bad Id\n", "id 'Bad Id' is not like"),
        ("[oops", "not valid YAML"),
    ],
)
def test_a_broken_file_is_refused_naming_file_and_entry(text, problem):
    """A bad entry stops loading with a FaqError naming the file, the entry and the problem."""
    with pytest.raises(FaqError) as caught:
        validate(parse_faq(text, "broken.yaml"))
    assert str(caught.value).startswith("broken.yaml") and problem in str(caught.value)


# -- the normaliser ------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Quên mật khẩu VNeID", "quen mat khau vneid"),
        (unicodedata.normalize("NFD", "Quên mật khẩu"), "quen mat khau"),
        ("ĐĂNG KÝ khai sinh", "dang ky khai sinh"),
        ("đăng kí", "dang ky"),
        ("ko dc k", "khong duoc khong"),
        ("hok bik", "khong biet"),
        ("sđt, SDT", "so dien thoai so dien thoai"),
        ("đk tk", "dang ky tai khoan"),
        ("quen mk", "quen mat khau"),
        ("CT07", "ct07"),
        ("bhyt", "bao hiem y te"),
        ("CCCD", "can cuoc cong dan"),
        ("vn eid", "vneid"),
        ("500.000đ", "500 nghin dong"),
        ("500k", "500 nghin"),
        ("ngân hàng, 5 ngan", "ngan hang 5 nghin"),
        ("1.000.000 đồng", "1 trieu dong"),
        ("dichvucong.gov.vn", "dich vu cong gov vn"),
        ("documents papers registered", "document paper register"),
        ("What's this?", "what this"),
        ("", ""),
        ("   \n\t ", ""),
        ("😀🙏👍", ""),
        ("'; DROP TABLE faq; --", "drop table faq"),
        ("مرحبا كيف حالك", ""),
        ("\u202eabc\u202c", "abc"),
        ("a\x00b", "a b"),
    ],
)
def test_normalise(text, expected):
    """Folding, abbreviations, teen-code, numbers and hostile characters normalise as listed."""
    assert normalize(text) == expected


def test_a_200_kb_message_is_read_only_up_to_its_cut(index):
    """A 200 KB message is read only up to MAX_QUESTION_CHARS: what lies beyond it changes
    nothing (the time it takes is bench/faq.py's to print, not a unit test's)."""
    head = "xác nhận cư trú ở đâu " + "blah " * 400
    assert len(head) >= MAX_QUESTION_CHARS
    huge = head + "blah " * 40_000
    assert len(huge.encode()) > 200_000
    assert normalize(huge) == normalize(head + "thẻ bảo hiểm y tế sổ đỏ " * 9_000)
    assert index.match(huge) == index.match(head)
    assert index.top(huge) == index.top(head)


@pytest.mark.parametrize(
    "text",
    ["", " ", "😀", "🙂🙂🙂", "'; DROP TABLE faq; --", "مرحبا كيف حالك", "\u202e\u202c", "?!...", "\x00"],
)
def test_hostile_input_matches_nothing(index, text):
    """Empty, emoji-only, SQL, right-to-left and control input give no match and no error."""
    assert index.match(text) is None
    assert answer_payload(index, text, str) == {"id": None, "score": pytest.approx(0.0, abs=0.2),
                                                "answer": None}


# -- matching ------------------------------------------------------------------------------

def test_generic_words_do_not_carry_a_match(index):
    """'How is the weather' is rejected while 'where to confirm residence' is matched."""
    assert index.match("thoi tiet hom nay the nao") is None
    found = index.match("xac nhan cu tru o dau")
    assert found is not None and found.id == "residence.where"


def test_a_match_explains_itself(index):
    """A match has a score in 0..1 and names the terms that matched."""
    found = index.match("quen mat khau vneid")
    assert found is not None and found.id == "vneid.forgot_password"
    assert 0.0 < found.score <= 1.0
    assert "mat khau" in found.why or "@password" in found.why


def test_top_offers_close_topics_below_the_threshold(index):
    """`top` lists up to k entries, best first, all at or above the suggestion floor."""
    suggestions = index.top("giấy cư trú", k=3)
    assert 1 <= len(suggestions) <= 3
    assert [s.score for s in suggestions] == sorted((s.score for s in suggestions), reverse=True)
    assert all(s.score >= faq_match.SUGGEST_FLOOR for s in suggestions)
    assert all(s.id.startswith("residence.") for s in suggestions)
    assert index.top("thời tiết hôm nay", k=3) == []


def test_answer_payload_is_the_cli_contract(index):
    """The payload has exactly id, score and answer; the answer is translated and ends with the source."""
    payload = answer_payload(index, "ct07 co mat phi khong", lambda s: f"<{s}>")
    assert set(payload) == {"id", "score", "answer"}
    assert payload["id"] == "residence.fee"
    entry = index.by_id["residence.fee"]
    assert payload["answer"] == f"<{entry.answer}>\n<Source: {{url}}>".format(url=entry.source[0])
    assert isinstance(payload["score"], float)
    nothing = answer_payload(index, "giá vàng hôm nay", lambda s: s)
    assert nothing["id"] is None and nothing["answer"] is None and isinstance(nothing["score"], float)


def test_the_held_out_set_is_not_made_of_examples(entries):
    """No held-out question is one of the example phrasings (after normalising)."""
    examples = {normalize(text) for entry in entries for text in entry.examples}
    rows = safe_load((DATA / "faq_eval.yaml").read_text(encoding="utf-8"))
    assert [row["q"] for row in rows if normalize(row["q"]) in examples] == []


def test_held_out_accuracy_and_rejection(index, entries, capsys):
    """On the held-out set the best-ranked entry is right for >= 90% of in-scope questions and
    >= 90% of out-of-scope questions get no answer; the stricter "answered, and right" share
    (best entry right AND above the threshold) is printed too and guarded at >= 85%."""
    rows = safe_load((DATA / "faq_eval.yaml").read_text(encoding="utf-8"))
    ids = {entry.id for entry in entries}
    inside = [row for row in rows if row["id"] is not None]
    outside = [row for row in rows if row["id"] is None]
    assert len(rows) >= 80 and len(outside) >= 15
    assert {row["id"] for row in inside} <= ids
    ranked_right, answered_right, in_top3, missed = 0, 0, 0, []
    for row in inside:
        ranking = index.ranked(row["q"])
        best = ranking[0] if ranking else None
        ranked_right += best is not None and best.id == row["id"]
        answered = index.match(row["q"])
        answered_right += answered is not None and answered.id == row["id"]
        in_top3 += row["id"] in [m.id for m in ranking[:3]]
        if answered is None or answered.id != row["id"]:
            missed.append((row["q"], row["id"], best))
    accepted = [(row["q"], found) for row in outside if (found := index.match(row["q"])) is not None]
    top1 = ranked_right / len(inside)
    strict = answered_right / len(inside)
    rejection = 1 - len(accepted) / len(outside)
    with capsys.disabled():
        print(f"\nFAQ held-out set ({len(inside)} in scope, {len(outside)} out of scope): "
              f"top-1 accuracy {top1:.1%}, answered and right {strict:.1%}, "
              f"right entry in top 3 {in_top3 / len(inside):.1%}, out-of-scope rejection {rejection:.1%}")
        for q, want, best in missed:
            print(f"  not answered right: {q!r} -> best {best.id if best else None} "
                  f"{best.score if best else 0.0} (want {want})")
        for q, found in accepted:
            print(f"  answered out of scope: {q!r} -> {found.id} {found.score}")
    assert top1 >= 0.90
    assert rejection >= 0.90
    assert strict >= 0.85


# -- reading a real question (issue 14 §3) ---------------------------------------------------

LONG_PENSION = ("Xin chào luật sư! Nhà tôi ở quê, ông nội tôi trước làm ruộng, các con đều đi làm "
                "ăn xa, mấy năm nay ông yếu nhiều. Ông nội tôi sinh năm 1945, không có lương hưu. "
                "Cho tôi hỏi ông có được nhận trợ cấp hưu trí xã hội không? Xin cảm ơn.")


def test_the_question_sentences_of_a_long_message_weigh_most():
    """Greeting and thanks weigh nothing, background little, the asking and last sentences fully."""
    parts = faq_match.question_parts(LONG_PENSION)
    weights = {text.split()[0] + " " + text.split()[1]: weight for text, weight in parts}
    assert weights["Xin chào"] == 0.0 and weights["Xin cảm"] == 0.0
    assert weights["Nhà tôi"] == faq_match.BACKGROUND_FACTOR
    assert weights["Cho tôi"] == 1.0
    assert faq_match.question_parts("quen mat khau vneid") == [("quen mat khau vneid", 1.0)]


def test_a_long_message_is_read_on_its_question(index):
    """Greeting, background and thanks around a social-pension question still lead to the entry:
    it ranks first and is the first topic offered, and no other topic is given as the answer."""
    assert index.ranked(LONG_PENSION)[0].id == "pension.eligibility"
    assert index.close(LONG_PENSION)[0].id == "pension.eligibility"
    assert index.match(LONG_PENSION) is None or index.match(LONG_PENSION).id == "pension.eligibility"


def test_a_long_social_pension_question_is_answered(index):
    found = index.match(LONG_PENSION)
    assert found is not None and found.id == "pension.eligibility"


@pytest.mark.parametrize(("text", "named"), [
    ("Tôi muốn sang tên xe máy cho con", {"!vehicle"}),
    ("sang ten xe may", {"!vehicle"}),
    ("làm sổ đỏ cho mảnh đất", {"!land"}),
    ("đăng ký kết hôn ở đâu", {"!marriage"}),
    ("ly hon can giay to gi", {"!divorce"}),
    ("chia thừa kế theo di chúc", {"!inheritance"}),
    ("rút BHXH một lần", {"!lumpsum"}),
    ("huong bhxh mot lan", {"!lumpsum"}),
    ("chế độ thai sản", {"!maternity"}),
    ("trợ cấp thất nghiệp", {"!unemployment"}),
    ("mã số thuế cá nhân", {"!tax"}),
    ("đăng ký chữ ký số để nộp thuế online", set()),
    ("đổi bằng lái xe", {"!licence", "!vehicle"}),
    ("hợp đồng lao động", {"!labour"}),
    ("làm hộ chiếu cho con", {"!passport"}),
    ("cải chính năm sinh trong giấy khai sinh", {"!civilstatus"}),
    ("cccd bi sai ngay sinh", {"!civilstatus"}),  # corrected, not reissued
    ("mật khẩu bị khóa do nhập sai nhiều lần", set()),
    ("bà đang hưởng lương hưu", {"!pensioner"}),
    ("bà không có lương hưu", set()),
    ("thuê nhà ở trọ thì đăng ký tạm trú", set()),
    ("người khuyết tật đi xe lăn", set()),
])
def test_blocking_concepts_are_named_with_or_without_diacritics(text, named):
    """The table of contradicting concepts finds each, diacritics or not; a rented room (thuê)
    is no tax (thuế) and a wheelchair (xe lăn) no vehicle."""
    assert faq_match.blockers(faq_match.tokens(text)) == named


def test_a_contradicting_concept_keeps_an_entry_out_however_many_words_it_shares(index):
    """A motorbike question sharing the words of "change your VNeID phone number" gets no answer,
    while the same question without the motorbike does."""
    assert index.match("đổi số điện thoại trên vneid").id == "vneid.change_phone"
    assert index.match("đổi số điện thoại trên vneid để sang tên xe máy") is None
    assert all(m.id != "vneid.change_phone" for m in index.ranked("doi so dien thoai vneid sang ten xe may"))


def test_an_entry_whose_examples_name_the_concept_is_not_kept_out():
    """A blocking concept does not keep out an entry whose own examples speak of it."""
    from conversations.faq_model import FaqEntry

    entries = [replace(e, examples_vi=(*e.examples_vi, "đổi số điện thoại khi bán xe máy"))
               if e.id == "vneid.change_phone" else e for e in load_faq()]
    assert isinstance(entries[0], FaqEntry)
    found = FaqIndex(entries).best("đổi số điện thoại trên vneid để sang tên xe máy")
    assert found is not None and found.id == "vneid.change_phone"


@pytest.mark.parametrize(("text", "named", "not_named"), [
    ("có được nhận tiền trợ cấp hằng tháng không", {"@who"}, {"@payout"}),  # inside a longer phrase
    ("nhận tiền trợ cấp qua ngân hàng", {"@payout"}, {"@who"}),
    ("bà tôi có được trợ cấp xã hội không", {"@who", "@allowance"}, set()),  # phrases overlapping
    ("có người giả danh công an gọi điện", {"@scam", "@police"}, set()),
])
def test_a_concept_inside_a_longer_phrase_is_not_named_but_an_overlapping_one_is(text, named, not_named):
    found = set(faq_match.concepts(faq_match.tokens(text)))
    assert named <= found and not (not_named & found), found


def test_a_birth_year_long_ago_counts_as_elderly(index):
    """"sinh năm 1940" weighs like "85 tuổi": an entry for the elderly ranks first."""
    ranked = index.ranked("mẹ tôi sinh năm 1940 thì được hỗ trợ gì")
    assert ranked and ranked[0].id in {"pension.eligibility", "pension.both", "allowance.elderly"}
    assert "@elderly" not in index.ranked("con tôi sinh năm 2020 thì được hỗ trợ gì")[0].why


def test_an_answer_needs_the_opinions_behind_it_and_the_threshold(index, monkeypatch):
    """The entry `decide` chooses is given only when the opinions back it and its score reaches
    MATCH_THRESHOLD: a birth question whose perceptron choice TF-IDF and naive Bayes do not share
    (a wrong name on the birth certificate, which no entry covers) is declined though it scores
    well above the threshold."""
    question = "quen mat khau vneid"
    chosen, backed = index.decide(question)
    assert (chosen.id, backed) == ("vneid.forgot_password", True)
    assert index.match(question) == chosen
    monkeypatch.setattr(faq_match, "MATCH_THRESHOLD", chosen.score + 0.01)
    assert index.match(question) is None
    assert faq_match.answer_payload(index, question, str)["id"] is None
    monkeypatch.undo()
    unbacked = ("Con tôi sinh ở bệnh viện tỉnh, giấy chứng sinh ghi sai tên mẹ thì có làm khai sinh "
                "online được không?")
    letter, backed = index.decide(unbacked)
    assert not backed and letter.score > faq_match.MATCH_THRESHOLD + 0.1
    assert index.match(unbacked) is None


# Near-misses of our topics, written for this test (in no set, and none a retelling of a
# residents' question: token-set similarity at most 87 with the closest): the matcher trained on
# the examples alone answers each with a wrong entry.
NEAR_MISSES = (
    "mẹ tôi đang lãnh lương hưu ở bưu điện, tháng này bưu điện chi trả chậm là vì sao?",  # BHXH pension
    "tôi cho mấy em sinh viên thuê phòng trọ thì có phải khai báo lưu trú với công an không?",  # lưu trú
    "cháu tôi đi du học Nhật thì có phải khai báo tạm vắng không?",  # tạm vắng, not tạm trú
    "tài khoản VssID bị quên mật khẩu lấy lại thế nào?",  # the social insurance app, not VNeID
)


@pytest.fixture(scope="module")
def untrained() -> FaqIndex:
    """The matcher as it was before the residents' questions: the entries' examples only."""
    return FaqIndex(load_faq())


@pytest.mark.parametrize("question", NEAR_MISSES)
def test_a_near_miss_residents_asked_about_is_declined(index, untrained, question):
    """The residents' out-of-scope questions teach the perceptron a "declined" class: a near-miss
    the examples alone would answer wrongly gets "I don't know" instead."""
    assert untrained.match(question) is not None
    assert index.match(question) is None


# The sums behind every score: each layout (`_arrays` for the examples, `_dense` for the entries)
# adds up to what the postings say, for any postings and any weighted question.
_POSTINGS = st.dictionaries(
    st.sampled_from([f"f{n}" for n in range(12)]),
    st.dictionaries(st.integers(0, 6), st.floats(-5, 5, allow_nan=False), min_size=1, max_size=7)
    .map(lambda found: sorted(found.items())),
    max_size=12)
_WEIGHTS = st.dictionaries(st.sampled_from([f"f{n}" for n in range(16)]),
                           st.floats(0, 3, allow_nan=False), max_size=16)


@settings(max_examples=200, deadline=None)
@given(postings=_POSTINGS, weights=_WEIGHTS)
def test_the_sparse_and_dense_sums_add_up_to_the_postings(postings, weights):
    expected = np.zeros(7)
    for feature, weight in weights.items():
        for row, value in postings.get(feature, ()):
            expected[row] += weight * value
    sparse = faq_match._summed(faq_match._arrays(postings), weights, 7)
    dense = faq_match._dense_summed(faq_match._dense(postings, 7), weights)
    assert sparse.shape == dense.shape == (7,)
    assert np.allclose(sparse, expected) and np.allclose(dense, expected)
