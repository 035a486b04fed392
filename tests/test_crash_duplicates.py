"""kill -9 of real workers in the middle of a burst, then every update delivered again: no
update's replies go out again once the platform got its HTTP 200, and every update is answered
(README, "Duplicates after a crash")."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path

from tests.fakes.telegram_api import FakeTelegramAPI, FakeUser
from tests.scale_harness import Platform, start_bot

SECRET = "crash-secret-77"
RESIDENTS = 150
FIRST_CHAT = 860_000_000
LEASE_SECONDS = 1.0


async def _wait_until(check, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_no_reply_is_sent_again_after_its_200_across_a_kill(database_url: str, tmp_path: Path):
    """The workers killed with SIGKILL mid-burst and every update delivered again afterwards:
    each update is answered at least once, and none is answered after the platform got its 200."""
    async with FakeTelegramAPI() as api:
        residents = [FakeUser(FIRST_CHAT + n, f"Cư dân {n}", language_code="vi")
                     for n in range(RESIDENTS)]
        updates = [api.message(resident, "/help") for resident in residents]
        chat_of = {u["update_id"]: u["message"]["chat"]["id"] for u in updates}
        bot = start_bot(database_url, api, SECRET, tmp_path / "bot.log", workers=2,
                        lease_seconds=LEASE_SECONDS)
        try:
            await bot.wait_ready()
            async with Platform(bot.url, SECRET, retry_pause=0.2) as platform:
                burst = asyncio.gather(*(platform.deliver(u) for u in updates))
                await _wait_until(lambda: len(platform.acknowledged) >= RESIDENTS // 3)
                for pid in bot.worker_pids():  # both: whichever holds deliveries now
                    os.kill(pid, signal.SIGKILL)
                await burst
                await asyncio.sleep(LEASE_SECONDS * 2)  # every lease of the dead worker ran out
                await asyncio.gather(*(platform.deliver(u) for u in updates))
                await asyncio.sleep(0.5)
                first_ack = {chat_of[u]: at for u, at in platform.first_acknowledged.items()}
        finally:
            await bot.stop()
    assert "workers.died" in bot.log_text(), "no worker was killed: nothing tested"
    assert platform.refused, "the kill cut no delivery: nothing tested"
    sends = [call for call in api.calls if call.method == "sendMessage"]
    per_chat = Counter(call.params["chat_id"] for call in sends)
    after_200 = Counter(call.params["chat_id"] for call in sends
                        if call.at > first_ack[call.params["chat_id"]])
    print(f"\n[kill -9] updates={RESIDENTS}, deliveries={platform.posts}, "
          f"refused={dict(platform.refused)}, answered_twice={sum(n > 1 for n in per_chat.values())}, "
          f"sent_after_200={sum(after_200.values())}")
    assert all(per_chat[r.id] >= 1 for r in residents), "an update was never answered"
    assert sum(after_200.values()) == 0
