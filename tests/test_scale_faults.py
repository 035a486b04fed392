"""Faults done for real on a worker group: `gocua run telegram --webhook-url … --workers 2`
on PostgreSQL, fed by a platform that redelivers what was not acknowledged (tests/scale_harness.py).

Each test prints one line of counts (run pytest with -s to see them): updates, deliveries,
step records expected and written, lost and doubled.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.telegram_api import FakeTelegramAPI
from tests.scale_harness import (
    Bot,
    Delivery,
    Platform,
    prepare_volunteers,
    run_scripts,
    run_scripts_in_order,
    snapshot,
    start_bot,
    volunteer_scripts,
)

pytestmark = pytest.mark.postgres

SECRET = "scale-secret-42"
REPLY_METHODS = ("sendMessage", "editMessageText")


def _expected_records(scripts: list[list[Delivery]]) -> int:
    return sum(item.records for script in scripts for item in script)


def _lost_and_doubled(records: list[tuple], expected: int) -> tuple[int, int]:
    """(presses that left no record, records of a (run, step) written more than once)."""
    per_step = Counter((run, step) for run, step, *_ in records)
    doubled = sum(n - 1 for n in per_step.values() if n > 1)
    return expected - len(per_step), doubled


def _chats_missing_replies(api: FakeTelegramAPI, volunteers: list) -> int:
    """Chats that got fewer replies than the others. Every chat has the same script, so without
    faults each gets the same number; a resend after a fault adds, a lost reply takes away."""
    replies = _replies_per_chat(api)
    usual = Counter(replies[v.user.id] for v in volunteers).most_common(1)[0][0]
    return sum(1 for v in volunteers if replies[v.user.id] < usual)


def _replies_per_chat(api: FakeTelegramAPI) -> Counter[int]:
    return Counter(call.params.get("chat_id") for call in api.calls if call.method in REPLY_METHODS)


def _report(name: str, **counts: object) -> None:
    print(f"\n[{name}] " + ", ".join(f"{k}={v}" for k, v in counts.items()))


async def _wait_until(check, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


@dataclass
class Burst:
    """What a burst with a fault left: the counts the note reports, and the runs' states."""

    counts: dict[str, object]
    runs: list[tuple]
    bot: Bot
    kept_workers: bool  # the same worker processes before and after the fault

    @property
    def lost_doubled_unanswered(self) -> tuple[object, object, object]:
        return self.counts["lost"], self.counts["doubled"], self.counts["chats_missing_replies"]


Fault = Callable[[Bot, FakeTelegramAPI, Platform, int], Awaitable[None]]


async def _burst_with_fault(name: str, postgres_url: str, tmp_path: Path, fault: Fault, *,
                            volunteers: int = 30, retry_pause: float = 0.05) -> Burst:
    """`volunteers` chats press through two procedure runs each on a group of 2 workers; once a
    third of the updates are acknowledged, `fault(bot, api, platform, total)` runs while the
    burst goes on. Afterwards: updates, deliveries, refusals, records expected and written,
    lost, doubled, and chats that got fewer replies than the others."""
    people = await prepare_volunteers(postgres_url, volunteers, runs_each=2)
    async with FakeTelegramAPI() as api:
        scripts = volunteer_scripts(api, people)
        total = sum(len(script) for script in scripts)
        bot = start_bot(postgres_url, api, SECRET, tmp_path / "bot.log", workers=2)
        try:
            await bot.wait_ready()
            workers_before = sorted(bot.worker_pids())
            async with Platform(bot.url, SECRET, retry_pause=retry_pause) as platform:
                burst = asyncio.create_task(run_scripts(platform, scripts))
                await _wait_until(lambda: sum(platform.acknowledged.values()) >= total // 3)
                await fault(bot, api, platform, total)
                await burst
            kept_workers = sorted(bot.worker_pids()) == workers_before
        finally:
            await bot.stop()
        unanswered = _chats_missing_replies(api, people)
        reply_calls = sum(_replies_per_chat(api).values())
    state = await snapshot(postgres_url)
    expected = _expected_records(scripts)
    lost, doubled = _lost_and_doubled(state["records"], expected)
    counts: dict[str, object] = {
        "updates": total, "deliveries": platform.posts, "refused": dict(platform.refused),
        "records_expected": expected, "records_written": len(state["records"]), "lost": lost,
        "doubled": doubled, "chats_missing_replies": unanswered, "reply_calls": reply_calls,
    }
    _report(name, **counts)
    return Burst(counts, state["runs"], bot, kept_workers)


async def test_a_worker_killed_mid_burst_loses_and_doubles_no_step(postgres_url, tmp_path: Path):
    """kill -9 of one of two workers while 30 volunteers press through their procedures: the
    platform redelivers what that worker had not acknowledged, the parent starts a new worker,
    and afterwards every step is recorded exactly once and every update was answered."""
    victims: list[int] = []

    async def kill_a_worker(bot: Bot, api: FakeTelegramAPI, platform: Platform, total: int) -> None:
        victims.append(bot.worker_pids()[0])
        os.kill(victims[0], signal.SIGKILL)

    burst = await _burst_with_fault("kill -9", postgres_url, tmp_path, kill_a_worker)
    bot = burst.bot
    assert "workers.died" in bot.log_text() and victims[0] not in bot.worker_pids()
    assert burst.lost_doubled_unanswered == (0, 0, 0)
    assert all(status == "completed" for _, status, _ in burst.runs)
    assert burst.counts["refused"], "the kill cut no delivery: the test did not test anything"


async def test_two_workers_write_what_one_ordered_worker_writes(postgres_url, tmp_path: Path):
    """60 volunteer chats, 1,200 updates interleaved across 2 workers, with duplicates (posted
    twice at once, or again after the answer) and stale buttons: the step records and the runs'
    states equal those of one worker handling the same updates one at a time. (2,000 updates until
    2026-12-07: the same races at 60 % of the suite's CPU for this test; `bench/scale.py` measures
    bigger loads.)"""
    async def one_round(workers: int) -> tuple[dict, list[list[Delivery]], Platform]:
        volunteers = await prepare_volunteers(postgres_url, 60, runs_each=2)
        async with FakeTelegramAPI() as api:
            scripts = volunteer_scripts(api, volunteers, updates_each=20, stale_share=0.15,
                                        together_share=0.05, again_share=0.05, seed=11)
            bot = start_bot(postgres_url, api, SECRET, tmp_path / f"bot-{workers}.log",
                            workers=workers)
            try:
                await bot.wait_ready()
                async with Platform(bot.url, SECRET) as platform:
                    if workers > 1:
                        await run_scripts(platform, scripts)
                    else:
                        await run_scripts_in_order(platform, scripts)
            finally:
                assert await bot.stop() == 0
        return await snapshot(postgres_url), scripts, platform

    parallel, scripts, platform = await one_round(workers=2)
    # The same volunteers, invites and runs again (identities restart), on one ordered worker.
    from tests.conftest import _truncate_postgres

    await _truncate_postgres(postgres_url)
    ordered, _, _ = await one_round(workers=1)

    updates = sum(len(script) for script in scripts)
    duplicates = sum(item.together + item.again for script in scripts for item in script)
    stale = sum(1 for script in scripts for item in script
                if "callback_query" in item.update and not item.records)
    expected = _expected_records(scripts)
    _, doubled = _lost_and_doubled(parallel["records"], expected)
    _report("2 workers vs 1 ordered", chats=len(scripts), updates=updates,
            duplicate_deliveries=duplicates, stale_presses=stale, deliveries=platform.posts,
            records_expected=expected, records_2_workers=len(parallel["records"]),
            records_1_worker=len(ordered["records"]), doubled=doubled)
    assert updates == 1200 and duplicates > 30 and stale > 60
    assert len(parallel["records"]) == expected
    assert parallel == ordered


RESTART_OPT_IN = "GOCUA_TEST_PG_RESTART"  # .ci/run sets it; a developer's `make test` does not


def _can_restart_postgres(url: str) -> str | None:
    """Why the test must not, or cannot, restart this machine's PostgreSQL; None if it may.
    It restarts the server the URL points at, every database on it: only when asked to."""
    if os.environ.get(RESTART_OPT_IN) != "1":
        return (f"restarts the PostgreSQL server at {url.rpartition('@')[2]}; "
                f"set {RESTART_OPT_IN}=1 to run it (.ci/run does)")
    if "127.0.0.1" not in url and "localhost" not in url:
        return "PostgreSQL is not local"
    if shutil.which("pg_ctlcluster") is None or not Path("/etc/postgresql").is_dir():
        return "no pg_ctlcluster here"
    if os.geteuid() != 0:
        return "restarting PostgreSQL needs root"
    return None


def _restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart",
                    "-m", "fast"], check=True, capture_output=True, timeout=60)


@pytest.mark.restarts_postgres
async def test_postgres_restarted_while_the_workers_run(postgres_url, tmp_path: Path):
    """PostgreSQL restarts in the middle of a burst: the workers answer errors while it is down
    (the platform delivers again), keep their processes, and afterwards every step is recorded
    exactly once."""
    reason = _can_restart_postgres(postgres_url)
    if reason:
        pytest.skip(reason)

    async def restart(bot: Bot, api: FakeTelegramAPI, platform: Platform, total: int) -> None:
        await asyncio.to_thread(_restart_postgres)

    burst = await _burst_with_fault("PostgreSQL restart", postgres_url, tmp_path, restart,
                                    retry_pause=0.2)
    assert burst.kept_workers, "a worker process was lost"
    assert burst.lost_doubled_unanswered == (0, 0, 0)
    assert burst.counts["refused"].get("HTTP 500"), "the restart refused nothing: nothing tested"


async def test_the_telegram_api_failing_under_load_loses_and_doubles_no_step(postgres_url,
                                                                            tmp_path: Path):
    """In the middle of a burst the Bot API answers 502 to 300 sends (an outage of some
    seconds), then 429 (retry after 1 s) to 20: sends are retried with back-off, an update
    whose replies could not be sent is answered 500 and delivered again, its replies then go
    out; no process crashes, every update is answered and every step recorded once."""
    async def outage(bot: Bot, api: FakeTelegramAPI, platform: Platform, total: int) -> None:
        for method in REPLY_METHODS:
            api.fail(method, status=502, times=150)
        await _wait_until(lambda: sum(platform.acknowledged.values()) >= total * 2 // 3, 60)
        api.fail("sendMessage", status=429, retry_after=1, times=20)

    burst = await _burst_with_fault("Bot API 502 and 429", postgres_url, tmp_path, outage,
                                    volunteers=20)
    assert burst.kept_workers and burst.bot.proc.returncode == 0
    assert burst.lost_doubled_unanswered == (0, 0, 0)
    assert burst.counts["refused"].get("HTTP 500"), "no update was left unsent: too short an outage"
