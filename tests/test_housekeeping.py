"""The bookkeeping tables are pruned: handled updates after a week, sent notices after a month;
what is still owed stays."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta

from db.models import Notice, ProcessedUpdate
from db.repo.housekeeping import prune
from db.repo.notices import add_notices, mark_sent
from tests.chat import Talker, all_rows, count_rows
from tests.scale_harness import ROOT


async def test_old_updates_and_sent_notices_go_what_is_recent_or_owed_stays(app, clock):
    talker = Talker(app, "ba-tu", lang="en")
    for n in range(7):
        await talker.say("/help", update_id=f"old-{n}")
    await app.core.flush_sent()
    async with app.db.transaction() as session:
        await add_notices(session, [("telegram", "1", {"text": "sent long ago"}),
                                    ("telegram", "2", {"text": "never sent"})], clock())
    [sent, _] = await all_rows(app, Notice)
    async with app.db.transaction() as session:
        await mark_sent(session, [sent.id], clock())
    clock.advance(days=40)
    await talker.say("/help", update_id="new-1")
    await app.core.flush_sent()

    pruned = await prune(app.db.transaction, clock(), batch=3)

    assert (pruned.processed_updates, pruned.notices) == (7, 1)
    assert [row.update_id for row in await all_rows(app, ProcessedUpdate)] == ["new-1"]
    assert [row.reply["text"] for row in await all_rows(app, Notice)] == ["never sent"]
    # A pruned update delivered again after all this time is handled as new, not lost.
    assert await talker.say("/help", update_id="old-1")
    assert await prune(app.db.transaction, clock()) == type(pruned)(0, 0)


async def test_a_week_is_kept(app, clock):
    talker = Talker(app, "ba-nam", lang="en")
    await talker.say("/help", update_id="w-1")
    clock.advance(days=6, hours=23)
    assert (await prune(app.db.transaction, clock())).processed_updates == 0
    assert await count_rows(app, ProcessedUpdate) == 1
    clock.advance(hours=2)
    assert (await prune(app.db.transaction, clock(), processed_keep=timedelta(days=7))
            ).processed_updates == 1


def test_gocua_db_prune(tmp_path):
    env = {"GOCUA_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "-m", "bot", "db"]
    subprocess.run([*run, "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    done = subprocess.run([*run, "prune", "--days", "3"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("deleted 0 handled updates older than 3 days")
    bad = subprocess.run([*run, "prune", "--days", "0"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60)
    assert (bad.returncode, bad.stderr.strip()) == (2, "gocua: error: --days must be between 1 and 3650")


async def test_the_serving_process_prunes_by_itself(app, clock):
    """The housekeeper every worker runs prunes without anybody asking."""
    import asyncio

    from bot.housekeeping import Housekeeper

    await Talker(app, "ba-sau", lang="en").say("/help", update_id="h-1")
    await app.core.flush_sent()
    clock.advance(days=8)
    housekeeper = Housekeeper(app.db, clock, first_delay=0.01, interval=0.01).start()
    try:
        for _ in range(200):
            if await count_rows(app, ProcessedUpdate) == 0:
                break
            await asyncio.sleep(0.02)
    finally:
        await housekeeper.stop()
    assert await count_rows(app, ProcessedUpdate) == 0
