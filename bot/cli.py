"""The `gocua` command line (design.md section 4)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from bot.cli_areas import AREA_COMMANDS, add_area_commands
from bot.cli_import import IMPORT_COMMANDS, add_import_commands
from bot.cli_jobs import JOBS_COMMANDS, add_jobs_commands
from bot.cli_reports import REPORT_COMMANDS, add_report_commands
from bot.cli_roster import ROSTER_COMMANDS, add_roster_commands
from bot.config import ConfigError, Settings, UsageError, load_settings
from bot.logging import configure_logging
from conversations.flow_model import FlowError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gocua", description="GoCua: public services at the door.")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="migrate to the latest schema")
    prune = db_sub.add_parser("prune", help="delete old bookkeeping rows (the bot does it hourly)")
    prune.add_argument("--days", type=int, default=7,
                       help="keep handled updates this many days (default 7; notices 30)")

    seed = sub.add_parser("seed", help="load data")
    seed_sub = seed.add_subparsers(dest="seed_command", required=True)
    demo = seed_sub.add_parser("demo", help="idempotent demo data (Da Nang) and invite codes")
    demo.add_argument("--json", action="store_true")

    invite = sub.add_parser("invite", help="role invites")
    invite_sub = invite.add_subparsers(dest="invite_command", required=True)
    create = invite_sub.add_parser("create", help="create a single-use invite code")
    create.add_argument("--role", required=True, choices=["volunteer", "leader", "admin"])
    create.add_argument("--area", required=True, help="area code, e.g. danang.hai-van")
    create.add_argument("--days", type=int, default=7, help="days until it expires (default 7)")
    create.add_argument("--count", type=int, default=1, help="how many codes (1 to 100; default 1)")
    create.add_argument("--out", default=None,
                        help="write the invite sheet: FILE.pdf or FILE.png (QR codes, to print) or FILE.csv")
    create.add_argument("--lang", choices=["vi", "en"], default=None, help="language of the sheet")
    create.add_argument("--json", action="store_true")

    faq = sub.add_parser("faq", help="the residents' FAQ")
    faq_sub = faq.add_subparsers(dest="faq_command", required=True)
    ask = faq_sub.add_parser("ask", help="match a question (\"-\": one question per line on stdin)")
    ask.add_argument("text", help="the question, or - to read one question per line")
    ask.add_argument("--lang", choices=["vi", "en"], default=None)
    ask.add_argument("--json", action="store_true")

    backup = sub.add_parser("backup", help="a consistent copy of the SQLite database, while it runs")
    backup.add_argument("--out", required=True, help="file to write the copy to")

    chat = sub.add_parser("chat", help="talk to GoCua on the console")
    chat.add_argument("--user", default="guest", help="who you are on the console")
    chat.add_argument("--lang", choices=["vi", "en"], default=None)

    run = sub.add_parser("run", help="run a channel")
    run_sub = run.add_subparsers(dest="channel", required=True)
    telegram = run_sub.add_parser("telegram", help="Telegram bot (long polling by default)")
    _webhook_args(telegram)
    zalo = run_sub.add_parser("zalo", help="Zalo bot (long polling by default)")
    _webhook_args(zalo)

    add_report_commands(sub, seed_sub)
    add_roster_commands(sub)
    add_area_commands(sub)
    add_import_commands(sub)
    add_jobs_commands(sub)
    return parser


def _webhook_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--webhook-url", default=None, help="serve webhooks at this public URL")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (webhook mode)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (webhook mode)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes sharing the port (webhook mode; default 1)")
    parser.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    quiet = args.command == "chat" or getattr(args, "json", False)
    configure_logging(args.log_level or ("WARNING" if quiet else "INFO"))
    try:
        settings = load_settings()
        return asyncio.run(COMMANDS[_command_key(args)](settings, args))
    except (ConfigError, UsageError, FlowError) as exc:
        print(f"gocua: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from sqlalchemy.exc import DBAPIError, OperationalError

        if isinstance(exc, (OperationalError, DBAPIError, OSError)):
            print(f"gocua: error: cannot use the database: {_first_line(exc)}", file=sys.stderr)
            return 1
        raise


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _command_key(args: argparse.Namespace) -> str:
    sub = (getattr(args, "db_command", None) or getattr(args, "seed_command", None)
           or getattr(args, "invite_command", None) or getattr(args, "channel", None)
           or getattr(args, "faq_command", None) or getattr(args, "target_command", None)
           or getattr(args, "volunteers_command", None) or getattr(args, "areas_command", None)
           or getattr(args, "import_command", None)
           or getattr(args, "jobs_command", None))
    return f"{args.command} {sub}" if sub else args.command


async def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from db.engine import Database
    from db.migrate import upgrade

    await upgrade(settings.database_url)
    db = Database(settings.database_url)
    try:
        await db.refresh_planner_statistics()  # new tables and indexes, planned with statistics
    finally:
        await db.dispose()
    print("database is at the latest schema")
    return 0


async def cmd_db_prune(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from bot.app import utcnow
    from db.engine import Database
    from db.repo.housekeeping import prune

    if not 1 <= args.days <= 3650:
        raise UsageError("--days must be between 1 and 3650")
    db = Database(settings.database_url)
    try:
        pruned = await prune(db.transaction, utcnow(), processed_keep=timedelta(days=args.days))
    finally:
        await db.dispose()
    print(f"deleted {pruned.processed_updates} handled updates older than {args.days} days, "
          f"{pruned.notices} sent notices older than 30 days and {pruned.files} expired files")
    return 0


async def cmd_seed_demo(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import open_app
    from bot.seed_demo import seed_demo

    app = await open_app(settings, planner_statistics=False)
    try:
        result = await seed_demo(app)
        await app.db.refresh_planner_statistics()  # after the load, not before it
    finally:
        await app.close()
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(f"demo data ready: {len(result['areas'])} areas, {len(result['users'])} users, "
              f"{result['households']} households")
        for inv in result["invites"]:
            print(f"  invite {inv['code']}  {inv['role']:<9} {inv['area']}")
        print("console users: " + ", ".join(f"{u['console']} ({u['role']})" for u in result["users"]))
    return 0


async def cmd_invite_create(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from bot.app import open_app, utcnow
    from bot.cli_roster import sheet_format, write_sheet
    from db.repo.areas import area_by_code
    from db.repo.invites import MAX_BATCH, create_invites
    from handlers.invites import deep_link

    if not 1 <= args.days <= 90:
        raise UsageError("--days must be between 1 and 90")
    if not 1 <= args.count <= MAX_BATCH:
        raise UsageError(f"--count must be between 1 and {MAX_BATCH}")
    if args.out is not None:
        sheet_format(args.out)  # a wrong extension before anything is made
    app = await open_app(settings, planner_statistics=False)
    try:
        async with app.db.transaction() as session:
            area = await area_by_code(session, args.area)
            if area is None:
                raise UsageError(f"no area with code {args.area!r} (try `gocua seed demo` first)")
            invites = await create_invites(session, role=args.role, area=area, now=utcnow(),
                                           validity=timedelta(days=args.days), count=args.count)
    finally:
        await app.close()
    if args.out is not None:
        write_sheet(settings, out=args.out, area=area, role=args.role, codes=[i.code for i in invites],
                    expires_at=invites[0].expires_at, lang=args.lang)
    bot = settings.telegram_bot_username
    if args.json:
        made = [{"code": i.code, "role": i.role, "area": area.code, "expires_at": i.expires_at.isoformat(),
                 "link": deep_link(bot, i.code)} for i in invites]
        # One invite: the object it always was; several: a list of them.
        single = args.count == 1 and args.out is None
        print(json.dumps(made[0] if single else {"invites": made, "out": args.out}))
        return 0
    for invite in invites:
        link = deep_link(bot, invite.code)
        print(f"{invite.code}  ({invite.role} in {area.name}, until {invite.expires_at:%Y-%m-%d})"
              + (f"  {link}" if link else ""))
    print("claim with /start CODE or /join CODE" if args.count > 1
          else f"claim it with /start {invites[0].code} or /join {invites[0].code}")
    if args.out is not None:
        print(f"invite sheet written to {args.out}")
    return 0


async def cmd_faq_ask(settings: Settings, args: argparse.Namespace) -> int:
    from conversations.faq_match import answer_payload, default_index
    from handlers.i18n import translator

    index = default_index()
    translate = translator(args.lang or settings.locale)
    questions = (line.rstrip("\r\n") for line in sys.stdin) if args.text == "-" else iter([args.text])
    for question in questions:
        if args.text == "-" and not question.strip():
            continue
        result = answer_payload(index, question, translate)
        if args.json or args.text == "-":
            print(json.dumps(result, ensure_ascii=False), flush=True)
        elif result["id"] is None:
            print(translate("I don't have reliable information about this yet.")
                  + f" (score {result['score']:.2f})")
        else:
            print(f"{result['answer']}\n[{result['id']}, score {result['score']:.2f}]")
    return 0


async def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from bot.backup import backup_sqlite, sqlite_path

    source = sqlite_path(settings.database_url)
    pages = await asyncio.to_thread(backup_sqlite, source, Path(args.out))
    print(f"copied {source} ({pages} pages) to {args.out}")
    return 0


async def cmd_chat(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import open_app
    from bot.channels.console import run_console

    app = await open_app(settings, build_faq=True)
    try:
        await run_console(app, user=args.user, lang=args.lang)
    finally:
        await app.close()
    return 0


def tune_gc_for_serving() -> None:
    """A serving process allocates many short-lived objects per update; the default young
    generation threshold (700) runs a collection every few updates. Collect less often, and
    move what start-up built (models, flows, the FAQ index) out of the collector's way."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


async def cmd_run_channel(settings: Settings, args: argparse.Namespace) -> int:
    """`gocua run telegram|zalo`: the adapter module's `check_settings` and `run_<channel>`."""
    import importlib

    if _serving_group(args):
        checks = importlib.import_module(SETTINGS_CHECKS[args.channel])
        checks.check_settings(settings, args.webhook_url)  # reported once, by the parent
        return await _run_group(settings, args)
    adapter = importlib.import_module(f"bot.channels.{args.channel}")
    _as_worker(args)
    from conversations.faq_match import default_index

    default_index()  # trained (or loaded, conversations/faq_cache.py) before the collector freezes start-up
    tune_gc_for_serving()
    await getattr(adapter, f"run_{args.channel}")(
        settings, webhook_url=args.webhook_url, host=args.host, port=args.port,
        worker_index=args.worker_index)
    return 0


# Where a worker group's parent finds a channel's `check_settings`: modules that do not import
# the platform's client library (aiogram: about 4 s of CPU the parent would spend for nothing).
SETTINGS_CHECKS = {"telegram": "bot.channels.telegram_settings", "zalo": "bot.channels.zalo"}
# What the fork server of a worker group imports once for all its workers (bot/workers.py).
WORKER_PRELOAD = ("bot.cli", "bot.app", "conversations.faq_match")


def _serving_group(args: argparse.Namespace) -> bool:
    """Whether this process is the parent of `--workers N` (N > 1) worker processes."""
    from bot.workers import MAX_WORKERS

    if not 1 <= args.workers <= MAX_WORKERS:
        raise UsageError(f"--workers must be between 1 and {MAX_WORKERS}")
    if args.worker_index is not None and args.webhook_url is None:
        raise UsageError("--worker-index is for the workers of a webhook server")
    if args.workers == 1 or args.worker_index is not None:
        return False
    if args.webhook_url is None:
        raise UsageError("--workers needs --webhook-url: with long polling only one process may "
                         "take a bot's updates")
    return True


def _as_worker(args: argparse.Namespace) -> None:
    if args.worker_index is not None:
        import os

        import structlog

        from bot.workers import exit_with_parent

        structlog.contextvars.bind_contextvars(worker=args.worker_index, pid=os.getpid())
        exit_with_parent()


async def _run_group(settings: Settings, args: argparse.Namespace) -> int:
    """Migrate once, then run `--workers N` copies of this command (bot/workers.py)."""
    from bot.app import open_app
    from bot.workers import supervise, worker_command

    # Migrates and stores the flow versions, once for all; each worker refreshes the planner's
    # statistics when it starts.
    app = await open_app(settings, planner_statistics=False)
    await app.close()
    return await supervise(lambda index: worker_command(args.argv, index), args.workers,
                           preload=(*WORKER_PRELOAD, f"bot.channels.{args.channel}"))


COMMANDS: dict[str, Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]] = {
    "db upgrade": cmd_db_upgrade,
    "db prune": cmd_db_prune,
    "seed demo": cmd_seed_demo,
    "invite create": cmd_invite_create,
    "faq ask": cmd_faq_ask,
    "backup": cmd_backup,
    "chat": cmd_chat,
    "run telegram": cmd_run_channel,
    "run zalo": cmd_run_channel,
    **REPORT_COMMANDS,
    **ROSTER_COMMANDS,
    **AREA_COMMANDS,
    **IMPORT_COMMANDS,
    **JOBS_COMMANDS,
}

__all__: list[Any] = ["main"]
