"""Throughput of `gocua run telegram --workers N` on PostgreSQL: 1 worker against 2, same run.

Each run starts from an empty database (`--database-url`, default the `gocua_bench` database on
the local PostgreSQL, created if missing; its schema is dropped and rebuilt), prepared by
bench/gocua_setup.py (demo data, one volunteer invite per chat, procedure runs), then starts
`gocua run telegram --webhook-url … --workers N` against the Telegram API sink
(bench/fake_api.py) and drives the flow_steps scenario of bench/throughput.py: volunteers
pressing through procedure steps, every press one transaction that records a step, one update in
flight per chat, `--concurrency` chats in flight. Throughput = acknowledged webhook responses
per second (each means the update was processed and its replies sent). The runs alternate
(1, 2, 1, 2 …) and the best of each counts.

    .venv/bin/python bench/scale.py            # 2 rounds, 3,000 updates, 48 in flight, 200 chats
    .venv/bin/python bench/scale.py --quick    # smoke run

Nothing is pinned: the workers, PostgreSQL, the sink and this load generator share the
machine's CPUs, and each run prints who used how much, so that a figure can be read against the
cores there were. The last line is one JSON object {"workers_1_updates_per_s": x,
"workers_2_updates_per_s": y, "speedup": y/x, ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import aiohttp  # noqa: E402
from throughput import (  # noqa: E402
    HOST,
    SCENARIOS,
    TOKEN,
    WEBHOOK_PATH,
    BenchError,
    Feed,
    Processes,
    cpu_seconds,
    drive,
    flow_path,
    free_port,
    log_tail,
    machine_cpu_seconds,
    make_chats,
    settled_stats,
    sink_reset,
    wait_ready,
)

from tests.scale_harness import Bot  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/gocua_bench"


@dataclass
class Run:
    workers: int
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    mismatched_chats: int
    step_records: int
    cpu: dict[str, float]  # share of one core: workers, postgres, sink+load generator, other

    def line(self) -> str:
        cpu = ", ".join(f"{k} {v:.0%}" for k, v in self.cpu.items())
        problems = (f"; {self.errors} errors" if self.errors else "") + (
            f"; {self.mismatched_chats} chats' replies differ" if self.mismatched_chats else "")
        per_step = (f"; CPU per flow step: workers {self.ms_per_step('workers'):.2f} ms, "
                    f"PostgreSQL {self.ms_per_step('postgres'):.2f} ms") if self.rate else ""
        return (f"{self.workers} worker{'s' if self.workers > 1 else ' '}: {self.rate:7.1f} updates/s "
                f"(p50 {self.p50_ms:.0f} ms, p99 {self.p99_ms:.0f} ms; CPU {cpu}{per_step}){problems}")

    def ms_per_step(self, who: str) -> float:
        """CPU milliseconds `who` spent per update (every update is one flow step)."""
        return self.cpu.get(who, 0.0) / self.rate * 1000 if self.rate else float("nan")


async def reset_database(url: str) -> None:
    """Create the benchmark database if missing, and empty it (drop and recreate its schema)."""
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    params = {"host": parsed.host or "127.0.0.1", "port": parsed.port or 5432,
              "user": parsed.username or "postgres", "password": parsed.password}
    server = await asyncpg.connect(database="postgres", **params)
    try:
        if not await server.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", parsed.database):
            await server.execute(f'CREATE DATABASE "{parsed.database}"')
    finally:
        await server.close()
    conn = await asyncpg.connect(database=parsed.database, **params)
    try:
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip().startswith("postgres"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process alive now, plus what the ones already ended used
    (their parent's "children" time: the postmaster adds a backend's time when it ends). The
    difference of two readings is what PostgreSQL used in between, whether its backends lived
    through the run (a pool that keeps its connections) or came and went."""
    total = 0.0
    for pid in postgres_pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


def cpu_of(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


class ScaleBench:
    def __init__(self, args: argparse.Namespace, workdir: Path, procs: Processes) -> None:
        self.args = args
        self.workdir = workdir
        self.procs = procs
        self.secret = "scale-bench-secret"
        self.sink_port = free_port()
        self.sink_url = f"http://{HOST}:{self.sink_port}"
        self.sink_pid = 0

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GOCUA_", "TELEGRAM_", "ZALO_", "PROMETHEUS_"))}
        env.update({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_BASE": self.sink_url,
                    "GOCUA_WEBHOOK_SECRET": self.secret, "GOCUA_DATABASE_URL": self.args.database_url,
                    "PYTHONDONTWRITEBYTECODE": "1"})
        return env

    async def start_sink(self, session: aiohttp.ClientSession) -> None:
        log = self.workdir / "fake_api.log"
        proc = self.procs.start([sys.executable, str(BENCH / "fake_api.py"), "--host", HOST,
                                 "--port", str(self.sink_port)], env=self.env(), log=log)
        self.sink_pid = proc.pid
        await wait_ready(session, proc, f"{self.sink_url}/__health", log, "the fake Telegram API")

    def prepare(self) -> tuple[list[str], list[list[int]]]:
        args = self.args
        runs_each = int((args.updates + args.chats) / args.chats / len(flow_path())) + 2
        done = subprocess.run(
            [sys.executable, str(BENCH / "gocua_setup.py"), "--volunteers", str(args.chats),
             "--runs-per-volunteer", str(runs_each)],
            env=self.env(), cwd=ROOT, capture_output=True, timeout=300, check=False)
        if done.returncode != 0:
            raise BenchError("preparing the database failed:\n"
                             + (done.stderr or done.stdout).decode(errors="replace")[-3000:])
        prepared = json.loads(done.stdout.decode().strip().splitlines()[-1])
        return list(prepared["invites"]), [list(r) for r in prepared["runs"]]

    async def run_once(self, session: aiohttp.ClientSession, workers: int) -> Run:
        args = self.args
        await reset_database(args.database_url)
        invites, runs = self.prepare()
        chats = make_chats(args.chats, args.chats, invites, runs)
        feed = Feed(SCENARIOS["flow_steps"], chats)
        port = free_port()
        log = self.workdir / f"gocua-{workers}w-{time.monotonic_ns()}.log"
        url = f"http://{HOST}:{port}{WEBHOOK_PATH}"
        prefix = [sys.executable]
        if args.profile is not None and workers == 1:
            prefix += ["-m", "cProfile", "-o", str(args.profile)]
        argv = [*prefix, "-m", "bot", "--log-level", "WARNING", "run", "telegram",
                "--webhook-url", url, "--host", HOST, "--port", str(port), "--workers", str(workers)]
        proc = self.procs.start(argv, env=self.env(), log=log)
        try:
            bot = await self._ready(proc, port, workers, log)
            ready = deque(chats)
            warmup = await drive(session, url, self.secret, feed, ready, args.chats,
                                 args.concurrency, 120.0)
            if warmup.errors:
                raise BenchError(f"warm-up errors {dict(warmup.errors)}:\n{log_tail(log)}")
            await settled_stats(session, self.sink_url)
            await sink_reset(session, self.sink_url)
            pids = bot.worker_pids()
            # PostgreSQL's own CPU, ended backends included (until 2026-12-06 the processes alive
            # before and after were summed twice over, which counted a long-lived backend's whole
            # life: the PostgreSQL column of runs measured before then is not comparable).
            before = (cpu_of(pids), postgres_cpu(), cpu_seconds(self.sink_pid) + _own_cpu(),
                      machine_cpu_seconds()[0])
            measured = await drive(session, url, self.secret, feed, ready, args.updates,
                                   args.concurrency, 300.0)
            after = (cpu_of(pids), postgres_cpu(), cpu_seconds(self.sink_pid) + _own_cpu(),
                     machine_cpu_seconds()[0])
            stats = await settled_stats(session, self.sink_url)
        finally:
            self.procs.stop(proc)
        wall = measured.elapsed or 1.0
        used = [(b - a) / wall for a, b in zip(before, after, strict=True)]
        sent = {str(k): int(v) for k, v in stats.get("send_message", {}).items()}
        mismatched = sum(1 for chat, n in measured.per_chat.items() if sent.get(chat, 0) < n)
        return Run(
            workers=workers, rate=measured.rate, p50_ms=measured.percentile(0.5) * 1000,
            p99_ms=measured.percentile(0.99) * 1000, errors=sum(measured.errors.values()),
            mismatched_chats=mismatched, step_records=await self._step_records(),
            cpu={"workers": used[0], "postgres": used[1], "load+sink": used[2],
                 "other": max(0.0, used[3] - used[0] - used[1] - used[2])},
        )

    async def _ready(self, proc: subprocess.Popen[bytes], port: int, workers: int,
                     log: Path) -> Bot:
        """The running group once every worker listens and /healthz answers."""
        bot = Bot(proc, port, log, workers)
        try:
            await bot.wait_ready()
        except AssertionError as exc:
            raise BenchError(str(exc)) from None
        return bot

    async def _step_records(self) -> int:
        import asyncpg
        from sqlalchemy.engine import make_url

        parsed = make_url(self.args.database_url)
        conn = await asyncpg.connect(host=parsed.host, port=parsed.port or 5432,
                                     user=parsed.username or "postgres", database=parsed.database)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM step_records"))
        finally:
            await conn.close()


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


async def run(args: argparse.Namespace, workdir: Path, procs: Processes) -> dict[str, Any]:
    bench = ScaleBench(args, workdir, procs)
    print(f"GoCua scale-out on PostgreSQL: flow_steps, {args.updates} updates measured after one "
          f"per chat, {args.concurrency} in flight over {args.chats} volunteer chats; "
          f"{args.rounds} round(s) of 1 then 2 workers; {os.cpu_count()} CPUs, nothing pinned",
          flush=True)
    results: dict[int, list[Run]] = {1: [], 2: []}
    connector = aiohttp.TCPConnector(limit=args.concurrency + 4, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await bench.start_sink(session)
        for _ in range(args.rounds):
            for workers in (1, 2):
                result = await bench.run_once(session, workers)
                results[workers].append(result)
                print("  " + result.line(), flush=True)
    best = {w: max(runs, key=lambda r: r.rate) for w, runs in results.items()}
    speedup = best[2].rate / best[1].rate if best[1].rate else None
    print(f"1 worker  (best of {len(results[1])}): {best[1].rate:.1f} updates/s")
    print(f"2 workers (best of {len(results[2])}): {best[2].rate:.1f} updates/s"
          + (f"  ({speedup:.2f}x)" if speedup else ""))
    problems = sum(r.errors + r.mismatched_chats for runs in results.values() for r in runs)
    if problems:
        print(f"{problems} problem(s) reported above")
    return {
        "workers_1_updates_per_s": round(best[1].rate, 1),
        "workers_2_updates_per_s": round(best[2].rate, 1),
        "speedup": round(speedup, 3) if speedup else None,
        "updates": args.updates, "concurrency": args.concurrency, "chats": args.chats,
        "rounds": args.rounds, "cpus": os.cpu_count(), "problems": problems,
        "runs": [{"workers": r.workers, "updates_per_s": round(r.rate, 1),
                  "p50_ms": round(r.p50_ms, 1), "p99_ms": round(r.p99_ms, 1),
                  "step_records": r.step_records, "cpu": {k: round(v, 2) for k, v in r.cpu.items()},
                  "worker_cpu_ms_per_step": round(r.ms_per_step("workers"), 2),
                  "postgres_cpu_ms_per_step": round(r.ms_per_step("postgres"), 2)}
                 for runs in results.values() for r in runs],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/scale.py", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("GOCUA_BENCH_POSTGRES_URL",
                                                                 DEFAULT_DATABASE_URL),
                        help="PostgreSQL database to use (its schema is dropped and rebuilt)")
    parser.add_argument("--updates", type=int, default=None, help="updates measured per run (3000)")
    parser.add_argument("--concurrency", type=int, default=None, help="requests in flight (48)")
    parser.add_argument("--chats", type=int, default=None, help="volunteer chats (200)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of 1 then 2 workers (2)")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the logs")
    parser.add_argument("--profile", type=Path, default=None,
                        help="run the single worker under cProfile, writing this file")
    args = parser.parse_args(argv)
    for name, (small, full) in {"updates": (400, 3000), "concurrency": (16, 48),
                                "chats": (40, 200), "rounds": (1, 2)}.items():
        if getattr(args, name) is None:
            setattr(args, name, small if args.quick else full)
    if not args.database_url.startswith(("postgresql", "postgres")):
        parser.error("--database-url must be a PostgreSQL URL")
    if args.chats < args.concurrency:
        parser.error("--chats must be at least --concurrency")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    procs = Processes()
    workdir = Path(tempfile.mkdtemp(prefix="gocua-scale-"))
    status = 0
    try:
        summary = asyncio.run(run(args, workdir, procs))
        print(json.dumps(summary, ensure_ascii=False), flush=True)
    except KeyboardInterrupt:
        status = 130
    except (BenchError, OSError, aiohttp.ClientError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        status = 1
    finally:
        procs.stop_all()
        if args.keep or status == 1:
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
