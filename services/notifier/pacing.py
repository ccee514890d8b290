"""Rate limits per destination and per provider, kept in this notifier process.

A channel class says how fast it may send (`rate_limit` per destination, `provider_rate_limit` per provider
account, bot or sending number). Each send first takes a slot: the destination's next free time, then, once
that has come, the provider's. Waiting is a sleeping coroutine of its own, so a busy destination never holds
up another destination or another kind, and the notifier keeps telling JetStream the message is in progress
while it waits. A slot further away than `max_hold` is not waited for: the caller hands the message back
to JetStream with a delay instead of holding it (and one of its in-flight places) for that long.

Per process, on purpose: the limits are what one sender may do, and a shared bucket would cost a KV round
trip per send. With N notifier replicas on one kind a destination can see up to N times its rate; run
the kinds with strict provider limits (`--kinds sms,voice`) on one replica where that matters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from tocsin.notifier.policies import RateLimit


class SlotTooFar(Exception):
    """The next free slot is further away than the caller may hold a message."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"rate limited: next slot in {delay:.1f}s")
        self.delay = delay


class Pacer:
    def __init__(self, max_hold: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.max_hold = max_hold
        self.clock = clock
        self.sleep = sleep
        self._next: dict[str, float] = {}    # key -> the earliest time its next send may start
        self._reservations = 0

    def _reserve(self, key: str, limit: RateLimit, not_before: float) -> float:
        slot = max(not_before, self._next.get(key, 0.0))
        self._next[key] = slot + limit.interval
        return slot

    async def wait(self, destination: str, limit: RateLimit | None, provider: str,
                   provider_limit: RateLimit | None, *, patient: bool = False) -> float:
        """Sleep until this send may start; return how long that took. Raises SlotTooFar (nothing
        reserved) when the destination's slot is more than `max_hold` away, unless `patient`."""
        start = self.clock()
        if limit is not None:
            slot = max(start, self._next.get(destination, 0.0))
            if slot - start > self.max_hold and not patient:
                raise SlotTooFar(slot - start)
            slot = self._reserve(destination, limit, start)
            if slot > start:
                await self.sleep(slot - start)
        if provider_limit is not None:
            # Taken only once the destination's turn has come, so one busy destination reserves no
            # provider time ahead and cannot hold back the provider's other destinations.
            now = self.clock()
            slot = self._reserve(provider, provider_limit, now)
            if slot > now:
                await self.sleep(slot - now)
        self._forget_old()
        return self.clock() - start

    def _forget_old(self) -> None:
        self._reservations += 1
        if self._reservations % 1000 == 0:
            now = self.clock()
            for key in [k for k, t in self._next.items() if t < now]:
                del self._next[key]
