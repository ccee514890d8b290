"""The notifier's intake from one durable consumer: a steady pipeline, not batch after batch.

Each message is handled by a task of its own, and the pump fetches again as soon as a place is free, so
one slow provider call, one rate-limited destination or one held bundle never stops the messages behind
it. At most `in_flight` messages are held at once (below the consumer's max_ack_pending).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import nats
from nats.aio.msg import Msg
from nats.js import JetStreamContext

log = logging.getLogger("tocsin.notifier")


async def pump(sub: JetStreamContext.PullSubscription, handle: Callable[[Msg], Coroutine[Any, Any, None]], *,
               in_flight: int, name: str, fetch_max: int = 128, idle_timeout: float = 1.0) -> None:
    tasks: set[asyncio.Task[None]] = set()
    room = asyncio.Event()
    room.set()

    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if len(tasks) < in_flight:
            room.set()

    try:
        while True:
            await room.wait()
            want = min(fetch_max, in_flight - len(tasks))
            try:
                msgs = await sub.fetch(want, timeout=idle_timeout)
            except (TimeoutError, nats.errors.TimeoutError):
                _raise_if_cancelling()
                continue
            except nats.errors.ConnectionClosedError:
                return
            except Exception as exc:   # connection trouble: the bus reconnects by itself
                _raise_if_cancelling()
                log.warning("%s: fetch failed: %s", name, exc)
                await asyncio.sleep(0.5)
                continue
            for msg in msgs:
                task = asyncio.create_task(handle(msg))
                tasks.add(task)
                task.add_done_callback(done)
            if len(tasks) >= in_flight:
                room.clear()
    finally:
        # Whatever is in flight is not acked, so JetStream redelivers it (to this or another replica).
        for task in list(tasks):
            task.cancel()
        for task in list(tasks):
            with contextlib.suppress(BaseException):
                await task


def _raise_if_cancelling() -> None:
    # nats-py's fetch can turn a cancellation into a timeout; do not let the loop swallow it.
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
