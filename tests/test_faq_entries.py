"""The FAQ covers what residents ask next to GoCua's procedures (issue 14, section 2): each new
entry states its facts with the act and its date, addresses the resident as ông/bà, and plainly
phrased questions reach it through `gocua faq ask`."""

from __future__ import annotations

import json
from urllib.parse import urlparse

import pytest

from conversations.faq_match import answer_payload, default_index
from conversations.faq_model import load_faq
from handlers.i18n import translator
from tests.test_cli import gocua

# The facts each answer must state (English msgid), with the act and its date.
# An amount not confirmed on a page read (shared/domain.md: the base level of Decree 76/2024) is
# not stated: the answer sends the resident to the commune for it (UNCONFIRMED below).
FACTS = {
    "residence.temporary": ("30 days", "Law on Residence 2020, Art. 27", "up to 2 years",
                            "landlord's consent", "VNeID", "Circular 75/2022", "15,000 VND", "7,000 VND",
                            "/visit", "one-stop office"),
    "residence.permanent": ("Law on Residence 2020, Art. 20", "owner's consent", "Decree 154/2024",
                            "VNeID", "7 working days", "Circular 75/2022", "20,000 VND", "10,000 VND",
                            "within 60 days", "/visit", "one-stop office"),
    "idcard.reissue": ("reissue", "ages 14, 25, 40 and 60", "Law on Identification 2023, Art. 21",
                       "within 2 years before", "Circular 73/2024", "50,000 VND", "70,000 VND", "/visit"),
    "health.elderly_card": ("75th birthday", "70 for poor or near-poor", "Decree 176/2025", "from 80",
                            "Decree 20/2021", "renewed each year from that list", "chip căn cước card",
                            "/visit"),
    "death.registration": ("within 15 days", "Law on Civil Status 2014", "Decree 63/2024",
                           "deletion of permanent residence", "Decree 20/2021", "20 times the base level",
                           "ask the commune", "/visit"),
    "allowance.disability": ("Decree 20/2021", "360,000 VND", "raised since", "ask the commune",
                             "severe 1.5", "especially severe 2.0", "mild disability gets no",
                             "disability certificate", "/visit", "one-stop office"),
}

# Questions of our own, plainly phrased (none taken from a held-out file).
QUESTIONS = [
    ("tôi thuê nhà ở phường khác, muốn đăng ký tạm trú thì làm sao", "residence.temporary"),
    ("dang ky tam tru cho nguoi thue tro can giay to gi", "residence.temporary"),
    ("How do I register a temporary stay when I rent a room?", "residence.temporary"),
    ("nhập hộ khẩu vào nhà bố mẹ đẻ cần những gì", "residence.permanent"),
    ("muốn đăng ký thường trú ở căn nhà mới mua", "residence.permanent"),
    ("bị mất căn cước công dân, làm lại ở đâu và tốn bao nhiêu", "idcard.reissue"),
    ("đủ 25 tuổi có phải đi đổi thẻ căn cước không", "idcard.reissue"),
    ("ông tôi 82 tuổi, thẻ bảo hiểm y tế hết hạn thì làm sao", "health.elderly_card"),
    ("người cao tuổi có được nhà nước cấp thẻ bhyt miễn phí không", "health.elderly_card"),
    ("bố tôi vừa mất, đi khai tử ở đâu", "death.registration"),
    ("người hưởng trợ cấp xã hội qua đời thì gia đình có được hỗ trợ mai táng không", "death.registration"),
    ("con tôi khuyết tật đặc biệt nặng, được trợ cấp bao nhiêu một tháng", "allowance.disability"),
    ("xin trợ cấp khuyết tật hằng tháng làm hồ sơ ở đâu", "allowance.disability"),
]


@pytest.fixture(scope="module")
def entries():
    return {entry.id: entry for entry in load_faq()}


@pytest.mark.parametrize("entry_id", sorted(FACTS))
def test_new_entry_states_its_facts_with_the_act_and_its_date(entries, entry_id):
    """Each new answer states its amounts, ages and deadlines with the act and its date, and offers
    a volunteer."""
    answer = entries[entry_id].answer
    missing = [fact for fact in FACTS[entry_id] if fact not in answer]
    assert missing == []
    assert entries[entry_id].checked is not None and entries[entry_id].source[0].startswith(("https://", "http://"))


@pytest.mark.parametrize("entry_id", sorted(FACTS))
def test_new_entry_speaks_vietnamese_to_ong_ba(entry_id):
    """The Vietnamese answer exists, says ông/bà where it addresses the resident, and never bà con."""
    entry = {e.id: e for e in load_faq()}[entry_id]
    vi = translator("vi")(entry.answer)
    assert vi != entry.answer and "bà con" not in vi.lower()
    if "ông/bà" in entry.answer.lower():
        assert "ông/bà" in vi.lower()
    assert "/visit" in vi


@pytest.mark.parametrize(("question", "entry_id"), QUESTIONS)
def test_a_plain_question_reaches_the_new_entry(question, entry_id):
    """A plainly phrased question gets the new entry's answer, as `gocua faq ask` gives it."""
    payload = answer_payload(default_index(), question, translator("vi"))
    assert payload["id"] == entry_id
    assert payload["answer"].startswith(translator("vi")(default_index().by_id[entry_id].answer))


def test_gocua_faq_ask_answers_the_new_topics(tmp_path):
    """`gocua faq ask -` answers one question per new topic with that topic's entry."""
    chosen = {}
    for question, entry_id in QUESTIONS:
        chosen.setdefault(entry_id, question)
    result = gocua(tmp_path, "faq", "ask", "-", "--lang", "vi", stdin="\n".join(chosen.values()) + "\n")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["id"] for row in rows] == list(chosen)


# Acts whose amounts shared/domain.md marks UNCONFIRMED: no answer states them as fact.
UNCONFIRMED = ("76/2024",)


def test_no_answer_states_an_unconfirmed_amount(entries):
    stating = [(entry.id, act) for entry in entries.values() for act in UNCONFIRMED if act in entry.answer]
    assert stating == []


# Issue 14 §1: an answer's first source (the one shown to residents as "Nguồn: …") is an official
# page: a state portal (*.gov.vn: dichvucong, bocongan, provincial, commune and police portals,
# baohiemxahoi), the Government's portal (chinhphu.vn and its subdomains, baochinhphu.vn) or the
# national legal database (vbpl.vn). A host matches a suffix when it is that host or a subdomain.
OFFICIAL_HOSTS = ("gov.vn", "chinhphu.vn", "baochinhphu.vn", "vbpl.vn")

# Entries whose first source is still a newspaper, because no official page stating their facts was
# found when the sources were checked (2026-12-05). Each leaves this list as soon as an official page
# goes first; the reason says what was looked for.
NO_OFFICIAL_SOURCE = {
    "pension.eligibility": "no official page on Decree 176/2025 found; Lao Động quotes its conditions",
    "pension.apply": "no official page on the Decree 176/2025 procedure (Form 01, 10 days) found",
    "pension.both": "no official page on Decree 176/2025 (the higher of the two benefits) found",
    "pension.payment": "no official page on how Decree 176/2025 benefits are paid found",
    "allowance.elderly": "no official page on the Decree 20/2021 groups of elderly people found",
    "residence.validity": "no official page on Circular 66/2023 (1 year validity) found",
    "residence.check_fine": "no official page on Decree 282/2025 art. 10 found; newspapers quote it",
    "signature.register": "no official page on provider eKYC or the VNeID signing pilot found",
    "vneid.forgot_password": "police portals only mention the button; the steps are in Dân trí",
    "vneid.change_phone": "no official page on changing the number (police, 1900 0368) found",
    "vneid.cost": "no official page on Decree 59/2022 art. 31 found; the police's newspaper (CAND) quotes it",
}


def _official(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower()
    return any(host == suffix or host.endswith("." + suffix) for suffix in OFFICIAL_HOSTS)


def test_official_hosts_are_told_apart():
    assert _official("https://dichvucong.gov.vn/p/home/x.html")
    assert _official("http://congan.kontum.gov.vn/a.html")
    assert _official("https://xaydungchinhsach.chinhphu.vn/a.htm")
    assert _official("https://baochinhphu.vn/a.htm")
    assert _official("https://vbpl.vn/TW/Pages/vbpq-toanvan.aspx")
    assert not _official("https://news.laodong.vn/a.ldo")
    assert not _official("https://gov.vn.example.com/a")
    assert not _official("https://notchinhphu.vn/a")


def test_every_first_source_is_official_or_a_listed_exception(entries):
    """Each entry shows an official page first, except the listed ones (and `visit.request`, GoCua's
    own service, which has no source)."""
    unknown = sorted(set(NO_OFFICIAL_SOURCE) - set(entries))
    assert unknown == []
    not_official = sorted(entry.id for entry in entries.values()
                          if entry.id != "visit.request" and not _official(entry.source[0])
                          and entry.id not in NO_OFFICIAL_SOURCE)
    assert not_official == []
    # An exception whose first source became official leaves the list.
    stale = sorted(entry_id for entry_id in NO_OFFICIAL_SOURCE if _official(entries[entry_id].source[0]))
    assert stale == []
    assert entries["visit.request"].source == ()
