"""The update path's top entries in a cProfile file written by `throughput.py --profile`.

    .venv/bin/python bench/profile_top.py /tmp/gocua-round1.prof [--updates 2500]

Prints a Markdown table: each layer's calls, cumulative seconds and milliseconds per update
(`--updates`: the updates the profiled bot handled, warm-up included; 2,500 for
`throughput.py --scenario flow_steps --updates 2000`). cProfile's clock is wall time and the
profiler itself slows everything down: compare rows of one profile, or two profiles taken back
to back on a quiet machine, not with the unprofiled figures.
"""

from __future__ import annotations

import argparse
import pstats

ROWS = [
    ("bot/channels/runner.py", "_webhook", "webhook request, all of it"),
    ("handlers/pipeline.py", "handle", "core: one update's transaction"),
    ("handlers/dispatch.py", "dispatch", "  handler"),
    ("handlers/flows.py", "_load_run", "    flow step: load run, household, area"),
    ("handlers/flows.py", "_apply", "    flow step: write step record, household, run; render"),
    ("db/repo/users.py", "load_for_update", "  load dedupe, user, roles, conversation"),
    ("db/repo/users.py", "create_user", "  first message: create user and identity"),
    ("db/repo/users.py", "save_conversation", "  save conversation"),
    ("db/repo/updates.py", "record_processed", "  outbox insert"),
    ("sqlalchemy/ext/asyncio/session.py", "execute", "  SQLAlchemy session.execute (all)"),
    ("sqlalchemy/orm/session.py", "_flush", "  ORM unit-of-work flushes"),
    ("sqlalchemy/ext/asyncio/session.py", "commit", "  commit"),
    ("handlers/i18n.py", "number", "  counts written (Babel)"),
    ("bot/channels/runner.py", "send_replies", "send replies (edit, sendMessage)"),
    ("bot/channels/telegram.py", "acknowledge", "answerCallbackQuery"),
    ("bot/channels/telegram.py", "set_chat_menu", "a chat's menu (setMyCommands)"),
    ("aiogram/client/session/base.py", "__call__", "  aiogram Bot API calls (all)"),
    ("aiogram/client/session/aiohttp.py", "build_form_data", "    aiogram: form building"),
    ("bot/channels/telegram_session.py", "payload", "    aiogram: JSON body from the method's model"),
    ("aiogram/client/session/base.py", "check_response", "    aiogram: response validation"),
    ("bot/channels/telegram_session.py", "call_json", "  lean JSON Bot API calls (all)"),
    ("bot/channels/telegram_session.py", "read_answer", "    lean: reading the answer"),
    ("aiohttp/client.py", "_request", "  aiohttp client requests (all Bot API calls)"),
    ("bot/channels/telegram.py", "webhook_update", "webhook Update parse (all)"),
    ("bot/channels/telegram_updates.py", "update_from_json", "  lean: from the JSON body"),
    ("pydantic/main.py", "model_validate", "  pydantic model_validate (aiogram's Update: the fallback)"),
    ("~", "<method 'validate_python' of 'pydantic_core._pydantic_core.SchemaValidator' objects>",
     "pydantic validate_python (all, start-up included)"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile")
    parser.add_argument("--updates", type=int, default=2500)
    args = parser.parse_args()
    stats = pstats.Stats(args.profile).stats  # type: ignore[attr-defined]
    print("| layer | calls | cumulative | per update |\n|---|---|---|---|")
    for path, function, label in ROWS:
        found = [(calls, cumulative) for (file, _, name), (_, calls, _, cumulative, _) in stats.items()
                 if file.endswith(path) and name == function]
        if found:
            calls, cumulative = max(found, key=lambda x: x[1])
            print(f"| {label} | {calls:,} | {cumulative:.2f} s | {cumulative / args.updates * 1000:.2f} ms |")


if __name__ == "__main__":
    main()
