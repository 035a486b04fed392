"""`gocua jobs list|run-due`: the follow-ups waiting, and running what is due (for cron when no
bot runs, and for trying a date on the console). A time without a zone is Vietnam time."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from typing import Any

from bot.config import Settings, UsageError
from conversations.local_time import VIETNAM


def add_jobs_commands(sub: Any) -> None:
    jobs = sub.add_parser("jobs", help="follow-ups: reminders, escalations, digests, announcements")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    listing = jobs_sub.add_parser("list", help="pending follow-ups, soonest first")
    listing.add_argument("--due-before", default=None, help="only those due by this time (ISO; Vietnam time "
                         "without a zone)")
    listing.add_argument("--json", action="store_true")
    run = jobs_sub.add_parser("run-due", help="run the follow-ups due now (or at --now)")
    run.add_argument("--now", default=None,
                     help="act as if it were this time (ISO; Vietnam time without a zone)")
    run.add_argument("--json", action="store_true")


def parse_time(text: str, option: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{option}: not an ISO time (e.g. 2026-12-12T08:00): {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=VIETNAM)
    return value.astimezone(UTC)


async def cmd_jobs_list(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import open_app
    from db.repo.jobs import pending_jobs

    due_before = parse_time(args.due_before, "--due-before") if args.due_before else None
    app = await open_app(settings)
    try:
        async with app.db.transaction() as session:
            jobs = await pending_jobs(session, due_before)
            rows: list[dict[str, Any]] = [
                {"id": j.id, "kind": j.kind, "key": j.key, "user_id": j.user_id, "area_id": j.area_id,
                 "due_at": j.due_at.astimezone(VIETNAM).isoformat(), "state": j.state,
                 "attempts": j.attempts} for j in jobs]
    finally:
        await app.close()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    elif not rows:
        print("no pending follow-ups")
    else:
        for row in rows:
            print(f"{row['due_at'][:16]}  {row['kind']:<17} {row['key']}  ({row['state']})")
    return 0


async def cmd_jobs_run_due(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import open_app, utcnow
    from handlers.follow_up_runner import run_due

    now = parse_time(args.now, "--now") if args.now else None
    app = await open_app(settings)
    try:
        result = await run_due(app.db, now or utcnow(), app.core.services.flows)
    finally:
        await app.close()
    if args.json:
        print(json.dumps(result.as_json()))
    elif result.quiet:
        print("quiet hours (21:00-07:00 Vietnam time): nothing sent; due work waits for 07:00")
    else:
        print(f"{result.jobs} follow-ups run, {result.notices} messages queued, {result.failed} failed")
    return 0


JOBS_COMMANDS = {"jobs list": cmd_jobs_list, "jobs run-due": cmd_jobs_run_due}
