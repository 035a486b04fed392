"""`gocua run telegram --webhook-url … --workers N` as an operator runs it: real processes on a
real SQLite file (the fault tests on PostgreSQL are in tests/test_scale_faults.py)."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.fakes.telegram_api import FakeTelegramAPI, FakeUser
from tests.scale_harness import HOST, ROOT, Platform, start_bot

SECRET = "workers-secret-1"


def _running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _updates_handled(metrics: str) -> float:
    found = re.search(r'^gocua_updates_total\{channel="telegram",outcome="handled"\} (\S+)$',
                      metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_two_workers_share_the_port_and_report_metrics_together(tmp_path: Path):
    """Both workers take connections; /metrics on whichever worker answers counts the updates
    of both; SIGTERM stops the group cleanly."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'gocua.db'}"
    async with FakeTelegramAPI() as api:
        bot = start_bot(url, api, SECRET, tmp_path / "bot.log", workers=2, log_level="INFO")
        try:
            await bot.wait_ready()
            assert len(api.calls_to("setWebhook")) == 1, "only worker 0 registers the webhook"
            users = [FakeUser(900 + n, f"Cư dân {n}", language_code="vi") for n in range(12)]
            async with Platform(bot.url, SECRET) as platform:
                await asyncio.gather(*(platform.deliver(api.message(user, "/help"))
                                       for user in users))
            await api.wait_for("sendMessage", count=12, timeout=10)
            scrapes = []
            async with aiohttp.ClientSession() as http:
                for _ in range(6):  # new connections: the kernel hands them to either worker
                    async with http.get(f"http://{HOST}:{bot.port}/metrics",
                                        headers={"Connection": "close"}) as resp:
                        scrapes.append(_updates_handled(await resp.text()))
            assert scrapes == [12.0] * 6
        finally:
            assert await bot.stop() == 0
    log = bot.log_text()
    assert "workers.started" in log and "workers.stopped" in log and "Traceback" not in log


async def test_a_worker_that_cannot_listen_stops_the_group_with_one_error(tmp_path: Path):
    """The port is held by another program: the group exits 2 with one line saying so, instead
    of starting its workers again and again."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'gocua.db'}"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with FakeTelegramAPI() as api:
            env = {"GOCUA_DATABASE_URL": url, "TELEGRAM_BOT_TOKEN": api.token,
                   "TELEGRAM_API_BASE": api.base_url, "GOCUA_WEBHOOK_SECRET": SECRET,
                   "PATH": "/usr/bin:/bin"}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", "telegram", "--workers", "2",
                "--webhook-url", f"http://{HOST}:{port}/tg", "--host", HOST, "--port", str(port),
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2
    assert f"cannot listen on {HOST}:{port}" in err.decode()
    assert err.decode().count("workers.died") == 0


def test_workers_need_a_webhook():
    """Long polling has one consumer per bot: --workers without --webhook-url is refused."""
    done = subprocess.run([sys.executable, "-m", "bot", "run", "telegram", "--workers", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={"TELEGRAM_BOT_TOKEN": "1:abc", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert done.stderr.strip() == ("gocua: error: --workers needs --webhook-url: with long polling "
                                   "only one process may take a bot's updates")


async def test_workers_do_not_outlive_a_killed_parent(tmp_path: Path):
    """kill -9 of the group's parent: its workers notice within seconds and stop, so that a
    restarted group does not share the port with orphans."""
    import os
    import signal

    url = f"sqlite+aiosqlite:///{tmp_path / 'gocua.db'}"
    async with FakeTelegramAPI() as api:
        bot = start_bot(url, api, SECRET, tmp_path / "bot.log", workers=2)
        try:
            await bot.wait_ready()
            workers = bot.worker_pids()
            os.kill(bot.proc.pid, signal.SIGKILL)
            for _ in range(150):
                if not any(_running(pid) for pid in workers):
                    break
                await asyncio.sleep(0.1)
        finally:
            await bot.stop()
        alive = [pid for pid in workers if _running(pid)]
    assert alive == []
    assert "workers.orphaned" in bot.log_text()
