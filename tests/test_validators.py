"""Validators of typed answers: tables of good, bad and hostile input; citizen-ID masking."""

from __future__ import annotations

from datetime import date

import pytest
from vietnam_provinces import Province

from conversations import validators as v
from conversations.provinces import CCCD_PROVINCES

TODAY = date(2026, 11, 20)

HOSTILE = [
    "",
    "   ",
    "\t\n ",
    "😀😀😀",
    "👨‍👩‍👧",
    "x" * 200_000,
    "1" * 200_000,
    "'; DROP TABLE residents; --",
    "1 OR 1=1",
    "مرحبا بالعالم",
    "\u202e1234567890",
    "\x00",
    "0905\x00123456",
    "{n}{total}%s%d",
    "<script>alert(1)</script>",
    "٠٤٨٠٩٠٠٠١٢٣٤",  # Arabic-Indic digits
]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("048090001234", "048090001234"),
        (" 048 090 001 234 ", "048090001234"),
        ("048.090.001.234", "048090001234"),
        ("048-090-001-234", "048090001234"),
        ("001300012345", "001300012345"),
        ("096199123456", "096199123456"),
    ],
)
def test_cccd_accepts_and_normalises(raw, expected):
    """A 12-digit citizen ID with a province code is accepted and returned as bare digits."""
    assert v.validate_cccd(raw, TODAY) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "msgid", "values"),
    [
        ("04809000123", v.CCCD_COUNT, {"count": 11}),
        ("0480900012345", v.CCCD_COUNT, {"count": 13}),
        ("003090001234", v.CCCD_PROVINCE, {"code": "003"}),
        ("099090001234", v.CCCD_PROVINCE, {"code": "099"}),
        ("000090001234", v.CCCD_PROVINCE, {"code": "000"}),
        ("04809000123A", v.CCCD_NOT_DIGITS, {}),
        ("048290001234", v.CCCD_FUTURE, {"year": 2090}),
        ("", v.EMPTY, {}),
    ],
)
def test_cccd_rejects_with_a_precise_message(raw, msgid, values):
    """A wrong citizen ID gets the message naming exactly what is wrong."""
    value, error = v.validate_cccd(raw, TODAY)
    assert value is None
    assert error == v.ErrorMessage(msgid, values)


def test_mask_cccd_keeps_four_and_two_digits():
    """Masking keeps the first four and last two digits with six asterisks between."""
    assert v.mask_cccd("048090001234") == "0480******34"


@pytest.mark.parametrize("number", ["048090001234", "001199876543", "096312345678"])
def test_mask_cccd_never_contains_the_middle_digits(number):
    """No run of the six middle digits survives masking."""
    masked = v.mask_cccd(number)
    assert number[4:10] not in masked
    assert masked[4:10] == "******"
    assert len(masked) == 12


def test_mask_cccd_of_garbage_hides_everything():
    """Masking something that is not 12 digits gives only asterisks."""
    assert v.mask_cccd("12345") == "*" * 12


def test_hash_cccd_is_keyed_and_stable():
    """The citizen-ID hash depends on the key, ignores separators and never contains the number."""
    first = v.hash_cccd("048090001234", b"key-1")
    assert first == v.hash_cccd("048 090 001 234", b"key-1")
    assert first != v.hash_cccd("048090001234", b"key-2")
    assert "048090001234" not in first and len(first) == 64


def test_every_current_province_code_is_a_cccd_code():
    """Every province code of the vietnam_provinces package is among the citizen-ID codes."""
    current = {f"{int(p.code):03d}" for p in Province.iter_all()}
    assert current and current <= set(CCCD_PROVINCES)
    assert len(CCCD_PROVINCES) == 63


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0905123456", "0905123456"),
        ("0905 123 456", "0905123456"),
        ("0905.123.456", "0905123456"),
        ("0905-123-456", "0905123456"),
        ("+84905123456", "0905123456"),
        ("+84 905 123 456", "0905123456"),
        ("84905123456", "0905123456"),
        ("+84 0905 123 456", "0905123456"),
        ("0312345678", "0312345678"),
        ("0512345678", "0512345678"),
        ("0712345678", "0712345678"),
        ("0812345678", "0812345678"),
        ("0845123456", "0845123456"),
    ],
)
def test_phone_accepts_vietnamese_mobiles(raw, expected):
    """Vietnamese mobile numbers in the usual spellings are normalised to 0xxxxxxxxx."""
    assert v.validate_phone(raw, TODAY) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("02363822123", "02363822123"),  # Da Nang, 11 digits (seen refused as "11 digits")
        ("0236 3822 123", "02363822123"),
        ("(0236) 3.822.123", "02363822123"),
        ("+84 236 3822 123", "02363822123"),
        ("842363822123", "02363822123"),
        ("0243822123", "0243822123"),  # 10 digits
    ],
)
def test_phone_accepts_landlines(raw, expected):
    """A landline (02…, 10 or 11 digits) is accepted where a phone is asked."""
    assert v.validate_phone(raw, TODAY) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "msgid"),
    [
        ("090512345", v.PHONE_COUNT),
        ("09051234567", v.PHONE_COUNT),
        ("023612345", v.PHONE_LANDLINE_COUNT),
        ("023636123456", v.PHONE_LANDLINE_COUNT),
        ("0112345678", v.PHONE_SHAPE),
        ("0412345678", v.PHONE_SHAPE),
        ("0612345678", v.PHONE_SHAPE),
        ("1905123456", v.PHONE_SHAPE),
        ("+1 202 555 0123", v.PHONE_SHAPE),
        ("0905abc456", v.PHONE_NOT_DIGITS),
        ("", v.EMPTY),
    ],
)
def test_phone_rejects_with_a_precise_message(raw, msgid):
    """A number that is not a Vietnamese mobile gets the message naming what is wrong."""
    value, error = v.validate_phone(raw, TODAY)
    assert value is None and error is not None and error.msgid == msgid


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("05/03/2025", "2025-03-05"),
        ("5/3/2025", "2025-03-05"),
        ("5-3-2025", "2025-03-05"),
        ("05.03.2025", "2025-03-05"),
        (" 29/02/2024 ", "2024-02-29"),
        ("20/11/2026", "2026-11-20"),
        ("2025-03-05", "2025-03-05"),
        ("01/01/1900", "1900-01-01"),
    ],
)
def test_date_accepts_day_month_year(raw, expected):
    """Dates written d/m/yyyy (also with - or .) become ISO dates."""
    assert v.validate_date(raw, TODAY) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "msgid"),
    [
        ("21/11/2026", v.DATE_FUTURE),
        ("01/01/2030", v.DATE_FUTURE),
        ("31/02/2025", v.DATE_INVALID),
        ("29/02/2025", v.DATE_INVALID),
        ("00/01/2025", v.DATE_INVALID),
        ("12/13/2025", v.DATE_INVALID),
        ("31/12/1899", v.DATE_TOO_OLD),
        ("5/3/25", v.DATE_FORMAT),
        ("March 5, 2025", v.DATE_FORMAT),
        ("05032025", v.DATE_FORMAT),
        ("", v.EMPTY),
    ],
)
def test_date_rejects_with_a_precise_message(raw, msgid):
    """A date that is malformed, impossible, in the future or before 1900 is refused precisely."""
    value, error = v.validate_date(raw, TODAY)
    assert value is None and error is not None and error.msgid == msgid


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1950", 1950), (" 1900 ", 1900), ("2026", 2026), ("năm 1960", 1960), ("Năm 1960", 1960),
     ("NĂM 1960", 1960), ("nam 1960", 1960), ("sinh năm 1960", 1960), ("1960.", 1960),
     ("năm 1960.", 1960), ("Na\u0306m 1960", 1960), ("year 1960", 1960)],
)
def test_year_accepts_four_digits_in_range(raw, expected):
    """A four-digit year from 1900 to this year is returned as a number, also written
    "năm 1960" or "1960." (seen refused: "năm 1960")."""
    assert v.validate_year(raw, TODAY) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "msgid"),
    [("1899", v.YEAR_RANGE), ("2027", v.YEAR_RANGE), ("50", v.YEAR_FORMAT), ("19 50", v.YEAR_FORMAT),
     ("năm 50", v.YEAR_FORMAT), ("1950..", v.YEAR_FORMAT), ("năm nay 1950", v.YEAR_FORMAT),
     ("năm 2027", v.YEAR_RANGE)],
)
def test_year_rejects_with_a_precise_message(raw, msgid):
    """A year that is not four digits or out of range is refused precisely."""
    value, error = v.validate_year(raw, TODAY)
    assert value is None and error is not None and error.msgid == msgid


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Nguyễn Văn An", "Nguyễn Văn An"),
        ("  nguyễn   thị   bình ", "nguyễn thị bình"),
        ("Nguye\u0302\u0303n Văn An", "Nguyễn Văn An"),  # decomposed input is NFC-normalised
        ("Hồ Thị Kiều-Trang", "Hồ Thị Kiều-Trang"),
        ("O'Neil J. Smith", "O'Neil J. Smith"),
        ("Alăng Bhơ", "Alăng Bhơ"),
        ("محمد علي", "محمد علي"),
    ],
)
def test_name_accepts_letters_of_any_script(raw, expected):
    """Names in Vietnamese or other scripts are accepted, NFC-normalised, spaces collapsed."""
    assert v.validate_name(raw, TODAY) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "msgid"),
    [
        ("A", v.NAME_SHORT),
        ("Nguyễn Văn 2", v.NAME_DIGITS),
        ("An 😀", v.NAME_CHARS),
        ("An; DROP TABLE", v.NAME_CHARS),
        ("\u202eAn Bình", v.NAME_CHARS),
        ("An\x00Bình", v.NAME_CHARS),
        ("A" * 101, v.NAME_LONG),
        ("A" * 401, v.TOO_LONG),
    ],
)
def test_name_rejects_with_a_precise_message(raw, msgid):
    """A name with digits, symbols, control characters or a wrong length is refused precisely."""
    value, error = v.validate_name(raw, TODAY)
    assert value is None and error is not None and error.msgid == msgid


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0", 0), ("3", 3), (" 42 ", 42), ("1.000", 1000), ("1,000,000", 1_000_000), ("500 000", 500_000)],
)
def test_number_accepts_whole_numbers(raw, expected):
    """Whole numbers up to a million, with optional thousands separators, become ints."""
    assert v.validate_number(raw, TODAY) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "msgid"),
    [("-1", v.NUMBER_NEGATIVE), ("1.5", v.NUMBER_FORMAT), ("ba", v.NUMBER_FORMAT),
     ("1000001", v.NUMBER_RANGE), ("9" * 90, v.NUMBER_RANGE), ("1e6", v.NUMBER_FORMAT)],
)
def test_number_rejects_with_a_precise_message(raw, msgid):
    """Negative, fractional, non-numeric or too large numbers are refused precisely."""
    value, error = v.validate_number(raw, TODAY)
    assert value is None and error is not None and error.msgid == msgid


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Cần thêm giấy tờ", "Cần thêm giấy tờ"), ("  ok  ", "ok"), ("😀", "😀"),
     ("'; DROP TABLE residents; --", "'; DROP TABLE residents; --"), ("dòng 1\ndòng 2", "dòng 1\ndòng 2")],
)
def test_text_accepts_free_text(raw, expected):
    """Free text up to 500 characters is kept as typed, trimmed and NFC-normalised."""
    assert v.validate_text(raw, TODAY) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "msgid"),
    [("", v.EMPTY), ("   ", v.EMPTY), ("a" * 501, v.TEXT_LONG), ("a" * 200_000, v.TOO_LONG),
     ("bad\x00byte", v.TEXT_CONTROL), ("\x07bell", v.TEXT_CONTROL)],
)
def test_text_rejects_with_a_precise_message(raw, msgid):
    """Empty, overlong or control-character text is refused precisely."""
    value, error = v.validate_text(raw, TODAY)
    assert value is None and error is not None and error.msgid == msgid


@pytest.mark.parametrize("kind", sorted(v.VALIDATORS))
@pytest.mark.parametrize("raw", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_input_never_raises(kind, raw):
    """Every validator answers hostile input with a value or a clean error, never an exception."""
    value, error = v.validate(kind, raw, TODAY)
    assert (value is None) != (error is None)
    if error is not None:
        assert error.msgid and isinstance(error.values, dict)


@pytest.mark.parametrize("kind", ["cccd", "phone", "date", "year", "name", "number"])
@pytest.mark.parametrize("raw", ["", "   ", "😀😀😀", "x" * 200_000, "'; DROP TABLE residents; --",
                                 "\u202e1234567890", "\x00"])
def test_structured_validators_refuse_hostile_input(kind, raw):
    """Structured validators refuse empty, emoji, huge, SQL, right-to-left and NUL input."""
    value, error = v.validate(kind, raw, TODAY)
    assert value is None and error is not None


def test_non_string_input_is_an_error():
    """A value that is not a string is refused as empty instead of raising."""
    assert v.validate_text(None, TODAY) == (None, v.ErrorMessage(v.EMPTY))  # type: ignore[arg-type]


def test_every_validator_has_a_hint():
    """Each validator has a hint telling the person what to type."""
    assert set(v.HINTS) == set(v.VALIDATORS)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Thôn Tà Lang", "Thôn Tà Lang"), ("12", "12"), ("Nhà số 5!", "Nhà số 5!"),
     ("  gần UBND xã  ", "gần UBND xã"), ("Đầu cầu treo", "Đầu cầu treo")],
)
def test_address_accepts_words_or_numbers(raw, expected):
    """An address or landmark with at least one letter or digit is accepted, trimmed."""
    assert v.validate_address(raw, TODAY) == (expected, None)


@pytest.mark.parametrize(
    ("raw", "msgid"),
    [("!!!", v.ADDRESS_NO_WORDS), ("...", v.ADDRESS_NO_WORDS), ("😀 ?", v.ADDRESS_NO_WORDS),
     ("-- // --", v.ADDRESS_NO_WORDS), ("   ", v.EMPTY), ("x" * 301, v.ADDRESS_LONG)],
)
def test_address_rejects_text_without_letters_or_digits(raw, msgid):
    """An address of symbols only (seen accepted: "!!!") or too long is refused precisely."""
    value, error = v.validate_address(raw, TODAY)
    assert value is None and error is not None and error.msgid == msgid


@pytest.mark.parametrize(
    ("raw", "msgid"),
    [("12345", v.NAME_DIGITS), ("!!!", v.NAME_CHARS), ("...", v.NAME_SHORT), ("- - -", v.NAME_SHORT),
     ("@#$%", v.NAME_CHARS), ("'.'", v.NAME_SHORT)],
)
def test_name_of_symbols_or_digits_only_is_refused(raw, msgid):
    """A name made only of digits or symbols is refused: a name contains letters."""
    value, error = v.validate_name(raw, TODAY)
    assert value is None and error is not None and error.msgid == msgid


@pytest.mark.parametrize(
    ("name", "random"),
    [
        ("asdfghjkl qwerty", True),  # seen accepted as a head of household
        ("Qwerty", True),
        ("lkjhg", True),
        ("Nguyễn Văn Zxcvb", True),
        ("Sdfgh", True),
        ("Trn Th", False),  # short vowel-less words (initials, typos) are not flagged
        ("Nguyễn Thị Hằng", False),
        ("Alăng Thị Nga", False),
        ("Pơloong Văn Dũng", False),
        ("Zơrâm Văn Ba", False),
        ("Bh'riu Thị Hoa", False),
        ("Liberty Trần", False),
        ("Tuyết", False),
        ("Nguyen Thi Tuyet", False),
        ("محمد علي", False),
        ("Mrs Brrrr", True),  # a four-letter word without a vowel
    ],
)
def test_a_keyboard_mash_name_is_flagged_for_confirmation(name, random):
    """A name typed along a keyboard row or without vowels is flagged (to confirm, not refuse)."""
    assert v.validate_name(name, TODAY)[1] is None
    assert v.name_looks_typed_at_random(name) is random


@pytest.mark.parametrize(
    ("number", "year"),
    [("048199123456", 1999), ("048085001234", 1985), ("001300012345", 2000), ("048200001234", 2000),
     ("048398001234", 2098), ("048812345678", 1812), ("04819912345", None), ("04819912345a", None)],
)
def test_cccd_birth_year_reads_digits_four_to_six(number, year):
    """Digit 4 gives the century (0/1: 1900s, 2/3: 2000s, …) and digits 5–6 the year."""
    assert v.cccd_birth_year(number) == year


@pytest.mark.parametrize(
    ("number", "birth_year", "conflict"),
    [("048199123456", 1985, 1999),  # seen accepted for a member born in 1985
     ("048199123456", 1999, None), ("048185001234", 1985, None), ("048085001234", 1985, None),
     ("048285001234", 1985, 2085), ("048199123456", None, None)],
)
def test_cccd_year_conflict_with_the_birth_year(number, birth_year, conflict):
    """A citizen ID whose digits 4–6 give another year than the birth year is a conflict."""
    assert v.cccd_year_conflict(number, birth_year) == conflict
