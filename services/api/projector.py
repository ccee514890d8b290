"""Builds the Postgres read models from the streams.

Each batch is applied in one transaction together with the stream position it reached, and acked only
after the commit: a redelivered message below that position is skipped, so every event counts once.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging

import asyncpg
import msgspec
from nats.aio.msg import Msg

from tocsin.events import alerts, deliveries, incidents
from tocsin.events.bus import Bus, consume
from tocsin.events.streams import ALERTS, DELIVERIES, INCIDENTS, projector_consumer

log = logging.getLogger("tocsin.projector")
STREAMS = (ALERTS.name, INCIDENTS.name, DELIVERIES.name)
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
    def __init__(self, bus: Bus, pool: asyncpg.Pool) -> None:
        self.bus = bus
        self.pool = pool
        self.positions: dict[str, int] = {}

    async def run(self) -> None:
        subs = [(name, await self.bus.pull(projector_consumer(name))) for name in STREAMS]
        await asyncio.gather(*(
            consume(sub, functools.partial(self.apply_batch, name), batch=500, name=f"projector-{name}")
            for name, sub in subs))

    async def apply_batch(self, stream: str, msgs: list[Msg]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT last_seq FROM api_projection_offsets WHERE stream = $1 FOR UPDATE", stream)
            last = row["last_seq"] if row else 0
            top = last
            for msg in msgs:
                seq = msg.metadata.sequence.stream
                if seq <= last:
                    continue
                await self._apply(conn, stream, seq, msg.data)
                top = max(top, seq)
            if top > last:
                await conn.execute(
                    "INSERT INTO api_projection_offsets (stream, last_seq) VALUES ($1, $2) "
                    "ON CONFLICT (stream) DO UPDATE SET last_seq = EXCLUDED.last_seq", stream, top)
        for msg in msgs:
            await msg.ack()
        self.positions[stream] = max(self.positions.get(stream, 0), top)

    async def _apply(self, conn: asyncpg.Connection, stream: str, seq: int, data: bytes) -> None:
        try:
            if stream == INCIDENTS.name:
                await self._incident(conn, seq, incidents.decoder.decode(data), data)
            elif stream == ALERTS.name:
                await self._alert(conn, alerts.decoder.decode(data), data)
            elif stream == DELIVERIES.name:
                await self._delivery(conn, deliveries.decoder.decode(data))
        except msgspec.DecodeError:
            # An event this version cannot read: skip it rather than stall every read model behind it.
            log.error("%s seq %s: undecodable event skipped", stream, seq)

    async def _incident(self, conn: asyncpg.Connection, seq: int, event: incidents.IncidentEvent,
                        data: bytes) -> None:
        current = await conn.fetchval("SELECT state FROM api_incidents WHERE id = $1", event.aggregate_id)
        state = _state_decoder.decode(current) if current else None
        if state is not None and event.version <= state.version:
            return
        try:
            state = incidents.evolve(state, event)
        except ValueError:
            log.error("incident %s: %s", event.aggregate_id, "event before its incident was opened")
            return
        await conn.execute(
            UPSERT_INCIDENT, state.id, state.number, state.status, state.title, state.severity, state.team,
            state.route, state.source, state.dedup_key, state.created_at, state.updated_at,
            state.acknowledged_at, state.acknowledged_by, state.resolved_at, state.resolved_by,
            state.alert_count, state.version, msgspec.json.encode(state).decode())
        await conn.execute(
            "INSERT INTO api_incident_events (incident_id, seq, version, type, at, body) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            event.aggregate_id, seq, event.version, type(event).__struct_config__.tag, event.at, data.decode())

    async def _alert(self, conn: asyncpg.Connection, event: alerts.AlertReceived, data: bytes) -> None:
        await conn.execute(
            "INSERT INTO api_alerts (id, source, route, dedup_key, status, severity, title, received_at, body) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            event.aggregate_id, event.source, event.route, event.dedup_key, event.status, event.severity,
            event.title, event.at, data.decode())

    async def _delivery(self, conn: asyncpg.Connection, event: deliveries.DeliveryEvent) -> None:
        match event:
            case deliveries.Delivered():
                status, attempts, provider_id, error = "delivered", event.attempts, event.provider_id, ""
            case deliveries.DeliveryFailed():
                status, attempts, provider_id, error = "failed", event.attempts, "", event.error
            case deliveries.DeliveryAttempted():
                status, attempts, provider_id, error = "retrying", event.attempt, "", event.error
        await conn.execute(UPSERT_DELIVERY, event.notification_id, event.aggregate_id, event.channel_kind,
                           event.channel, event.user, status, attempts, provider_id, error, event.at)


def row_json(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value
