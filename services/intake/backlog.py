"""Backpressure: the intake stops taking alerts while the router is too far behind.

The router's backlog is what its durable consumer on ALERTS (`router-alerts`) has not finished: messages not
yet delivered (`num_pending`) and delivered but not acked (`num_ack_pending`). Reading it is one JetStream
API request, so it is never read per request: a request uses the last value, and when that value is older than
`REFRESH` seconds it starts one read in the background (one at a time) and goes on with the old value. Under
load that is one read a second per intake process; an idle intake reads nothing.

Unknown is never "full": no value yet, a read that fails (the bus is down: publishing will say so), or no
router consumer yet (no router has ever run) all let alerts in.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from nats.js.errors import NotFoundError

from tocsin.events.bus import Bus
from tocsin.events.streams import ROUTER_ALERTS, ConsumerDef

log = logging.getLogger("tocsin.intake")

REFRESH = 1.0      # seconds a reading is used before the next one is asked for
FORGET = 30.0      # seconds after which a reading that could not be renewed no longer counts


class Backlog:
    def __init__(self, bus: Bus, limit: int, consumer: ConsumerDef = ROUTER_ALERTS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.bus = bus
        self.limit = limit              # 0: no bound
        self.consumer = consumer
        self.clock = clock
        self.value: int | None = None   # the last reading
        self._read_at = -REFRESH        # when it was taken (or last tried)
        self._valid_at = 0.0            # when a reading last succeeded
        self._reading: asyncio.Task[None] | None = None
        self.reads = 0

    def over(self) -> int | None:
        """The backlog when it is above the bound, else None. Never waits."""
        if self.limit <= 0:
            return None
        now = self.clock()
        if now - self._read_at >= REFRESH and (self._reading is None or self._reading.done()):
            self._read_at = now
            self._reading = asyncio.get_running_loop().create_task(self._read())
        if self.value is None or now - self._valid_at > FORGET:
            return None
        return self.value if self.value > self.limit else None

    async def _read(self) -> None:
        self.reads += 1
        try:
            info = await self.bus.js.consumer_info(self.consumer.stream, self.consumer.durable, timeout=2)
        except NotFoundError:
            self.value = None
            return
        except Exception as exc:   # the bus is down or slow: keep the last reading until it is forgotten
            log.debug("backlog of %s not read: %s", self.consumer.durable, exc)
            return
        self.value = (info.num_pending or 0) + (info.num_ack_pending or 0)
        self._valid_at = self.clock()
