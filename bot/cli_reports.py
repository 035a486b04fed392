"""`gocua stats`, `gocua export`, `gocua target set` and `gocua seed synthetic`."""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import Settings, UsageError

if TYPE_CHECKING:  # imported where used: `gocua --help` loads neither SQLAlchemy nor the models
    from sqlalchemy.ext.asyncio import AsyncSession

    from db.models import Area

    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]


def add_report_commands(sub: Subcommands, seed_sub: Subcommands) -> None:
    stats = sub.add_parser("stats", help="campaign statistics of an area (and its sub-areas)")
    stats.add_argument("--area", default=None, help="area code (default: everything)")
    stats.add_argument("--since", default=None, help="count activity from this day, YYYY-MM-DD")
    stats.add_argument("--flow", default=None, help="per-step drop-off of one procedure")
    stats.add_argument("--lang", choices=["vi", "en"], default=None)
    stats.add_argument("--json", action="store_true")

    export = sub.add_parser("export", help="one row per step record, as CSV or XLSX")
    export.add_argument("--area", default=None, help="area code, e.g. danang.hai-van (default: everything)")
    export.add_argument("--format", required=True, choices=["csv", "xlsx"])
    export.add_argument("--out", required=True, help="file to write")
    export.add_argument("--since", default=None, help="only records from this day, YYYY-MM-DD")
    export.add_argument("--lang", choices=["vi", "en"], default=None)

    target = sub.add_parser("target", help="area targets")
    target_sub = target.add_subparsers(dest="target_command", required=True)
    target_set = target_sub.add_parser("set", help="set an area's targets (0 removes one)")
    target_set.add_argument("--area", required=True)
    target_set.add_argument("--households", type=int, default=None, help="households to reach")
    target_set.add_argument("--digital-ready", type=int, default=None,
                            help="households with a member who can use e-services")

    synthetic = seed_sub.add_parser("synthetic", help="deterministic large data for benchmarks")
    synthetic.add_argument("--households", type=int, required=True)
    synthetic.add_argument("--seed", type=int, default=1)
    synthetic.add_argument("--json", action="store_true")


def parse_since(raw: str | None) -> datetime | None:
    from handlers.stats_text import since_date

    if raw is None:
        return None
    try:
        return since_date(date.fromisoformat(raw))
    except ValueError:
        raise UsageError(f"--since must be a date as YYYY-MM-DD, not {raw!r}") from None


async def _area_or_fail(session: AsyncSession, code: str | None) -> Area | None:
    from db.repo.areas import area_by_code

    if code is None:
        return None
    area = await area_by_code(session, code)
    if area is None:
        raise UsageError(f"no area with code {code!r}")
    return area


async def cmd_stats(settings: Settings, args: argparse.Namespace) -> int:
    """Read-only (bot/read_only.py): no migration, no write; the flows are loaded only for the
    text (their titles) and for --flow."""
    from bot.read_only import load_flows_read_only, open_read_only
    from conversations.flow_order import in_flow_order
    from db.repo.stats import area_stats, step_drop_off
    from handlers.i18n import translator
    from handlers.stats_text import drop_off_text, summary_text
    from handlers.validation import VIETNAM

    since = parse_since(args.since)
    t = translator(args.lang or settings.locale)
    db = await open_read_only(settings, args.lang)
    try:
        now = datetime.now(UTC)
        period = t("since {day}", day=since.strftime("%d/%m/%Y")) if since else t("all time")
        async with db.read_session() as session:
            flows = await load_flows_read_only(session) if args.flow is not None or not args.json else None
            if args.flow is not None:
                assert flows is not None  # loaded for --flow
                if args.flow not in flows:
                    known = ", ".join(in_flow_order(flows.ids()))
                    raise UsageError(f"no procedure {args.flow!r}; there are: {known}")
            area = await _area_or_fail(session, args.area)
            if args.flow is not None:
                assert flows is not None
                steps = await step_drop_off(session, area, args.flow, since)
                flow = flows.latest(args.flow)
                if args.json:
                    from bot.stats_json import drop_off_json
                    from handlers.stats_text import ordered_steps

                    print(json.dumps(drop_off_json(area.code if area else None, args.flow,
                                                   ordered_steps(flow, steps)), ensure_ascii=False))
                else:
                    print(drop_off_text(t, area.name if area else t("All areas"), period, flow, steps))
                return 0
            stats = await area_stats(session, area, now=now, since=since, tz=VIETNAM, all_name=t("All areas"))
    finally:
        await db.dispose()

    if args.json:
        from bot.stats_json import area_stats_json

        print(json.dumps(area_stats_json(stats), ensure_ascii=False))
    else:
        assert flows is not None
        print(summary_text(t, stats, period, lambda flow_id: t(flows.title(flow_id))))
    return 0


def _out_path(raw: str) -> Path:
    out = Path(raw)
    if out.is_dir():
        raise UsageError(f"--out {raw!r} is a directory; give a file name")
    if not out.parent.exists():
        raise UsageError(f"--out: the folder {str(out.parent)!r} does not exist")
    return out


async def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    """Reads through a read-only connection (bot/read_only.py: no migration); its one write is
    the export's audit row, in a transaction of its own once the file is written."""
    from bot.read_only import load_flows_read_only, open_read_only
    from db.engine import Database
    from handlers.exports import audit_export, write_export
    from handlers.i18n import translator

    since = parse_since(args.since)
    out = _out_path(args.out)
    db = await open_read_only(settings, args.lang)
    try:
        async with db.read_session() as session:
            flows = await load_flows_read_only(session)
            area = await _area_or_fail(session, args.area)
        partial = out.with_name(f".{out.name}.partial")
        now = datetime.now(UTC)
        try:
            with partial.open("wb") as fh:
                rows = await write_export(db.read_session, fh, fmt=args.format, area=area, since=since,
                                          t=translator(args.lang or settings.locale), flows=flows, now=now)
            os.replace(partial, out)  # a reader never sees half a file
        finally:
            partial.unlink(missing_ok=True)
    finally:
        await db.dispose()
    writer = Database(settings.database_url)
    try:
        async with writer.transaction() as session:
            audit_export(session, actor_id=None, area=area, fmt=args.format, rows=rows, since=since,
                         via="cli", now=now)
    finally:
        await writer.dispose()
    print(f"wrote {rows} step records of {args.area or 'all areas'} to {out}")
    return 0


async def cmd_target_set(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import open_app, utcnow
    from db.repo.areas import MAX_TARGET, set_target

    changes = {"target_households": args.households, "target_digital_ready": args.digital_ready}
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        raise UsageError("give --households N and/or --digital-ready N (0 removes a target)")
    for name, value in changes.items():
        if not 0 <= value <= MAX_TARGET:
            option = name.replace("target_", "--").replace("_", "-")
            raise UsageError(f"{option} must be from 0 to {MAX_TARGET}")
    app = await open_app(settings, planner_statistics=False)
    try:
        async with app.db.transaction() as session:
            area = await _area_or_fail(session, args.area)
            assert area is not None  # --area is required
            for attr, value in changes.items():
                set_target(session, area, attr, value, actor_id=None, now=utcnow(), via="cli")
            shown = {a: getattr(area, a) for a in ("target_households", "target_digital_ready")}
    finally:
        await app.close()
    print(f"targets of {args.area}: households {shown['target_households'] or '-'}, "
          f"digital-ready {shown['target_digital_ready'] or '-'}")
    return 0


async def cmd_seed_synthetic(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import open_app, utcnow
    from bot.seed_synthetic import SeedError, seed_synthetic

    if not 1 <= args.households <= 2_000_000:
        raise UsageError("--households must be from 1 to 2000000")
    app = await open_app(settings, planner_statistics=False)  # refreshed after the load, below
    try:
        flows = app.core.services.flows
        assert flows is not None
        try:
            summary = await seed_synthetic(app.db, args.households, seed=args.seed, now=utcnow(), flows=flows)
            await app.db.refresh_planner_statistics(after_bulk_load=True)
        except SeedError as exc:
            raise UsageError(str(exc)) from None
    finally:
        await app.close()
    if args.json:
        print(json.dumps(summary.to_json(), ensure_ascii=False))
    else:
        print(f"synthetic data under {summary.city_code}: {summary.households} households, "
              f"{summary.residents} residents, {summary.volunteers} volunteers, {summary.runs} runs, "
              f"{summary.step_records} step records in {summary.seconds:.1f} s")
    return 0


REPORT_COMMANDS = {
    "stats": cmd_stats,
    "export": cmd_export,
    "target set": cmd_target_set,
    "seed synthetic": cmd_seed_synthetic,
}
