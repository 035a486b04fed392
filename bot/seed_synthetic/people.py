"""People: Vietnamese names, households of about three (a head, often a spouse, sometimes an
old parent, children or grandchildren) with birth years and masked citizen IDs, addresses,
phones, and who can already use e-services. Nobody's real data: every value is drawn."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

from bot.seed_synthetic.draws import Draws
from bot.seed_synthetic.plan import Village, WardPlan

CITIZEN_PROVINCE = "046"  # the first three digits of a citizen ID issued in Huế
MIN_BIRTH_YEAR = 1935
DIGITAL_READY_ALREADY = 0.5  # households where a younger adult could use e-services before any run
HOUSEHOLD_SIZES = (1, 2, 3, 4, 5, 6)
HOUSEHOLD_SIZE_WEIGHTS = (14, 25, 27, 19, 10, 5)  # mean 3.0
_SIZE_CUMULATIVE = list(accumulate(HOUSEHOLD_SIZE_WEIGHTS))

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


@dataclass
class Person:
    name: str
    female: bool
    birth_year: int
    masked: str | None  # masked citizen ID
    ready: bool = False  # digital-ready
    trained: bool = False  # coached in a run that marks digital-ready (smartphone_skills)


class People:
    """Draws people, households and addresses from the shared stream."""

    def __init__(self, draws: Draws) -> None:
        self.draws = draws
        self.year = draws.year
        self.max_birth_year = draws.first_day.year  # nobody is born after the window opens

    def name(self, female: bool, family: str | None = None) -> tuple[str, str]:
        """(full name, family name)."""
        rng = self.draws.rng
        family = family or self.draws.pick(FAMILY_NAMES, _FAMILY_CUMULATIVE)
        if female:
            return f"{family} {rng.choice(MIDDLE_FEMALE)} {rng.choice(GIVEN_FEMALE)}", family
        return f"{family} {rng.choice(MIDDLE_MALE)} {rng.choice(GIVEN_MALE)}", family

    def person(self, female: bool, birth_year: int, family: str | None = None) -> tuple[Person, str]:
        birth_year = max(MIN_BIRTH_YEAR, min(self.max_birth_year, birth_year))
        name, family = self.name(female, family)
        masked = None
        random = self.draws.random
        if self.year - birth_year >= 14 and random() < 0.7:
            # Digit 4 is gender and century: 0/1 men/women born in the 1900s, 2/3 in the 2000s.
            century = 0 if birth_year < 2000 else 2
            masked = f"{CITIZEN_PROVINCE}{century + female}******{int(random() * 100):02d}"
        return Person(name, female, birth_year, masked), family

    def members(self) -> list[Person]:
        """A household: its head, often a spouse, sometimes an old parent, children or grandchildren."""
        draws, random = self.draws, self.draws.random
        size = draws.pick(HOUSEHOLD_SIZES, _SIZE_CUMULATIVE)
        head_female = random() < 0.3
        head_age = int(draws.rng.triangular(22, 92, 48))
        head_born = self.year - head_age
        head, family = self.person(head_female, head_born)
        members = [head]
        children_family = None if head_female else family
        if size >= 2 and random() < 0.85:
            spouse, spouse_family = self.person(not head_female, head_born + draws.between(-6, 4))
            members.append(spouse)
            children_family = children_family or spouse_family
        if len(members) < size and head_age < 60 and random() < 0.35:
            members.append(self.person(random() < 0.65, head_born - draws.between(22, 32))[0])
        while len(members) < size:
            grandchild = head_age >= 58 and random() < 0.5
            born = head_born + (draws.between(44, 66) if grandchild else draws.between(20, 42))
            members.append(self.person(random() < 0.5, born, children_family or family)[0])
        return members

    def phone(self) -> str | None:
        """A mobile number for 60% of households."""
        if self.draws.random() < 0.6:
            return f"0{self.draws.rng.choice(MOBILE_PREFIXES)}{int(self.draws.random() * 10_000_000):07d}"
        return None

    def address(self, ward: WardPlan, village: Village) -> str:
        draws = self.draws
        shape = draws.random()
        if ward.level == "ward":  # towns: house numbers, alleys (kiệt) and streets
            street = draws.rng.choice(STREETS)
            if shape < 0.5:
                return f"{draws.between(1, 120)} kiệt {draws.between(1, 250)} {street}"
            if shape < 0.65:
                return f"{draws.between(1, 40)}/{draws.between(1, 30)} kiệt {draws.between(1, 250)} {street}"
            return f"{draws.between(1, 400)} {street}"
        if shape < 0.6:
            return f"Nhà số {draws.between(1, 250)}, {village.name}"
        if shape < 0.85:
            return f"Xóm {draws.between(1, 8)}, {village.name}"
        return f"Gần {draws.rng.choice(LANDMARKS)}, {village.name}"

    def digital_ready(self, members: list[Person]) -> None:
        """About 60% of households have a member who can use e-services on a phone: whoever
        was marked so by a run, else often a younger adult who already could."""
        if any(m.ready for m in members):
            return
        young = [m for m in members if 15 <= self.year - m.birth_year <= 50 and not m.trained]
        if young and self.draws.random() < DIGITAL_READY_ALREADY:
            min(young, key=lambda m: abs(self.year - m.birth_year - 28)).ready = True
