"""How many of what: Huế's wards and communes (real ones, from `vietnam-provinces`), the
residential groups or villages below each with their households, and the volunteers who look
after them. Ids are given later (`assign_ids`), once the database says which are free."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

from vietnam_provinces import VietNamDivisionType, Ward

from bot.seed_synthetic.draws import Draws, Ids

PROVINCE_CODE = 46
CITY_CODE = "hue"
HOUSEHOLDS_PER_WARD = 2_500
HOUSEHOLDS_PER_VILLAGE = 180
LOAD, MAX_LOAD = 20, 25  # "1+20": households per volunteer
DIVISION_LEVELS = {VietNamDivisionType.PHUONG: "ward", VietNamDivisionType.XA: "commune",
                   VietNamDivisionType.DAC_KHU: "special_zone"}


@dataclass
class Village:
    code: str
    name: str
    households: int
    id: int = 0


@dataclass
class WardPlan:
    code: str
    slug: str
    name: str
    level: str  # ward | commune | special_zone
    official_code: str
    households: int
    villages: list[Village] = field(default_factory=list)
    volunteers: list[int] = field(default_factory=list)  # user ids (after assign_ids)
    assignment: list[int | None] = field(default_factory=list)  # per household: index in volunteers
    target_households: int | None = None
    target_digital_ready: int | None = None
    id: int = 0
    leader_id: int = 0


@dataclass
class CityPlan:
    households: int
    wards: list[WardPlan]
    requesters: dict[int, int] = field(default_factory=dict)  # household number -> user id
    city_id: int = 0
    admin_id: int = 0


def plan_city(draws: Draws, households: int) -> CityPlan:
    """The wards (all 40 from about 100,000 households, fewer for a smaller N, at least 2 from
    50), their villages of about 180 households, targets and volunteers."""
    rng = draws.rng
    every = sorted((w for w in Ward.iter_all() if int(w.province_code) == PROVINCE_CODE),
                   key=lambda w: int(w.code))
    wanted = 1 if households < 50 else min(len(every), max(2, math.ceil(households / HOUSEHOLDS_PER_WARD)))
    if wanted < len(every):
        every = sorted(rng.sample(every, wanted), key=lambda w: int(w.code))
    # Wards (phường) are towns and more populous; communes (xã) are rural.
    urban = [w.division_type == VietNamDivisionType.PHUONG for w in every]
    sizes = split(households, [rng.uniform(1.0, 1.6) if u else rng.uniform(0.5, 1.0) for u in urban])
    least_villages = 2 if households >= 50 else 1
    wards = []
    for ward, is_urban, size in zip(every, urban, sizes, strict=True):
        kind = ward.division_type.value  # "phường", "xã", "đặc khu": the name's first word(s)
        bare = ward.name[len(kind) + 1:] if ward.name.lower().startswith(kind + " ") else ward.name
        ward_slug = slug(bare)
        code = f"{CITY_CODE}.{ward_slug}"
        level = DIVISION_LEVELS.get(ward.division_type, "commune")
        plan = WardPlan(code, ward_slug, ward.name, level, str(int(ward.code)), size)
        count = max(1, min(size, max(least_villages, round(size / HOUSEHOLDS_PER_VILLAGE))))
        village_sizes = split(size, [rng.uniform(0.6, 1.4) for _ in range(count)])
        for number, village_households in enumerate(village_sizes, 1):
            short, label = ("to", "Tổ dân phố") if is_urban else ("thon", "Thôn")
            plan.villages.append(Village(f"{code}.{short}-{number}", f"{label} {number}", village_households))
        plan.target_households = max(100, math.ceil(size * 1.05 / 100) * 100)
        if rng.random() < 0.7:
            plan.target_digital_ready = round(plan.target_households * 0.6)
        _plan_volunteers(draws, plan)
        wards.append(plan)
    return CityPlan(households, wards)


def _plan_volunteers(draws: Draws, ward: WardPlan) -> None:
    """Who looks after which household of the ward: neighbouring households in blocks of about
    20, a few volunteers with 22 to 25, about 3% of the households nobody's yet."""
    rng = draws.rng
    unassigned = [rng.random() < 0.03 for _ in range(ward.households)]
    assigned = ward.households - sum(unassigned)
    count = max(1, round(assigned / LOAD), math.ceil(assigned / (MAX_LOAD - 2)))
    loads = split(assigned, [1.0] * count)
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


def assign_ids(draws: Draws, plan: CityPlan, ids: Ids) -> None:
    """Give the plan's areas and staff their primary keys, and pick the few residents who use
    the bot themselves (each asked for a visit)."""
    plan.city_id = ids.take("areas")
    plan.admin_id = ids.take("users")
    for ward in plan.wards:
        ward.id = ids.take("areas")
        for village in ward.villages:
            village.id = ids.take("areas")
        ward.volunteers = [ids.take("users") for _ in ward.volunteers]
        ward.leader_id = ids.take("users")
    n = plan.households
    count = min(50, max(3, n // 2000)) if n >= 10 else 0
    chosen = sorted(draws.rng.sample(range(n), count))
    plan.requesters = {number: ids.take("users") for number in chosen}


def slug(name: str) -> str:
    """ASCII, lower case, hyphens: "Chân Mây – Lăng Cô" -> "chan-may-lang-co"."""
    folded = unicodedata.normalize("NFD", name.replace("đ", "d").replace("Đ", "D"))
    ascii_text = "".join(c for c in folded if not unicodedata.combining(c)).lower()
    return "-".join("".join(c if c.isalnum() else " " for c in ascii_text).split())


def split(total: int, weights: Sequence[float]) -> list[int]:
    """`total` split in proportion to `weights` (largest remainders: the parts sum to `total`)."""
    whole = sum(weights)
    exact = [total * w / whole for w in weights]
    parts = [math.floor(x) for x in exact]
    for i in sorted(range(len(weights)), key=lambda i: (parts[i] - exact[i], i))[: total - sum(parts)]:
        parts[i] += 1
    return parts
