"""The bus's pull consumer (`Puller`, `consume`) against real JetStream.

The stall it fixes: nats-py's fetch reads every pull answer from one inbox, so a late status for an old pull
request was read as the answer to the next one, which then opened a second request; the next message could
wait until the older request expired. These tests make that late status arrive on purpose (a pull request
sent by hand with the puller's reply subject and an old request number) instead of waiting for the race.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
from nats.aio.msg import Msg

from harness import eventually
from tocsin.embedded import EmbeddedNats
from tocsin.events.bus import Bus, consume
from tocsin.events.puller import Puller, PullRefused
from tocsin.events.streams import ConsumerDef

STREAM = "BUSTEST"
WORK = ConsumerDef(STREAM, "bus-test", "bustest.>", ack_wait=timedelta(seconds=60))


@pytest_asyncio.fixture
async def stream(bus: Bus) -> AsyncIterator[Bus]:
    await bus.js.add_stream(name=STREAM, subjects=["bustest.>"])
    yield bus


async def waiting(bus: Bus) -> int:
    """Pull requests open at the server for the test consumer."""
    return (await bus.js.consumer_info(STREAM, WORK.durable)).num_waiting or 0


async def pull_by_hand(bus: Bus, reply: str, **request: object) -> None:
    await bus.nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{STREAM}.{WORK.durable}", json.dumps(request).encode(),
                         reply=reply)
    await bus.nc.flush()


async def publish(bus: Bus, *payloads: str) -> None:
    futures = [await bus.js.publish_async("bustest.x", p.encode(), headers={"Nats-Msg-Id": p}) for p in payloads]
    await asyncio.gather(*futures)


class Handled:
    """A batch handler that acks and records every payload, and the puller's request count at the time."""

    def __init__(self, puller: Puller | None = None) -> None:
        self.payloads: list[str] = []
        self.batches: list[int] = []
        self.at_request: list[int] = []
        self.puller = puller

    async def __call__(self, msgs: list[Msg]) -> None:
        self.batches.append(len(msgs))
        if self.puller is not None:
            self.at_request.append(self.puller.stats.requests)
        for msg in msgs:
            self.payloads.append(msg.data.decode())
            await msg.ack()


@contextlib.asynccontextmanager
async def consuming(puller: Puller, handle: Handled, **kwargs: object) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(consume(puller, handle, name="bus-test", **kwargs))  # type: ignore[arg-type]
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_stale_status_does_not_answer_the_open_request(stream: Bus) -> None:
    puller = await stream.pull(WORK)
    handled = Handled(puller)
    async with consuming(puller, handled, batch=10, idle_timeout=30):
        await eventually(lambda: _true(puller.open_request == 1))
        await eventually(lambda: _eq(waiting(stream), 1))
        # The server answers a no_wait request with nothing pending at once: 404 on `<inbox>.0`, an older
        # request number than any the puller sent, while request 1 waits. That is the late 408 of the race.
        await pull_by_hand(stream, f"{puller.inbox}.0", batch=1, no_wait=True)
        await eventually(lambda: _true(puller.stats.stale_statuses == 1))
        assert puller.open_request == 1, "the stale status ended the open request"
        assert puller.stats.requests == 1 and await waiting(stream) == 1

        await publish(stream, "after-idle")
        await eventually(lambda: _true(handled.payloads == ["after-idle"]))
        # It came as the answer to request 1 itself: no second request was needed to get it.
        assert handled.at_request == [1]
        assert puller.stats.messages == 1 and puller.stats.abandoned == 0
        await eventually(lambda: _true(puller.open_request == 2))
        await eventually(lambda: _eq(waiting(stream), 1))


async def test_nats_py_fetch_reads_a_stale_status_as_its_own_and_opens_a_second_request(stream: Bus) -> None:
    """The same late status against nats-py's fetch (the path the bus used before): it takes the 404 as the
    answer to its own request and sends another, so two requests are open at the server. If nats-py stops
    doing this, this test fails, and the Puller's reason to exist should be looked at again."""
    await stream.js.add_consumer(STREAM, WORK.config())
    sub = await stream.js.pull_subscribe_bind(WORK.durable, STREAM)
    fetch = asyncio.create_task(sub.fetch(10, timeout=30))
    try:
        await eventually(lambda: _eq(waiting(stream), 1))
        await pull_by_hand(stream, sub._deliver, batch=1, no_wait=True)
        await eventually(lambda: _eq(waiting(stream), 2))
    finally:
        fetch.cancel()
        with contextlib.suppress(BaseException):
            await fetch
        await sub.unsubscribe()


async def test_a_message_for_a_request_given_up_on_is_handled_once(stream: Bus) -> None:
    puller = await stream.pull(WORK)
    # A request the puller does not have open (as after giving one up) takes the next message.
    await pull_by_hand(stream, f"{puller.inbox}.0", batch=1, expires=int(30e9))
    await eventually(lambda: _eq(waiting(stream), 1))
    await publish(stream, "for-an-old-request")
    await eventually(lambda: _true(puller.stats.stale_messages == 1 and puller.buffered == 1))

    handled = Handled(puller)
    async with consuming(puller, handled, batch=10, idle_timeout=30):
        await eventually(lambda: _true(handled.payloads == ["for-an-old-request"]))
        # Handed out from what the puller held, before it sent any request of its own.
        assert handled.at_request == [0]
        info = await eventually(lambda: _acked_all(stream))
        assert info.num_redelivered == 0


async def test_nothing_lost_or_repeated_over_idle_and_busy_cycles(stream: Bus) -> None:
    rng = random.Random(7)
    puller = await stream.pull(WORK)
    handled = Handled()
    most_waiting = 0
    stop = asyncio.Event()

    async def watch_server() -> None:
        nonlocal most_waiting
        while not stop.is_set():
            most_waiting = max(most_waiting, await waiting(stream))
            await asyncio.sleep(0.01)

    sent: list[str] = []
    watcher = asyncio.create_task(watch_server())
    # Requests expire after 0.2 s, so the pauses of 0.3 s let every request run out idle before the next burst.
    async with consuming(puller, handled, batch=7, idle_timeout=0.2):
        for burst in range(40):
            payloads = [f"m{burst}-{i}" for i in range(rng.choice((0, 1, 1, 2, 6, 7, 8, 30)))]
            await publish(stream, *payloads)
            sent.extend(payloads)
            await asyncio.sleep(rng.choice((0, 0.01, 0.05, 0.3)))
        await eventually(lambda: _true(len(handled.payloads) >= len(sent)), timeout=30)
        stop.set()
        await watcher
        info = await eventually(lambda: _acked_all(stream))

    repeated = [p for p, n in collections.Counter(handled.payloads).items() if n > 1]
    assert not repeated and sorted(handled.payloads) == sorted(sent)
    assert info.num_redelivered == 0
    assert max(handled.batches) <= 7
    assert most_waiting <= 1, f"{most_waiting} pull requests were open at the server at once"
    stats = puller.stats
    assert stats.ended > 0 and stats.filled > 0, "the bursts should have filled batches and idled past expiry"
    assert (stats.abandoned, stats.stale_statuses, stats.stale_messages) == (0, 0, 0)


async def test_cancelled_mid_fetch_leaves_nothing_waiting_for_the_ack_wait(stream: Bus) -> None:
    # The consumer's ack wait is 60 s: a message held by a cancelled puller would come back only then.
    first = await stream.pull(WORK)
    async with consuming(first, Handled(), batch=10, idle_timeout=30):
        await eventually(lambda: _eq(waiting(stream), 1))
    # Its request was open when it was cancelled: the server must not deliver to it now.
    await publish(stream, "after-cancel")

    # A puller that was handed a message but never passed it on (cancelled before its next fetch) NAKs it.
    holder = await stream.pull(WORK)
    await pull_by_hand(stream, f"{holder.inbox}.0", batch=1, expires=int(30e9))
    await publish(stream, "held")
    await eventually(lambda: _true(holder.buffered == 1))
    await holder.close()

    second = await stream.pull(WORK)
    handled = Handled()
    async with consuming(second, handled, batch=10, idle_timeout=30):
        await eventually(lambda: _true(sorted(handled.payloads) == ["after-cancel", "held"]), timeout=20)
        await eventually(lambda: _acked_all(stream))


async def test_consuming_goes_on_after_the_server_restarts(stream: Bus, nats_server: EmbeddedNats | None) -> None:
    if nats_server is None:
        pytest.skip("needs the harness's own NATS server to stop and start it")
    puller = await stream.pull(WORK)
    handled = Handled()
    async with consuming(puller, handled, batch=10, idle_timeout=0.5):
        await publish(stream, "before")
        await eventually(lambda: _true(handled.payloads == ["before"]))
        await eventually(lambda: _acked_all(stream))   # an ack in flight when the server stops would be lost
        nats_server.stop()
        await eventually(lambda: _true(not stream.connected))
        nats_server.start()   # same port, same store: the consumer and its position are still there
        await eventually(lambda: _true(stream.connected), timeout=20)
        await eventually(lambda: _published(stream, "after-1", "after-2"), timeout=20, interval=0.3)
        await eventually(lambda: _true(sorted(handled.payloads) == ["after-1", "after-2", "before"]), timeout=20)
        info = await eventually(lambda: _acked_all(stream), timeout=20)
    assert collections.Counter(handled.payloads).most_common(1)[0][1] == 1, handled.payloads
    assert info.num_redelivered == 0


async def test_a_pull_on_a_missing_consumer_is_refused(stream: Bus) -> None:
    puller = await Puller.start(stream.nc, STREAM, "no-such-consumer")
    try:
        with pytest.raises(PullRefused) as refused:
            await puller.fetch(10, 5)
        assert refused.value.status == "503" and not refused.value.transient
        assert puller.open_request is None and puller.stats.ended == 1
    finally:
        await puller.close()


async def _true(value: bool) -> bool:
    return value


async def _eq(value: object, expected: object) -> bool:
    return await value == expected  # type: ignore[misc]


async def _published(bus: Bus, *payloads: str) -> bool:
    try:
        await publish(bus, *payloads)
    except Exception:
        return False
    return True


async def _acked_all(bus: Bus) -> object:
    info = await bus.js.consumer_info(STREAM, WORK.durable)
    return info if (info.num_pending, info.num_ack_pending) == (0, 0) else None
