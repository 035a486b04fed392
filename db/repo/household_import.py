"""A parsed household list (conversations/household_sheet.py) written into a ward: new households
created, known ones updated (never duplicated), unassigned ones given to the ward's volunteers.

Everything happens in the caller's transaction; the caller rolls it back for a dry run or when
rows were rejected without `--skip-bad`, so a file is imported whole or not at all. A household
is the same when it has the same (village, head, address) or the same phone; a member when it
has the same (household, name, birth year).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.folding import strip_marks
from conversations.household_sheet import Rejection, Sheet, SheetHousehold, SheetMember
from conversations.texts import N_
from conversations.validators import ErrorMessage
from db.models import Area, Household, Membership, Resident, User
from db.repo.area_import import same_name, village_code
from db.repo.areas import within
from db.repo.audit import audit
from db.repo.households import CURRENT, VOLUNTEER_LOAD, household_prefix, move_household

UNKNOWN_VILLAGE = N_("No village {name} in {area}. Known: {known}. (Or import with --create-villages.)")
UNKNOWN_VOLUNTEER = N_("No volunteer {name} in {area}: write their name as they registered it.")
AMBIGUOUS_VOLUNTEER = N_("Several volunteers of {area} are called {name}; assign this household in "
                         "the chat.")
PHONE_ELSEWHERE = N_("This phone number is already household {code}'s.")
CCCD_ELSEWHERE = N_("This citizen ID is already recorded in household {code}.")
NO_VOLUNTEERS = N_("No volunteer in {area} yet: {count} households stay unassigned.")
OVERLOADED = N_("{count} volunteers now look after more than {load} households: invite more volunteers.")

ASSIGN_MODES = ("by-village", "round-robin")


@dataclass
class ImportReport:
    rows: int
    households: int  # households in the file
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    assigned: int = 0
    warnings: list[ErrorMessage] = field(default_factory=list)

    def to_json(self, translate: Any) -> dict[str, Any]:
        """The `--json` shape of issue 17: rows, imported, updated, unchanged, rejected, assigned."""
        return {
            "rows": self.rows, "imported": self.imported, "updated": self.updated,
            "unchanged": self.unchanged, "assigned": self.assigned,
            "rejected": [{"row": r.row, "column": r.column,
                          "reason": translate(r.reason.msgid, **r.reason.values)} for r in self.rejected],
        }


def _fold(text: str) -> str:
    return " ".join(strip_marks(text).split())


class _Villages:
    """The ward's villages by what a file may call them; new ones made on demand."""

    def __init__(self, session: AsyncSession, ward: Area, children: list[Area], create: bool) -> None:
        self.session, self.ward, self.children, self.create = session, ward, children, create
        self.found: dict[str, Area | None] = {}

    async def get(self, name: str) -> Area | None:
        key = _fold(name)
        if key not in self.found:
            area = next((a for a in self.children if same_name(a.name, name)
                         or a.code == village_code(self.ward, name)), None)
            if area is None and same_name(self.ward.name, name):
                area = self.ward
            if area is None and self.create:
                area = Area(code=village_code(self.ward, name), name=name, level="village",
                            parent_id=self.ward.id)
                self.session.add(area)
                await self.session.flush()
                self.children.append(area)
            self.found[key] = area
        return self.found[key]

    def known(self) -> str:
        names = sorted((a.name for a in self.children), key=_fold)
        return ", ".join(names[:40]) + (" …" if len(names) > 40 else "") if names else "—"


async def import_households(session: AsyncSession, ward: Area, sheet: Sheet, *, now: datetime,
                            create_villages: bool = False, assign: str | None = None,
                            actor_id: int | None = None) -> ImportReport:
    """Write `sheet` into `ward` (in the session's transaction) and report what it did."""
    report = ImportReport(rows=sheet.rows, households=len(sheet.households), rejected=list(sheet.rejected))
    importer = _Importer(session, ward, sheet, report, now)
    await importer.load(create_villages)
    for read in sheet.households:
        await importer.take(read)
    await importer.write()
    if assign is not None:
        report.assigned = await assign_households(session, ward, assign, report.warnings)
    report.rejected.sort(key=lambda r: (r.row, r.column))
    audit(session, now, actor_id, "households.import", f"area:{ward.code}", {
        "rows": report.rows, "imported": report.imported, "updated": report.updated,
        "unchanged": report.unchanged, "rejected": len(report.rejected), "assigned": report.assigned,
    })
    return report


class _Importer:
    """The ward's current households and members in memory, matched against the file's."""

    def __init__(self, session: AsyncSession, ward: Area, sheet: Sheet, report: ImportReport,
                 now: datetime) -> None:
        self.session, self.ward, self.sheet, self.report, self.now = session, ward, sheet, report, now
        self.by_key: dict[tuple[int, str, str], Household] = {}
        self.by_phone: dict[str, Household] = {}
        self.by_id: dict[int, Household] = {}
        self.members: dict[int, list[Resident]] = defaultdict(list)
        self.id_owner: dict[str, int] = {}
        self.numbers: dict[str, int] = {}
        self.new: list[tuple[Household, SheetHousehold]] = []
        self.new_members: list[dict[str, Any]] = []  # rows, inserted in bulk

    def reject(self, rows: list[int], key: str, reason: ErrorMessage) -> None:
        column = self.sheet.headers.get(key, "")
        self.report.rejected.extend(Rejection(row, column, reason) for row in rows)

    async def load(self, create_villages: bool) -> None:
        session, ward = self.session, self.ward
        children = list(await session.scalars(select(Area).where(Area.parent_id == ward.id)))
        self.villages = _Villages(session, ward, children, create_villages)
        self.volunteers = await _volunteers_by_name(session, ward)
        in_ward = (CURRENT, within(Area.code, ward.code))
        households = select(Household).join(Area, Area.id == Household.area_id).where(*in_ward)
        for h in await session.scalars(households):
            self.by_key[(h.area_id, _fold(h.head_name), _fold(h.address))] = h
            self.by_id[h.id] = h
            if h.phone:
                self.by_phone[h.phone] = h
        if self.by_id:
            for resident in await session.scalars(
                select(Resident).join(Household, Household.id == Resident.household_id)
                .join(Area, Area.id == Household.area_id).where(*in_ward)
            ):
                self.members[resident.household_id].append(resident)
                if resident.citizen_id_hash:
                    self.id_owner[resident.citizen_id_hash] = resident.household_id

    async def take(self, read: SheetHousehold) -> None:
        """Match one household of the file: a new one, an update, or a rejection."""
        rows = read.rows or [read.row]
        village = await self.villages.get(read.village)
        if village is None:
            self.reject(rows, "village", ErrorMessage(UNKNOWN_VILLAGE, {
                "name": read.village, "area": self.ward.name, "known": self.villages.known()}))
            return
        volunteer_id = None
        if read.volunteer:
            found = self.volunteers.get(_fold(read.volunteer), [])
            if len(found) != 1:
                msgid = UNKNOWN_VOLUNTEER if not found else AMBIGUOUS_VOLUNTEER
                values = {"name": read.volunteer, "area": self.ward.name}
                self.reject(rows, "volunteer", ErrorMessage(msgid, values))
                return
            volunteer_id = found[0]
        key = (village.id, _fold(read.head), _fold(read.address))
        household = self.by_key.get(key)
        if household is None and read.phone:
            household = self.by_phone.get(read.phone)
        elif read.phone and household is not None and (owner_of_phone := self.by_phone.get(read.phone)) \
                not in (None, household):
            assert owner_of_phone is not None
            owner = owner_of_phone.code
            self.reject([read.row], "phone", ErrorMessage(PHONE_ELSEWHERE, {"code": owner}))
            return
        read.members = self._members_not_elsewhere(read, household.id if household is not None else None)
        if household is None:
            await self._create(read, village, volunteer_id, key)
        elif await self._update(household, read, village, volunteer_id):
            self.report.updated += 1
        else:
            self.report.unchanged += 1

    def _members_not_elsewhere(self, read: SheetHousehold, household_id: int | None) -> list[SheetMember]:
        accepted = []
        for member in read.members:
            owner = self.id_owner.get(member.citizen_id_hash or "")
            if owner is not None and owner != household_id:
                code = self.by_id[owner].code
                self.reject([member.row], "citizen_id", ErrorMessage(CCCD_ELSEWHERE, {"code": code}))
            else:
                accepted.append(member)
        return accepted

    async def _create(self, read: SheetHousehold, village: Area, volunteer_id: int | None,
                      key: tuple[int, str, str]) -> None:
        prefix = household_prefix(village.code)
        if prefix not in self.numbers:
            self.numbers[prefix] = await _last_number(self.session, prefix)
        self.numbers[prefix] += 1
        household = Household(
            code=f"{prefix}-{self.numbers[prefix]:03d}", area_id=village.id, head_name=read.head,
            address=read.address, phone=read.phone, volunteer_id=volunteer_id, created_at=self.now,
        )
        self.new.append((household, read))
        self.by_key[key] = household
        if read.phone:
            self.by_phone[read.phone] = household

    async def _update(self, household: Household, read: SheetHousehold, village: Area,
                      volunteer_id: int | None) -> bool:
        """Bring a known household in line with the file; whether anything changed."""
        changed = False
        for attr, value in (("head_name", read.head), ("address", read.address)):
            if getattr(household, attr) != value:
                setattr(household, attr, value)
                changed = True
        if read.phone and household.phone != read.phone:
            self.by_phone.pop(household.phone or "", None)
            household.phone, self.by_phone[read.phone] = read.phone, household
            changed = True
        if volunteer_id is not None and household.volunteer_id != volunteer_id:
            household.volunteer_id, changed = volunteer_id, True
        if household.area_id != village.id:
            await move_household(self.session, household, village)
            changed = True
        known = {(_fold(m.name), m.birth_year): m for m in self.members[household.id]}
        for member in read.members:
            resident = known.get((_fold(member.name), member.birth_year))
            if resident is None:
                self.new_members.append(self._resident(household.id, member))
                changed = True
            elif member.citizen_id_hash and resident.citizen_id_hash != member.citizen_id_hash:
                resident.citizen_id_hash = member.citizen_id_hash
                resident.citizen_id_masked = member.citizen_id_masked
                changed = True
        return changed

    def _resident(self, household_id: int, member: SheetMember) -> dict[str, Any]:
        return {"household_id": household_id, "name": member.name, "birth_year": member.birth_year,
                "citizen_id_masked": member.citizen_id_masked, "citizen_id_hash": member.citizen_id_hash,
                "digital_ready": False, "created_at": self.now}

    async def write(self) -> None:
        """The new households, then every new member (the households' ids known by then)."""
        self.report.imported = len(self.new)
        self.session.add_all(h for h, _ in self.new)
        await self.session.flush()
        for household, read in self.new:
            self.new_members.extend(self._resident(household.id, m) for m in read.members)
        # One bulk INSERT (executemany) rather than an object per member through the unit of
        # work: a city's 250,000 members.
        for start in range(0, len(self.new_members), 10_000):
            await self.session.execute(insert(Resident), self.new_members[start:start + 10_000])


async def _last_number(session: AsyncSession, prefix: str) -> int:
    codes = await session.scalars(select(Household.code).where(Household.code.like(f"{prefix}-%")))
    return max((int(c.rsplit("-", 1)[1]) for c in codes if c.rsplit("-", 1)[1].isdigit()), default=0)


async def _volunteers_by_name(session: AsyncSession, ward: Area) -> dict[str, list[int]]:
    """Folded display name -> user ids of the volunteers and leaders in the ward (and below)."""
    rows = await session.execute(
        select(User.id, User.display_name).join(Membership, Membership.user_id == User.id)
        .join(Area, Area.id == Membership.area_id)
        .where(Membership.role.in_(("volunteer", "leader")), within(Area.code, ward.code))
        .distinct()
    )
    found: dict[str, list[int]] = defaultdict(list)
    for uid, name in rows:
        if uid not in found[_fold(name)]:
            found[_fold(name)].append(uid)
    return found


async def assign_households(session: AsyncSession, ward: Area, mode: str,
                            warnings: list[ErrorMessage]) -> int:
    """Give the ward's unassigned households to its volunteers, the least loaded first (about
    VOLUNTEER_LOAD each); `by-village` prefers the volunteers of the household's village.
    Warns, never refuses, when someone goes past VOLUNTEER_LOAD. Returns how many it gave."""
    rows = (await session.execute(
        select(Membership.user_id, Membership.area_id).join(Area, Area.id == Membership.area_id)
        .where(Membership.role == "volunteer", within(Area.code, ward.code))
    )).all()
    waiting = (await session.execute(
        select(Household.id, Household.area_id).join(Area, Area.id == Household.area_id)
        .where(CURRENT, Household.volunteer_id.is_(None), within(Area.code, ward.code))
        .order_by(Household.code)
    )).all()
    if not waiting:
        return 0
    users = sorted({uid for uid, _ in rows})
    if not users:
        warnings.append(ErrorMessage(NO_VOLUNTEERS, {"area": ward.name, "count": len(waiting)}))
        return 0
    load = dict.fromkeys(users, 0)
    for uid, n in (await session.execute(
        select(Household.volunteer_id, func.count()).where(CURRENT, Household.volunteer_id.in_(users))
        .group_by(Household.volunteer_id)
    )):
        if uid is not None:
            load[uid] = n
    pools: dict[int | None, list[int]] = defaultdict(list)
    for uid, area_id in rows:
        if mode == "by-village" and area_id != ward.id:
            pools[area_id].append(uid)
    given: dict[int, list[int]] = defaultdict(list)
    heaps: dict[int | None, list[tuple[int, int]]] = {}
    for household_id, area_id in waiting:
        pool_key = area_id if area_id in pools else None
        heap = heaps.get(pool_key)
        if heap is None:
            heap = heaps[pool_key] = [(load[u], u) for u in sorted(set(pools.get(pool_key) or users))]
            heapq.heapify(heap)
        while heap[0][0] != load[heap[0][1]]:  # the volunteer took households from another pool
            heapq.heapreplace(heap, (load[heap[0][1]], heap[0][1]))
        _, uid = heap[0]
        load[uid] += 1
        heapq.heapreplace(heap, (load[uid], uid))
        given[uid].append(household_id)
    # Not synchronised with the households the import holds in the session: the default would
    # test every one of them against each statement (a city's 100,000 × 200 statements).
    for uid, ids in given.items():
        for start in range(0, len(ids), 500):
            await session.execute(update(Household).where(Household.id.in_(ids[start:start + 500]))
                                  .values(volunteer_id=uid).execution_options(synchronize_session=False))
    over = sum(1 for uid in given if load[uid] > VOLUNTEER_LOAD)
    if over:
        warnings.append(ErrorMessage(OVERLOADED, {"count": over, "load": VOLUNTEER_LOAD}))
    return sum(len(ids) for ids in given.values())
