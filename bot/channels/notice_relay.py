"""Sends the notices addressed to this channel's chats that updates on another channel produced.

A Zalo resident's visit request is handled by a Zalo worker, but the volunteer to tell may be on
Telegram: the core stores that reply in the `notices` table (db/repo/notices.py) in the update's
transaction, and a running worker of the Telegram channel sends it. Every worker of a channel
runs one `NoticeRelay`; they share the table safely (a claim is a lease, rows are locked with
SKIP LOCKED on PostgreSQL), so each notice is sent once whatever the number of workers.

    relay = NoticeRelay(app.channel_services, "telegram", channel.send_notice)
    relay.start()
    ...
    await relay.stop()

`send(address, reply)` is the adapter's: it returns once the platform took the notice, raises
`NoticeRefused` when the platform refused it for good (the user blocked the bot, the chat is
gone: given up at once), and raises anything else for a failure worth retrying: the notice is
left to its lease (NOTICE_LEASE, db/repo/notices.py) and claimed again later, MAX_ATTEMPTS times
at most. Each outcome is written as soon as it is known. Sent twice, rarely: a notice in several
parts (a long text) whose later part failed is sent again whole, and so is one whose "sent" mark
could not be written (the database went down right after the platform took it). While the
database is unreachable the relay logs and waits, doubling up to MAX_BACKOFF.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

import structlog

from bot.channels.pacer import Pacer
from handlers.channel_services import MAX_ATTEMPTS, NOTICE_LEASE, ChannelServices, PendingNotice
from handlers.pipeline import DatabaseUnavailable
from handlers.types import Address, Reply

log = structlog.get_logger("gocua.notices")

INTERVAL = 2.0  # seconds between looks at the table when it had nothing to send
BATCH = 20  # notices claimed at once
MAX_BACKOFF = 30.0  # seconds between attempts while the database is down
LEASE_MARGIN = 5.0  # seconds of its lease a claimed notice must have left to be sent
STOP_GRACE = 10.0  # seconds `stop` waits for the notice being sent

Send = Callable[[Address, Reply], Awaitable[None]]


class NoticeRefused(Exception):
    """The platform refused a notice for good (blocked bot, unknown chat): do not retry it."""


class NoticeRelay:
    """A background task that sends `channel`'s pending notices through `send`."""

    def __init__(self, services: ChannelServices, channel: str, send: Send,
                 interval: float = INTERVAL, batch: int = BATCH,
                 max_backoff: float = MAX_BACKOFF, pacer: Pacer | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.services = services
        # Keeps sends under the platform's rate (bot/channels/pacer.py); `monotonic` measures the
        # lease margin: tests pass the pacer's virtual clock for both.
        self.pacer = pacer
        self.monotonic = monotonic
        self.channel = channel
        self.send = send
        self.interval = interval
        self.batch = batch
        self.max_backoff = max_backoff
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start the background task (a no-op while it runs)."""
        if not self.running:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"gocua.notices.{self.channel}")

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop after the notice being sent (waiting up to `grace` seconds, then cancelling: a
        notice cut off keeps its lease and is sent again after it)."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        await asyncio.wait({task}, timeout=grace)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run(self) -> None:
        delay: float | None = None  # set while the database is down
        while not self._stopping:
            try:
                busy = await self.run_once()
            except DatabaseUnavailable as exc:
                delay = self.interval if delay is None else min(delay * 2, self.max_backoff)
                log.warning("notice.database_unavailable", channel=self.channel,
                            error=str(exc)[:200], retry_in=delay)
                await self._sleep(delay)
                continue
            except Exception:
                log.exception("notice.relay_failed", channel=self.channel)
                await self._sleep(self.interval)
                continue
            if delay is not None:
                log.info("notice.database_recovered", channel=self.channel)
                delay = None
            if not busy:
                await self._sleep(self.interval)

    async def _sleep(self, seconds: float) -> None:
        if self._stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        self._wake.clear()

    async def run_once(self) -> bool:
        """Claim one batch and send it, writing each outcome at once; True when the batch was
        full (more may be waiting). DatabaseUnavailable propagates."""
        claimed, exhausted = await self.services.claim_notices(self.channel, self.batch)
        if exhausted:
            log.warning("notice.given_up", channel=self.channel, ids=exhausted,
                        reason="too_many_attempts", attempts=MAX_ATTEMPTS)
        # Stop before the lease runs out (a slow platform): a notice sent after it might be
        # claimed and sent by another worker too. The rest is claimed again later.
        deadline = self.monotonic() + NOTICE_LEASE.total_seconds() - LEASE_MARGIN
        for notice in claimed:
            if self.pacer is not None:
                await self.pacer.acquire()
            if self._stopping or self.monotonic() > deadline:
                return False
            outcome = await self._send_one(notice)
            if outcome is None:
                continue
            await self.services.notices_done([notice.id], sent=outcome)
        return len(claimed) + len(exhausted) >= self.batch

    async def _send_one(self, notice: PendingNotice) -> bool | None:
        """True: sent; False: refused for good; None: failed, to be retried after the lease."""
        address = Address(notice.channel, notice.chat_id)
        with structlog.contextvars.bound_contextvars(notice_id=notice.id, chat_id=notice.chat_id):
            try:
                await self.send(address, Reply.from_json(notice.reply))
            except NoticeRefused as exc:
                log.warning("notice.given_up", channel=self.channel, reason="refused",
                            error=str(exc)[:200], attempts=notice.attempts)
                return False
            except Exception as exc:
                # A 429 the adapter gave up waiting out (its cause says for how long): hold the
                # whole relay, not only this notice.
                retry_after = getattr(exc, "retry_after", getattr(exc.__cause__, "retry_after", None))
                if self.pacer is not None and isinstance(retry_after, int | float):
                    self.pacer.back_off(float(retry_after))
                log.warning("notice.send_failed", channel=self.channel, error=type(exc).__name__,
                            detail=str(exc)[:200], attempts=notice.attempts,
                            retry=notice.attempts < MAX_ATTEMPTS)
                return None
            log.info("notice.sent", channel=self.channel, attempts=notice.attempts)
        return True
