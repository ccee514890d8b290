"""The scheduler: durable timers, fired once even with two replicas, cancelled by acknowledge in any order."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from harness import FakeClock, eventually
from tocsin.events import incidents, timers
from tocsin.events.streams import TIMERS
from tocsin.scheduler.app import Scheduler
from tocsin.scheduler.settings import Settings

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def request(i: int, due: datetime, *, incident: str = "inc-1", version: int = 1) -> timers.TimerRequested:
    return timers.TimerRequested(id=f"timer-{i}", aggregate_id=incident, version=version, at=T0, kind="escalate",
                                 due_at=due, incident_id=incident, step=0)


async def fired_timer_ids(bus) -> list[str]:
    out = []
    for _subject_seq, data in await bus.read_subject(TIMERS.name, "timers.fired.>"):
        event = timers.decoder.decode(data)
        out.append(event.timer_id)
    return out


async def run_schedulers(bus, pool, clock, n: int = 1) -> list[asyncio.Task]:
    settings = Settings(tick_seconds=0.05, batch=50)
    return [asyncio.create_task(Scheduler(settings, bus, pool, clock).run()) for _ in range(n)]


async def stop(tasks: list[asyncio.Task]) -> None:
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_timer_fires_when_its_time_comes(bus, pool):
    clock = FakeClock()
    tasks = await run_schedulers(bus, pool, clock)
    try:
        now = clock()
        await bus.publish(timers.requested_subject("inc-1"), request(1, now + timedelta(minutes=5)))
        await eventually(lambda: _count(pool, "pending", 1))
        await asyncio.sleep(0.3)
        assert await fired_timer_ids(bus) == []
        clock.advance(timedelta(minutes=5, seconds=1))
        ids = await eventually(lambda: fired_timer_ids(bus))
        assert ids == ["timer-1"]
        event = timers.decoder.decode((await bus.read_subject(TIMERS.name, "timers.fired.inc-1"))[0][1])
        assert event.kind == "escalate" and event.incident_id == "inc-1"
    finally:
        await stop(tasks)


async def _count(pool, state: str, n: int) -> bool:
    return await pool.fetchval("SELECT count(*) FROM scheduler_timers WHERE state = $1", state) == n


async def test_two_schedulers_fire_each_timer_exactly_once(bus, pool):
    clock = FakeClock()
    now = clock()
    await bus.publish_many([(timers.requested_subject(f"inc-{i % 20}"),
                             request(i, now - timedelta(seconds=1), incident=f"inc-{i % 20}"))
                            for i in range(300)])
    tasks = await run_schedulers(bus, pool, clock, n=2)
    try:
        await eventually(lambda: _count(pool, "fired", 300), timeout=30)
        # Bypass JetStream's own dedup to count what the schedulers published: read every message.
        ids = await fired_timer_ids(bus)
        assert len(ids) == 300 and set(Counter(ids).values()) == {1}
    finally:
        await stop(tasks)


@pytest.mark.parametrize("ack_first", [True, False], ids=["ack read first", "timer read first"])
async def test_acknowledge_cancels_earlier_timers_whatever_the_order(bus, pool, ack_first):
    clock = FakeClock()
    due = clock() + timedelta(minutes=5)
    ack = incidents.IncidentAcknowledged(id="ack", aggregate_id="inc-1", version=3, at=T0, by="alice")
    early = request(1, due, version=2)           # asked for before the acknowledgement
    later = request(2, due, version=4)           # a person escalated after acknowledging
    if ack_first:
        await bus.publish(incidents.subject("inc-1"), ack)
    tasks = await run_schedulers(bus, pool, clock)
    try:
        if ack_first:
            await eventually(lambda: _marked(pool))
        await bus.publish_many([(timers.requested_subject("inc-1"), early),
                                (timers.requested_subject("inc-1"), later)])
        await eventually(lambda: _count(pool, "pending", 2) if not ack_first else _stored(pool, 2))
        if not ack_first:
            await bus.publish(incidents.subject("inc-1"), ack)
        await eventually(lambda: _count(pool, "cancelled", 1))
        clock.advance(timedelta(minutes=6))
        ids = await eventually(lambda: fired_timer_ids(bus))
        await asyncio.sleep(0.3)
        assert await fired_timer_ids(bus) == ["timer-2"] == ids
    finally:
        await stop(tasks)


async def _marked(pool) -> bool:
    return await pool.fetchval("SELECT count(*) FROM scheduler_incident_marks") == 1


async def _stored(pool, n: int) -> bool:
    return await pool.fetchval("SELECT count(*) FROM scheduler_timers") == n


async def test_a_scheduler_killed_between_publish_and_commit_loses_nothing_and_doubles_nothing(bus, pool):
    """A tick that dies after publishing but before its commit leaves the rows pending: the next tick fires
    them again under the same message ids, which JetStream keeps once."""
    from tocsin.scheduler.modules import timers as module
    clock = FakeClock()
    now = clock()
    await pool.execute(
        "INSERT INTO scheduler_timers (id, kind, incident_id, due_at) "
        "SELECT 'timer-' || i, 'escalate', 'inc-1', $1 FROM generate_series(0, 9) i", now - timedelta(seconds=1))
    async with pool.acquire() as conn:
        outer = conn.transaction()
        await outer.start()
        lateness = await module.tick(conn, bus, clock(), 50)   # publishes 10 TimerFired...
        await outer.rollback()                                  # ...and the commit never happens
    assert len(lateness) == 10 and await _count(pool, "pending", 10)
    assert len(await fired_timer_ids(bus)) == 10
    tasks = await run_schedulers(bus, pool, clock)
    try:
        await eventually(lambda: _count(pool, "fired", 10))
        ids = await fired_timer_ids(bus)
        assert sorted(ids) == sorted(f"timer-{i}" for i in range(10))   # still one message each
    finally:
        await stop(tasks)
