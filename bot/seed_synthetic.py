"""`gocua seed synthetic --households N [--seed S]`: a deterministic city of synthetic data.

Why: benchmarks, /stats, /export and the leaders' charts must be tried at city scale (100,000
households, about 2,000,000 step records) on data shaped like a real campaign, and nobody's
personal data may be used for it.

What it writes, under the real area tree of Huế (province code 46, area code `hue`; the demo
data lives under `danang`, so both fit in one database):
- the city; its real wards and communes from the `vietnam-provinces` package (all 40 from about
  100,000 households, fewer for a smaller N, at least 2 from 50), with targets; below each,
  numbered residential groups ("Tổ dân phố 3", `hue.<ward>.to-3`) or villages ("Thôn 5",
  `hue.<commune>.thon-5`) of about 180 households;
- users, each with a `synthetic` identity: volunteers (one per about 20 households, a volunteer
  membership on a ward), one leader per ward, one admin on the city, a few residents who asked
  for a visit;
- households (`HUE-0000123`, addresses, a phone for 60%), about 3 residents each (Vietnamese
  names, birth years, for most adults a masked citizen ID such as `0460******34`, never a full
  number; the digital-ready flag for one member in about 60% of households);
- runs of the seven shipped procedures and their step records for about 80% of households,
  walked along each flow's real steps (choices, branches, skips, Problems with the flow's own
  reasons, a few retries after a block) and left completed (60%), in progress (20%), blocked
  (12%) or abandoned (8%), over the 16 weeks before `now` with activity growing week by week.
  Run states have the engine's shape, so a volunteer can resume a synthetic run; each
  household's `last_step_at` is the time of its latest record;
- a few unanswered FAQ questions and visit requests.

The same (households, seed, date of `now`) always gives the same rows, on SQLite and on
PostgreSQL. They are generated batch by batch (memory stays bounded) with primary keys assigned
here (no RETURNING), and go in with SQLAlchemy Core bulk inserts (on PostgreSQL with COPY), all
in one transaction: a failed seed leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import unicodedata
from bisect import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, func, insert, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from vietnam_provinces import Province, ProvinceCode, VietNamDivisionType, Ward

from conversations.faq_match import normalize
from conversations.flow_model import END, Flow, FlowRegistry, Option, Step, TaskStep
from conversations.state import RunStatus, StepOutcome
from db.models import (
    Area,
    FaqMiss,
    FlowRun,
    FlowVersion,
    Household,
    Identity,
    Membership,
    Resident,
    StepRecord,
    SupportRequest,
    User,
)

if TYPE_CHECKING:
    from db.engine import Database


PROVINCE_CODE = 46
CITY_CODE = "hue"
CHANNEL = "synthetic"
CITIZEN_PROVINCE = "046"  # the first three digits of a citizen ID issued in Huế
HOUSEHOLD_PREFIX = "HUE-"
WINDOW_DAYS = 16 * 7  # all activity lies in the 16 weeks before `now`
VIETNAM = timedelta(hours=7)  # local time is UTC+7, no daylight saving
HOUSEHOLDS_PER_WARD = 2_500
HOUSEHOLDS_PER_VILLAGE = 180
LOAD, MAX_LOAD = 20, 25  # "1+20": households per volunteer
CHUNK_HOUSEHOLDS = 2_000  # households generated (with their rows) before a round of inserts
ROW_BATCH = 10_000  # rows per INSERT executemany
SQLITE_CACHE_SIZE = -262_144  # KiB (256 MiB) of page cache while seeding, on SQLite
MAX_WALK = 80  # steps walked in one run at most (a guard; shipped flows are far shorter)
MIN_BIRTH_YEAR = 1935
DIGITAL_READY_ALREADY = 0.5  # households where a younger adult could use e-services before any run

DIVISION_LEVELS = {VietNamDivisionType.PHUONG: "ward", VietNamDivisionType.XA: "commune",
                   VietNamDivisionType.DAC_KHU: "special_zone"}
FLOW_ORDER = ("vneid", "smartphone_skills", "birth_registration", "social_pension",
              "residence_confirmation", "public_service_account", "digital_signature")
STATUSES = (RunStatus.COMPLETED, RunStatus.ACTIVE, RunStatus.BLOCKED, RunStatus.ABANDONED)
STATUS_WEIGHTS = (60, 20, 12, 8)
RUN_COUNTS = (1, 2, 3, 4, 5, 6)  # runs per reached household
RUN_COUNT_WEIGHTS = (6, 12, 18, 24, 22, 18)
HOUSEHOLD_SIZES = (1, 2, 3, 4, 5, 6)
HOUSEHOLD_SIZE_WEIGHTS = (14, 25, 27, 19, 10, 5)  # mean 3.0
_STATUS_CUMULATIVE = list(accumulate(STATUS_WEIGHTS))
_RUN_COUNT_CUMULATIVE = list(accumulate(RUN_COUNT_WEIGHTS))
_SIZE_CUMULATIVE = list(accumulate(HOUSEHOLD_SIZE_WEIGHTS))
# How volunteers answer choices, by (flow, step): option id -> weight (others: the first option
# twice as often as each of the rest).
CHOICE_WEIGHTS: dict[tuple[str, str], dict[str, float]] = {
    ("vneid", "has_chip"): {"yes": 85, "no": 15},
    ("vneid", "has_nfc"): {"nfc": 55, "no_nfc": 45},
    ("vneid", "level2_offer"): {"now": 45, "later": 55},
    ("birth_registration", "account"): {"vneid": 55, "portal": 30, "none": 15},
    ("social_pension", "household"): {"poor": 40, "other": 60},
    ("social_pension", "pension_check"): {"none": 70, "lower": 15, "higher": 15},
    ("residence_confirmation", "channel"): {"vneid": 50, "portal": 20, "police": 30},
    ("digital_signature", "where"): {"vneid": 60, "provider": 40},
}

FAMILY_NAMES = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi",
                "Đỗ", "Hồ", "Ngô", "Dương", "Lý", "Tôn Thất", "Nguyễn Phúc", "Trương", "Đoàn")
FAMILY_WEIGHTS = (36, 11, 9, 7, 5, 5, 4.5, 2, 3, 2, 2, 1.5, 1.5, 1.3, 1, 0.5, 1, 0.8, 1.2, 1)
_FAMILY_CUMULATIVE = list(accumulate(FAMILY_WEIGHTS))
MIDDLE_MALE = ("Văn", "Hữu", "Đức", "Minh", "Quang", "Công", "Thanh", "Ngọc", "Xuân", "Đình")
MIDDLE_FEMALE = ("Thị", "Thị", "Thị", "Ngọc", "Thu", "Thanh", "Bảo", "Kim", "Mỹ", "Diệu")
GIVEN_MALE = ("An", "Bình", "Cường", "Dũng", "Hùng", "Hải", "Hiếu", "Huy", "Khoa", "Long", "Minh", "Nam",
              "Phúc", "Quân", "Sơn", "Tài", "Thắng", "Toàn", "Trung", "Tuấn", "Việt", "Vinh", "Phong",
              "Lộc", "Đạt", "Hoàng", "Nhân", "Khánh", "Bảo", "Tín")
GIVEN_FEMALE = ("Anh", "Châu", "Dung", "Giang", "Hà", "Hạnh", "Hằng", "Hoa", "Hương", "Lan", "Linh",
                "Mai", "My", "Nga", "Ngân", "Nhung", "Oanh", "Phương", "Quỳnh", "Thảo", "Trang", "Trâm",
                "Tuyết", "Uyên", "Vân", "Xuân", "Yến", "Thủy", "Hiền", "Nhi")
STREETS = ("Lê Lợi", "Hùng Vương", "Trần Hưng Đạo", "Nguyễn Huệ", "Bà Triệu", "Điện Biên Phủ", "Lê Duẩn",
           "Chi Lăng", "Phan Đình Phùng", "Nguyễn Trãi", "Kim Long", "Đặng Thái Thân", "Mai Thúc Loan",
           "Ngự Bình", "Phạm Văn Đồng", "Tố Hữu", "An Dương Vương", "Trường Chinh", "Nguyễn Lộ Trạch",
           "Hàn Mặc Tử", "Lý Nam Đế", "Nguyễn Sinh Cung", "Tăng Bạt Hổ", "Nhật Lệ", "Đoàn Thị Điểm",
           "Lê Thánh Tôn", "Ngô Đức Kế", "Huỳnh Thúc Kháng", "Nguyễn Chí Thanh", "Minh Mạng", "Tự Đức",
           "Bùi Thị Xuân", "Lê Ngô Cát", "Thanh Hải")
LANDMARKS = ("nhà văn hóa", "chợ", "trường tiểu học", "đình làng", "trạm y tế", "chùa", "cầu",
             "bến đò", "sân bóng", "cây xăng")
MOBILE_PREFIXES = ("32", "33", "34", "35", "36", "37", "38", "39", "56", "58", "59", "70", "76", "77",
                   "78", "79", "81", "82", "83", "84", "85", "86", "88", "89", "90", "91", "93", "94",
                   "96", "97", "98")
MISS_QUESTIONS = (
    "lam the bhyt cho con o dau", "gia han the bao hiem y te online", "dang ky ket hon can giay to gi",
    "xin giay xac nhan tinh trang hon nhan", "nop thue dat online the nao", "mat the can cuoc thi lam sao",
    "dang ky tam tru cho nguoi thue tro", "doi ten tren so do", "tien dien thang nay bao nhieu",
    "xin tro cap that nghiep o dau", "cap ban sao giay khai sinh", "dang ky xe may moi mua",
    "tra cuu phat nguoi", "lam ho chieu online co duoc khong", "doi giay phep lai xe het han",
    "chuyen truong cho con can gi", "xin so ho ngheo", "dang ky hien mau",
)
REQUEST_QUESTIONS = (
    "Nhờ cài VNeID giúp bố mẹ tôi", "Tôi quên mật khẩu VNeID", "Cần hỗ trợ làm khai sinh cho cháu",
    "Hỏi về trợ cấp cho người cao tuổi", "Nhờ hướng dẫn nộp hồ sơ trên cổng dịch vụ công",
    "Điện thoại không nhận được mã OTP", "Xin xác nhận cư trú để nộp hồ sơ cho con đi học",
)



Rows = list[dict[str, Any]]
Batch = list[tuple[Any, Rows]]  # (table, rows) in an order the foreign keys accept


@dataclass(frozen=True)
class SyntheticSummary:
    """What `seed_synthetic` wrote (the CLI prints it)."""

    city_code: str
    areas: int
    volunteers: int
    leaders: int
    households: int
    residents: int
    runs: int
    step_records: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 2)
        return data


class SeedError(Exception):
    """The synthetic data cannot be written; the message is one sentence for the user."""


async def seed_synthetic(
    db: Database, households: int, *, seed: int = 1, now: datetime, flows: FlowRegistry
) -> SyntheticSummary:
    """Write `households` synthetic households of Huế and everything around them (see the module
    docstring) in one transaction. SeedError if they cannot be written; then nothing is."""
    started = time.perf_counter()
    if isinstance(households, bool) or not isinstance(households, int) or households < 1:
        raise SeedError(f"the number of households must be a whole number of at least 1, not {households!r}")
    if now.tzinfo is None or now.utcoffset() is None:
        raise SeedError("the anchor time must be timezone-aware (UTC)")
    loaded = {flow_id: flows.latest(flow_id) for flow_id in FLOW_ORDER if flow_id in flows}
    if not loaded:
        raise SeedError("none of the procedures " + ", ".join(FLOW_ORDER) + " is loaded")
    generator = _Generator(households, seed, now.astimezone(UTC).date(), loaded)
    async with db.transaction() as session:
        await _check_empty(session)
        dialect = session.get_bind().dialect.name
        if dialect == "sqlite":
            # The indexes of two million step records fit in a larger page cache: about 20%
            # faster. The connection is the process's writer connection: put it back after.
            cache_size = await session.scalar(text("PRAGMA cache_size"))
            await session.execute(text(f"PRAGMA cache_size={SQLITE_CACHE_SIZE}"))
        try:
            generator.start(await _next_ids(session))
            await _insert_all(session, generator.batches(), postgres=dialect == "postgresql")
        finally:
            if dialect == "sqlite":
                await session.execute(text(f"PRAGMA cache_size={int(cache_size)}"))
        await _store_flow_versions(session, loaded.values(), now)
        if dialect == "postgresql":
            for name in generator.filled:  # explicit ids do not move the sequences
                await session.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))"
                ))
    counts = generator.counts
    return SyntheticSummary(
        city_code=CITY_CODE, areas=counts["areas"], volunteers=counts["volunteers"],
        leaders=counts["leaders"], households=counts["households"], residents=counts["residents"],
        runs=counts["runs"], step_records=counts["step_records"], seconds=time.perf_counter() - started,
    )


# Database side --------------------------------------------------------------------------------

TABLES: tuple[Any, ...] = (Area, User, Identity, Membership, Household, Resident, FlowRun, StepRecord,
                           SupportRequest, FaqMiss)


async def _check_empty(session: AsyncSession) -> None:
    in_city = or_(Area.code == CITY_CODE, Area.code.like(CITY_CODE + ".%"))
    existing = await session.scalar(
        select(func.count()).select_from(Household).join(Area, Area.id == Household.area_id).where(in_city)
    )
    if existing:
        raise SeedError(f"the city '{CITY_CODE}' already has synthetic data ({existing} households); "
                        "seed a fresh database instead")
    areas = await session.scalar(select(func.count()).select_from(Area).where(in_city))
    if areas:
        raise SeedError(f"the city '{CITY_CODE}' already has {areas} areas, without households; "
                        "seed a fresh database instead")
    codes = await session.scalar(
        select(func.count()).select_from(Household).where(Household.code.like(HOUSEHOLD_PREFIX + "%"))
    )
    users = await session.scalar(
        select(func.count()).select_from(Identity).where(Identity.channel == CHANNEL)
    )
    if codes or users:
        raise SeedError(f"the database already has synthetic data elsewhere ({codes} household codes "
                        f"{HOUSEHOLD_PREFIX}…, {users} synthetic users); seed a fresh database instead")


async def _insert_all(session: AsyncSession, batches: Iterator[Batch], *, postgres: bool) -> None:
    """Write every batch: SQLAlchemy Core INSERTs (executemany, ROW_BATCH rows at a time).

    PostgreSQL works in a server process of its own: there the rows go in with COPY, and the next
    batch is made in a worker thread while the server stores this one (SQLite works in this
    process: nothing to overlap)."""
    if not postgres:
        for batch in batches:
            for table, rows in batch:
                for first in range(0, len(rows), ROW_BATCH):
                    await session.execute(insert(table), rows[first:first + ROW_BATCH])
        return
    upcoming = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
    try:
        while (ready := await upcoming) is not None:
            upcoming = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
            await _copy(session, ready)
    finally:
        await asyncio.gather(upcoming, return_exceptions=True)  # let the worker finish its batch


async def _copy(session: AsyncSession, batch: Batch) -> None:
    """PostgreSQL: COPY the rows in (asyncpg's binary COPY on the session's connection, inside its
    transaction). For two million step records it takes a third less time than INSERT
    executemany. The values need no conversion by SQLAlchemy: datetimes are aware UTC and JSON is
    serialised as the JSON type does it."""
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None
    for table, rows in batch:
        if not rows:
            continue
        columns = list(rows[0])
        as_json = {column.name for column in table.c if isinstance(column.type, JSON)}
        records = [tuple(json.dumps(row[c]) if c in as_json else row[c] for c in columns) for row in rows]
        await driver.copy_records_to_table(table.name, records=records, columns=columns)


async def _next_ids(session: AsyncSession) -> dict[str, int]:
    """The first free primary key of every table filled here."""
    return {
        model.__tablename__: int(await session.scalar(select(func.max(model.id))) or 0) + 1
        for model in TABLES
    }


async def _store_flow_versions(session: AsyncSession, flows: Iterable[Flow], now: datetime) -> None:
    """Keep the YAML of the versions the runs are pinned to (start-up does the same), so that the
    runs can be resumed after the files have moved on to a newer version."""
    for flow in flows:
        if flow.source and await session.get(FlowVersion, (flow.id, flow.version)) is None:
            session.add(FlowVersion(flow_id=flow.id, version=flow.version, source=flow.source, loaded_at=now))
    await session.flush()


# Pure helpers -----------------------------------------------------------------------------------

def slug(name: str) -> str:
    """ASCII, lower case, hyphens: "Chân Mây – Lăng Cô" -> "chan-may-lang-co"."""
    folded = unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
    ascii_text = "".join(c for c in folded if not unicodedata.combining(c)).lower()
    return "-".join("".join(c if c.isalnum() else " " for c in ascii_text).split())


def _split(total: int, weights: Sequence[float]) -> list[int]:
    """`total` split in proportion to `weights` (largest remainders: the parts sum to `total`)."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    parts = [math.floor(x) for x in exact]
    for i in sorted(range(len(weights)), key=lambda i: (parts[i] - exact[i], i))[: total - sum(parts)]:
        parts[i] += 1
    return parts


def _default_input(validator: str | None, today: date) -> Any:
    """What an input step of some future flow is answered with (never anything ID-like)."""
    if validator == "date":
        return (today - timedelta(days=30)).isoformat()
    if validator == "year":
        return 1960
    if validator == "number":
        return 1
    return None


@dataclass
class _Village:
    code: str
    name: str
    households: int
    id: int = 0


@dataclass
class _Ward:
    code: str
    slug: str
    name: str
    level: str  # ward | commune | special_zone
    official_code: str
    households: int
    villages: list[_Village] = field(default_factory=list)
    volunteers: list[int] = field(default_factory=list)  # user ids (after start())
    assignment: list[int | None] = field(default_factory=list)  # per household: index in volunteers
    target_households: int | None = None
    target_digital_ready: int | None = None
    id: int = 0
    leader_id: int = 0


@dataclass
class _Person:
    name: str
    female: bool
    birth_year: int
    masked: str | None  # masked citizen ID
    ready: bool = False  # digital-ready
    trained: bool = False  # had a run of a procedure that marks digital-ready (smartphone_skills)


class _FlowPlan:
    """What the generator needs to know about one flow, looked up once."""

    def __init__(self, flow: Flow) -> None:
        self.flow = flow
        # Where a Problem (with a reason from the flow's list) stops the run as blocked.
        self.blocking = frozenset(s.id for s in flow.steps if s.kind == "task" and s.blocking and s.reasons)
        self.marks = frozenset(s.id for s in flow.steps if s.mark_digital_ready)
        # Minutes until the next answer after each step: (least, spread).
        self.pause = {s.id: (2, 6) if s.kind == "task" else (1, 2) for s in flow.steps}
        # The first reasons of a step's list are the commonest (cumulative weights 4, 3, 2, 1, 1 ...).
        self.reason_weights = {
            s.id: list(accumulate(max(1, 4 - i) for i in range(len(s.reasons))))
            for s in flow.steps if isinstance(s, TaskStep)
        }


# One answered step of a walk: (step id, attempt, outcome, reason, value, variable saved or None)
_Entry = tuple[str, int, str, str | None, str | None, tuple[str, Any] | None]
_Record = tuple[str, int, str, str | None, str | None]
_REMOVED = object()  # a skipped optional input removes its variable
_MINUTES_KEPT = 48 * 60
# Columns that copy the household's area (and the run's procedure) onto runs and step records
# for the reports, where the schema has them.
_RUN_COPIES = frozenset({"area_id"} & set(FlowRun.__table__.c.keys()))
_RECORD_COPIES = frozenset({"flow_id", "area_id"} & set(StepRecord.__table__.c.keys()))


class _Generator:
    """Every row, in a fixed order, from one random stream seeded by (seed, N, anchor date)."""

    def __init__(self, households: int, seed: int, anchor: date, flows: dict[str, Flow]) -> None:
        self.n = households
        self.anchor = anchor
        self.year = anchor.year
        self.plans = {flow_id: _FlowPlan(flow) for flow_id, flow in flows.items()}
        self.rng = random.Random(f"gocua-synthetic/{seed}/{households}/{anchor.isoformat()}")
        self.random = self.rng.random
        self.first_day = anchor - timedelta(days=WINDOW_DAYS)  # the local date of day 0
        day0 = datetime(self.first_day.year, self.first_day.month, self.first_day.day, tzinfo=UTC) - VIETNAM
        self.window_start = day0
        self.days = [day0 + timedelta(days=d) for d in range(WINDOW_DAYS)]
        self.minutes = [timedelta(minutes=m) for m in range(_MINUTES_KEPT)]
        self.max_birth_year = self.first_day.year  # nobody is born after the window opens
        self.counts = dict.fromkeys(
            ("areas", "volunteers", "leaders", "households", "residents", "runs", "step_records"), 0)
        self.filled: list[str] = []
        self.ids: dict[str, int] = {}
        self.record_no = 0
        self.wards = self._plan_wards()

    # -- small tools ------------------------------------------------------------------------------

    def pick(self, population: Sequence[Any], cumulative: Sequence[float]) -> Any:
        """One of `population`, by cumulative weights (as random.choices, a little faster)."""
        return population[bisect(cumulative, self.random() * cumulative[-1])]

    def between(self, least: int, most: int) -> int:
        """A whole number from least to most, both included."""
        return least + int(self.random() * (most - least + 1))

    def take(self, table: str) -> int:
        value = self.ids[table]
        self.ids[table] = value + 1
        return value

    def moment(self, day: int, minutes: int) -> datetime:
        """Day `day` of the window (local calendar), `minutes` after local midnight, in UTC."""
        offset = self.minutes[minutes] if 0 <= minutes < _MINUTES_KEPT else timedelta(minutes=minutes)
        return self.days[day] + offset

    def campaign_day(self) -> int:
        """A day of the window for a visit: a campaign picking up, about six times as many
        visits in the last week as in the first."""
        if self.random() < 0.25:
            return int(self.random() * WINDOW_DAYS)
        return min(WINDOW_DAYS - 1, int(WINDOW_DAYS * math.sqrt(self.random())))

    def visit_start(self) -> int:
        """Minutes after midnight when a visit starts: 07:30 to 18:30 local time."""
        return 7 * 60 + 30 + int(self.random() * 11 * 60)

    # -- the plan: areas, volunteers, who looks after which household -----------------------------

    def _plan_wards(self) -> list[_Ward]:
        rng = self.rng
        every = sorted((w for w in Ward.iter_all() if int(w.province_code) == PROVINCE_CODE),
                       key=lambda w: int(w.code))
        wanted = 1 if self.n < 50 else min(len(every), max(2, math.ceil(self.n / HOUSEHOLDS_PER_WARD)))
        if wanted < len(every):
            every = sorted(rng.sample(every, wanted), key=lambda w: int(w.code))
        # Wards (phường) are towns and more populous; communes (xã) are rural.
        urban = [w.division_type == VietNamDivisionType.PHUONG for w in every]
        sizes = _split(self.n, [rng.uniform(1.0, 1.6) if u else rng.uniform(0.5, 1.0) for u in urban])
        least_villages = 2 if self.n >= 50 else 1
        wards = []
        for ward, is_urban, size in zip(every, urban, sizes, strict=True):
            kind = ward.division_type.value  # "phường", "xã", "đặc khu": the name's first word(s)
            bare = ward.name[len(kind) + 1:] if ward.name.lower().startswith(kind + " ") else ward.name
            ward_slug = slug(bare)
            code = f"{CITY_CODE}.{ward_slug}"
            level = DIVISION_LEVELS.get(ward.division_type, "commune")
            plan = _Ward(code, ward_slug, ward.name, level, str(int(ward.code)), size)
            count = max(1, min(size, max(least_villages, round(size / HOUSEHOLDS_PER_VILLAGE))))
            village_sizes = _split(size, [rng.uniform(0.6, 1.4) for _ in range(count)])
            for number, households in enumerate(village_sizes, 1):
                if is_urban:
                    plan.villages.append(_Village(f"{code}.to-{number}", f"Tổ dân phố {number}", households))
                else:
                    plan.villages.append(_Village(f"{code}.thon-{number}", f"Thôn {number}", households))
            plan.target_households = max(100, math.ceil(size * 1.05 / 100) * 100)
            if rng.random() < 0.7:
                plan.target_digital_ready = round(plan.target_households * 0.6)
            self._plan_volunteers(plan)
            wards.append(plan)
        return wards

    def _plan_volunteers(self, ward: _Ward) -> None:
        """Who looks after which household of the ward: neighbouring households in blocks of about
        20, a few volunteers with 22 to 25, about 3% of the households nobody's yet."""
        rng = self.rng
        unassigned = [rng.random() < 0.03 for _ in range(ward.households)]
        assigned = ward.households - sum(unassigned)
        count = max(1, round(assigned / LOAD), math.ceil(assigned / (MAX_LOAD - 2)))
        loads = _split(assigned, [1.0] * count)
        for _ in range(count // 6):
            busy = rng.randrange(count)
            for _ in range(rng.randint(2, 4)):
                donor = rng.randrange(count)
                if donor != busy and loads[donor] > LOAD - 4 and loads[busy] < MAX_LOAD:
                    loads[donor] -= 1
                    loads[busy] += 1
        ward.volunteers = [0] * count
        owners = iter([i for i, load in enumerate(loads) for _ in range(load)])
        ward.assignment = [None if nobody else next(owners) for nobody in unassigned]

    def start(self, ids: dict[str, int]) -> None:
        """Take the primary keys the plan needs from the first free ones."""
        self.ids = dict(ids)
        self.city_id = self.take("areas")
        self.admin_id = self.take("users")
        for ward in self.wards:
            ward.id = self.take("areas")
            for village in ward.villages:
                village.id = self.take("areas")
            ward.volunteers = [self.take("users") for _ in ward.volunteers]
            ward.leader_id = self.take("users")
        # A few residents use the bot themselves: each asked for a visit.
        count = min(50, max(3, self.n // 2000)) if self.n >= 10 else 0
        chosen = sorted(self.rng.sample(range(self.n), count))
        self.requesters = {number: self.take("users") for number in chosen}

    def batches(self) -> Iterator[Batch]:
        yield self._people_and_places()
        yield from self._household_batches()
        yield self._faq_misses()

    # -- areas and users ---------------------------------------------------------------------------

    def _people_and_places(self) -> Batch:
        city_target = math.ceil(self.n * 1.05 / 1000) * 1000
        city_name = Province.from_code(ProvinceCode(PROVINCE_CODE)).name
        areas: Rows = [{
            "id": self.city_id, "code": CITY_CODE, "name": city_name, "level": "city", "parent_id": None,
            "official_code": str(PROVINCE_CODE),
            "target_households": city_target, "target_digital_ready": round(city_target * 0.6),
        }]
        users: Rows = []
        identities: Rows = []
        memberships: Rows = []

        def user(user_id: int, name: str, external_id: str, role: str | None, area_id: int,
                 joined: datetime) -> None:
            users.append({"id": user_id, "display_name": name, "locale": "vi", "created_at": joined})
            identities.append({"id": self.take("identities"), "user_id": user_id, "channel": CHANNEL,
                               "external_id": external_id, "created_at": joined})
            if role is not None:
                memberships.append({"id": self.take("memberships"), "user_id": user_id, "area_id": area_id,
                                    "role": role, "granted_at": joined, "invite_code": None})

        early = self.window_start - timedelta(days=14)
        user(self.admin_id, "Quản trị Huế", "admin-hue", "admin", self.city_id, early)
        volunteers = 0
        for ward in self.wards:
            areas.append({
                "id": ward.id, "code": ward.code, "name": ward.name, "level": ward.level,
                "parent_id": self.city_id, "official_code": ward.official_code,
                "target_households": ward.target_households,
                "target_digital_ready": ward.target_digital_ready,
            })
            areas += [{
                "id": village.id, "code": village.code, "name": village.name, "level": "village",
                "parent_id": ward.id, "official_code": None, "target_households": None,
                "target_digital_ready": None,
            } for village in ward.villages]
            user(ward.leader_id, self.name(self.random() < 0.5)[0], f"leader-{ward.slug}", "leader", ward.id,
                 early)
            for user_id in ward.volunteers:
                volunteers += 1
                joined = early + timedelta(days=self.between(4, 20), minutes=self.between(0, 600))
                name = self.name(self.random() < 0.55)[0]
                user(user_id, name, f"vol-{volunteers:06d}", "volunteer", ward.id, joined)
        for number, user_id in enumerate(self.requesters.values(), 1):
            user(user_id, self.name(self.random() < 0.5)[0], f"resident-{number:06d}", None, 0, early)
        self.counts.update(areas=len(areas), volunteers=volunteers, leaders=len(self.wards))
        self.filled += ["areas", "users", "identities", "memberships"]
        return [(Area.__table__, areas), (User.__table__, users), (Identity.__table__, identities),
                (Membership.__table__, memberships)]

    # -- people ------------------------------------------------------------------------------------

    def name(self, female: bool, family: str | None = None) -> tuple[str, str]:
        """(full name, family name)."""
        rng = self.rng
        family = family or self.pick(FAMILY_NAMES, _FAMILY_CUMULATIVE)
        if female:
            return f"{family} {rng.choice(MIDDLE_FEMALE)} {rng.choice(GIVEN_FEMALE)}", family
        return f"{family} {rng.choice(MIDDLE_MALE)} {rng.choice(GIVEN_MALE)}", family

    def person(self, female: bool, birth_year: int, family: str | None = None) -> tuple[_Person, str]:
        birth_year = max(MIN_BIRTH_YEAR, min(self.max_birth_year, birth_year))
        name, family = self.name(female, family)
        masked = None
        if self.year - birth_year >= 14 and self.random() < 0.7:
            # Digit 4 is gender and century: 0/1 men/women born in the 1900s, 2/3 in the 2000s.
            century = 0 if birth_year < 2000 else 2
            masked = f"{CITIZEN_PROVINCE}{century + female}******{int(self.random() * 100):02d}"
        return _Person(name, female, birth_year, masked), family

    def members(self) -> list[_Person]:
        """A household: its head, often a spouse, sometimes an old parent, children or grandchildren."""
        rng = self.rng
        size = self.pick(HOUSEHOLD_SIZES, _SIZE_CUMULATIVE)
        head_female = self.random() < 0.3
        head_age = int(rng.triangular(22, 92, 48))
        head_born = self.year - head_age
        head, family = self.person(head_female, head_born)
        members = [head]
        children_family = None if head_female else family
        if size >= 2 and self.random() < 0.85:
            spouse, spouse_family = self.person(not head_female, head_born + self.between(-6, 4))
            members.append(spouse)
            children_family = children_family or spouse_family
        if len(members) < size and head_age < 60 and self.random() < 0.35:
            members.append(self.person(self.random() < 0.65, head_born - self.between(22, 32))[0])
        while len(members) < size:
            grandchild = head_age >= 58 and self.random() < 0.5
            born = head_born + (self.between(44, 66) if grandchild else self.between(20, 42))
            members.append(self.person(self.random() < 0.5, born, children_family or family)[0])
        return members

    def address(self, ward: _Ward, village: _Village) -> str:
        rng = self.rng
        shape = self.random()
        if ward.level == "ward":  # towns: house numbers, alleys (kiệt) and streets
            street = rng.choice(STREETS)
            if shape < 0.5:
                return f"{self.between(1, 120)} kiệt {self.between(1, 250)} {street}"
            if shape < 0.65:
                return f"{self.between(1, 40)}/{self.between(1, 30)} kiệt {self.between(1, 250)} {street}"
            return f"{self.between(1, 400)} {street}"
        if shape < 0.6:
            return f"Nhà số {self.between(1, 250)}, {village.name}"
        if shape < 0.85:
            return f"Xóm {self.between(1, 8)}, {village.name}"
        return f"Gần {rng.choice(LANDMARKS)}, {village.name}"

    # -- households ---------------------------------------------------------------------------------

    def _household_batches(self) -> Iterator[Batch]:
        buffers = _Buffers()
        number = 0
        for ward in self.wards:
            position = 0
            for village in ward.villages:
                for _ in range(village.households):
                    owner = ward.assignment[position]
                    self._household(buffers, number, ward, village,
                                    None if owner is None else ward.volunteers[owner])
                    number += 1
                    position += 1
                    if len(buffers.households) >= CHUNK_HOUSEHOLDS:
                        yield self._flush(buffers)
        self.filled += ["households", "residents", "flow_runs", "step_records", "support_requests"]
        yield self._flush(buffers)

    def _flush(self, buffers: _Buffers) -> Batch:
        """The buffered rows; step records get their ids in time order (SQLite and PostgreSQL then
        add to the recorded_at indexes in order, much faster than at random)."""
        records = sorted(buffers.records, key=lambda r: r["recorded_at"])
        for record in records:
            record["id"] = self.take("step_records")
        batch = [(Household.__table__, buffers.households), (Resident.__table__, buffers.residents),
                 (FlowRun.__table__, buffers.runs), (StepRecord.__table__, records),
                 (SupportRequest.__table__, buffers.requests)]
        buffers.clear()
        return batch

    def _household(self, buffers: _Buffers, number: int, ward: _Ward, village: _Village,
                   volunteer: int | None) -> None:
        household_id = self.take("households")
        members = self.members()
        phone = None
        if self.random() < 0.6:
            phone = f"0{self.rng.choice(MOBILE_PREFIXES)}{int(self.random() * 10_000_000):07d}"
        runs: Rows = []
        first = last = None
        if self.random() < (0.82 if volunteer is not None else 0.3):
            # Nobody's households are sometimes visited all the same, by a volunteer of the ward.
            worker = volunteer if volunteer is not None else self.rng.choice(ward.volunteers)
            first, last = self._runs(buffers, runs, household_id, village.id, members, worker)
        if first is not None:
            created = max(first - timedelta(minutes=self.between(10, 20 * 1440)),
                          self.window_start - timedelta(days=7))
        else:
            created = self.window_start + timedelta(minutes=self.between(-7 * 1440, (WINDOW_DAYS - 2) * 1440))
        self._digital_ready(members)
        requester = self.requesters.get(number)
        buffers.households.append({
            "id": household_id, "code": f"{HOUSEHOLD_PREFIX}{number + 1:07d}", "area_id": village.id,
            "head_name": members[0].name, "address": self.address(ward, village), "phone": phone,
            "volunteer_id": volunteer, "notes": None, "created_at": created, "last_step_at": last,
        })
        resident_ids = []
        for position, member in enumerate(members):
            resident_ids.append(self.take("residents"))
            buffers.residents.append({
                "id": resident_ids[-1], "household_id": household_id, "name": member.name,
                "birth_year": member.birth_year, "citizen_id_masked": member.masked, "citizen_id_hash": None,
                "digital_ready": member.ready, "user_id": requester if position == 0 else None,
                "created_at": created,
            })
        for run in runs:
            run["resident_id"] = resident_ids[run.pop("person")]
        buffers.runs += runs
        if requester is not None:
            self._visit_request(buffers, requester, household_id, village, phone, volunteer, ward, created)
        self.counts["households"] += 1
        self.counts["residents"] += len(members)

    def _digital_ready(self, members: list[_Person]) -> None:
        """About 60% of households have a member who can use e-services on a phone: whoever
        completed smartphone_skills, else often a younger adult who already could."""
        if any(m.ready for m in members):
            return
        young = [m for m in members if 15 <= self.year - m.birth_year <= 50 and not m.trained]
        if young and self.random() < DIGITAL_READY_ALREADY:
            min(young, key=lambda m: abs(self.year - m.birth_year - 28)).ready = True

    def _visit_request(self, buffers: _Buffers, requester: int, household_id: int, village: _Village,
                       phone: str | None, volunteer: int | None, ward: _Ward, created: datetime) -> None:
        asked = max(created, self.window_start) + timedelta(minutes=self.between(60, 30 * 1440))
        asked = min(asked, self.moment(WINDOW_DAYS - 5, 10 * 60))
        status = self.rng.choices(("open", "taken", "closed"), (30, 30, 40))[0]
        taken = closed = None
        if status != "open":
            taken = asked + timedelta(minutes=self.between(5, 600))
        if status == "closed" and taken is not None:
            closed = taken + timedelta(hours=self.between(2, 48))
        buffers.requests.append({
            "id": self.take("support_requests"), "requester_id": requester, "household_id": household_id,
            "area_id": village.id, "question": self.rng.choice(REQUEST_QUESTIONS), "phone": phone,
            "address": None, "status": status, "created_at": asked, "taken_at": taken, "closed_at": closed,
            "volunteer_id": None if status == "open" else volunteer or ward.volunteers[0],
            "close_note": "Đã đến nhà hỗ trợ xong." if closed else None,
        })

    # -- runs ---------------------------------------------------------------------------------------

    def _runs(self, buffers: _Buffers, runs: Rows, household_id: int, area_id: int, members: list[_Person],
              volunteer: int) -> tuple[datetime | None, datetime | None]:
        """The household's runs and their step records; (first run's start, latest record)."""
        chosen = self._choose_runs(members)
        if not chosen:
            return None, None
        # Runs come in visits (often two or three in one); each visit's day is drawn from the
        # campaign's activity curve, then the visits are put in order.
        new_visit = [position == 0 or self.random() < 0.55 for position in range(len(chosen))]
        visit_days = iter(sorted(self.campaign_day() for _ in range(sum(new_visit))))
        day = clock = -1
        first = last = None
        for position, (plan, person) in enumerate(chosen):
            planned = next(visit_days) if new_visit[position] else day
            if planned > day:
                day, clock = planned, self.visit_start()
            else:
                clock += self.between(3, 15)  # the same visit (or the day a retried run ended)
            start = self.moment(day, clock)
            first = first or start
            copies = {"flow_id": plan.flow.id, "area_id": area_id}
            day, clock, ended = self._run(buffers, runs, plan, household_id, person, members[person],
                                          volunteer, day, clock, start, copies)
            if ended is not None:
                last = ended if last is None or ended > last else last
        return first, last

    def _choose_runs(self, members: list[_Person]) -> list[tuple[_FlowPlan, int]]:
        """Up to six (flow, member) pairs that fit the household, in a plausible order."""
        candidates: list[tuple[str, int, float]] = []
        for index, member in enumerate(members):
            age = self.year - member.birth_year
            if age >= 14:
                candidates.append(("vneid", index, 3.0 if age < 80 else 1.2))
            if 14 <= age <= 80:
                candidates.append(("smartphone_skills", index, 2.6))
            if age >= 18:
                candidates.append(("public_service_account", index, 1.0))
                candidates.append(("residence_confirmation", index, 0.7))
            if 18 <= age <= 65:
                candidates.append(("digital_signature", index, 0.45))
            if age >= 75:
                candidates.append(("social_pension", index, 3.0))
            if age <= 5:
                candidates.append(("birth_registration", index, 3.5))
        wanted = self.pick(RUN_COUNTS, _RUN_COUNT_CUMULATIVE)
        # Weighted sampling without replacement (Efraimidis-Spirakis keys), then the usual order.
        keyed = sorted((c for c in candidates if c[0] in self.plans),
                       key=lambda c: -(self.random() ** (1.0 / c[2])))[:wanted]
        keyed.sort(key=lambda c: FLOW_ORDER.index(c[0]) + self.random() * 2.5)
        return [(self.plans[flow_id], index) for flow_id, index, _ in keyed]

    def _inputs(self, member: _Person, today: date) -> dict[str, Any]:
        """What the volunteer types at input steps, by variable name: kept in the run's state for
        its branches, never in step records."""
        first = date(member.birth_year, 1, 1)
        latest = min(date(member.birth_year, 12, 31), today - timedelta(days=3))
        born = first + timedelta(days=self.between(0, max(0, (latest - first).days)))
        return {"birth_date": born.isoformat(), "birth_year": member.birth_year}

    def _walk(self, plan: _FlowPlan, inputs: dict[str, Any], today: date) -> tuple[list[_Entry], bool]:
        """Answer the flow from its first step as a volunteer would if nothing stopped the run:
        (answered steps, whether the walk reached the end). Attempts count visits per step, as in
        the engine."""
        flow = plan.flow
        attempts: dict[str, int] = {}
        variables: dict[str, Any] = {}
        used: dict[str, set[str]] = {}
        entries: list[_Entry] = []
        target = flow.first.id
        for _ in range(MAX_WALK):
            step = flow.step(target)
            while step is not None and step.kind == "branch":
                target = step.next_for(variables, today)
                step = flow.step(target)
            if step is None:
                return entries, target == END
            attempt = attempts[step.id] = attempts.get(step.id, 0) + 1
            saved: tuple[str, Any] | None
            outcome, reason, value, saved = StepOutcome.DONE, None, None, None
            if step.kind == "choice":
                option = self._option(flow.id, step, used.setdefault(step.id, set()))
                value, target = option.id, option.next
                if step.save_as:
                    variables[step.save_as] = option.id
                    saved = (step.save_as, option.id)
            elif step.kind == "input":
                name = step.save_as or step.id
                if step.optional and self.random() < 0.1:
                    outcome, saved = StepOutcome.SKIPPED, (name, _REMOVED)
                    variables.pop(name, None)
                else:
                    variables[name] = inputs.get(name, _default_input(step.validator, today))
                    saved = (name, variables[name])
                target = step.next_for(variables, today)
            elif step.kind == "task":
                draw = self.random()
                target = step.next_for(variables, today)
                if step.reasons and step.on_blocked and draw < 0.1:
                    outcome, reason, target = StepOutcome.BLOCKED, self._reason(plan, step), step.on_blocked
                elif step.reasons and not step.blocking and draw < 0.04:
                    # a problem noted; it goes on
                    outcome, reason = StepOutcome.BLOCKED, self._reason(plan, step)
                elif step.skippable and draw < (0.02 if step.blocking else 0.07):
                    outcome = StepOutcome.SKIPPED
            else:
                target = step.next_for(variables, today)
            entries.append((step.id, attempt, outcome, reason, value, saved))
        return entries, False

    def _option(self, flow_id: str, step: Step, used: set[str]) -> Option:
        """A choice as volunteers tend to answer it; back at a choice, another way than before."""
        options = [o for o in step.options if o.id not in used] or list(step.options)
        weights = CHOICE_WEIGHTS.get((flow_id, step.id), {})
        option = self.rng.choices(options, [weights.get(o.id, 2.0 if o is step.options[0] else 1.0)
                                            for o in options])[0]
        used.add(option.id)
        return option

    def _reason(self, plan: _FlowPlan, step: Step | None) -> str:
        assert step is not None  # a step the walk went through
        return self.pick(step.reasons, plan.reason_weights[step.id])

    def _run(
        self, buffers: _Buffers, runs: Rows, plan: _FlowPlan, household_id: int, person: int,
        member: _Person, volunteer: int, day: int, clock: int, start: datetime, copies: dict[str, Any],
    ) -> tuple[int, int, datetime | None]:
        """One run: how it went, its step records and its row; (day, clock, time of the last record or None).
        `copies`: the values of the columns runs and records copy (area, procedure)."""
        flow = plan.flow
        run_copies = {key: copies[key] for key in _RUN_COPIES}
        record_copies = {key: copies[key] for key in _RECORD_COPIES}
        run_id = self.take("flow_runs")
        today = self.first_day + timedelta(days=day)
        entries, complete = self._walk(plan, self._inputs(member, today), today)
        status = self.pick(STATUSES, _STATUS_CUMULATIVE)
        blocking = [i for i, entry in enumerate(entries) if entry[0] in plan.blocking]
        if status == RunStatus.BLOCKED and not blocking:
            status = RunStatus.ACTIVE
        if status in (RunStatus.ACTIVE, RunStatus.ABANDONED) and len(entries) < 2:
            status = RunStatus.COMPLETED
        if status == RunStatus.COMPLETED and not complete:
            status = RunStatus.ACTIVE

        stop: int | None = None  # where an unfinished run stands: an index in entries
        records: list[_Record] = [entry[:5] for entry in entries]
        if status == RunStatus.BLOCKED:
            stop = self.rng.choice(blocking)
            records[stop:] = [(entries[stop][0], entries[stop][1], StepOutcome.BLOCKED,
                               self._reason(plan, flow.step(entries[stop][0])), None)]
        elif status == RunStatus.ACTIVE:
            stop = self.between(1, len(entries) - 1)
            del records[stop:]
        elif status == RunStatus.ABANDONED:  # /cancel: the run stops at its step, no record is written
            stop = int(self.random() * len(entries))
            del records[stop:]
        attempts: dict[str, int] = {}
        for entry in entries[: len(entries) if stop is None else stop + 1]:
            attempts[entry[0]] = entry[1]

        # A few completed runs were blocked once, then retried ("Retry" reopens the step as a new
        # attempt) on a later visit.
        retry_at: int | None = None
        if status == RunStatus.COMPLETED and blocking and self.random() < 0.06 and day + 1 < WINDOW_DAYS:
            retry_at = self.rng.choice(blocking)
            again = entries[retry_at][0]
            blocked = (again, entries[retry_at][1], StepOutcome.BLOCKED,
                       self._reason(plan, flow.step(again)), None)
            records[retry_at:] = [blocked] + [
                (r[0], r[1] + 1, r[2], r[3], r[4]) if r[0] == again else r for r in records[retry_at:]
            ]
            attempts[again] += 1

        clock += self.between(1, 3)
        moment = start
        pause, random_ = plan.pause, self.random
        append = buffers.records.append
        number = self.record_no
        for position, (step_id, attempt, outcome, reason, value) in enumerate(records):
            if retry_at is not None and position == retry_at + 1:
                day, clock = min(WINDOW_DAYS - 1, day + self.between(1, 10)), self.visit_start()
            moment = self.moment(day, clock)
            number += 1
            append({
                "run_id": run_id, "step_id": step_id, "attempt": attempt, "outcome": outcome,
                "reason": reason, "value": value, "user_id": volunteer, "recorded_at": moment,
                "source_update": f"{CHANNEL}:{number}", **record_copies,
            })
            least, spread = pause[step_id]
            clock += least + int(random_() * spread)
        self.record_no = number

        variables: dict[str, Any] = {}
        for entry in entries[: len(entries) if stop is None else stop]:
            if entry[5] is not None:
                if entry[5][1] is _REMOVED:
                    variables.pop(entry[5][0], None)
                else:
                    variables[entry[5][0]] = entry[5][1]
        answered = len(records)
        current = None if stop is None else entries[stop][0]
        if plan.marks:
            member.trained = True
            if status == RunStatus.COMPLETED and any(
                    r[2] == StepOutcome.DONE and r[0] in plan.marks for r in records):
                member.ready = True
        runs.append({
            "id": run_id, "flow_id": flow.id, "flow_version": flow.version, "household_id": household_id,
            "person": person, "volunteer_id": volunteer, "status": status, "current_step": current,
            "state": {"flow": flow.id, "version": flow.version, "status": status, "step": current,
                      "awaiting": None, "attempts": attempts, "vars": variables, "answered": answered},
            # one state save per answer, plus the start, a reopen, a cancel
            "version": 1 + answered + (retry_at is not None) + (status == RunStatus.ABANDONED),
            "started_at": start, "updated_at": moment,
            "finished_at": moment if status.finished else None, **run_copies,
        })
        self.counts["runs"] += 1
        self.counts["step_records"] += len(records)
        return day, clock, moment if records else None  # the run's latest record, if any

    # -- after the households -------------------------------------------------------------------------

    def _faq_misses(self) -> Batch:
        """Questions residents asked that the FAQ could not answer (typed without diacritics)."""
        misses: Rows = []
        for _ in range(min(60, max(5, self.n // 2000))):
            question = self.rng.choice(MISS_QUESTIONS)
            day = min(WINDOW_DAYS - 1, int(WINDOW_DAYS * math.sqrt(self.random())))
            misses.append({
                "id": self.take("faq_misses"), "question": question,
                "normalized": normalize(question)[:500] or question, "locale": "vi", "kind": "miss",
                "faq_id": None, "user_id": None, "area_id": self.rng.choice(self.wards).id,
                "created_at": self.moment(day, 6 * 60 + int(self.random() * 16 * 60)),
            })
        self.filled.append("faq_misses")
        return [(FaqMiss.__table__, misses)]


class _Buffers:
    """Rows generated and not inserted yet."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.households: Rows = []
        self.residents: Rows = []
        self.runs: Rows = []
        self.records: Rows = []
        self.requests: Rows = []
