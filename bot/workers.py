"""`gocua run telegram|zalo --webhook-url URL --workers N`: N worker processes on one port.

The parent migrates the database once, then starts N copies of the same command, each with
`--worker-index I`. They listen on the same host:port with SO_REUSEPORT, so the kernel spreads
the platform's connections among them. A worker keeps nothing another worker would need:
duplicates and the outbox (processed_updates), per-chat order (the conversation row lock),
flood counts and notices to other channels all live in the database, so the same command on
several machines behind a load balancer works too.

The copies are forked from a fork server (multiprocessing's "forkserver") that has imported the
channel's adapter, the core and the FAQ matcher once, so a worker pays no start-up imports of its
own (aiogram alone builds its 600-odd pydantic models in about 4 s of CPU): a group starts with
one import instead of N, and a worker that died serves again a moment after its back-off. The
fork server is a fresh interpreter, not a fork of the parent, so nothing of the parent's event
loop, threads or database connections reaches a worker; it is the workers' parent process.

The parent forwards SIGTERM/SIGINT to the workers and waits for them to drain; a worker that
dies while serving (kill -9, out of memory) is started again after a back-off. A worker that
exits with status 2 (a configuration error: bad token, port taken) stops the whole group with
that status, since starting it again would only fail again.

Metrics: the parent gives the workers one PROMETHEUS_MULTIPROC_DIR (a fresh temporary folder
unless the operator set one), so GET /metrics on any worker reports the sum over all of them
(bot/metrics.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess

import structlog

from bot.channels.signals import install_signal_handlers

log = structlog.get_logger("gocua.workers")

MAX_WORKERS = 64
CONFIG_ERROR_EXIT = 2  # what `gocua` returns for configuration and usage errors
RESTART_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # a worker dying again soon waits longer
STABLE_AFTER = 30.0  # seconds a worker must live for its restart back-off to start over
STOP_GRACE = 40.0  # seconds to drain (the workers' own drain is 30 s) before SIGKILL
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def run_worker(argv: Sequence[str]) -> None:
    """A worker process's body, in the child the fork server made: `gocua ARGV`, in the
    environment the fork server inherited from the group's parent (supervise)."""
    # The fork server ends when the group's parent is gone (it sees the end of a pipe whose
    # writing end only the parent should hold), and a worker notices that its parent, the fork
    # server, is gone (exit_with_parent). Every forked child inherits a copy of that writing end:
    # closed here, or the fork server would wait for the workers and the workers for it.
    from multiprocessing import forkserver

    alive = forkserver._forkserver._forkserver_alive_fd  # type: ignore[attr-defined]
    if alive is not None:
        os.close(alive)
        forkserver._forkserver._forkserver_alive_fd = None  # type: ignore[attr-defined]
    from bot.cli import main

    sys.exit(main(list(argv)))


class WorkerProcess:
    """A worker forked by the fork server, with what the supervisor needs of it: its pid, its
    exit status (negative: the signal that killed it) and an awaitable end."""

    def __init__(self, process: BaseProcess) -> None:
        self.process = process
        self.pid = process.pid
        self._code: int | None = None  # once ended and reaped
        self._ended: asyncio.Future[None] | None = None

    @property
    def returncode(self) -> int | None:
        return self._code if self._code is not None else self.process.exitcode

    def send_signal(self, sig: int) -> None:
        if self.pid is not None and self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    async def wait(self) -> int:
        """Until the worker has ended (any number of callers), then its exit status."""
        if self._ended is None:
            loop = asyncio.get_running_loop()
            self._ended = loop.create_future()
            sentinel = self.process.sentinel  # readable once the fork server reports the end
            ended = self._ended

            def on_end() -> None:
                loop.remove_reader(sentinel)
                if not ended.done():
                    ended.set_result(None)

            loop.add_reader(sentinel, on_end)
        await asyncio.shield(self._ended)
        if self._code is None:
            self.process.join()  # reads the status the fork server sent: no wait
            code = self.process.exitcode
            self._code = -1 if code is None else code
            self.process.close()  # its sentinel's file descriptor: a restarted worker gets a new one
        return self._code


def fork_server(preload: Sequence[str]) -> multiprocessing.context.ForkServerContext:
    """The context whose fork server imports `preload` once, for every worker it forks."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(list(preload))
    return context


@dataclass
class Worker:
    index: int
    process: WorkerProcess | None = None
    started_at: float = 0.0
    quick_deaths: int = 0
    restarts: int = 0
    waiter: asyncio.Task[int] | None = field(default=None, repr=False)


async def supervise(
    command_for: Callable[[int], Sequence[str]],
    count: int,
    *,
    preload: Sequence[str] = (),
    stop: asyncio.Event | None = None,
) -> int:
    """Run `count` workers (`command_for(index)` is a worker's `gocua` arguments), forked from a
    fork server that imported `preload`, until `stop` is set, or SIGINT/SIGTERM when no event is
    given; returns the group's exit status."""
    stop_event = stop or asyncio.Event()
    signals = install_signal_handlers(stop_event) if stop is None else []
    own_metrics_dir = None
    if not os.environ.get(METRICS_DIR_ENV):
        # Set in this process before the fork server starts: it inherits the environment, and
        # prometheus_client chooses its multi-process mode when the preload imports it.
        own_metrics_dir = tempfile.mkdtemp(prefix="gocua-metrics-")
        os.environ[METRICS_DIR_ENV] = own_metrics_dir
    spawn = fork_server(preload)  # started by the first worker's start, with this environment
    workers = [Worker(index) for index in range(count)]
    status = 0
    try:
        for worker in workers:
            await _start(worker, command_for, spawn)
        log.info("workers.started", count=count, pids=[w.process.pid for w in workers if w.process])
        status = await _watch(workers, command_for, spawn, stop_event)
    finally:
        await _stop_all(workers)
        for sig in signals:
            asyncio.get_running_loop().remove_signal_handler(sig)
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)
    log.info("workers.stopped", status=status)
    return status


Spawn = multiprocessing.context.ForkServerContext


async def _start(worker: Worker, command_for: Callable[[int], Sequence[str]], spawn: Spawn) -> None:
    process = spawn.Process(target=run_worker, args=(list(command_for(worker.index)),),
                              name=f"gocua-worker-{worker.index}", daemon=True)
    # daemon: should this process ever exit without stopping them, multiprocessing ends them.
    # The first start waits for the fork server's imports: off the event loop.
    await asyncio.to_thread(process.start)
    worker.process = WorkerProcess(process)
    worker.started_at = time.monotonic()
    worker.waiter = asyncio.create_task(worker.process.wait(), name=f"gocua.worker{worker.index}")


async def _watch(workers: list[Worker], command_for: Callable[[int], Sequence[str]],
                 spawn: Spawn, stop: asyncio.Event) -> int:
    stopping = asyncio.create_task(stop.wait())
    restarts: set[asyncio.Task[None]] = set()
    try:
        while True:
            waiting = {w.waiter for w in workers if w.waiter is not None} | restarts
            done, _ = await asyncio.wait(waiting | {stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stopping in done:
                return 0
            for task in done & restarts:
                restarts.discard(task)
                task.result()  # a worker that cannot even be spawned stops the group
            for worker in workers:
                if worker.waiter is None or worker.waiter not in done:
                    continue
                code = worker.waiter.result()
                worker.waiter = None
                pid = worker.process.pid if worker.process else None
                if code == CONFIG_ERROR_EXIT:
                    log.error("workers.config_error", worker=worker.index, pid=pid)
                    return CONFIG_ERROR_EXIT
                delay = _restart_delay(worker)
                log.error("workers.died", worker=worker.index, pid=pid, status=_describe(code),
                          restart_in=delay)
                restarts.add(asyncio.create_task(
                    _restart_later(worker, delay, command_for, spawn, stop)))
    finally:
        stopping.cancel()
        for task in restarts:
            task.cancel()


def _restart_delay(worker: Worker) -> float:
    lived = time.monotonic() - worker.started_at
    worker.quick_deaths = 0 if lived >= STABLE_AFTER else worker.quick_deaths + 1
    return RESTART_DELAYS[min(worker.quick_deaths, len(RESTART_DELAYS) - 1)]


async def _restart_later(worker: Worker, delay: float, command_for: Callable[[int], Sequence[str]],
                         spawn: Spawn, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=delay)
        return  # stopping: no restart
    worker.restarts += 1
    await _start(worker, command_for, spawn)
    log.info("workers.restarted", worker=worker.index,
             pid=worker.process.pid if worker.process else None, restarts=worker.restarts)


async def _stop_all(workers: list[Worker]) -> None:
    """SIGTERM every worker (each drains its updates in flight), SIGKILL what is left later."""
    alive = [w for w in workers if w.process is not None and w.process.returncode is None]
    for worker in alive:
        with contextlib.suppress(ProcessLookupError):
            worker.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    if not alive:
        return
    waits = [asyncio.create_task(w.process.wait()) for w in alive]  # type: ignore[union-attr]
    _, pending = await asyncio.wait(waits, timeout=STOP_GRACE)
    for worker in alive:
        if worker.process is not None and worker.process.returncode is None:
            log.warning("workers.killed", worker=worker.index, pid=worker.process.pid)
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
    if pending:
        await asyncio.wait(pending, timeout=5.0)
    for worker in workers:
        if worker.waiter is not None:
            worker.waiter.cancel()


def _describe(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit {code}"


ORPHAN_CHECK = 1.0  # seconds between a worker's looks at its parent


_PARENT_WATCH: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks


def exit_with_parent() -> None:
    """In a worker: stop cleanly (SIGTERM to itself: the drain runs) when the parent is gone,
    e.g. killed with -9, so that no orphan keeps serving the port beside a new group."""
    parent = os.getppid()

    async def watch() -> None:
        while os.getppid() == parent:  # noqa: ASYNC110 - nothing to wait on but the pid
            await asyncio.sleep(ORPHAN_CHECK)
        log.error("workers.orphaned", parent=parent)
        os.kill(os.getpid(), signal.SIGTERM)

    _PARENT_WATCH.add(asyncio.create_task(watch(), name="gocua.watch_parent"))


def worker_command(argv: Sequence[str], index: int) -> list[str]:
    """This process's `gocua` arguments for worker `index`: `--workers N` is replaced by
    `--worker-index I`."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        out.append(arg)
    return [*out, "--worker-index", str(index)]
