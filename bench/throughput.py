"""Updates per second through GoCua's real Telegram webhook path, against a bare aiogram echo bot.

Both bots run as their own processes behind the same kind of webhook (aiohttp server; the update
handled before the response, a secret token; aiogram's SimpleRequestHandler for the echo bot) and
talk to the same lean Telegram Bot API sink (bench/fake_api.py). This process is the load generator: it POSTs
Telegram Update JSON to the webhook with a fixed number of requests in flight, one update at a
time per chat (a chat's next update leaves only after the previous one was answered), and counts
completed webhook responses (HTTP 200: with handle_in_background=False the response comes back
after the bot has processed the update and sent its replies) per second. After each run it checks
that the sink saw exactly one sendMessage per update, chat by chat.

GoCua runs as `gocua run telegram --webhook-url ... --host 127.0.0.1 --port P` on a fresh SQLite
file with the demo data. The runs are interleaved (echo, gocua, echo, gocua, ...) and the best run
of each bot is compared. On a machine with two or more CPUs the bot under test is pinned to one
CPU and the load generator and the sink share the others, so that both bots get the same single
core and the load generator does not steal from them (--no-pin to turn it off).

    .venv/bin/python bench/throughput.py                 # 3,000 updates, 32 in flight, 200 chats
    .venv/bin/python bench/throughput.py --quick         # smoke run, well under 20 s
    .venv/bin/python bench/throughput.py --candidate echo   # A/A run: the harness's own noise

The last line printed is one JSON object:
{"echo_updates_per_s": x, "gocua_updates_per_s": y, "ratio": y/x, "updates": N, "concurrency": C,
 "scenario": "...", ...}. The exit status is 0 whether or not GoCua meets the target (0.5x); it is
1 when a bot could not be started or measured at all, 2 on a usage error.

Scenarios are pluggable: a scenario is a function that, given a chat, yields Telegram Update
dicts for that chat, one after the other (see SCENARIOS). Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import json
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:
    import aiohttp
except ImportError:  # run with a Python that lacks the project's dependencies
    aiohttp = None  # type: ignore[assignment]

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
HOST = "127.0.0.1"
TOKEN = "123456:TEST-bench"
TARGET_RATIO = 0.5
WEBHOOK_PATH = "/tg"
START_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 8.0
SATURATED_CPU = 0.85  # below this share of a core the bot was not the bottleneck
BUSY_MACHINE_CPU = 0.15  # more than this share of a core used by others: a noisy run


# --------------------------------------------------------------------------------------------
# Scenarios: a function that yields Update dicts for one chat.


@dataclass(frozen=True)
class Chat:
    index: int
    chat_id: int
    first_name: str
    role: str  # "resident" or "volunteer"
    invite: str | None = None  # a volunteer's invite code, claimed with /start CODE
    language: str = "vi"
    runs: tuple[int, ...] = ()  # flow_steps: the runs this volunteer answers, one after another


Update = dict[str, Any]
ChatUpdates = Callable[[Chat], Iterator[Update]]


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    updates: ChatUpdates
    volunteer_share: float = 0.1  # default share of chats that are volunteers (holding an invite)
    burst: bool = False  # measured: one update from each of --burst new chats; warm-up: start_help
    target: float = TARGET_RATIO  # GoCua's updates/s over the echo bot's that it should reach


def text_update(chat: Chat, text: str) -> Update:
    """A private text message from the chat's user. update_id, message_id and date are filled in
    by the load generator when the update is sent."""
    user = {"id": chat.chat_id, "is_bot": False, "first_name": chat.first_name,
            "language_code": chat.language}
    message: dict[str, Any] = {
        "chat": {"id": chat.chat_id, "type": "private", "first_name": chat.first_name},
        "from": user,
        "text": text,
    }
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
    return {"message": message}


def start_help(chat: Chat) -> Iterator[Update]:
    """Residents and volunteers sending /start and /help. A volunteer's first update claims an
    invite (/start CODE); every chat's first update falls in the warm-up."""
    yield text_update(chat, f"/start {chat.invite}" if chat.invite else "/start")
    while True:
        yield text_update(chat, "/help")
        yield text_update(chat, "/start")


BENCH_FLOW = "vneid"
_callback_ids = itertools.count(1)


@functools.cache
def flow_path(flow_id: str = BENCH_FLOW) -> tuple[str, ...]:
    """The button tokens of one run of the flow answered by pressing each step's first button
    (Done, Continue, the first option), computed with GoCua's pure engine."""
    from datetime import date

    from bot.app import FLOWS_DIR
    from conversations import engine
    from conversations.flow_model import load_flows

    flow = load_flows(FLOWS_DIR).latest(flow_id)
    today = date(2026, 1, 1)
    transition = engine.start(flow, today)
    tokens: list[str] = []
    while not transition.finished and len(tokens) < 100:
        shown = [e for e in transition.events if getattr(e, "buttons", None)]
        if not shown:
            break
        tokens.append(shown[-1].buttons[0].token)
        transition = engine.advance(flow, transition.new_state, engine.Pressed(tokens[-1]), today)
    return tuple(tokens)


def button_update(chat: Chat, data: str) -> Update:
    """A press of an inline button on a message the bot sent to this chat."""
    user = {"id": chat.chat_id, "is_bot": False, "first_name": chat.first_name,
            "language_code": chat.language}
    message = {"message_id": 1, "date": int(time.time()),
               "chat": {"id": chat.chat_id, "type": "private", "first_name": chat.first_name},
               "text": "…"}
    return {"callback_query": {"id": str(next(_callback_ids)), "from": user, "chat_instance": "bench",
                               "message": message, "data": data}}


def flow_steps(chat: Chat) -> Iterator[Update]:
    """Volunteers at the door: each presses through runs of the vneid procedure (Done on every
    task, the first option of every choice); every press records a step and shows the next.
    A volunteer who finished all their runs goes on with /households."""
    yield text_update(chat, f"/start {chat.invite}" if chat.invite else "/start")
    for run in chat.runs:
        for token in flow_path():
            yield button_update(chat, f"f:{run}:{token}")
    while True:
        yield text_update(chat, "/households")


def first_message(chat: Chat) -> Iterator[Update]:
    """Someone who never wrote before opens the bot (Telegram sends /start): one message each.
    Used by the `first_messages` scenario for the measured burst only (see Bench.run_once)."""
    yield text_update(chat, "/start")


SCENARIOS: dict[str, Scenario] = {
    "start_help": Scenario(
        name="start_help",
        description="residents and volunteers sending /start and /help",
        updates=start_help,
    ),
    "flow_steps": Scenario(
        name="flow_steps",
        description="volunteers answering the steps of a procedure with buttons",
        updates=flow_steps,
        volunteer_share=1.0,
    ),
    # The measured phase is a burst of distinct new users (--burst, 1,500), one /start each,
    # none of them seen in the warm-up (which is start_help over the --chats warm-up chats).
    "first_messages": Scenario(
        name="first_messages",
        description="a burst of first messages: distinct new users writing once each",
        updates=first_message,
        burst=True,
        target=0.6,
    ),
}

BURST_CHAT_BASE = 710_000_000  # the burst's chat ids: never used by the warm-up's chats


def burst_chats(count: int) -> list[Chat]:
    return [Chat(i, BURST_CHAT_BASE + i, f"Người dân {i + 1}", "resident") for i in range(count)]


def make_chats(count: int, volunteers: int, invites: list[str] | None,
               runs: list[list[int]] | None = None, runs_each: int = 0) -> list[Chat]:
    """Chats 0..count-1; every k-th one is a volunteer so that volunteers are spread evenly."""
    step = count / volunteers if volunteers else 0
    volunteer_at = {int(i * step) for i in range(volunteers)}
    chats: list[Chat] = []
    vol = 0
    for i in range(count):
        if i in volunteer_at:
            code = invites[vol] if invites is not None else f"BENCH{vol:03d}"
            # The echo bot has no runs: it gets the same presses with made-up run ids.
            own = tuple(runs[vol]) if runs is not None else tuple(vol * 1000 + k for k in range(runs_each))
            chats.append(Chat(i, 700_000_000 + i, f"Tình nguyện viên {vol + 1}", "volunteer", code,
                              runs=own))
            vol += 1
        else:
            chats.append(Chat(i, 700_000_000 + i, f"Cư dân {i + 1}", "resident"))
    return chats


class Feed:
    """Per-chat update streams; assigns update ids (unique in the whole benchmark run)."""

    _update_ids = itertools.count(1)

    def __init__(self, scenario: Scenario, chats: list[Chat]) -> None:
        self.chats = chats
        self._streams = {chat.chat_id: scenario.updates(chat) for chat in chats}
        self._message_ids: Counter[int] = Counter()

    def next_body(self, chat: Chat) -> bytes:
        update = dict(next(self._streams[chat.chat_id]))
        update["update_id"] = next(self._update_ids)
        message = update.get("message")
        if isinstance(message, dict):
            message = dict(message)
            self._message_ids[chat.chat_id] += 1
            message.setdefault("message_id", self._message_ids[chat.chat_id])
            message.setdefault("date", int(time.time()))
            update["message"] = message
        return json.dumps(update).encode()


# --------------------------------------------------------------------------------------------
# Processes


class Processes:
    """Every subprocess this run started; all of them are stopped at the end, whatever happens."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], *, env: dict[str, str], log: Path,
              cpus: set[int] | None = None) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            proc = subprocess.Popen(argv, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        self._procs.append(proc)
        if cpus:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(proc.pid, cpus)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGINT (a clean shutdown: the webhook server closes, a profile is written), then
        SIGTERM, then SIGKILL, each with a bounded wait."""
        for sig, wait in ((signal.SIGINT, STOP_TIMEOUT_S), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
            if proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=wait)
        if proc in self._procs:
            self._procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self._procs)):
            self.stop(proc)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (VmRSS), 0 if it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine so far, from /proc/stat."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return 0.0, 0.0
    ticks = [int(x) for x in first[1:]]
    # user nice system idle iowait irq softirq steal ...
    busy = sum(ticks[i] for i in (0, 1, 2, 5, 6) if i < len(ticks))
    steal = ticks[7] if len(ticks) > 7 else 0
    hz = os.sysconf("SC_CLK_TCK")
    return busy / hz, steal / hz


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


# --------------------------------------------------------------------------------------------
# Load generation


@dataclass
class Phase:
    sent: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    per_chat: Counter[str] = field(default_factory=Counter)
    inline_replies: int = 0  # webhook responses that carried a method call instead of "{}"
    timed_out: bool = False

    def merge(self, other: Phase) -> None:
        """Add a later segment of the same load (its time, counts and latencies)."""
        self.sent += other.sent
        self.ok += other.ok
        self.errors += other.errors
        self.elapsed += other.elapsed
        self.latencies += other.latencies
        self.per_chat += other.per_chat
        self.inline_replies += other.inline_replies
        self.timed_out = self.timed_out or other.timed_out

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def drive(session: aiohttp.ClientSession, url: str, secret: str, feed: Feed, ready: deque[Chat],
                count: int, concurrency: int, max_seconds: float) -> Phase:
    """Send `count` updates with `concurrency` in flight, one at a time per chat, round-robin."""
    phase = Phase()
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret}
    remaining = count
    start = time.perf_counter()
    deadline = start + max_seconds
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            if time.perf_counter() > deadline:
                phase.timed_out = True
                return
            remaining -= 1
            chat = ready.popleft()  # never empty: there are at least `concurrency` chats
            body = feed.next_body(chat)
            phase.sent += 1
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers, timeout=timeout) as resp:
                    payload = await resp.read()
                    status = resp.status
            except (TimeoutError, aiohttp.ClientError) as exc:
                phase.errors[type(exc).__name__] += 1
            else:
                if status == 200:
                    phase.ok += 1
                    phase.latencies.append(time.perf_counter() - t0)
                    phase.per_chat[str(chat.chat_id)] += 1
                    if payload.strip() not in (b"{}", b""):
                        phase.inline_replies += 1
                else:
                    phase.errors[f"HTTP {status}"] += 1
            ready.append(chat)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.elapsed = time.perf_counter() - start
    return phase


async def sink_stats(session: aiohttp.ClientSession, sink_url: str) -> dict[str, Any]:
    async with session.get(f"{sink_url}/__stats") as resp:
        return dict(await resp.json())


async def sink_reset(session: aiohttp.ClientSession, sink_url: str) -> None:
    async with session.post(f"{sink_url}/__reset") as resp:
        await resp.read()


async def settled_stats(session: aiohttp.ClientSession, sink_url: str) -> dict[str, Any]:
    """Sink counters once they stop moving (bounded: at most ~3 s)."""
    last = await sink_stats(session, sink_url)
    for _ in range(30):
        await asyncio.sleep(0.1)
        now = await sink_stats(session, sink_url)
        if now == last:
            return now
        last = now
    return last


async def wait_ready(session: aiohttp.ClientSession, proc: subprocess.Popen[bytes], url: str,
                     log: Path, what: str) -> float:
    """Poll GET url (a health check) until it answers 200; returns the seconds it took."""
    start = time.perf_counter()
    while time.perf_counter() - start < START_TIMEOUT_S:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with status {proc.returncode} before it was ready:\n"
                             f"{log_tail(log)}")
        with contextlib.suppress(TimeoutError, aiohttp.ClientError):
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
                await resp.read()
                if resp.status == 200:
                    return time.perf_counter() - start
        await asyncio.sleep(0.1)
    raise BenchError(f"{what} was not ready after {START_TIMEOUT_S:.0f} s:\n{log_tail(log)}")


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# One measured run of one bot


@dataclass
class RunResult:
    bot: str
    round: int
    measured: Phase
    warmup: Phase
    bot_cpu: float  # share of one core during the measured phase
    sink_cpu: float
    loadgen_cpu: float
    other_cpu: float  # CPU used by everything else on the machine (other processes, kernel)
    steal_cpu: float  # CPU the hypervisor took away (virtual machines)
    startup_s: float
    send_message: int = 0
    mismatched_chats: list[tuple[str, int, int]] = field(default_factory=list)
    lagging_replies: int = 0  # replies still missing when the last webhook response came back
    secret_enforced: bool = True
    other_methods: dict[str, int] = field(default_factory=dict)
    rss: dict[int, int] = field(default_factory=dict)  # updates handled so far -> bot's RSS bytes

    @property
    def rate(self) -> float:
        return self.measured.rate

    @property
    def cpu_ms_per_update(self) -> float:
        """The bot's CPU time per measured update: unlike updates/s, hardly moved by other
        processes taking turns on the bot's core."""
        m = self.measured
        return self.bot_cpu * m.elapsed / m.ok * 1000 if m.ok else float("nan")

    @property
    def noisy(self) -> bool:
        return self.other_cpu > BUSY_MACHINE_CPU or self.steal_cpu > BUSY_MACHINE_CPU

    @property
    def problems(self) -> list[str]:
        found = []
        if self.measured.errors or self.warmup.errors:
            errs = self.measured.errors + self.warmup.errors
            found.append("errors: " + ", ".join(f"{k} x{v}" for k, v in errs.most_common()))
        if self.mismatched_chats:
            sample = ", ".join(f"chat {c}: {got} sent for {want} updates"
                               for c, want, got in self.mismatched_chats[:3])
            found.append(f"sendMessage count differs from updates in {len(self.mismatched_chats)} "
                         f"chats ({sample})")
        if self.measured.inline_replies:
            found.append(f"{self.measured.inline_replies} webhook responses carried a method call")
        if self.lagging_replies:
            found.append(f"{self.lagging_replies} replies were sent after the webhook response "
                         "(is the update handled in the background?)")
        if not self.secret_enforced:
            found.append("a request with a wrong secret token was accepted")
        if self.measured.timed_out:
            found.append("the time bound was reached before all updates were sent")
        return found


@dataclass
class Options:
    updates: int
    concurrency: int
    chats: int
    volunteers: int
    warmup: int
    rounds: int
    scenario: Scenario
    candidate: str
    max_seconds: float
    retry_noisy: int
    pin: bool
    profile: Path | None
    keep: bool
    burst: int = 1500
    rss_at: tuple[int, ...] = ()


class Bench:
    def __init__(self, opts: Options, workdir: Path, procs: Processes) -> None:
        self.opts = opts
        self.workdir = workdir
        self.procs = procs
        self.secret = secrets.token_urlsafe(24)
        self.sink_port = free_port()
        self.sink_url = f"http://{HOST}:{self.sink_port}"
        self.bot_cpus, self.harness_cpus = _cpu_split() if opts.pin else (None, None)
        self.python = sys.executable
        gocua = ROOT / ".venv" / "bin" / "gocua"
        self.gocua = str(gocua) if gocua.exists() else "gocua"
        self.sink_pid = 0

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GOCUA_", "TELEGRAM_", "ZALO_"))}
        env.update({
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_BASE": self.sink_url,
            "GOCUA_WEBHOOK_SECRET": self.secret,
            "PYTHONDONTWRITEBYTECODE": "1",
        })
        return env

    async def start_sink(self, session: aiohttp.ClientSession) -> None:
        log = self.workdir / "fake_api.log"
        proc = self.procs.start([self.python, str(BENCH / "fake_api.py"), "--host", HOST,
                                 "--port", str(self.sink_port)], env=self.base_env(), log=log)
        self.sink_pid = proc.pid
        await wait_ready(session, proc, f"{self.sink_url}/__health", log, "the fake Telegram API")

    def runs_each(self) -> int:
        """Runs per volunteer for flow_steps: enough presses for the whole load, and some."""
        opts = self.opts
        if opts.scenario.name != "flow_steps" or not opts.volunteers:
            return 0
        per_chat = (opts.updates + opts.warmup) / max(1, opts.chats) + 2
        return int(per_chat / max(1, len(flow_path()))) + 2

    def prepare_gocua(
        self, round_no: int, volunteers: int
    ) -> tuple[dict[str, str], list[str], list[list[int]]]:
        # One database per attempt: a noisy run retried in the same round starts afresh.
        attempt = sum(1 for _ in self.workdir.glob(f"gocua-round{round_no}-*.db")) + 1
        db = self.workdir / f"gocua-round{round_no}-{attempt}.db"
        env = self.base_env() | {"GOCUA_DATABASE_URL": f"sqlite+aiosqlite:///{db}"}
        done = subprocess.run(
            [self.python, str(BENCH / "gocua_setup.py"), "--volunteers", str(volunteers),
             "--runs-per-volunteer", str(self.runs_each()), "--flow", BENCH_FLOW],
            env=env, cwd=ROOT, capture_output=True, timeout=120, check=False,
        )
        if done.returncode != 0:
            raise BenchError("preparing the GoCua database failed:\n"
                             + (done.stderr or done.stdout).decode(errors="replace")[-3000:])
        prepared = json.loads(done.stdout.decode().strip().splitlines()[-1])
        return env, list(prepared["invites"]), [list(r) for r in prepared.get("runs", [])]

    def bot_command(self, bot: str, port: int, round_no: int) -> list[str]:
        webhook = f"http://{HOST}:{port}{WEBHOOK_PATH}"
        common = ["--webhook-url", webhook, "--host", HOST, "--port", str(port)]
        if bot == "echo":
            return [self.python, str(BENCH / "echo_bot.py"), *common, "--log-level", "WARNING"]
        prefix = [self.gocua]
        if self.opts.profile is not None:
            out = self.opts.profile.with_name(f"{self.opts.profile.stem}-round{round_no}"
                                              f"{self.opts.profile.suffix or '.prof'}")
            prefix = [self.python, "-m", "cProfile", "-o", str(out), "-m", "bot"]
        return [*prefix, "--log-level", "WARNING", "run", "telegram", *common]

    async def run_once(self, session: aiohttp.ClientSession, bot: str, round_no: int) -> RunResult:
        opts = self.opts
        port = free_port()
        log = self.workdir / f"{bot}-round{round_no}.log"
        if bot == "gocua":
            env, invites, runs = self.prepare_gocua(round_no, opts.volunteers)
        else:
            env, invites, runs = self.base_env(), None, None
        chats = make_chats(opts.chats, opts.volunteers, invites, runs, self.runs_each())
        if opts.scenario.burst:
            # Warm up on other chats; the measured burst's users have never written before.
            feed = Feed(SCENARIOS["start_help"], chats)
            burst = burst_chats(opts.burst)
            measured_feed, measured_ready = Feed(opts.scenario, burst), deque(burst)
        else:
            feed = Feed(opts.scenario, chats)
        await sink_reset(session, self.sink_url)
        started = time.perf_counter()
        proc = self.procs.start(self.bot_command(bot, port, round_no), env=env, log=log,
                                cpus=self.bot_cpus)
        try:
            await wait_ready(session, proc, f"http://{HOST}:{port}/healthz", log, f"the {bot} bot")
            startup = time.perf_counter() - started
            url = f"http://{HOST}:{port}{WEBHOOK_PATH}"
            secret_enforced = await self._secret_enforced(session, url)
            ready = deque(chats)
            # Warm-up: every chat's first update (sign-up, invite claims), then more of the same.
            warmed = opts.chats + opts.warmup
            warmup = await drive(session, url, self.secret, feed, ready, warmed,
                                 opts.concurrency, opts.max_seconds)
            await settled_stats(session, self.sink_url)
            await sink_reset(session, self.sink_url)
            if not opts.scenario.burst:
                measured_feed, measured_ready = feed, ready
            rss: dict[int, int] = {}
            cpu0 = (cpu_seconds(proc.pid), cpu_seconds(self.sink_pid), own_cpu_seconds(),
                    *machine_cpu_seconds())
            # --rss-at: the measured load in segments, the bot's resident memory read after
            # each checkpoint (counted in updates since start, warm-up included).
            measured = Phase()
            done = 0
            for stop in [*(c - warmed for c in opts.rss_at if warmed < c < warmed + opts.updates),
                         opts.updates]:
                part = await drive(session, url, self.secret, measured_feed, measured_ready,
                                   stop - done, opts.concurrency, opts.max_seconds)
                measured.merge(part)
                done = stop
                rss[warmed + done] = rss_bytes(proc.pid)
            cpu1 = (cpu_seconds(proc.pid), cpu_seconds(self.sink_pid), own_cpu_seconds(),
                    *machine_cpu_seconds())
            at_end = await sink_stats(session, self.sink_url)
            stats = await settled_stats(session, self.sink_url)
            if proc.poll() is not None:
                raise BenchError(f"the {bot} bot exited during the run:\n{log_tail(log)}")
        finally:
            self.procs.stop(proc)
        wall = measured.elapsed or 1.0
        sent = {str(k): int(v) for k, v in stats.get("send_message", {}).items()}
        mismatched = [(chat, want, sent.get(chat, 0)) for chat, want in measured.per_chat.items()
                      if sent.get(chat, 0) != want]
        mismatched += [(chat, 0, got) for chat, got in sent.items() if chat not in measured.per_chat]
        total_sent = sum(sent.values())
        lag = max(0, total_sent - sum(int(v) for v in at_end.get("send_message", {}).values()))
        methods = {k: int(v) for k, v in stats.get("methods", {}).items() if k != "sendMessage"}
        return RunResult(
            bot=bot, round=round_no, measured=measured, warmup=warmup,
            bot_cpu=(cpu1[0] - cpu0[0]) / wall, sink_cpu=(cpu1[1] - cpu0[1]) / wall,
            loadgen_cpu=(cpu1[2] - cpu0[2]) / wall,
            other_cpu=max(0.0, (cpu1[3] - cpu0[3]) - sum(cpu1[i] - cpu0[i] for i in range(3))) / wall,
            steal_cpu=(cpu1[4] - cpu0[4]) / wall, startup_s=startup, send_message=total_sent,
            mismatched_chats=mismatched, lagging_replies=lag, secret_enforced=secret_enforced,
            other_methods=methods, rss=rss,
        )

    async def _secret_enforced(self, session: aiohttp.ClientSession, url: str) -> bool:
        probe = Chat(-1, 699_999_999, "Probe", "resident")
        body = json.dumps({"update_id": 0, **text_update(probe, "/start")}).encode()
        headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": "wrong-secret"}
        async with session.post(url, data=body, headers=headers) as resp:
            await resp.read()
            return resp.status in (401, 403)


def _cpu_split() -> tuple[set[int] | None, set[int] | None]:
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None, None
    if len(allowed) < 2:
        return None, None
    return {allowed[0]}, set(allowed[1:])


# --------------------------------------------------------------------------------------------
# Reporting


def describe(result: RunResult, name_width: int) -> str:
    m = result.measured
    return (
        f"round {result.round} {result.bot:<{name_width}}: {m.rate:8.1f} updates/s  "
        f"({m.ok} in {m.elapsed:.2f} s; latency p50 {m.percentile(0.5) * 1000:.1f} ms, "
        f"p95 {m.percentile(0.95) * 1000:.1f} ms, p99 {m.percentile(0.99) * 1000:.1f} ms; "
        f"CPU: bot {result.bot_cpu:.0%} of a core = {result.cpu_ms_per_update:.2f} ms/update, "
        f"API sink {result.sink_cpu:.0%}, "
        f"load generator {result.loadgen_cpu:.0%}, rest of the machine {result.other_cpu:.0%}"
        + (f", steal {result.steal_cpu:.0%}" if result.steal_cpu >= 0.01 else "")
        + f"; started in {result.startup_s:.1f} s)"
    )


def report_run(result: RunResult, width: int) -> None:
    print(describe(result, width), flush=True)
    if result.rss:
        print("    resident memory of the bot: " + ", ".join(
            f"{rss / 2**20:.1f} MiB after {n:,} updates" for n, rss in sorted(result.rss.items())),
            flush=True)
    for problem in result.problems:
        print(f"    problem: {problem}", flush=True)
    if result.noisy:
        print(f"    note: other work used {result.other_cpu:.0%} of a core during this run "
              f"(steal {result.steal_cpu:.0%}): the machine was not quiet", flush=True)
    if result.bot_cpu < SATURATED_CPU:
        print(f"    note: the {result.bot} bot used {result.bot_cpu:.0%} of its core: something "
              "else (other processes, load generator, sink, I/O) limited this run", flush=True)


def run_summary(result: RunResult) -> dict[str, Any]:
    m = result.measured
    return {
        "round": result.round, "updates_per_s": round(m.rate, 1), "ok": m.ok,
        "seconds": round(m.elapsed, 3), "p50_ms": _ms(m.percentile(0.5)),
        "p99_ms": _ms(m.percentile(0.99)), "bot_cpu": round(result.bot_cpu, 3),
        "cpu_ms_per_update": _ms(result.cpu_ms_per_update / 1000),
        "rss_mib": {str(n): round(v / 2**20, 1) for n, v in sorted(result.rss.items())},
        "other_cpu": round(result.other_cpu, 3), "noisy": result.noisy,
        "send_message": result.send_message, "other_api_calls": result.other_methods,
        "problems": result.problems,
    }


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else round(seconds * 1000, 2)


async def run_bench(opts: Options, workdir: Path, procs: Processes) -> tuple[dict[str, Any], int]:
    bench = Bench(opts, workdir, procs)
    if bench.harness_cpus:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, bench.harness_cpus)  # the sink inherits it
    candidate = opts.candidate
    print(
        f"GoCua throughput: scenario {opts.scenario.name} ({opts.scenario.description}); "
        f"{opts.updates} updates measured"
        + (" (each from a user never seen before)" if opts.scenario.burst else "")
        + f" after a warm-up of {opts.chats + opts.warmup}, "
        f"{opts.concurrency} in flight over {opts.chats} chats ({opts.volunteers} volunteers)",
        flush=True,
    )
    order = ["echo", candidate]
    print(f"{opts.rounds} interleaved round(s) of {' then '.join(order)}; the best run of each bot "
          "counts. " + (f"Bot pinned to CPU {sorted(bench.bot_cpus)}, load generator and API sink "
                        f"to CPU {sorted(bench.harness_cpus or [])}." if bench.bot_cpus
                        else "No CPU pinning."), flush=True)
    if opts.profile is not None and candidate == "gocua":
        print(f"GoCua runs under cProfile ({opts.profile}): its figures are not comparable.", flush=True)
    connector = aiohttp.TCPConnector(limit=opts.concurrency + 4, limit_per_host=0)
    results: dict[str, list[RunResult]] = {"echo": [], "candidate": []}
    failures: list[str] = []
    width = max(len(x) for x in order)
    async with aiohttp.ClientSession(connector=connector) as session:
        await bench.start_sink(session)
        for round_no in range(1, opts.rounds + 1):
            for slot, bot in (("echo", "echo"), ("candidate", candidate)):
                for attempt in range(1 + opts.retry_noisy):
                    try:
                        result = await bench.run_once(session, bot, round_no)
                    except BenchError as exc:
                        failures.append(f"round {round_no} {bot}: {exc}")
                        print(f"round {round_no} {bot}: FAILED: {exc}", flush=True)
                        break
                    results[slot].append(result)
                    report_run(result, width)
                    if not result.noisy:
                        break
                    if attempt < opts.retry_noisy:
                        print(f"    measuring the {bot} bot again (noisy run; both runs count)", flush=True)

    best = {slot: max(runs, key=lambda r: r.rate) if runs else None for slot, runs in results.items()}
    echo_rate = best["echo"].rate if best["echo"] else None
    cand_rate = best["candidate"].rate if best["candidate"] else None
    ratio = cand_rate / echo_rate if echo_rate and cand_rate is not None else None
    print(f"echo  (best of {len(results['echo'])}): "
          + (f"{echo_rate:.1f} updates/s" if echo_rate else "no result"))
    print(f"{candidate} (best of {len(results['candidate'])}): "
          + (f"{cand_rate:.1f} updates/s" if cand_rate else "no result"))
    problems = sum(len(r.problems) for runs in results.values() for r in runs)
    for run in best.values():
        if run is not None and run.noisy:
            print(f"note: the best {run.bot} run was measured while other work used the machine "
                  f"({run.other_cpu:.0%} of a core)")
    # CPU per update (best = least of each bot's runs): what a core's worth of the bot costs,
    # which other work on a shared machine moves much less than it moves updates/s.
    cpu = {slot: min((r.cpu_ms_per_update for r in runs if r.measured.ok), default=None)
           for slot, runs in results.items()}
    cpu_ratio = cpu["echo"] / cpu["candidate"] if cpu["echo"] and cpu["candidate"] else None
    if cpu_ratio is not None:
        print(f"CPU per update: echo {cpu['echo']:.2f} ms, {candidate} {cpu['candidate']:.2f} ms: "
              f"{candidate} at {cpu_ratio:.2f}x echo's updates per CPU-second")
    status = 0
    if ratio is not None:
        target = opts.scenario.target
        print(f"ratio {candidate}/echo: {ratio:.2f}x (target >= {target}x)")
        if ratio < target:
            print(f"below target {target}x")
    else:
        status = 1
    if problems:
        print(f"{problems} problem(s) reported above")
    summary: dict[str, Any] = {
        "echo_updates_per_s": round(echo_rate, 1) if echo_rate else None,
        "gocua_updates_per_s": round(cand_rate, 1) if cand_rate else None,
        "ratio": round(ratio, 3) if ratio is not None else None,
        "echo_cpu_ms_per_update": _ms(cpu["echo"] / 1000) if cpu["echo"] else None,
        "gocua_cpu_ms_per_update": _ms(cpu["candidate"] / 1000) if cpu["candidate"] else None,
        "cpu_ratio": round(cpu_ratio, 3) if cpu_ratio is not None else None,
        "updates": opts.updates,
        "concurrency": opts.concurrency,
        "scenario": opts.scenario.name,
        "chats": opts.chats,
        "volunteers": opts.volunteers,
        "rounds": opts.rounds,
        "pick": "best",
        "pinned": bool(bench.bot_cpus),
        "candidate": candidate,
        "target": opts.scenario.target,
        "problems": problems,
        "noisy_runs": sum(r.noisy for runs in results.values() for r in runs),
        "runs": {"echo": [run_summary(r) for r in results["echo"]],
                 candidate if candidate != "echo" else "echo_again":
                     [run_summary(r) for r in results["candidate"]]},
    }
    if failures:
        summary["failures"] = [f.splitlines()[0] for f in failures]
    return summary, status


# --------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="bench/throughput.py",
        description="Updates/s through GoCua's Telegram webhook vs a bare aiogram echo bot.",
    )
    parser.add_argument("--updates", type=int, default=None, help="updates measured per run (3000)")
    parser.add_argument("--concurrency", type=int, default=None, help="requests in flight (32)")
    parser.add_argument("--chats", type=int, default=None, help="distinct chats (200)")
    parser.add_argument("--volunteers", type=int, default=None,
                        help="how many of the chats are volunteers (default: the scenario's share)")
    parser.add_argument("--warmup", type=int, default=None,
                        help="warm-up updates on top of one per chat (300)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds (echo, gocua) per bot; the best counts (3)")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="start_help")
    parser.add_argument("--quick", action="store_true", help="a small smoke run (well under 20 s)")
    parser.add_argument("--candidate", choices=["gocua", "echo"], default="gocua",
                        help="the bot compared with the echo bot; 'echo' measures the harness's noise")
    parser.add_argument("--max-seconds", type=float, default=120.0,
                        help="time bound of each load phase (default 120)")
    parser.add_argument("--retry-noisy", type=int, default=None,
                        help="measure a bot again, at most this many times, when other processes "
                             "used the machine during its run (1; 0 with --quick)")
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="do not pin the bot and the load generator to separate CPUs")
    parser.add_argument("--profile", type=Path, default=None,
                        help="run GoCua under cProfile, writing PATH-roundN.prof")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, databases)")
    parser.add_argument("--burst", type=int, default=1500,
                        help="first_messages: how many new users write once each (1500); "
                             "they are the measured updates")
    parser.add_argument("--rss-at", default="",
                        help="print the bot's resident memory after these many updates (warm-up "
                             "included), e.g. 1000,20000; --updates is raised to reach the last")
    args = parser.parse_args(argv)

    quick = args.quick
    defaults = {"updates": (300, 3000), "concurrency": (16, 32), "chats": (40, 200),
                "warmup": (60, 300), "rounds": (1, 3)}
    for name, (small, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, small if quick else full)
    limits = {"updates": (1, 1_000_000), "concurrency": (1, 1024), "chats": (1, 100_000),
              "warmup": (0, 1_000_000), "rounds": (1, 20)}
    for name, (low, high) in limits.items():
        if not low <= getattr(args, name) <= high:
            parser.error(f"--{name} must be between {low} and {high}")
    if args.chats < args.concurrency:
        parser.error("--chats must be at least --concurrency (one update in flight per chat)")
    if args.retry_noisy is None:
        args.retry_noisy = 0 if quick else 1
    if not 0 <= args.retry_noisy <= 5:
        parser.error("--retry-noisy must be between 0 and 5")
    if not 1 <= args.max_seconds <= 3600:
        parser.error("--max-seconds must be between 1 and 3600")
    scenario = SCENARIOS[args.scenario]
    if scenario.burst:
        if not 1 <= args.burst <= 100_000:
            parser.error("--burst must be between 1 and 100000")
        args.updates = args.burst
    try:
        rss_at = tuple(sorted({int(x) for x in args.rss_at.split(",") if x.strip()}))
    except ValueError:
        parser.error("--rss-at takes update counts separated by commas")
    if rss_at:
        if scenario.burst:
            parser.error("--rss-at needs a steady scenario, not a burst")
        args.updates = max(args.updates, rss_at[-1] - args.chats - args.warmup)
    volunteers = args.volunteers
    if volunteers is None:
        volunteers = round(args.chats * scenario.volunteer_share)
    if not 0 <= volunteers <= args.chats:
        parser.error("--volunteers must be between 0 and --chats")
    profile = args.profile.resolve() if args.profile is not None else None
    return Options(
        updates=args.updates, concurrency=args.concurrency, chats=args.chats, volunteers=volunteers,
        warmup=args.warmup, rounds=args.rounds, scenario=scenario, candidate=args.candidate,
        max_seconds=args.max_seconds, retry_noisy=args.retry_noisy, pin=args.pin, profile=profile,
        keep=args.keep, burst=args.burst, rss_at=rss_at,
    )


def _reexec_in_venv() -> None:
    """`python bench/throughput.py` from a Python without aiohttp: use the project's venv."""
    if VENV_PYTHON.exists() and Path(sys.prefix).resolve() != VENV_PYTHON.parent.parent.resolve():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])
    print("bench/throughput.py needs aiohttp; run it with the project's venv (.venv/bin/python)",
          file=sys.stderr)
    raise SystemExit(2)


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    if aiohttp is None:
        _reexec_in_venv()
    opts = parse_args(argv)
    # Ctrl-C and SIGTERM end the run cleanly (even when started in the background, where SIGINT
    # may be inherited as ignored); the `finally` below stops every subprocess.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="gocua-bench-"))
    status = 1
    try:
        summary, status = asyncio.run(run_bench(opts, workdir, procs))
        if opts.keep or status:
            print(f"logs and databases kept in {workdir}")
        print(json.dumps(summary, ensure_ascii=False), flush=True)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        status = 130
    except (BenchError, OSError, aiohttp.ClientError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        print(f"logs kept in {workdir}", file=sys.stderr)
        status = 1
    finally:
        # A second Ctrl-C must not cut the clean-up short (it is bounded: a few seconds a process).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        procs.stop_all()
        if not opts.keep and status != 1:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
