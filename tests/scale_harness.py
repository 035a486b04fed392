"""Real worker processes for the scale-out and fault tests.

- `start_bot`: `gocua run telegram --webhook-url … [--workers N]` as a subprocess on a real
  database, talking to the Telegram stand-in (tests/fakes/telegram_api.py).
- `Platform`: delivers updates to the webhook as Telegram does: a chat's updates one after
  another, each posted again after a pause until the bot answers 200 (a refused or cut
  connection and an error status all mean "not delivered").
- `volunteer_scripts`: volunteers at the door pressing through procedure runs, as Telegram
  updates; `prepare_volunteers` makes their invites and runs in the database.
- `snapshot`: what the volunteers' work left in the database, comparable between two runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import select

from bench.gocua_setup import prepare_app
from bench.throughput import flow_path
from bot.app import open_app
from bot.config import Settings
from db.models import FlowRun, Identity, StepRecord
from tests.fakes.telegram_api import SECRET_HEADER, FakeTelegramAPI, FakeUser
from tests.process_env import clean_env

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
WEBHOOK_PATH = "/tg"
FLOW = "vneid"
AREA = "danang.hai-van"
FIRST_CHAT = 810_000_000


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _children(pid: int) -> list[int]:
    """The child processes of every thread of `pid` (the fork server is started from a thread)."""
    children = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                children += [int(child) for child in (task / "children").read_text().split()]
    return children


@dataclass
class Bot:
    """A running `gocua run telegram` (a worker group's parent when workers > 1)."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    workers: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}{WEBHOOK_PATH}"

    def worker_pids(self) -> list[int]:
        """The worker processes, or the process itself when alone. A group's workers are the
        children of its fork server, which is a child of the parent (bot/workers.py)."""
        if self.workers == 1:
            return [self.proc.pid]
        return [pid for child in _children(self.proc.pid) for pid in _children(child)]

    def listening(self) -> int:
        """How many worker processes listen on the port already (a worker still starting
        would get no connection: the kernel spreads them over the listening sockets only)."""
        listening = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with contextlib.suppress(OSError):
                for line in Path(table).read_text().splitlines()[1:]:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == self.port:
                        listening.add(fields[9])
        count = 0
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                fds = Path(f"/proc/{pid}/fd")
                inodes = {os.readlink(fd)[8:-1] for fd in fds.iterdir()
                          if os.readlink(fd).startswith("socket:[")}
                count += bool(inodes & listening)
        return count

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def wait_ready(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Until every worker runs and the server answers /healthz."""
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"the bot exited ({self.proc.returncode}):\n{self.log_text()}")
                if self.listening() == self.workers:
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                        async with http.get(f"http://{HOST}:{self.port}/healthz",
                                            timeout=aiohttp.ClientTimeout(total=2)) as resp:
                            if resp.status == 200:
                                return
                await asyncio.sleep(0.1)
        raise AssertionError(f"the bot was not ready after {timeout:.0f} s:\n{self.log_text()}")

    async def stop(self, timeout: float = 45.0) -> int:  # noqa: ASYNC109
        """SIGTERM (a clean stop: workers drain), SIGKILL to the whole group if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        return self.proc.returncode


def start_bot(database_url: str, api: FakeTelegramAPI, secret: str, log: Path, *,
              workers: int = 1, lease_seconds: float = 2.0, log_level: str = "WARNING") -> Bot:
    port = free_port()
    env = clean_env("GOCUA_", "TELEGRAM_", "ZALO_", "PROMETHEUS_")
    env.update({
        "GOCUA_DATABASE_URL": database_url, "TELEGRAM_BOT_TOKEN": api.token,
        "TELEGRAM_API_BASE": api.base_url, "GOCUA_WEBHOOK_SECRET": secret,
        "GOCUA_SEND_LEASE_SECONDS": str(lease_seconds), "PYTHONDONTWRITEBYTECODE": "1",
    })
    argv = [sys.executable, "-m", "bot", "--log-level", log_level, "run", "telegram",
            "--webhook-url", f"http://{HOST}:{port}{WEBHOOK_PATH}", "--host", HOST,
            "--port", str(port)]
    if workers > 1:
        argv += ["--workers", str(workers)]
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return Bot(proc, port, log, workers)


@dataclass
class Platform:
    """Telegram's side of the webhook: delivers until acknowledged, and counts."""

    url: str
    secret: str
    retry_pause: float = 0.05
    give_up_after: float = 120.0
    posts: int = 0  # every POST, redeliveries included
    acknowledged: Counter[int] = field(default_factory=Counter)  # update id → 200s received
    first_acknowledged: dict[int, float] = field(default_factory=dict)  # update id → monotonic time
    refused: Counter[str] = field(default_factory=Counter)  # why a POST was not a 200
    _http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Platform:
        self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()

    async def deliver(self, update: dict[str, Any]) -> None:
        """POST `update` until the bot answers 200."""
        assert self._http is not None
        deadline = time.monotonic() + self.give_up_after
        headers = {SECRET_HEADER: self.secret}
        while True:
            self.posts += 1
            try:
                async with self._http.post(self.url, json=update, headers=headers,
                                           timeout=aiohttp.ClientTimeout(total=30)) as resp:
                    await resp.read()
                    if resp.status == 200:
                        self.first_acknowledged.setdefault(update["update_id"], time.monotonic())
                        self.acknowledged[update["update_id"]] += 1
                        return
                    self.refused[f"HTTP {resp.status}"] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.refused[type(exc).__name__] += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"update {update['update_id']} was never acknowledged")
            await asyncio.sleep(self.retry_pause)

    async def deliver_chat(self, script: list[Delivery]) -> None:
        """A chat's updates in order; a duplicate delivery is posted at the same time as the
        original (`together`) or again right after it was acknowledged."""
        for item in script:
            if item.together:
                await asyncio.gather(self.deliver(item.update), self.deliver(item.update))
            else:
                await self.deliver(item.update)
            if item.again:
                await self.deliver(item.update)


@dataclass(frozen=True)
class Delivery:
    update: dict[str, Any]
    together: bool = False  # delivered twice at once (two connections)
    again: bool = False  # delivered again after it was acknowledged
    records: int = 0  # step records this update should write (a fresh, in-order press)


@dataclass(frozen=True)
class Volunteer:
    user: FakeUser
    invite: str
    runs: tuple[int, ...]


async def prepare_volunteers(database_url: str, count: int, runs_each: int) -> list[Volunteer]:
    """Demo data, `count` volunteer invites for Hải Vân and `runs_each` runs of the vneid
    procedure at their first step per volunteer (bench/gocua_setup.py)."""
    app = await open_app(Settings(database_url=database_url), migrate=False)
    try:
        codes, runs = await prepare_app(app, count, AREA, runs_each, FLOW)
    finally:
        await app.close()
    return [Volunteer(FakeUser(FIRST_CHAT + i, f"TNV {i}", language_code="vi"), code, tuple(own))
            for i, (code, own) in enumerate(zip(codes, runs, strict=True))]


def volunteer_scripts(api: FakeTelegramAPI, volunteers: list[Volunteer], *, updates_each: int | None = None,
                      stale_share: float = 0.0, together_share: float = 0.0,
                      again_share: float = 0.0, seed: int = 7) -> list[list[Delivery]]:
    """Per volunteer: `/start CODE`, then the presses of each run's steps in order (every press
    records one step), with stale presses (a button of a step already answered) and duplicate
    deliveries mixed in at the given shares; cut at `updates_each` updates if given."""
    rng = random.Random(seed)
    path = flow_path(FLOW)
    scripts: list[list[Delivery]] = []
    for volunteer in volunteers:
        user = volunteer.user
        script = [Delivery(api.message(user, f"/start {volunteer.invite}"))]
        for run in volunteer.runs:
            for index, token in enumerate(path):
                if index and rng.random() < stale_share:
                    stale = api.callback(user, f"f:{run}:{path[index - 1]}", message_id=1)
                    script.append(Delivery(stale))
                press = api.callback(user, f"f:{run}:{token}", message_id=1)
                script.append(Delivery(press, together=rng.random() < together_share,
                                       again=rng.random() < again_share, records=1))
        scripts.append(script[:updates_each] if updates_each else script)
    return scripts


async def run_scripts(platform: Platform, scripts: list[list[Delivery]]) -> None:
    """Every chat at once, each in its own order (interleaved however the bot answers)."""
    await asyncio.gather(*(platform.deliver_chat(script) for script in scripts))


async def run_scripts_in_order(platform: Platform, scripts: list[list[Delivery]]) -> None:
    """One update at a time: the chats' updates taken round-robin, duplicates one after another."""
    longest = max(len(s) for s in scripts)
    for position in range(longest):
        for script in scripts:
            if position < len(script):
                item = script[position]
                await platform.deliver(item.update)
                if item.together or item.again:
                    await platform.deliver(item.update)


async def snapshot(database_url: str) -> dict[str, Any]:
    """The step records (with the Telegram user who recorded them) and the runs' states."""
    app = await open_app(Settings(database_url=database_url), migrate=False)
    try:
        async with app.db.transaction() as session:
            chat_of = dict((await session.execute(
                select(Identity.user_id, Identity.external_id).where(Identity.channel == "telegram"))).all())
            records = sorted(
                (r.run_id, r.step_id, r.attempt, r.outcome, r.reason or "", r.value or "",
                 chat_of.get(r.user_id, "?"))
                for r in await session.scalars(select(StepRecord)))
            runs = sorted((r.id, r.status, r.current_step or "")
                          for r in await session.scalars(select(FlowRun)))
    finally:
        await app.close()
    return {"records": records, "runs": runs}
