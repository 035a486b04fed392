"""Official provinces and wards (after the 2025 reform) from the vietnam-provinces package, the
slugs GoCua builds area codes from, and old unit names (before the reform) mapped to the new
wards with vietnamadminunits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from conversations.folding import strip_marks

# vietnam_provinces is imported where it is used: its tables take about 0.4 s of CPU to import,
# which every `gocua` command and worker paid at start, most of them without naming a place.


@cache
def province_name(code: int) -> str:
    from vietnam_provinces import Province, ProvinceCode

    return Province.from_code(ProvinceCode(code)).name


@cache
def ward_name(code: int) -> str:
    from vietnam_provinces import Ward, WardCode

    return Ward.from_code(WardCode(code)).name


@cache
def current_province_codes() -> frozenset[int]:
    from vietnam_provinces import Province

    return frozenset(int(p.code) for p in Province.iter_all())


# Level words at the start of an official or typed name, folded, longest first.
LEVEL_PREFIXES = ("thanh pho", "thi tran", "to dan pho", "khu pho", "dac khu", "phuong", "tinh",
                  "thon", "ban", "xa", "ap", "to", "khu", "lang", "buon", "pum", "plei", "soc")
# What a division type of the package is called in `Area.level`.
LEVELS = {"phường": "ward", "xã": "commune", "đặc khu": "special_zone",
          "thành phố trung ương": "city", "tỉnh": "province"}


def without_level(folded: str) -> str:
    """A folded name without its leading level word ("phuong hai van" -> "hai van")."""
    for word in LEVEL_PREFIXES:
        if folded.startswith(word + " ") and len(folded) > len(word) + 1:
            return folded[len(word) + 1:]
    return folded


def slug(name: str, *, joined: bool = False) -> str:
    """The code part of a name: folded, without the level word, words joined by hyphens
    ("Phường Hải Vân" -> "hai-van"), or without anything for a province ("danang")."""
    words = re.findall(r"[a-z0-9]+", without_level(" ".join(strip_marks(name).split())))
    return ("" if joined else "-").join(words)


@dataclass(frozen=True)
class Unit:
    """One official unit: its code (as text), official name, GoCua level and code slug."""

    official_code: str
    name: str
    level: str
    slug: str


def province_unit(code: int) -> Unit | None:
    from vietnam_provinces import Province, ProvinceCode

    if code not in current_province_codes():
        return None
    province = Province.from_code(ProvinceCode(code))
    level = "city" if province.name.startswith("Thành phố") else "province"
    return Unit(str(code), province.name, level, slug(province.name, joined=True))


def wards_of(code: int) -> list[Unit]:
    """The province's wards, communes and special zones in the package's order, each with a
    slug unique in the province (the official code is added when two names would meet)."""
    from vietnam_provinces import Ward

    wards = [w for w in Ward.iter_all() if int(w.province_code) == code]
    slugs = [slug(w.name) for w in wards]
    units = []
    for ward, short in zip(wards, slugs, strict=True):
        if slugs.count(short) > 1:
            short = f"{short}-{int(ward.code)}"
        level = LEVELS.get(str(ward.division_type.value), "ward")
        units.append(Unit(str(int(ward.code)), ward.name, level, short))
    return units


@cache
def _converter() -> object:
    import vietnamadminunits  # type: ignore[import-untyped]  # loads its tables (about 0.4 s): only when an old name is typed

    return vietnamadminunits.convert_address


def new_ward_for(text: str, province: str | None = None) -> str | None:
    """The name of the 2025 ward an old unit name points to ("xã Hòa Bắc, huyện Hòa Vang" ->
    "Phường Hải Vân"), trying with `province` appended when the text alone is not enough;
    None when it names no old unit. Never raises."""
    text = " ".join(text.split())[:300]
    if "," not in text and " " not in text:
        return None
    tries = [text]
    if province and strip_marks(province) not in strip_marks(text):
        tries.append(f"{text}, {province}")
    convert = _converter()
    for attempt in tries:
        try:
            unit = convert(attempt)  # type: ignore[operator]
        except Exception:  # the package raises on some shapes of text: not an old name then
            continue
        ward = getattr(unit, "ward", None)
        if ward:
            return str(ward)
    return None
