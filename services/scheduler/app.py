"""The scheduler owns time: it stores timers the router asks for and fires them when due. It sends nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime

import asyncpg
import msgspec
from nats.aio.msg import Msg

from tocsin.events import heartbeats, incidents, pg, timers
from tocsin.events.base import utcnow
from tocsin.events.bus import Bus, consume
from tocsin.events.configbus import ConfigWatcher
from tocsin.events.metrics import TIMER_LATENESS
from tocsin.events.silences import Silence, SilenceWatcher
from tocsin.events.streams import SCHEDULER_HEARTBEATS, SCHEDULER_INCIDENTS, SCHEDULER_REQUESTS
from tocsin.scheduler import hosts
from tocsin.scheduler.modules import host_overdue, shift_reminders, silence_expiry, threshold_renotify
from tocsin.scheduler.modules import timers as timers_module
from tocsin.scheduler.settings import Settings

log = logging.getLogger("tocsin.scheduler")

INSERT = """
INSERT INTO scheduler_timers (id, kind, incident_id, step, repeat, due_at, payload, traceparent, incident_version,
                              silence_id, state)
SELECT t.id, t.kind, t.incident_id, t.step, t.repeat, t.due_at, t.payload, t.traceparent, t.version, t.silence_id,
       CASE WHEN m.resolved_version >= t.version
              OR (t.kind <> 'remind' AND m.version >= t.version) THEN 'cancelled' ELSE 'pending' END
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::int[], $6::timestamptz[], $7::bytea[],
            $8::text[], $9::int[], $10::text[])
     AS t(id, kind, incident_id, step, repeat, due_at, payload, traceparent, version, silence_id)
LEFT JOIN scheduler_incident_marks m ON m.incident_id = t.incident_id
ON CONFLICT (id) DO NOTHING
"""

MARK = """
INSERT INTO scheduler_incident_marks (incident_id, version, resolved_version)
SELECT * FROM unnest($1::text[], $2::int[], $3::int[])
ON CONFLICT (incident_id) DO UPDATE SET
    version = GREATEST(scheduler_incident_marks.version, EXCLUDED.version),
    resolved_version = GREATEST(scheduler_incident_marks.resolved_version, EXCLUDED.resolved_version)
"""

CANCEL = """
UPDATE scheduler_timers t SET state = 'cancelled'
FROM scheduler_incident_marks m
WHERE t.state = 'pending' AND t.incident_id = m.incident_id AND t.incident_id = ANY($1)
  AND (t.incident_version <= m.resolved_version OR (t.kind <> 'remind' AND t.incident_version <= m.version))
"""


class Scheduler:
    def __init__(self, settings: Settings, bus: Bus, pool: asyncpg.Pool,
                 clock: Callable[[], datetime] = utcnow, config: ConfigWatcher | None = None) -> None:
        self.settings = settings
        self.bus = bus
        self.pool = pool
        self.clock = clock
        self.config = config
        self._shifts_known: set[str] = set()   # shift reminders already stored (see modules/shift_reminders)
        self._shifts_checked = 0.0
        self.lateness: list[float] = []   # seconds, of recently fired timers
        # API silences; those that ended early are handed to the silence_expiry module on the next tick.
        self.silences = SilenceWatcher(bus, self._silence_changed)
        self._ended_silences: dict[str, datetime] = {}
        # No host is called overdue before this scheduler has read the heartbeats that waited for it:
        # after a long stop every deadline has passed, but the beats that would move them are queued.
        self.beats_current = False

    async def run(self) -> None:
        requests = await self.bus.pull(SCHEDULER_REQUESTS)
        incident_events = await self.bus.pull(SCHEDULER_INCIDENTS)
        beats = None
        if self.config is not None:   # host watching needs the config (watch, intervals, thresholds)
            beats = await self.bus.pull(SCHEDULER_HEARTBEATS)
            info = await self.bus.js.consumer_info(beats.stream, beats.durable)
            # Beats handed to a scheduler that died are not pending but not done either: wait for them too.
            self.beats_current = info.num_pending == 0 and info.num_ack_pending == 0
        await self.silences.start()
        try:
            work = [consume(requests, self._store, batch=500, name="scheduler-requests"),
                    consume(incident_events, self._cancel, batch=500, name="scheduler-incidents"),
                    self._ticker()]
            if beats is not None:
                work.append(consume(beats, self._beats, batch=500, name="scheduler-heartbeats"))
            await asyncio.gather(*work)
        finally:
            await self.silences.stop()

    def _silence_changed(self, silence: Silence) -> None:
        if silence.expired_by:
            self._ended_silences[silence.id] = silence.ends

    async def _beats(self, msgs: list[Msg]) -> None:
        assert self.config is not None
        beats = []
        for msg in msgs:
            try:
                beats.append(heartbeats.decoder.decode(msg.data))
            except msgspec.DecodeError:
                log.error("undecodable heartbeat at %s dropped", msg.subject)
        async with self.pool.acquire() as conn:
            await hosts.apply_beats(conn, self.bus, self.config.directory, beats, self.clock())
        for msg in msgs:
            await msg.ack()
        if msgs and msgs[-1].metadata.num_pending == 0:
            self.beats_current = True

    async def _store(self, msgs: list[Msg]) -> None:
        rows = []
        for msg in msgs:
            try:
                event = timers.decoder.decode(msg.data)
            except msgspec.DecodeError:
                log.error("undecodable timer request at %s dropped", msg.subject)
                continue
            if isinstance(event, timers.TimerRequested):
                due_at, silence_id = event.due_at, ""
                if event.kind == "unsilence":
                    # A silence expired early (perhaps before this request arrived) ends the wait then.
                    silence_id = timers.unsilence_payload(event.payload).silence_id
                    known = self.silences.silences.get(silence_id)
                    if known is not None and known.ends < due_at:
                        due_at = known.ends
                rows.append((event.id, event.kind, event.incident_id, event.step, event.repeat, due_at,
                             bytes(event.payload),
                             (msg.headers or {}).get("traceparent", event.traceparent), event.version,
                             silence_id))
        if rows:
            async with self.pool.acquire() as conn:
                await conn.execute(INSERT, *map(list, zip(*rows, strict=True)))
        for msg in msgs:
            await msg.ack()

    async def _cancel(self, msgs: list[Msg]) -> None:
        """An acknowledged or resolved incident escalates no further and sends no delayed pages: every
        timer asked for up to that version of the incident is cancelled (a later escalation by a person
        asks for new timers, at a later version)."""
        done: dict[str, tuple[int, int]] = {}   # incident -> (acknowledged version, resolved version)
        for msg in msgs:
            try:
                event = incidents.decoder.decode(msg.data)
            except msgspec.DecodeError:
                log.warning("undecodable incident event at %s", msg.subject)
                continue
            if isinstance(event, incidents.IncidentAcknowledged | incidents.IncidentResolved):
                acked, resolved = done.get(event.aggregate_id, (0, 0))
                resolved_now = isinstance(event, incidents.IncidentResolved)
                done[event.aggregate_id] = (max(acked, event.version),
                                            max(resolved, event.version) if resolved_now else resolved)
        if done:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(MARK, list(done), [v[0] for v in done.values()], [v[1] for v in done.values()])
                await conn.execute(CANCEL, list(done))
        for msg in msgs:
            await msg.ack()

    async def tick(self) -> int:
        """One pass of every engine module; returns how many timers fired."""
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that races its result.
        async with self.pool.acquire() as conn, asyncio.timeout(30):
            late = await timers_module.tick(conn, self.bus, self.clock(), self.settings.batch)
            # Shift reminders need no sub-second precision: look every few seconds, not every tick.
            if self.config is not None and \
                    time.monotonic() - self._shifts_checked >= self.settings.shift_check_seconds:
                self._shifts_checked = time.monotonic()
                await shift_reminders.tick(conn, self.bus, self.config.directory, self.clock(),
                                           self._shifts_known)
            await silence_expiry.tick(conn, self._ended_silences)
            if self.config is not None and self.beats_current:
                await host_overdue.tick(conn, self.bus, self.config.directory, self.clock())
                await threshold_renotify.tick(conn, self.bus, self.config.directory, self.clock())
        self.lateness = (self.lateness + late)[-10_000:]
        for seconds in late:
            TIMER_LATENESS.observe(seconds)
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
    watcher = ConfigWatcher(bus)
    try:
        await bus.ensure_streams()
        if own_pool:   # run alone: bring its own tables up to date (idempotent, under an advisory lock)
            async with pool.acquire() as conn:
                await pg.migrate(conn, "scheduler", "tocsin.scheduler")
        await watcher.start()
        await Scheduler(settings, bus, pool, clock, watcher).run()
    finally:
        await watcher.stop()
        if own_pool:
            await pool.close()
        if own_bus:
            with contextlib.suppress(Exception):
                await bus.close()
