"""Official provinces and wards (after the 2025 reform) from the vietnam-provinces package."""

from __future__ import annotations

from functools import cache

from vietnam_provinces import Province, ProvinceCode, Ward, WardCode


@cache
def province_name(code: int) -> str:
    return Province.from_code(ProvinceCode(code)).name


@cache
def ward_name(code: int) -> str:
    return Ward.from_code(WardCode(code)).name


@cache
def current_province_codes() -> frozenset[int]:
    return frozenset(int(p.code) for p in Province.iter_all())
