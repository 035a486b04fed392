"""The city, row by row: areas and staff from the plan, then household after household (its
members, its runs, a visit request now and then), then a few unanswered FAQ questions. Rows are
made batch by batch, so memory stays bounded, in one fixed order from the one random stream."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from vietnam_provinces import Province, ProvinceCode

from bot.seed_synthetic.bulk import HOUSEHOLD_PREFIX, Batch, Rows
from bot.seed_synthetic.draws import WINDOW_DAYS, Draws, Ids
from bot.seed_synthetic.people import People
from bot.seed_synthetic.plan import (
    CITY_CODE,
    PROVINCE_CODE,
    CityPlan,
    Village,
    WardPlan,
    assign_ids,
    plan_city,
)
from bot.seed_synthetic.runs import CHANNEL, Runs
from conversations.faq_match import normalize
from conversations.flow_model import Flow
from db.models import (
    Area,
    FaqMiss,
    FlowRun,
    Household,
    Identity,
    Membership,
    Resident,
    StepRecord,
    SupportRequest,
    User,
)

CHUNK_HOUSEHOLDS = 2_000  # households generated (with their rows) before a round of inserts
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


class City:
    """Every row, in a fixed order, from one random stream seeded by (seed, N, anchor date)."""

    def __init__(self, households: int, seed: int, anchor: date, flows: dict[str, Flow]) -> None:
        self.n = households
        self.draws = Draws(seed, households, anchor)
        self.plan: CityPlan = plan_city(self.draws, households)
        self.people = People(self.draws)
        self.runs = Runs(self.draws, flows)
        self.counts = dict.fromkeys(("areas", "volunteers", "leaders", "households", "residents"), 0)
        self.filled: list[str] = []  # tables written, in order
        self.ids = Ids({})

    def start(self, ids: dict[str, int]) -> None:
        """Take the primary keys from the first free ones."""
        self.ids = self.runs.ids = Ids(ids)
        assign_ids(self.draws, self.plan, self.ids)

    def batches(self) -> Iterator[Batch]:
        yield self._areas_and_staff()
        yield from self._household_batches()
        yield self._faq_misses()

    # -- areas and users ------------------------------------------------------------------------

    def _areas_and_staff(self) -> Batch:
        plan, draws, take = self.plan, self.draws, self.ids.take
        city_target = math.ceil(self.n * 1.05 / 1000) * 1000
        city_name = Province.from_code(ProvinceCode(PROVINCE_CODE)).name
        areas: Rows = [{
            "id": plan.city_id, "code": CITY_CODE, "name": city_name, "level": "city", "parent_id": None,
            "official_code": str(PROVINCE_CODE),
            "target_households": city_target, "target_digital_ready": round(city_target * 0.6),
        }]
        users: Rows = []
        identities: Rows = []
        memberships: Rows = []

        def user(user_id: int, name: str, external_id: str, role: str | None, area_id: int,
                 joined: datetime) -> None:
            users.append({"id": user_id, "display_name": name, "locale": "vi", "created_at": joined})
            identities.append({"id": take("identities"), "user_id": user_id, "channel": CHANNEL,
                               "external_id": external_id, "created_at": joined})
            if role is not None:
                memberships.append({"id": take("memberships"), "user_id": user_id, "area_id": area_id,
                                    "role": role, "granted_at": joined, "invite_code": None})

        early = draws.window_start - timedelta(days=14)
        user(plan.admin_id, "Quản trị Huế", "admin-hue", "admin", plan.city_id, early)
        volunteers = 0
        name = self.people.name
        for ward in plan.wards:
            areas.append({
                "id": ward.id, "code": ward.code, "name": ward.name, "level": ward.level,
                "parent_id": plan.city_id, "official_code": ward.official_code,
                "target_households": ward.target_households,
                "target_digital_ready": ward.target_digital_ready,
            })
            areas += [{
                "id": village.id, "code": village.code, "name": village.name, "level": "village",
                "parent_id": ward.id, "official_code": None, "target_households": None,
                "target_digital_ready": None,
            } for village in ward.villages]
            user(ward.leader_id, name(draws.random() < 0.5)[0], f"leader-{ward.slug}", "leader", ward.id,
                 early)
            for user_id in ward.volunteers:
                volunteers += 1
                joined = early + timedelta(days=draws.between(4, 20), minutes=draws.between(0, 600))
                user(user_id, name(draws.random() < 0.55)[0], f"vol-{volunteers:06d}", "volunteer", ward.id,
                     joined)
        for number, user_id in enumerate(plan.requesters.values(), 1):
            user(user_id, name(draws.random() < 0.5)[0], f"resident-{number:06d}", None, 0, early)
        self.counts.update(areas=len(areas), volunteers=volunteers, leaders=len(plan.wards))
        self.filled += ["areas", "users", "identities", "memberships"]
        return [(Area.__table__, areas), (User.__table__, users), (Identity.__table__, identities),
                (Membership.__table__, memberships)]

    # -- households -----------------------------------------------------------------------------

    def _household_batches(self) -> Iterator[Batch]:
        buffers = _Buffers()
        number = 0
        for ward in self.plan.wards:
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
            record["id"] = self.ids.take("step_records")
        batch = [(Household.__table__, buffers.households), (Resident.__table__, buffers.residents),
                 (FlowRun.__table__, buffers.runs), (StepRecord.__table__, records),
                 (SupportRequest.__table__, buffers.requests)]
        buffers.clear()
        return batch

    def _household(self, buffers: _Buffers, number: int, ward: WardPlan, village: Village,
                   volunteer: int | None) -> None:
        draws, people = self.draws, self.people
        household_id = self.ids.take("households")
        members = people.members()
        phone = people.phone()
        runs: Rows = []
        first = last = None
        if draws.random() < (0.82 if volunteer is not None else 0.3):
            # Nobody's households are sometimes visited all the same, by a volunteer of the ward.
            worker = volunteer if volunteer is not None else draws.rng.choice(ward.volunteers)
            first, last = self.runs.household(runs, buffers.records, household_id, village.id, members,
                                              worker)
        if first is not None:
            created = max(first - timedelta(minutes=draws.between(10, 20 * 1440)),
                          draws.window_start - timedelta(days=7))
        else:
            minutes = draws.between(-7 * 1440, (WINDOW_DAYS - 2) * 1440)
            created = draws.window_start + timedelta(minutes=minutes)
        people.digital_ready(members)
        requester = self.plan.requesters.get(number)
        buffers.households.append({
            "id": household_id, "code": f"{HOUSEHOLD_PREFIX}{number + 1:07d}", "area_id": village.id,
            "head_name": members[0].name, "address": people.address(ward, village), "phone": phone,
            "volunteer_id": volunteer, "notes": None, "created_at": created, "last_step_at": last,
        })
        resident_ids = []
        for position, member in enumerate(members):
            resident_ids.append(self.ids.take("residents"))
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

    def _visit_request(self, buffers: _Buffers, requester: int, household_id: int, village: Village,
                       phone: str | None, volunteer: int | None, ward: WardPlan, created: datetime) -> None:
        draws = self.draws
        asked = max(created, draws.window_start) + timedelta(minutes=draws.between(60, 30 * 1440))
        asked = min(asked, draws.moment(WINDOW_DAYS - 5, 10 * 60))
        status = draws.rng.choices(("open", "taken", "closed"), (30, 30, 40))[0]
        taken = closed = None
        if status != "open":
            taken = asked + timedelta(minutes=draws.between(5, 600))
        if status == "closed" and taken is not None:
            closed = taken + timedelta(hours=draws.between(2, 48))
        buffers.requests.append({
            "id": self.ids.take("support_requests"), "requester_id": requester, "household_id": household_id,
            "area_id": village.id, "question": draws.rng.choice(REQUEST_QUESTIONS), "phone": phone,
            "address": None, "status": status, "created_at": asked, "taken_at": taken, "closed_at": closed,
            "volunteer_id": None if status == "open" else volunteer or ward.volunteers[0],
            "close_note": "Đã đến nhà hỗ trợ xong." if closed else None,
        })

    # -- after the households -------------------------------------------------------------------

    def _faq_misses(self) -> Batch:
        """Questions residents asked that the FAQ could not answer (typed without diacritics)."""
        draws = self.draws
        misses: Rows = []
        for _ in range(min(60, max(5, self.n // 2000))):
            question = draws.rng.choice(MISS_QUESTIONS)
            day = min(WINDOW_DAYS - 1, int(WINDOW_DAYS * math.sqrt(draws.random())))
            misses.append({
                "id": self.ids.take("faq_misses"), "question": question,
                "normalized": normalize(question)[:500] or question, "locale": "vi", "kind": "miss",
                "faq_id": None, "user_id": None, "area_id": draws.rng.choice(self.plan.wards).id,
                "created_at": draws.moment(day, 6 * 60 + int(draws.random() * 16 * 60)),
            })
        self.filled.append("faq_misses")
        return [(FaqMiss.__table__, misses)]
