"""A citizen ID typed into free text (a resident's question, a visit request, a volunteer's
reason or note) is never stored in full: not in the database, not in the replies kept."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.seed_demo import seed_demo
from conversations.redact import redact_citizen_ids
from db.models import FaqMiss, ProcessedUpdate, SupportRequest
from tests.chat import Talker, all_rows, payload_of, stored_anywhere
from tests.test_households import CITIZEN_ID


@pytest.mark.parametrize(("typed", "kept"), [
    ("cccd 048090001234 bi sai", "cccd 048*******34 bi sai"),
    ("số 048 090 001 234 nhé", "số 048*******34 nhé"),
    ("so 0480-9000-1234", "so 048*******34"),
    ("cmnd cu 201234567", "cmnd cu 201****67"),
    ("goi 0905123456 giup toi", "goi 0905123456 giup toi"),  # a phone number stays
    ("500.000.000 dong", "500.000.000 dong"),
    ("nam 2025, 12 ho", "nam 2025, 12 ho"),
    ("1048090001234", "1048090001234"),  # 13 digits: not an ID
    # issue 13: the separators a hostile probe got past the masking
    ("cccd 048090 001207", "cccd 048*******07"),
    ("04809 0001208", "048*******08"),
    ("048_090_001_205", "048*******05"),
    ("048/090/001/206", "048*******06"),
    ("048,090,001,215", "048*******15"),
    ("048—090—001—216", "048*******16"),
    ("048 090 001 2 13", "048*******13"),
    ("048\u200b090\u200b001\u200b217", "048*******17"),
    ("０４８０９０００１２１８ la so cua toi", "048*******18 la so cua toi"),
    ("cccd048090001219, sdt 0905123456", "cccd048*******19, sdt 0905123456"),
    ("cmnd 201 234 567", "cmnd 201****67"),
    # what is not an ID stays as typed
    ("+84 905 123 456", "+84 905 123 456"),
    ("0905 123 456 hoac 090-512-3457", "0905 123 456 hoac 090-512-3457"),
    ("hẹn 04/12/2026 10:30", "hẹn 04/12/2026 10:30"),
    ("từ 01/07/2025-31/12/2025", "từ 01/07/2025-31/12/2025"),
    ("sinh 04/12/1990 cccd 048 090 001 221", "sinh 04/12/1990 cccd 048*******21"),
    ("trợ cấp 500.000đ, vay 100.000.000 đồng", "trợ cấp 500.000đ, vay 100.000.000 đồng"),
])
def test_ids_in_text_are_masked_and_nothing_else(typed: str, kept: str) -> None:
    assert redact_citizen_ids(typed) == kept


async def test_a_resident_typing_an_id_leaves_it_nowhere(app):
    await seed_demo(app)
    resident = Talker(app, "ba-hoa", lang="en")
    await resident.say(f"so cccd cua toi la {CITIZEN_ID} bi sai ten")
    await resident.say(f"/visit sửa thông tin căn cước {CITIZEN_ID}")
    for _ in range(5):
        if await all_rows(app, SupportRequest):
            break
        await resident.press(resident.buttons()[0][1])
    [miss] = await all_rows(app, FaqMiss)
    [request] = await all_rows(app, SupportRequest)
    assert "048*******34" in miss.question and "048*******34" in request.question
    assert await stored_anywhere(app, CITIZEN_ID) == []


# -- property: whatever separates its digits, an ID cannot be read back ------------------------

SEPARATORS = (" ", "  ", ".", "-", "_", "/", ",", "\\", "—", "–", "‐", "−", " - ", ", ", ". ", "\u00a0",
              "\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200b.\u200b", "／", "．", "，",
              "＿", "\n")
DIGIT_ZEROS = (ord("0"), 0xFF10, 0x0660, 0x0966, 0x1D7CE)  # ASCII, full-width, Arabic-Indic, …
WORDS = st.sampled_from(["", "cccd", "số", "căn cước của tôi là", "CMND cũ", "bị sai", "giúp tôi",
                         "so cccd cua toi la", "nhé", "ID:", "(", ")", "gọi 0905123456 nhé",
                         "ngày 04/12/2026 lúc 10:30 nhé", "ok"])


def ids() -> st.SearchStrategy[str]:
    """12-digit căn cước numbers (a real province code first) and 9-digit CMND numbers."""
    cccd = st.builds(lambda p, rest: p + rest, st.sampled_from(["001", "048", "079", "092", "046"]),
                     st.from_regex(r"\A[0-3][0-9]{8}\Z"))
    return st.one_of(cccd, st.from_regex(r"\A[1-3][0-9]{8}\Z"))


@st.composite
def typed_ids(draw: st.DrawFn) -> tuple[str, str]:
    """(an ID, a text with it typed in groups of any size, any separators and digit scripts,
    set off from the words around it by nothing, a space, a colon or a line end)."""
    number = draw(ids())
    cuts = sorted(draw(st.sets(st.integers(1, len(number) - 1), max_size=len(number) - 1)))
    groups = [number[a:b] for a, b in zip([0, *cuts], [*cuts, len(number)], strict=True)]
    zero = draw(st.sampled_from(DIGIT_ZEROS))
    scripted = ["".join(chr(zero + int(d)) for d in group) for group in groups]
    body = scripted[0] + "".join(draw(st.sampled_from(SEPARATORS)) + g for g in scripted[1:])
    before, after = draw(WORDS), draw(WORDS)
    glue = draw(st.sampled_from(["", " ", " : ", "\n"]))
    return number, f"{before}{glue if before else ''}{body}{glue if after else ''}{after}"


def ascii_digits(text: str) -> str:
    return "".join(str(unicodedata.decimal(ch)) for ch in text if ch.isdecimal())


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(typed=typed_ids())
def test_an_id_typed_with_any_separators_cannot_be_read_back(typed: tuple[str, str]) -> None:
    """Whatever separates its digits (spaces, dots, dashes of any width, underscores, slashes,
    commas, zero-width characters) and whatever digits it is written in, no six consecutive
    digits of an ID are left in the masked text, even with every non-digit removed; the phone
    numbers and dates around it are kept."""
    number, text = typed
    masked = redact_citizen_ids(text)
    assert number[:3] + "*" * (len(number) - 5) + number[-2:] in masked, (text, masked)
    rest = masked
    for fixed in ("0905123456", "04/12/2026", "10:30"):
        assert text.count(fixed) == masked.count(fixed), (text, masked)
        rest = rest.replace(fixed, " ")
    kept = ascii_digits(rest)
    for start in range(len(number) - 5):
        assert number[start:start + 6] not in kept, (text, masked)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_masking_any_text_changes_only_digit_runs(text: str) -> None:
    """Masking never fails, never lengthens a text and changes nothing in a text without 9
    digits."""
    masked = redact_citizen_ids(text)
    assert len(masked) <= len(text)
    if len(ascii_digits(text)) < 9:
        assert masked == text


PROBE_IDS = ("048090 001207", "04809 0001208", "048_090_001_205", "048/090/001/206",
             "048,090,001,215", "048—090—001—216", "048 090 001 2 13")


async def test_the_probes_ids_are_stored_and_sent_nowhere_in_full(app):
    """The hostile probe's IDs, typed as questions to the FAQ and in a /visit question, are
    masked in faq_misses (question and normalized), in the request, in the volunteer's notice
    and in the outbox."""
    await seed_demo(app)
    resident = Talker(app, "ba-tam", lang="en")
    for typed in PROBE_IDS:
        await resident.say(f"cccd {typed} bi sai ngay sinh")
    await resident.say(f"/visit sửa căn cước {PROBE_IDS[5]}, cmnd 191/357/468")
    await resident.press(payload_of(resident, "Hải Vân"))
    await resident.press(payload_of(resident, "Tà Lang"))
    await resident.say("0905123456")
    await resident.say(f"Nhà có số {PROBE_IDS[6]}")
    [notice] = [r for r in resident.last if r.to is not None]
    misses = await all_rows(app, FaqMiss)
    [request] = await all_rows(app, SupportRequest)
    assert [m.question for m in misses[:2]] == ["cccd 048*******07 bi sai ngay sinh",
                                               "cccd 048*******08 bi sai ngay sinh"]
    assert "048*******16" in request.question and "191****68" in request.question
    assert "048*******16" in notice.text and "048*******13" in notice.text
    assert "0905123456" in notice.text  # the phone the volunteer needs
    outbox = [str(u.replies) for u in await all_rows(app, ProcessedUpdate)]
    for typed in (*PROBE_IDS, "191/357/468"):
        digits = "".join(ch for ch in typed if ch.isdigit())
        for shown in (notice.text, *(m.question + " " + m.normalized for m in misses), *outbox):
            assert digits[3:-2] not in "".join(ch for ch in shown if ch.isdigit()), (typed, shown)
        assert await stored_anywhere(app, typed) == [] and await stored_anywhere(app, digits) == []


@pytest.mark.parametrize("typed", ["/household 048090001250", "/houshold 048 090 001 251",
                                   "/stats 048090001252", "/join 048-090-001-253"])
async def test_a_reply_echoing_an_id_is_masked_in_the_outbox(app, typed):
    """A reply that repeats what was typed (an unknown household code, an unknown command, an
    unknown area, a wrong invite code) holds the ID masked, as sent and as kept in
    processed_updates.replies."""
    await seed_demo(app)
    digits = "".join(ch for ch in typed if ch.isdigit())
    for user in ("an", "lan", "ba-chin"):
        talker = Talker(app, user, lang="en")
        await talker.say(typed, update_id=f"echo-{user}")
        assert digits not in "".join(ch for ch in talker.text() if ch.isdigit()), talker.text()
        [row] = await all_rows(app, ProcessedUpdate, ProcessedUpdate.update_id == f"echo-{user}")
        kept = "".join(ch for ch in str(row.replies) if ch.isdigit())
        assert digits[3:-2] not in kept, row.replies
    assert await stored_anywhere(app, digits) == []


async def test_button_payloads_are_not_masked(app):
    """Masking the outbox touches what people read, never the buttons' payloads."""
    from handlers.pipeline import masked_reply
    from handlers.types import Button, Reply

    reply = Reply("so 048090001254", buttons=(Button("048090001255", "hh:048090001256:start"),))
    masked = masked_reply(reply)
    assert masked.text == "so 048*******54"
    assert masked.buttons == (Button("048*******55", "hh:048090001256:start"),)


async def test_a_forged_button_with_an_id_is_audited_masked(app):
    """A forged button whose data carries an ID is refused and audited with the ID masked."""
    from db.models import AuditLog
    from handlers.stats_text import PERIODS

    await seed_demo(app)
    resident = Talker(app, "ba-muoi", lang="en")
    await resident.press(f"st:048090001270:{next(iter(PERIODS))}")
    [entry] = await all_rows(app, AuditLog, AuditLog.action == "access.denied")
    assert entry.target == "area:048*******70"
    assert await stored_anywhere(app, "048090001270") == []


async def test_a_display_name_holding_an_id_is_kept_masked(app):
    """A platform display name with an ID in it ("Lan 048 090 001 271") is kept masked as the
    user's name."""
    from db.models import User
    from handlers.types import Incoming

    incoming = Incoming(channel="zalo", chat_id="z-name", sender_id="z-name",
                        display_name="Lan 048 090 001 271", update_id="z-name:1", text="/help")
    assert await app.core.handle(incoming)
    assert [u.display_name for u in await all_rows(app, User)] == ["Lan 048*******71"]
    assert await stored_anywhere(app, "048 090 001 271") == []
