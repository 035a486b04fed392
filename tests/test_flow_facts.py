"""The shipped flows state the procedure facts as the law has them today (issue 14, section 1):
ages from the birthday, both parents' communes, the in-person route, VNeID without a chip card,
digital signatures without level 2, and coaching with someone else's SIM."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from conversations import engine
from conversations.conditions import birthday
from conversations.engine import Blocked, Pressed, ProblemNoted, ShowStep, Transition, Typed
from conversations.flow_model import Flow, FlowError, FlowRegistry, TaskStep, load_flows, parse_flow_text

FLOWS_DIR = Path(__file__).resolve().parent.parent / "conversations" / "flows"
NOW = datetime(2026, 12, 4, 9, 0)


@pytest.fixture(scope="module")
def registry() -> FlowRegistry:
    return load_flows(FLOWS_DIR)


def _run(flow: Flow, answers: list[str], now: datetime = NOW) -> Transition:
    """Answer a run: a text is a button label (msgid) or, on input steps, typed."""
    transition = engine.start(flow, now)
    for answer in answers:
        buttons = {b.label: b.token for e in transition.events for b in getattr(e, "buttons", ())}
        user_input = Pressed(buttons[answer]) if answer in buttons else Typed(answer)
        transition = engine.advance(flow, transition.new_state, user_input, now)
    return transition


def _shown(transition: Transition) -> ShowStep:
    return next(e for e in transition.events if isinstance(e, ShowStep))


def _labels(transition: Transition) -> list[str]:
    return [b.label for e in transition.events for b in getattr(e, "buttons", ())]


# Social pension: the age counts from the birthday ---------------------------------------------

def test_born_in_december_1951_is_told_the_date_from_which_the_pension_starts(registry):
    """Born 15/12/1951, on 04/12/2026 the resident is 74: not told to apply now, but from 15/12/2026."""
    flow = registry.latest("social_pension")
    shown = _run(flow, ["Continue", "15/12/1951", "No"])
    step = _shown(shown)
    assert step.step_id == "not_yet_75" and shown.new_state.step != "pension_check"
    assert step.values == {"turns_75": "15/12/2026"}
    assert "{turns_75}" in step.text and "Decree 20/2021" in step.text


def test_the_75th_birthday_itself_qualifies(registry):
    """Born 04/12/1951, on 04/12/2026 the resident has turned 75 and goes on to the pension check."""
    flow = registry.latest("social_pension")
    assert _shown(_run(flow, ["Continue", "04/12/1951"])).step_id == "pension_check"


def test_a_resident_under_70_hears_both_dates_and_the_decree_20_allowance(registry):
    """At 66 the resident is told the 75th and the 70th birthdays and pointed to Decree 20/2021."""
    flow = registry.latest("social_pension")
    step = _shown(_run(flow, ["Continue", "02/03/1960"]))
    assert step.step_id == "too_young"
    assert step.values == {"turns_75": "02/03/2035", "turns_70": "02/03/2030"}
    assert "Decree 20/2021" in step.text


def test_the_run_clock_decides_the_age(registry):
    """The same birth date qualifies on the run's date after the birthday, not before."""
    flow = registry.latest("social_pension")
    before = _run(flow, ["Continue", "15/12/1951"], datetime(2026, 12, 14, 23, 0))
    after = _run(flow, ["Continue", "15/12/1951"], datetime(2026, 12, 15, 8, 0))
    assert (_shown(before).step_id, _shown(after).step_id) == ("household", "pension_check")


def test_birthday_of_29_february_falls_on_28_february():
    """A 29 February birth has its birthdays on 28 February in common years."""
    assert birthday("1952-02-29", 75) == date(2027, 2, 28)
    assert birthday("1952-02-29", 76) == date(2028, 2, 29)
    assert birthday(1951, 75) is None


def test_dates_placeholders_must_match_the_text():
    """A step whose text and `dates:` names differ stops the loader naming the step."""
    text = """\
id: demo
version: 1
title: Demo
steps:
  - id: born
    kind: input
    text: Date of birth?
    validator: date
    save_as: born
  - id: note
    kind: info
    text: From {turns_75}.
    dates:
      turns_70: {var: born, birthday: 70}
"""
    with pytest.raises(FlowError, match=r"step 'note': the text's placeholders"):
        parse_flow_text(text, "demo.yaml")


# VNeID ----------------------------------------------------------------------------------------

def test_vneid_without_a_chip_card_checks_the_phone_and_app_before_the_police(registry):
    """No chip card: what to bring for the card, then phone and app, then the police for the card."""
    flow = registry.latest("vneid")
    note = _shown(_run(flow, ["No chip card yet"]))
    assert "old ID card" in note.text
    steps = [_shown(_run(flow, ["No chip card yet", *["Continue", "Done", "Done"][:n]])).step_id
             for n in range(1, 4)]
    assert steps == ["phone_ready", "install_app", "police_card"]
    police = _shown(_run(flow, ["No chip card yet", "Continue", "Done", "Done"]))
    assert "Bring the chip card" not in police.text


def test_vneid_resident_with_an_account_only_activates_or_resets_the_password(registry):
    """'Already has an account' leads, after phone and app, to activation or a password reset."""
    flow = registry.latest("vneid")
    need = _run(flow, ["Already has an account", "Done", "Done"])
    assert _shown(need).step_id == "account_need"
    start = ["Already has an account", "Done", "Done"]
    assert _shown(_run(flow, [*start, "Activation"])).step_id == "activate_l2"
    assert _shown(_run(flow, [*start, "A new password"])).step_id == "reset_password"


def test_vneid_activation_offers_approval_not_received_yet(registry):
    """At activation 'Approval not received yet' is a reason to stop and retry later."""
    flow = registry.latest("vneid")
    for step_id in ("activate", "activate_l2"):
        assert "Approval not received yet" in flow.step(step_id).reasons
    reasons = _run(flow, ["Already has an account", "Done", "Done", "Activation", "Problem"])
    assert "Approval not received yet" in _labels(reasons)
    blocked = _run(flow, ["Already has an account", "Done", "Done", "Activation", "Problem",
                          "Approval not received yet"])
    assert any(isinstance(e, Blocked) for e in blocked.events)


def test_vneid_warns_that_it_is_free_and_police_never_ask_for_money_or_an_otp(registry):
    """Every completed run passes the last step, which says the account is free and the police never
    ask for money, an OTP or a password."""
    flow = registry.latest("vneid")
    assert "free" in flow.step("scam_tips").text
    assert "never ask for money, an OTP or a password" in flow.step("scam_tips").text
    for answers in (["Already has an account", "Done", "Done", "A new password", "Done"],
                    ["No chip card yet", "Continue", "Done", "Done", "Done", "Done"]):
        assert _shown(_run(flow, answers)).step_id == "scam_tips"


# Birth registration ---------------------------------------------------------------------------

def test_birth_registration_offers_both_parents_communes(registry):
    """The family chooses the father's or the mother's commune; neither is 'else'."""
    flow = registry.latest("birth_registration")
    place = _run(flow, ["Continue", "20/11/2026"])
    assert _shown(place).step_id == "place"
    assert _labels(place) == ["Where the mother lives", "Where the father lives"]
    assert "Art. 13" in _shown(place).text
    assert all("(else the father)" not in text for text in flow.texts())


def test_birth_registration_without_level_2_goes_to_the_commune_in_person(registry):
    """No level 2 account: register in person at the commune, then the 60-day residence duty and fine."""
    flow = registry.latest("birth_registration")
    answers = ["Continue", "20/11/2026", "Where the father lives", "Done"]
    in_person = _run(flow, [*answers, "No level 2: at the commune"])
    assert _shown(in_person).step_id == "in_person"
    duty = _shown(_run(flow, [*answers, "No level 2: at the commune", "Done"]))
    assert duty.step_id == "residence_duty"
    assert "60 days" in duty.text and "500,000 to 1,000,000 VND" in duty.text and "154/2024" in duty.text


def test_birth_registration_names_the_service_both_ways_and_decree_63(registry):
    """The VNeID and portal names of the linked service are both given, with Decree 63/2024."""
    flow = registry.latest("birth_registration")
    assert "Đăng ký khai sinh, đăng ký thường trú, cấp thẻ BHYT" in flow.step("submit_vneid").text
    assert "Liên thông khai sinh, thường trú, BHYT" in flow.step("submit_portal").text
    assert "Decree 63/2024" in flow.step("intro").text


# Digital signature and smartphone skills ------------------------------------------------------

def test_digital_signature_needs_level_2_only_for_the_vneid_pilot(registry):
    """A provider's app is reached without a level 2 check, and the price is 'ask first'."""
    flow = registry.latest("digital_signature")
    provider = _run(flow, ["Continue", "Done", "A provider's app"])
    assert _shown(provider).step_id == "via_provider"
    for step in flow.steps:
        if step.id != "via_vneid" and isinstance(step, TaskStep):  # only tasks have reasons
            assert "Account not level 2" not in step.reasons
    assert "free" in flow.step("via_provider").text
    assert "level 2" in flow.step("via_vneid").text


def test_smartphone_coaching_goes_on_with_a_sim_in_another_name(registry):
    """'SIM not in the resident's own name' is noted, not a reason that ends the coaching."""
    flow = registry.latest("smartphone_skills")
    answers = ["Continue", "Done"]
    noted = _run(flow, [*answers, "Problem", "SIM not in the resident's own name"])
    assert any(isinstance(e, ProblemNoted) for e in noted.events)
    assert noted.new_state.status == "active"
    for step in flow.steps:
        if isinstance(step, TaskStep) and step.blocking:
            assert "SIM not in the resident's own name" not in step.reasons
