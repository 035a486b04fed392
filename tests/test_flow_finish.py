"""The end of a procedure: the last step's confirmation and the finishing message, each said once."""

from __future__ import annotations

import pytest

from bot.seed_demo import seed_demo
from handlers.i18n import translator
from tests.chat import Talker
from tests.test_flow_runs import SHIPPED_FLOWS, add_member, household_id, start_flow
from tests.test_step_counter import SAMPLE_INPUTS, SHIPPED

FINISHED = {"en": "Procedure finished.", "vi": "Đã hoàn thành thủ tục."}


async def _finish(talker: Talker, flow_id: str) -> str:
    """Answer the run with the first option at every step (typing a sample where a value is
    asked) until it ends; the text of the replies to the last answer."""
    flow = SHIPPED.latest(flow_id)
    t = translator(talker.lang)
    for _ in range(40):
        shown = talker.text()
        steps = [p for _, p in talker.buttons() if p.startswith("f:")]
        asked = next((s for s in flow.steps if s.kind == "input" and t(s.text) in shown), None)
        if asked is not None:
            await talker.say(SAMPLE_INPUTS[asked.validator or "text"][0])
        elif steps:
            await talker.press(steps[0])
        else:
            return shown
    raise AssertionError(f"{flow_id} did not finish: {talker.text()!r}")


@pytest.mark.parametrize("lang", ["en", "vi"])
async def test_finishing_smartphone_skills_says_digital_ready_once(app, lang):
    """Finishing smartphone skills says once that the resident can use e-services on a phone
    (the finishing message), not again as a separate note before it."""
    await seed_demo(app)
    member = await add_member(Talker(app, "an", lang="en"), "HV-TL-001", "Alăng Thị Nga")
    an = Talker(app, "an", lang=lang)
    await an.say(f"/lang {lang}")
    await an.press(f"hh:{await household_id(app, 'HV-TL-001')}:flow:smartphone_skills:{member}")
    last = await _finish(an, "smartphone_skills")
    t = translator(lang)
    done_text = t(SHIPPED.latest("smartphone_skills").done_text or "")
    assert last.count(done_text) == 1 and last.count(FINISHED[lang]) == 1
    assert t("Marked as able to use e-services on a phone.") not in last
    phrase = {"en": "e-services on a phone", "vi": "dịch vụ số trên điện thoại"}[lang]
    assert last.count(phrase) == 1, last


@pytest.mark.parametrize("flow_id", sorted(p.stem for p in SHIPPED_FLOWS.glob("*.yaml")))
async def test_every_procedure_says_its_finishing_message_once(app, flow_id):
    """Every shipped procedure, answered to its end, says "Procedure finished." and its own
    closing text exactly once, after the last step's confirmation."""
    await seed_demo(app)
    an = Talker(app, "an", lang="en")
    await add_member(an, "HV-TL-001", "Alăng Thị Nga")
    await start_flow(an, "HV-TL-001", flow_id, "Alăng Thị Nga")
    last = await _finish(an, flow_id)
    done_text = SHIPPED.latest(flow_id).done_text
    assert last.count(FINISHED["en"]) == 1, last
    if done_text:
        assert last.count(done_text) == 1, last
        assert last.index(FINISHED["en"]) == last.rindex(FINISHED["en"]) < last.index(done_text)
