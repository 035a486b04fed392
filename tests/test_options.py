"""How a typed answer picks one of the offered options (handlers/options.py, pure)."""

from __future__ import annotations

import pytest

from handlers.options import Ambiguous, NoMatch, NoSuchNumber, Picked, read_answer

WARDS = ["Phường Hòa Xuân", "Phường Hải Vân", "Xã Avương"]
VILLAGES = ["Thôn Giàn Bí", "Thôn Tà Lang", "Không rõ"]
HOUSEHOLDS = ["HV-GB-001 Zơrâm Thị Mai", "HV-TL-001 Alăng Văn Tư ✅1", "HV-TL-002 Bríu Thị Hoa ⏳"]
STATS = ["Thôn Tà Lang (20%)", "✓ 30 ngày qua", "📈 Biểu đồ", "⬅️ Quay lại"]
TASK = ["Xong", "Bỏ qua", "Vướng"]


@pytest.mark.parametrize(("text", "labels", "numbered", "tolerant", "expected"), [
    # numbers, where the chat shows them
    ("2", VILLAGES, True, True, Picked(1)),
    ("[2]", VILLAGES, True, True, Picked(1)),
    ("2.", VILLAGES, True, True, Picked(1)),
    ("9", VILLAGES, True, True, NoSuchNumber(9, 3)),
    ("0", VILLAGES, True, True, NoSuchNumber(0, 3)),
    ("2", VILLAGES, False, True, NoMatch()),
    ("-1", VILLAGES, True, True, NoMatch()),
    ("1.5", VILLAGES, True, True, NoMatch()),
    # whole labels, without diacritics, case or emoji
    ("Thôn Tà Lang", VILLAGES, True, True, Picked(1)),
    ("thon ta lang", VILLAGES, True, True, Picked(1)),
    ("2. Thôn Tà Lang", VILLAGES, True, True, Picked(1)),
    ("biểu đồ", STATS, True, True, Picked(2)),
    ("quay lai", STATS, True, True, Picked(3)),
    ("bo qua", TASK, True, False, Picked(1)),
    # a distinctive part
    ("ta lang", VILLAGES, True, True, Picked(1)),
    ("Tà Lang", VILLAGES, True, True, Picked(1)),
    ("hai van", WARDS, True, True, Picked(1)),
    ("Hải Vân", WARDS, False, True, Picked(1)),
    ("hai v", WARDS, True, True, NoMatch()),
    ("avuong", WARDS, True, True, Picked(2)),
    ("alang", HOUSEHOLDS, True, True, Picked(1)),
    ("HV-TL-002", HOUSEHOLDS, True, True, Picked(2)),
    ("ta lang", STATS, True, True, Picked(0)),
    # a part that fits several asks which
    ("thon", VILLAGES, True, True, Ambiguous((0, 1))),
    ("phuong", WARDS, True, True, Ambiguous((0, 1))),
    ("HV-TL", HOUSEHOLDS, True, True, Ambiguous((1, 2))),
    # a small typo in a longer answer
    ("ta lagn", VILLAGES, True, True, Picked(1)),
    ("hai vaan", WARDS, True, True, Picked(1)),
    # nothing, or only the whole label while typed text is expected
    ("abc", VILLAGES, True, True, NoMatch()),
    ("", VILLAGES, True, True, NoMatch()),
    ("t", VILLAGES, True, True, NoMatch()),
    ("hỏi", ["Hữu ích", "Không đúng ý tôi hỏi", "Nhờ tình nguyện viên"], True, True, NoMatch()),
    ("lang", VILLAGES, True, True, Picked(1)),
    ("ta lang", VILLAGES, True, False, NoMatch()),
    ("Nguyễn Văn An", TASK, True, True, NoMatch()),
    ("x" * 300, VILLAGES, True, True, NoMatch()),
])
def test_read_answer(text, labels, numbered, tolerant, expected):
    """A typed answer picks the option it names by number, label or distinctive part."""
    assert read_answer(text, labels, numbered=numbered, tolerant=tolerant) == expected
