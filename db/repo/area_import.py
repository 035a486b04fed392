"""Official units into the area tree (`gocua areas import`), villages under a ward (`gocua areas
add-villages`), the tree with household counts (`gocua areas list`), and an area found by what
someone types (its code, its name, or an old name from before the 2025 reform)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Area, Household
from db.places import Unit, new_ward_for, province_unit, slug, wards_of, without_level
from db.repo.areas import MAX_TARGET, area_by_code, find_or_create_area, within
from db.repo.households import CURRENT


class AreaImportError(ValueError):
    """A province or ward code the package does not know (the message says which)."""


@dataclass
class ImportCounts:
    created: list[str] = field(default_factory=list)  # codes of the new areas
    existing: int = 0
    updated: list[str] = field(default_factory=list)  # codes whose target changed


async def import_province(session: AsyncSession, province_code: int, ward_codes: list[int] | None = None,
                          ) -> ImportCounts:
    """The province and its wards (or those of `ward_codes`) from vietnam-provinces; units that
    exist (same official code, else same code) are reused as they are."""
    province = province_unit(province_code)
    if province is None:
        raise AreaImportError(f"no province with code {province_code} (after the 2025 reform: 1–96)")
    wards = wards_of(province_code)
    if ward_codes:
        known = {int(w.official_code): w for w in wards}
        unknown = [str(c) for c in ward_codes if c not in known]
        if unknown:
            raise AreaImportError(f"no ward {', '.join(unknown)} in {province.name}")
        wards = [known[c] for c in dict.fromkeys(ward_codes)]
    counts = ImportCounts()
    top, created = await _unit(session, province, province.slug, None)
    _count(counts, top, created)
    for ward in wards:
        area, created = await _unit(session, ward, f"{top.code}.{ward.slug}", top)
        _count(counts, area, created)
    return counts


async def _unit(session: AsyncSession, unit: Unit, code: str, parent: Area | None) -> tuple[Area, bool]:
    return await find_or_create_area(session, code=code, name=unit.name, level=unit.level, parent=parent,
                                     official_code=unit.official_code)


def _count(counts: ImportCounts, area: Area, created: bool) -> None:
    if created:
        counts.created.append(area.code)
    else:
        counts.existing += 1


def village_code(ward: Area, name: str) -> str:
    return f"{ward.code}.{slug(name) or 'x'}"


def same_name(a: str, b: str) -> bool:
    """Whether two area names are the same, with or without diacritics, case or level word."""
    fa, fb = _fold(a), _fold(b)
    return fa == fb or without_level(fa) == without_level(fb)


def _fold(text: str) -> str:
    from conversations.folding import strip_marks

    return " ".join(strip_marks(text).split())


async def add_villages(session: AsyncSession, ward: Area, villages: list[tuple[str, int | None]],
                       ) -> ImportCounts:
    """Villages (name, target households or None) under `ward`; one with the same name (or
    code) is reused, its target set when the file gives one."""
    counts = ImportCounts()
    children = list(await session.scalars(select(Area).where(Area.parent_id == ward.id)))
    for name, target in villages:
        name = " ".join(name.split())
        code = village_code(ward, name)
        area = next((a for a in children if a.code == code or same_name(a.name, name)), None)
        if area is None:
            area = Area(code=code, name=name, level="village", parent_id=ward.id)
            session.add(area)
            children.append(area)
            counts.created.append(code)
        else:
            counts.existing += 1
        if target is not None and 0 <= target <= MAX_TARGET and area.target_households != (target or None):
            area.target_households = target or None
            if area.code not in counts.created:
                counts.updated.append(area.code)
    await session.flush()
    return counts


@dataclass
class AreaRow:
    code: str
    name: str
    level: str
    official_code: str | None
    households: int  # current households in the area and below it
    depth: int


async def area_tree(session: AsyncSession, under: Area | None) -> list[AreaRow]:
    """The areas under `under` (itself included; everything when None), parents before their
    children, children by name, with their current households counted with their sub-areas'."""
    query = select(Area)
    if under is not None:
        query = query.where(within(Area.code, under.code))
    areas = list(await session.scalars(query))
    direct = dict((await session.execute(
        select(Household.area_id, func.count()).where(CURRENT).group_by(Household.area_id)
    )).all())
    by_id = {a.id: a for a in areas}
    children: dict[int | None, list[Area]] = {}
    for area in areas:
        parent = area.parent_id if area.parent_id in by_id else None
        children.setdefault(parent, []).append(area)
    rows: list[AreaRow] = []

    def walk(area: Area, depth: int) -> int:
        row = AreaRow(area.code, area.name, area.level, area.official_code, 0, depth)
        rows.append(row)
        total = direct.get(area.id, 0)
        for child in sorted(children.get(area.id, []), key=lambda a: (_fold(a.name), a.code)):
            total += walk(child, depth + 1)
        row.households = total
        return total

    for root in sorted(children.get(None, []), key=lambda a: a.code):
        walk(root, 0)
    return rows


async def find_area_named(session: AsyncSession, text: str, *, inside: Area | None = None) -> Area | None:
    """The area `text` names: its code, its official code, its name (with or without diacritics
    or the level word), or an old name ("xã Hòa Bắc, huyện Hòa Vang") mapped to its 2025 ward."""
    text = " ".join(text.split())
    if not text:
        return None
    area = await area_by_code(session, text)
    if area is not None:
        return area
    query = select(Area)
    if inside is not None:
        query = query.where(within(Area.code, inside.code))
    if text.isdigit():
        return await session.scalar(query.where(Area.official_code == text).limit(1))
    areas = list(await session.scalars(query.limit(20_000)))
    tail = slug(text)
    named = sorted((a for a in areas if same_name(a.name, text) or a.code.rsplit(".", 1)[-1] == tail),
                   key=lambda a: len(a.code))
    if named:
        return named[0]
    province = next((a.name for a in areas if a.level in ("city", "province")), None)
    ward = new_ward_for(text, province)
    if ward is None:
        return None
    named = sorted((a for a in areas if same_name(a.name, ward)), key=lambda a: len(a.code))
    return named[0] if named else None
