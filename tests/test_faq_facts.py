"""The FAQ answers state today's facts with their act and date, and each entry says when it was
last checked (issue 14, section 1)."""

from __future__ import annotations

import re
from datetime import date

import pytest

from conversations.faq_match import FaqIndex
from conversations.faq_model import FaqError, load_faq, parse_faq, validate

_ENTRY = """
- id: a.one
  title: One
  answer: The answer.
  source: [https://example.org/a]
  related: []
  checked: {checked}
  examples: {{vi: [m1, m2, m3, m4, m5], en: [e1, e2]}}
"""
# An amount, an age or a deadline the law sets.
_FIGURE = re.compile(
    r"\d[\d,.]* VND|\b\d+ (?:working )?days\b|\b(?:7|6|8)\d(?:th)? birthday|\baged? \d+|from age"
)
_ACT = re.compile(r"\b(?:Decree|Law|Circular|Decision) [^\n]*\d{4}|procedure \d{6}")


@pytest.fixture(scope="module")
def entries():
    return {entry.id: entry for entry in load_faq()}


def test_every_entry_says_when_it_was_checked(entries):
    """Each entry carries a `checked:` date: all were verified on 4 December 2026, and the entries whose
    sources were re-checked against official pages on 5 December 2026 say so."""
    assert {entry.checked for entry in entries.values()} <= {date(2026, 12, 4), date(2026, 12, 5)}


@pytest.mark.parametrize(
    ("checked", "problem"),
    [("", "checked must be the date"), ("last week", "checked must be the date"),
     ('"2026-13-01"', "checked must"), ("2026-12-04T10:00:00", "checked must")],
)
def test_an_entry_without_a_checked_date_is_refused(checked, problem):
    """A missing or unreadable `checked:` stops loading, naming the file and the entry."""
    text = _ENTRY.format(checked=checked)
    if not checked:
        text = text.replace("  checked: \n", "")
    with pytest.raises(FaqError) as caught:
        validate(parse_faq(text, "broken.yaml"))
    assert str(caught.value).startswith("broken.yaml, entry 'a.one'") and problem in str(caught.value)


def test_a_quoted_checked_date_is_read():
    """`checked: "2026-12-04"` is read as the same date."""
    assert parse_faq(_ENTRY.format(checked='"2026-12-04"'))[0].checked == date(2026, 12, 4)


def test_amounts_ages_and_deadlines_name_their_act(entries):
    """Every answer stating an amount, age or deadline names the act (or the official procedure)."""
    missing = [entry.id for entry in entries.values()
               if _FIGURE.search(entry.answer) and not _ACT.search(entry.answer)]
    assert missing == []


def test_children_can_have_their_own_account_since_1_july_2024(entries):
    """The children's answer: a child with a card has an own account since 1 July 2024."""
    answer = entries["vneid.children"].answer
    assert "Since 1 July 2024" in answer and "own VNeID account" in answer and "Decree 69/2024" in answer
    assert "no account of their own" not in answer
    assert "under 6" in answer and "no fingerprints" in answer


def test_birth_registration_place_is_the_fathers_or_the_mothers_commune(entries):
    """Birth registration goes to the father's or the mother's commune, as the family chooses."""
    answer = entries["birth.documents"].answer
    assert "father or the mother" in answer and "Art. 13" in answer and "(else the father)" not in answer


def test_linked_birth_registration_names_the_service_both_ways(entries):
    """The linked service is named in VNeID and on the portal, with Decree 63/2024 and the in-person route."""
    answer = entries["birth.linked"].answer
    for part in ("Đăng ký khai sinh, đăng ký thường trú, cấp thẻ BHYT",
                 "Liên thông khai sinh, thường trú, BHYT", "Decree 63/2024", "commune People's Committee"):
        assert part in answer


def test_social_pension_age_counts_from_the_birthday(entries):
    """The pension answer counts the age from the birthday, with the law and decree of 2024/2025."""
    answer = entries["pension.eligibility"].answer
    assert "75th birthday" in answer and "not the year" in answer and "Decree 176/2025" in answer


def test_digital_signature_needs_no_level_2_and_may_be_free(entries):
    """Providers' apps take the chip card by NFC; level 2 only for the VNeID pilot; price 'ask first'."""
    answer = entries["signature.register"].answer
    assert "NFC" in answer and "not needed" in answer and "ask first" in answer
    assert "Providers charge a fee" not in answer


def test_vneid_cost_says_free_and_police_never_ask_for_money(entries):
    """The cost answer says free, police never ask for money, an OTP or a password, and no fine is known."""
    answer = entries["vneid.cost"].answer
    assert "free" in answer and "never ask for money, an OTP or a password" in answer
    assert "no fine for simply not having the app" in answer


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [("Cho tôi hỏi làm VNeID có tốn tiền không?", "vneid.cost"),
     ("làm căn cước chip rồi công an làm luôn tài khoản mức 2, giờ tôi có cần đăng ký lại không",
      "vneid.has_account")],
)
def test_the_new_vneid_entries_are_found(entries, question, entry_id):
    """A question about the cost of VNeID, or an existing account, gets the new entry."""
    found = FaqIndex(tuple(entries.values())).match(question)
    assert found is not None and found.id == entry_id
