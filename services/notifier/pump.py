"""The notifier's intake from one durable consumer: a steady pipeline, not batch after batch.

Each message is handled by a task of its own, and the pump fetches again as soon as there is room, so one
slow provider call, one rate-limited destination or one held bundle never stops the messages behind it.

How much room: at most `most` messages held at once (below the consumer's max_ack_pending), and of those
not waiting for a rate-limit slot or a bundle (`Flow.holding`), at most `limit`. The limit follows the
event loop: while the loop runs late (the process is short of CPU, so more messages in hand only queue
for it) the limit shrinks towards `least`; while it keeps time (sends wait on slow providers) it grows
back to `active`. Fewer messages in hand when CPU-bound means less latency for each, and fewer pages caught
between "the provider has it" and "the ledger says so" if the process is killed (the duplicates of the
at-least-once window), at no cost in throughput, which the CPU caps anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from nats.aio.msg import Msg

from tocsin.events.bus import next_batch
from tocsin.events.puller import Puller

log = logging.getLogger("tocsin.notifier")


class LoopLag:
    """How late the event loop wakes a sleeper (a moving average, in seconds). After each measurement the
    flows that follow it adjust their limits: one step per measurement, so a limit never outruns its signal,
    and a flow whose places are all taken still grows while the loop keeps time."""

    def __init__(self, every: float = 0.05) -> None:
        self.every = every
        self.value = 0.0
        self.flows: list[Flow] = []

    def measured(self, late: float) -> None:
        self.value = 0.7 * self.value + 0.3 * late
        for flow in self.flows:
            flow.adjust()
            flow.changed()

    async def run(self) -> None:
        while True:
            t = time.monotonic()
            await asyncio.sleep(self.every)
            self.measured(max(0.0, time.monotonic() - t - self.every))


class Flow:
    """The room one pump has: `most` messages in hand, of which at most `limit` not holding."""

    def __init__(self, most: int, active: int | None = None, least: int = 8, lag: LoopLag | None = None,
                 late: float = 0.005) -> None:
        self.most = most
        self.active = min(active or most, most)    # the ceiling of `limit`
        self.least = min(least, self.active) if lag is not None else self.active
        self.limit = self.least     # a slow start: grow while the loop keeps time
        self.lag = lag
        self.late = late
        self.tasks = 0
        self.holding = 0
        self.room = asyncio.Event()
        self.room.set()
        if lag is not None:
            lag.flows.append(self)

    def adjust(self) -> None:
        if self.lag is None:
            return
        if self.lag.value > self.late:
            self.limit = max(self.least, self.limit // 2)
        elif self.limit < self.active:
            self.limit = min(self.active, self.limit + self.limit // 4 + 1)

    def free(self) -> int:
        return max(0, min(self.most - self.tasks, self.limit - (self.tasks - self.holding)))

    def changed(self) -> None:
        if self.free() > 0:
            self.room.set()
        else:
            self.room.clear()

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """A message waiting (for a rate-limit slot, for its bundle) does not count against `limit`."""
        self.holding += 1
        self.changed()
        try:
            yield
        finally:
            self.holding -= 1
            self.changed()


async def pump(sub: Puller, handle: Callable[[Msg], Coroutine[Any, Any, None]],
               flow: Flow, *, name: str, fetch_max: int = 128, idle_timeout: float = 1.0,
               progress_every: float = 5.0) -> None:
    tasks: dict[asyncio.Task[None], Msg] = {}

    def done(task: asyncio.Task[None]) -> None:
        tasks.pop(task, None)
        flow.tasks = len(tasks)
        flow.changed()

    async def keep_in_progress() -> None:
        # One loop for every message in hand (not a timer per message): tell JetStream each is still being
        # worked on, so a slow send, a paced or a bundled page is never handed to a second worker.
        while True:
            await asyncio.sleep(progress_every)
            for msg in list(tasks.values()):
                with contextlib.suppress(Exception):
                    await msg.in_progress()

    heartbeat = asyncio.create_task(keep_in_progress())
    try:
        while True:
            await flow.room.wait()
            want = min(fetch_max, flow.free())
            if want <= 0:
                flow.changed()
                continue
            msgs = await next_batch(sub, want, idle_timeout, name)
            if msgs is None:
                return
            if not msgs:
                continue
            for msg in msgs:
                task = asyncio.create_task(handle(msg))
                tasks[task] = msg
                task.add_done_callback(done)
            flow.tasks = len(tasks)
            flow.changed()
    finally:
        heartbeat.cancel()
        # Whatever is in flight is not acked, so JetStream redelivers it (to this or another replica).
        for task in list(tasks):
            task.cancel()
        for task in list(tasks):
            with contextlib.suppress(BaseException):
                await task
        # What the puller holds and never handed out is NAKed, so another replica gets it at once.
        await sub.close()
