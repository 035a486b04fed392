"""Typed answers to a question with options, as people type them on the console (issue 12 §1)."""

from __future__ import annotations

from bot.seed_demo import seed_demo
from db.models import FaqMiss, Household
from tests.chat import Talker, count_rows

AREA_QUESTION = "Thêm hộ (1/4). Thôn hoặc khu vực nào?"
HEAD_QUESTION = "Thêm hộ (2/4). Họ tên chủ hộ?"


def labels(talker: Talker) -> list[str]:
    return [label for label, _ in talker.buttons()]


async def test_new_household_asks_the_area_again_with_its_options_after_a_wrong_answer(app):
    """At /new's area question a wrong answer gets the question again with its options."""
    await seed_demo(app)
    an = Talker(app, "an")
    await an.say("/new")
    await an.say("abc")
    assert AREA_QUESTION in an.text()
    assert labels(an) == ["Thôn Giàn Bí", "Thôn Tà Lang"]


async def test_new_household_area_is_picked_by_number_label_or_part(app):
    """At /new's area question `2`, `Thôn Tà Lang` and `ta lang` each pick Thôn Tà Lang, even
    after a wrong answer."""
    await seed_demo(app)
    an = Talker(app, "an")
    for answer in ("2", "Thôn Tà Lang", "ta lang", "Tà Lang"):
        await an.say("/new")
        await an.say("abc")
        await an.say(answer)
        assert HEAD_QUESTION in an.text(), answer


async def test_visit_ward_typed_by_name_is_picked(app):
    """A resident typing `Hải Vân` at /visit's ward question gets the village question."""
    await seed_demo(app)
    mai = Talker(app, "mai")
    await mai.say("/visit")
    await mai.say("Tôi cần giúp cài VNeID")
    await mai.say("Hải Vân")
    assert "Ông/bà ở thôn hay tổ dân phố nào ạ?" in mai.text()
    assert "Thôn Tà Lang" in labels(mai)


async def test_a_resident_number_never_offered_is_told_politely_once(app):
    """A resident typing `9` or a word at /visit's village question is told, politely and with one
    "ạ", which numbers there are or that it is no option, and keeps the options."""
    await seed_demo(app)
    mai = Talker(app, "mai")
    await mai.say("/visit")
    await mai.say("Tôi cần giúp cài VNeID")
    await mai.say("Hải Vân")
    await mai.say("9")
    assert "Không có lựa chọn số 9; ông/bà chọn từ 1 đến 3 ạ." in mai.text()
    assert "Thôn Tà Lang" in labels(mai)
    await mai.say("xyz abc")
    assert "“xyz abc” không có trong các lựa chọn. Ông/bà trả lời bằng một số" in mai.text()
    assert "Thôn Tà Lang" in labels(mai)


async def test_help_in_the_middle_of_a_visit_request_keeps_it(app):
    """A resident who types /help while asking for a visit sees the commands, then the question
    they were answering with its options, and their next answer goes on with the request."""
    await seed_demo(app)
    mai = Talker(app, "mai")
    await mai.say("/visit")
    await mai.say("Tôi cần giúp cài VNeID")
    await mai.say("/help")
    assert "/visit" in mai.text() and "Phường Hải Vân" in labels(mai)
    await mai.say("Hải Vân")
    assert "Ông/bà ở thôn hay tổ dân phố nào ạ?" in mai.text()


async def test_help_while_a_typed_answer_is_awaited_says_the_question_still_waits(app):
    """/help at /new's head-of-household question lists the commands and says the question still
    waits; the name typed next is taken as the answer."""
    await seed_demo(app)
    an = Talker(app, "an")
    await an.say("/new")
    await an.say("1")
    await an.say("/help")
    assert "/households" in an.text() and "vẫn" in an.text().splitlines()[-1]
    await an.say("Trần Thị Hoa")
    assert "Thêm hộ (3/4)" in an.text()


async def test_an_ambiguous_part_asks_which_one_with_only_the_matching_options(app):
    """`thon` at the village question fits two villages: the reply asks which, offering only those."""
    await seed_demo(app)
    mai = Talker(app, "mai")
    await mai.say("/visit Tôi cần giúp cài VNeID")
    await mai.say("hai van")
    await mai.say("thon")
    assert labels(mai) == ["Thôn Giàn Bí", "Thôn Tà Lang"]
    await mai.say("1")
    assert "điện thoại" in mai.text().lower()


async def test_a_number_never_offered_says_so_and_keeps_the_menu(app):
    """`/households` → `9` says there is no option 9 (not "out of date"), and `3` then opens
    the third household."""
    await seed_demo(app)
    an = Talker(app, "an")
    await an.say("/households")
    await an.say("9")
    assert "Không có lựa chọn 9; hãy chọn từ 1 đến 5." in an.text() and "cũ" not in an.text()
    assert len(an.buttons()) == 5
    await an.say("3")
    assert "HV-TL-001" in an.text() and "Thêm thành viên" in labels(an)


async def test_a_command_in_the_middle_of_a_dialog_leaves_it(app):
    """`/households` during `/new` lists the households, and the next answers go to that list,
    not to the abandoned /new."""
    await seed_demo(app)
    an = Talker(app, "an")
    await an.say("/new")
    await an.press([p for _, p in an.buttons()][1])
    assert HEAD_QUESTION in an.text()
    await an.say("/households")
    await an.say("3")
    assert "HV-TL-001" in an.text()
    await an.say("Nguyễn Văn Mới")
    assert "Thêm hộ" not in an.text()
    assert await count_rows(app, Household, Household.head_name == "Nguyễn Văn Mới") == 0


async def test_staff_stray_text_gets_a_hint_and_no_faq_miss(app):
    """A volunteer's or leader's stray text or number where nothing is asked gets a short hint
    with the commands, not a FAQ answer, and is not kept as a FAQ miss."""
    await seed_demo(app)
    for name, command in (("an", "/households"), ("lan", "/stats")):
        staff = Talker(app, name)
        for stray in ("abc", "5", "làm sao để đăng ký VNeID"):
            await staff.say(stray)
            assert "Không có gì để chọn" in staff.text() and command in staff.text(), (name, stray)
            assert staff.buttons() == []
    assert await count_rows(app, FaqMiss) == 0


async def test_residents_numbers_are_never_faq_misses(app):
    """A resident's `0`, `-1` or `1.5` gets a hint to write the question in words, and no miss."""
    await seed_demo(app)
    mai = Talker(app, "mai")
    for number in ("0", "-1", "1.5"):
        await mai.say(number)
        assert "/help" in mai.text(), number
    assert await count_rows(app, FaqMiss) == 0


async def test_a_button_of_something_else_leaves_the_dialog(app):
    """Pressing a household's button during /new opens it, and typed text no longer feeds /new."""
    await seed_demo(app)
    an = Talker(app, "an")
    await an.say("/households")
    household = an.buttons()[2][1]
    await an.say("/new")
    await an.say("2")
    await an.press(household)
    await an.say("abc")
    assert HEAD_QUESTION not in an.text() and "Thêm hộ (3/4)" not in an.text()


async def test_staff_text_at_a_menu_gets_the_menu_again(app):
    """A volunteer's text that fits no option of /households gets the list again, not the FAQ."""
    await seed_demo(app)
    an = Talker(app, "an")
    await an.say("/households")
    await an.say("làm sao để đăng ký VNeID")
    assert "Các hộ bạn phụ trách (5)" in an.text() and len(an.buttons()) == 5
    assert await count_rows(app, FaqMiss) == 0
