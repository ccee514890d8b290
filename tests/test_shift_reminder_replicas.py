"""Two schedulers running side by side announce each upcoming shift exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import msgspec

from harness import FakeClock, eventually
from tocsin.events import timers
from tocsin.events.base import new_id, utcnow
from tocsin.events.config import CONFIG_SUBJECT, ConfigApplied, parse_config
from tocsin.events.configbus import ConfigWatcher
from tocsin.events.directory import Directory
from tocsin.scheduler.app import Scheduler
from tocsin.scheduler.settings import Settings

CONFIG = """
timezone: UTC
users:
  alice: {contacts: {out: {type: log}}}
  bob: {contacts: {out: {type: log}}}
  carol: {contacts: {out: {type: log}}}
teams:
  infra:
    members: [alice, bob, carol]
    rotations:
      primary: {members: [alice, bob, carol], shift: 3h, start: "2026-01-01T00:00"}
      secondary: {members: [carol, bob], shift: 5h, start: "2026-01-01T01:30"}
    escalation: {steps: [{notify: ["rotation:primary"]}]}
    shift_reminder: 24h
"""


def expected_shifts(directory: Directory, now, until) -> set[str]:
    """Every shift that starts after `now` and within 24 h of `until`: each must be announced once."""
    out = set()
    for (team, name), rotation in directory.rotations().items():
        for shift in rotation.shifts(now, until + timedelta(hours=24, seconds=1)):
            if now < shift.start <= until + timedelta(hours=24):
                out.add(f"{team}/{name}/{shift.user}/{shift.start.isoformat()}")
    return out


async def test_two_schedulers_remind_each_shift_once(bus, pool):
    config = parse_config(CONFIG, env={})
    await bus.publish(CONFIG_SUBJECT, ConfigApplied(id=new_id(), at=utcnow(), revision=1, config=config))
    published: list[timers.TimerFired] = []

    async def seen(msg) -> None:  # type: ignore[no-untyped-def]
        # A plain subscription sees every publish, including copies JetStream would drop as duplicates.
        published.append(msgspec.json.decode(msg.data, type=timers.TimerFired))

    sub = await bus.nc.subscribe("timers.fired.shift", cb=seen)
    clock = FakeClock()
    start = clock()
    settings = Settings(tick_seconds=0.02, shift_check_seconds=0.02)
    watchers = [ConfigWatcher(bus) for _ in range(2)]
    for watcher in watchers:
        await watcher.start()
    tasks = [asyncio.create_task(Scheduler(settings, bus, pool, clock, watcher).run()) for watcher in watchers]
    try:
        want = expected_shifts(Directory.build(config), start, start)
        assert len(want) >= 10
        await eventually(lambda: _count(pool, len(want)), timeout=30)
        for _ in range(6):            # a day and a half more, in steps, with both racing at every step
            clock.advance(timedelta(hours=6))
            await asyncio.sleep(0.3)
        want = expected_shifts(Directory.build(config), start, clock())
        await eventually(lambda: _count(pool, len(want)), timeout=30)
        await asyncio.sleep(0.5)
        counts = Counter(f"{d.team}/{d.rotation}/{d.user}/{d.start.isoformat()}"
                         for d in (msgspec.json.decode(f.payload, type=timers.ShiftDue) for f in published))
        assert set(counts) == want
        assert set(counts.values()) == {1}, [k for k, v in counts.items() if v > 1]
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for watcher in watchers:
            await watcher.stop()
        await sub.unsubscribe()


async def _count(pool, n: int) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM scheduler_shift_reminders") == n)
