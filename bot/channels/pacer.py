"""A token bucket that keeps a bot under its platform's sending limit (used by the notice relay).

Telegram allows about 30 messages a second per bot (GoCua paces at 25); Zalo's OA API is paced
at 10. `acquire()` waits until a message may go; `back_off(seconds)` (a 429's retry_after)
holds every sender for that long. A new pacer starts with an empty bucket. The clock and the
sleep are injectable, so tests run a broadcast of thousands in virtual time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

EPSILON = 1e-9
RATES = {"telegram": 25.0, "zalo": 10.0}  # messages per second


class Pacer:
    def __init__(self, rate: float, *, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate / 5)
        self.clock = clock
        self.sleep = sleep
        # It starts empty: a relay restarted in the second after its previous one sent keeps the
        # rate across the seam (a full bucket at start would add its burst to that second's sends).
        self._tokens = 0.0
        self._at = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                now = self.clock()
                if now < self._paused_until:
                    await self.sleep(self._paused_until - now)
                    continue
                self._refill()
                if self._tokens >= 1 - EPSILON:  # a wait of exactly the missing part may round short
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                await self.sleep(max((1 - self._tokens) / self.rate, EPSILON))

    def back_off(self, seconds: float) -> None:
        """The platform said 429: nothing goes for `seconds`, and the bucket starts empty."""
        self._paused_until = max(self._paused_until, self.clock() + seconds)
        self._tokens = 0.0


def pacer_for(channel: str, **kwargs: object) -> Pacer | None:
    rate = RATES.get(channel)
    return Pacer(rate, **kwargs) if rate is not None else None  # type: ignore[arg-type]
