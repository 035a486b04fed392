"""`gocua seed demo`: Da Nang demo data on real place names, safe to run again and again."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from bot.app import App
from db.models import Area, Household, Identity, Invite, Membership, User
from db.places import province_name, ward_name
from db.repo.areas import get_or_create_area
from db.repo.invites import create_invite


@dataclass(frozen=True)
class DemoArea:
    code: str
    name: str
    level: str
    parent: str | None
    official_code: str | None = None


AREAS = [
    DemoArea("danang", province_name(48), "city", None, "48"),
    DemoArea("danang.hai-van", ward_name(20195), "ward", "danang", "20195"),
    DemoArea("danang.hai-van.ta-lang", "Thôn Tà Lang", "village", "danang.hai-van"),
    DemoArea("danang.hai-van.gian-bi", "Thôn Giàn Bí", "village", "danang.hai-van"),
    DemoArea("danang.hoa-xuan", ward_name(20314), "ward", "danang", "20314"),
    # The package spells it "Avương" (official); the press writes "A Vương".
    DemoArea("danang.a-vuong", ward_name(20458), "commune", "danang", "20458"),
]

# console name, display name, role, area
USERS = [
    ("an", "Nguyễn Văn An", "volunteer", "danang.hai-van"),
    ("binh", "Trần Thị Bình", "volunteer", "danang.hoa-xuan"),
    ("cuong", "Bhling Văn Cường", "volunteer", "danang.a-vuong"),
    ("lan", "Lê Thị Lan", "leader", "danang.hai-van"),
    ("admin", "Quản trị Đà Nẵng", "admin", "danang"),
]

# code, area, head of household, address or landmark, volunteer (console name)
HOUSEHOLDS = [
    ("HV-TL-001", "danang.hai-van.ta-lang", "Alăng Văn Tư", "Nhà sàn đầu thôn, gần nhà văn hóa", "an"),
    ("HV-TL-002", "danang.hai-van.ta-lang", "Bríu Thị Hoa", "Cạnh điểm trường Tà Lang", "an"),
    ("HV-TL-003", "danang.hai-van.ta-lang", "Pơloong Văn Dũng",
     "Khu tái định cư Tà Lang – Giàn Bí, lô 7", "an"),
    ("HV-GB-001", "danang.hai-van.gian-bi", "Zơrâm Thị Mai", "Đầu cầu treo Giàn Bí", "an"),
    ("HV-GB-002", "danang.hai-van.gian-bi", "Clâu Văn Nhân", "Sau nhà rông Giàn Bí", "an"),
    ("HX-001", "danang.hoa-xuan", "Phạm Văn Hùng", "Kiệt 12 đường Nguyễn Phước Lan", "binh"),
    ("HX-002", "danang.hoa-xuan", "Võ Thị Sương", "Gần chợ Hòa Xuân", "binh"),
    ("AV-001", "danang.a-vuong", "Arất Thị Bốn", "Thôn Bhlô Bền, nhà thứ hai bên suối", "cuong"),
]

INVITES = [
    ("volunteer", "danang.hai-van"),
    ("volunteer", "danang.hoa-xuan"),
    ("volunteer", "danang.a-vuong"),
    ("leader", "danang.hai-van"),
    ("admin", "danang"),
]


async def seed_demo(app: App) -> dict[str, Any]:
    now = app.core.services.clock()
    async with app.db.transaction() as session:
        areas: dict[str, Area] = {}
        for spec in AREAS:
            areas[spec.code] = await get_or_create_area(
                session, code=spec.code, name=spec.name, level=spec.level,
                parent=areas.get(spec.parent) if spec.parent else None,
                official_code=spec.official_code,
            )
        users: dict[str, User] = {}
        for console, name, role, area_code in USERS:
            user = await session.scalar(
                select(User).join(Identity).where(
                    Identity.channel == "console", Identity.external_id == console
                )
            )
            if user is None:
                user = User(display_name=name, created_at=now)
                session.add(user)
                await session.flush()
                session.add(Identity(user_id=user.id, channel="console", external_id=console,
                                     created_at=now))
            area = areas[area_code]
            held = await session.scalar(select(Membership.id).where(
                Membership.user_id == user.id, Membership.area_id == area.id, Membership.role == role))
            if held is None:
                session.add(Membership(user_id=user.id, area_id=area.id, role=role, granted_at=now))
            users[console] = user
        await session.flush()
        for code, area_code, head, address, volunteer in HOUSEHOLDS:
            exists = await session.scalar(select(Household.id).where(Household.code == code))
            if exists is None:
                session.add(Household(
                    code=code, area_id=areas[area_code].id, head_name=head, address=address,
                    volunteer_id=users[volunteer].id, created_at=now,
                ))
        invites = []
        for role, area_code in INVITES:
            area = areas[area_code]
            invite = await session.scalar(
                select(Invite).where(
                    Invite.role == role, Invite.area_id == area.id, Invite.used_at.is_(None),
                    Invite.expires_at > now, Invite.created_by.is_(None),
                ).order_by(Invite.expires_at.desc()).limit(1)
            )
            if invite is None:
                invite = await create_invite(session, role=role, area=area, now=now)
            invites.append({"role": role, "area": area_code, "code": invite.code})
    return {
        "areas": [a.code for a in AREAS],
        "users": [{"console": c, "name": n, "role": r, "area": a} for c, n, r, a in USERS],
        "households": len(HOUSEHOLDS),
        "invites": invites,
    }
