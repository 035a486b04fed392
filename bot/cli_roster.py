"""`gocua volunteers list` (the roster, as /volunteers shows it) and the sheets of
`gocua invite create --count N --out FILE`."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Settings, UsageError

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

SHEET_FORMATS = ("csv", "png", "pdf")


def add_roster_commands(sub: Subcommands) -> None:
    volunteers = sub.add_parser("volunteers", help="an area's volunteers")
    volunteers_sub = volunteers.add_subparsers(dest="volunteers_command", required=True)
    listing = volunteers_sub.add_parser("list", help="the roster: households, reached, steps this week, "
                                                      "last active (inactive first)")
    listing.add_argument("--area", required=True, help="area code, e.g. danang.hai-van")
    listing.add_argument("--lang", choices=["vi", "en"], default=None)
    listing.add_argument("--json", action="store_true")


def sheet_format(out: str) -> str:
    fmt = Path(out).suffix.lower().lstrip(".")
    if fmt not in SHEET_FORMATS:
        raise UsageError(f"--out must end in .csv, .png or .pdf, got {out!r}")
    return fmt


def write_sheet(settings: Settings, *, out: str, area: Any, role: str, codes: list[str],
                expires_at: datetime, lang: str | None) -> None:
    """The invite sheet of `codes` written to `out` (its format from the file's extension)."""
    from handlers.i18n import translator
    from handlers.invites import sheet_for
    from reports.invite_sheet import render

    t = translator(lang or settings.locale)
    sheet = sheet_for(t, area=area, role=role, codes=codes, expires_at=expires_at,
                      bot_username=settings.telegram_bot_username)
    Path(out).write_bytes(render(sheet, sheet_format(out), role_key=role))


async def cmd_volunteers_list(settings: Settings, args: argparse.Namespace) -> int:
    """Read-only, like `gocua stats`."""
    from bot.read_only import open_read_only
    from db.repo.areas import area_by_code
    from db.repo.roster import roster
    from handlers.i18n import translator
    from handlers.roster import line_text

    t = translator(args.lang or settings.locale)
    db = await open_read_only(settings, args.lang)
    try:
        now = datetime.now(UTC)
        async with db.read_session() as session:
            area = await area_by_code(session, args.area)
            if area is None:
                raise UsageError(f"no area with code {args.area!r}")
            lines = await roster(session, area, now)
    finally:
        await db.dispose()
    if args.json:
        print(json.dumps({
            "area": {"code": area.code, "name": area.name, "level": area.level},
            "volunteers": [{
                "user_id": line.user_id, "name": line.name, "households": line.households,
                "households_reached": line.reached, "steps_this_week": line.steps_this_week,
                "last_active": line.last_active.isoformat() if line.last_active else None,
                "inactive": line.inactive(now),
            } for line in lines],
        }, ensure_ascii=False))
        return 0
    inactive = sum(1 for line in lines if line.inactive(now))
    print(t("👥 Volunteers of {area}: {count}, of whom {inactive} inactive (⚠️: no step for 7 days).",
            area=area.name, count=len(lines), inactive=inactive))
    for i, line in enumerate(lines, 1):
        print(f"{i}. {line_text(t, line, now)}")
    return 0


ROSTER_COMMANDS = {"volunteers list": cmd_volunteers_list}
