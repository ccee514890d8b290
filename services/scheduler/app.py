"""The scheduler owns time: it stores timers the router asks for and fires them when due. It sends nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

import asyncpg
import msgspec
from nats.aio.msg import Msg

from tocsin.events import incidents, timers
from tocsin.events.base import utcnow
from tocsin.events.bus import Bus, consume
from tocsin.events.streams import SCHEDULER_INCIDENTS, SCHEDULER_REQUESTS
from tocsin.scheduler.modules import timers as timers_module
from tocsin.scheduler.settings import Settings

log = logging.getLogger("tocsin.scheduler")

INSERT = """
INSERT INTO scheduler_timers (id, kind, incident_id, step, repeat, due_at, payload, traceparent)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::timestamptz[],
                     $7::bytea[], $8::text[])
ON CONFLICT (id) DO NOTHING
"""


class Scheduler:
    def __init__(self, settings: Settings, bus: Bus, pool: asyncpg.Pool,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.bus = bus
        self.pool = pool
        self.clock = clock
        self.lateness: list[float] = []   # seconds, of recently fired timers

    async def run(self) -> None:
        requests = await self.bus.pull(SCHEDULER_REQUESTS)
        incident_events = await self.bus.pull(SCHEDULER_INCIDENTS)
        await asyncio.gather(
            consume(requests, self._store, batch=500, name="scheduler-requests"),
            consume(incident_events, self._cancel, batch=500, name="scheduler-incidents"),
            self._ticker(),
        )

    async def _store(self, msgs: list[Msg]) -> None:
        rows = []
        for msg in msgs:
            try:
                event = timers.decoder.decode(msg.data)
            except msgspec.DecodeError:
                log.error("undecodable timer request at %s dropped", msg.subject)
                continue
            if isinstance(event, timers.TimerRequested):
                rows.append((event.id, event.kind, event.incident_id, event.step, event.repeat, event.due_at,
                             bytes(event.payload),
                             (msg.headers or {}).get("traceparent", event.traceparent)))
        if rows:
            async with self.pool.acquire() as conn:
                await conn.execute(INSERT, *map(list, zip(*rows, strict=True)))
        for msg in msgs:
            await msg.ack()

    async def _cancel(self, msgs: list[Msg]) -> None:
        """An acknowledged or resolved incident escalates no further and sends no delayed pages."""
        done = []
        for msg in msgs:
            try:
                event = incidents.decoder.decode(msg.data)
            except msgspec.DecodeError:
                log.warning("undecodable incident event at %s", msg.subject)
                continue
            if isinstance(event, incidents.IncidentAcknowledged | incidents.IncidentResolved):
                done.append(event.aggregate_id)
        if done:
            async with self.pool.acquire() as conn:
                await conn.execute("UPDATE scheduler_timers SET state = 'cancelled' "
                                   "WHERE state = 'pending' AND incident_id = ANY($1)", done)
        for msg in msgs:
            await msg.ack()

    async def tick(self) -> int:
        """One pass of every engine module; returns how many timers fired."""
        async with self.pool.acquire() as conn:
            late = await asyncio.wait_for(
                timers_module.tick(conn, self.bus, self.clock(), self.settings.batch), timeout=30)
        self.lateness = (self.lateness + late)[-10_000:]
        return len(late)

    async def _ticker(self) -> None:
        while True:
            try:
                fired = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed; trying again")
                fired = 0
            if fired < self.settings.batch:
                await asyncio.sleep(self.settings.tick_seconds)


async def run(settings: Settings, bus: Bus | None = None, pool: asyncpg.Pool | None = None,
              clock: Callable[[], datetime] = utcnow) -> None:
    own_bus, own_pool = bus is None, pool is None
    bus = bus or await Bus.connect(settings.nats_url, "tocsin-scheduler")
    pool = pool or await asyncpg.create_pool(settings.database_url, min_size=1, max_size=4)
    try:
        await bus.ensure_streams()
        await Scheduler(settings, bus, pool, clock).run()
    finally:
        if own_pool:
            await pool.close()
        if own_bus:
            with contextlib.suppress(Exception):
                await bus.close()
