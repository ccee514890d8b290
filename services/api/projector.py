"""Builds the Postgres read models from the streams.

Each batch is applied in one transaction together with the stream position it reached, and acked only
after the commit: a redelivered message below that position is skipped, so every event counts once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
import msgspec
from nats.js.api import ConsumerConfig, DeliverPolicy

from tocsin.api import stream as event_stream
from tocsin.events import alerts, audit, deliveries, incidents, routing
from tocsin.events.bus import Bus
from tocsin.events.streams import ALERTS, AUDIT, DELIVERIES, INCIDENTS, ROUTING
from tocsin.events.tasks import cancel_and_wait

log = logging.getLogger("tocsin.projector")
STREAMS = (ALERTS.name, INCIDENTS.name, DELIVERIES.name, ROUTING.name, AUDIT.name)
_state_decoder = msgspec.json.Decoder(incidents.IncidentState)

UPSERT_INCIDENT = """
INSERT INTO api_incidents (id, number, status, title, severity, team, route, source, dedup_key, created_at,
    updated_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by, alert_count, version, state)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, title = EXCLUDED.title, severity = EXCLUDED.severity,
    updated_at = EXCLUDED.updated_at, acknowledged_at = EXCLUDED.acknowledged_at,
    acknowledged_by = EXCLUDED.acknowledged_by, resolved_at = EXCLUDED.resolved_at,
    resolved_by = EXCLUDED.resolved_by, alert_count = EXCLUDED.alert_count, version = EXCLUDED.version,
    state = EXCLUDED.state
"""

UPSERT_DELIVERY = """
INSERT INTO api_deliveries (notification_id, incident_id, channel_kind, channel, user_name, status, attempts,
    provider_id, error, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (notification_id) DO UPDATE SET
    status = CASE WHEN api_deliveries.status IN ('delivered', 'failed') AND EXCLUDED.status = 'retrying'
                  THEN api_deliveries.status ELSE EXCLUDED.status END,
    attempts = GREATEST(api_deliveries.attempts, EXCLUDED.attempts),
    provider_id = CASE WHEN EXCLUDED.provider_id <> '' THEN EXCLUDED.provider_id ELSE api_deliveries.provider_id END,
    error = EXCLUDED.error, updated_at = EXCLUDED.updated_at
"""


class Projector:
    def __init__(self, bus: Bus, pool: asyncpg.Pool, dsn: str, *, notify: bool = True) -> None:
        self.bus = bus
        self.pool = pool
        self.dsn = dsn
        self.notify = notify     # tell /api/v1/stream listeners of each change (not during a rebuild)

    async def run(self) -> None:
        """Project until cancelled. One projector at a time across API replicas (a Postgres advisory lock
        on a connection of its own); the others wait here and take over when its session ends."""
        while True:
            leader = await asyncpg.connect(self.dsn)
            try:
                await leader.execute("SELECT pg_advisory_lock(727003)")
                tasks = [asyncio.create_task(self._follow(name), name=f"projector-{name}") for name in STREAMS]
                tasks.append(asyncio.create_task(_watch(leader), name="projector-lock"))
                try:
                    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result()
                finally:
                    await cancel_and_wait(tasks, 5)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("projector stopped; starting again")
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await leader.close(timeout=2)

    async def _follow(self, stream: str) -> None:
        """Read the stream in order from the position stored with the read models. An ordered consumer
        (no acks, no redelivery) cannot hand events over out of order, so a batch that fails is simply
        tried again, and nothing after it is applied first."""
        last = await self.pool.fetchval("SELECT last_seq FROM api_projection_offsets WHERE stream = $1",
                                        stream) or 0
        sub = await self.bus.js.subscribe(
            f"{stream.lower()}.>", stream=stream, ordered_consumer=True, pending_msgs_limit=100_000,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=last + 1))
        try:
            while True:
                batch = [await sub.next_msg(timeout=None)]
                while len(batch) < 500 and sub.pending_msgs:
                    batch.append(await sub.next_msg(timeout=1))
                items = [(msg.metadata.sequence.stream, msg.data) for msg in batch]
                delay = 0.2
                while True:
                    try:
                        await self.apply_batch(stream, items)
                        break
                    except (asyncpg.PostgresConnectionError, OSError, asyncpg.InterfaceError) as exc:
                        log.warning("projector %s: %s; trying the batch again", stream, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def apply_batch(self, stream: str, items: list[tuple[int, bytes]]) -> None:
        """Apply (stream sequence, data) pairs in one transaction with the position they reach."""
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT last_seq FROM api_projection_offsets WHERE stream = $1 FOR UPDATE", stream)
            last = row["last_seq"] if row else 0
            fresh = [(seq, data) for seq, data in items if seq > last]
            if not fresh:
                return
            await self.apply_in(conn, stream, fresh)
            await _set_offset(conn, stream, max(seq for seq, _ in fresh))

    async def apply_in(self, conn: asyncpg.Connection, stream: str, items: list[tuple[int, bytes]]) -> None:
        if stream == INCIDENTS.name:
            await self._incidents(conn, items)
        elif stream == ALERTS.name:
            await self._alerts(conn, items)
        elif stream == DELIVERIES.name:
            await self._deliveries(conn, items)
        elif stream == ROUTING.name:
            await self._routing(conn, items)
        elif stream == AUDIT.name:
            await self._audit(conn, items)

    def _decoded(self, stream: str, items: list[tuple[int, bytes]], decoder: msgspec.json.Decoder[Any]) -> list[
            tuple[int, bytes, Any]]:
        out = []
        for seq, data in items:
            try:
                out.append((seq, data, decoder.decode(data)))
            except msgspec.DecodeError:
                # An event this version cannot read: skip it rather than stall every read model behind it.
                log.error("%s seq %s: undecodable event skipped", stream, seq)
        return out

    async def _incidents(self, conn: asyncpg.Connection, items: list[tuple[int, bytes]]) -> None:
        events = self._decoded(INCIDENTS.name, items, incidents.decoder)
        ids = list({event.aggregate_id for _, _, event in events})
        rows = await conn.fetch("SELECT id, state FROM api_incidents WHERE id = ANY($1)", ids)
        states: dict[str, incidents.IncidentState | None] = {r["id"]: _state_decoder.decode(r["state"])
                                                             for r in rows}
        changed: set[str] = set()
        timeline = []
        for seq, data, event in events:
            state = states.get(event.aggregate_id)
            if state is not None and event.version <= state.version:
                continue
            try:
                states[event.aggregate_id] = incidents.evolve(state, event)
            except ValueError:
                log.error("incident %s: event before its incident was opened", event.aggregate_id)
                continue
            changed.add(event.aggregate_id)
            timeline.append((event.aggregate_id, seq, event.version, type(event).__struct_config__.tag, event.at,
                             data.decode()))
        await conn.executemany(UPSERT_INCIDENT, [
            (s.id, s.number, s.status, s.title, s.severity, s.team, s.route, s.source, s.dedup_key, s.created_at,
             s.updated_at, s.acknowledged_at, s.acknowledged_by, s.resolved_at, s.resolved_by, s.alert_count,
             s.version, msgspec.json.encode(s).decode())
            for s in (states[i] for i in changed) if s is not None])
        await conn.executemany(
            "INSERT INTO api_incident_events (incident_id, seq, version, type, at, body) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING", timeline)
        if self.notify:
            await _notify(conn, "incident", changed)

    async def _alerts(self, conn: asyncpg.Connection, items: list[tuple[int, bytes]]) -> None:
        await conn.executemany(
            "INSERT INTO api_alerts (id, source, route, dedup_key, status, severity, title, received_at, body) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            [(e.aggregate_id, e.source, e.route, e.dedup_key, e.status, e.severity, e.title, e.at, data.decode())
             for _, data, e in self._decoded(ALERTS.name, items, alerts.decoder)])

    async def _deliveries(self, conn: asyncpg.Connection, items: list[tuple[int, bytes]]) -> None:
        rows = []
        for _, _, event in self._decoded(DELIVERIES.name, items, deliveries.decoder):
            match event:
                case deliveries.Delivered():
                    status, attempts, provider_id, error = "delivered", event.attempts, event.provider_id, ""
                case deliveries.DeliveryFailed():
                    status, attempts, provider_id, error = "failed", event.attempts, "", event.error
                case deliveries.DeliveryAttempted():
                    status, attempts, provider_id, error = "retrying", event.attempt, "", event.error
            rows.append((event.notification_id, event.aggregate_id, event.channel_kind, event.channel, event.user,
                         status, attempts, provider_id, error, event.at))
        # In stream order: one notification's later event wins (executemany runs the rows in order).
        await conn.executemany(UPSERT_DELIVERY, rows)
        if self.notify:
            await _notify(conn, "delivery", {row[1] for row in rows})

    async def _audit(self, conn: asyncpg.Connection, items: list[tuple[int, bytes]]) -> None:
        await conn.executemany(
            "INSERT INTO api_audit (id, seq, at, actor, action, target, team, via, details) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            [(e.id, seq, e.at, e.actor, e.action, e.target, e.team, e.via, msgspec.json.encode(e.details).decode())
             for seq, _, e in self._decoded(AUDIT.name, items, audit.decoder)])

    async def _routing(self, conn: asyncpg.Connection, items: list[tuple[int, bytes]]) -> None:
        # The latest outcome per alert wins (an alert is routed once; a redelivery records the same).
        await conn.executemany(
            "INSERT INTO api_alert_routing (alert_id, outcome, routed_at, body) VALUES ($1, $2, $3, $4) "
            "ON CONFLICT (alert_id) DO UPDATE SET outcome = EXCLUDED.outcome, routed_at = EXCLUDED.routed_at, "
            "body = EXCLUDED.body",
            [(e.alert_id, e.outcome, e.at, data.decode())
             for _, data, e in self._decoded(ROUTING.name, items, routing.decoder)])


async def _notify(conn: asyncpg.Connection, kind: str, incident_ids: set[str]) -> None:
    """Tell the API's event streams (every replica) what changed. Sent inside the batch's transaction,
    Postgres delivers it only after the commit, so a listener always reads the change it is told about."""
    if incident_ids:
        await conn.executemany("SELECT pg_notify($1, $2)",
                               [(event_stream.CHANNEL, event_stream.notice(kind, i)) for i in sorted(incident_ids)])


async def _set_offset(conn: asyncpg.Connection, stream: str, seq: int) -> None:
    await conn.execute("INSERT INTO api_projection_offsets (stream, last_seq) VALUES ($1, $2) "
                       "ON CONFLICT (stream) DO UPDATE SET last_seq = EXCLUDED.last_seq", stream, seq)


# The offsets first: a running projector locks its offset row before it writes the read models, so taking
# the tables in this order waits for its batch instead of deadlocking with it.
READ_MODELS = ("api_projection_offsets", "api_incidents", "api_incident_events", "api_deliveries", "api_alerts",
               "api_alert_routing", "api_audit")


async def rebuild(bus: Bus, pool: asyncpg.Pool, batch: int = 500) -> dict[str, int]:
    """Drop the read models and replay them from the streams; returns the events replayed per stream.

    One transaction: nobody sees the read models half-built, and a projector running meanwhile (under
    `tocsin up`) waits on the table locks, then goes on from the offsets written here, skipping what
    the rebuild already replayed."""
    projector = Projector(bus, pool, "", notify=False)   # replaying yields the same state: nothing to tell
    counts: dict[str, int] = {}
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"TRUNCATE {', '.join(READ_MODELS)}")
        for stream in STREAMS:
            info = await bus.js.stream_info(stream)
            top, counts[stream] = info.state.last_seq, 0
            if not info.state.messages:
                await _set_offset(conn, stream, top)
                continue
            sub = await bus.js.subscribe(f"{stream.lower()}.>", stream=stream, ordered_consumer=True,
                                         pending_msgs_limit=100_000,
                                         config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
            try:
                items: list[tuple[int, bytes]] = []
                seq = 0
                while seq < top:
                    msg = await sub.next_msg(timeout=30)
                    seq = msg.metadata.sequence.stream
                    if seq <= top:
                        items.append((seq, msg.data))
                    if len(items) >= batch or seq >= top:
                        await projector.apply_in(conn, stream, items)
                        counts[stream] += len(items)
                        items = []
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            await _set_offset(conn, stream, top)
    return counts


async def _watch(leader: asyncpg.Connection) -> None:
    """Return (ending the projection) when the session that holds the lock is gone."""
    while True:
        await asyncio.sleep(5)
        await leader.fetchval("SELECT 1", timeout=5)
