"""Fire due timers: claim them with FOR UPDATE SKIP LOCKED, publish TimerFired, mark them fired.

Two schedulers never claim the same row. A scheduler killed between the publish and the commit leaves
the row pending; the next tick publishes it again under the same `Nats-Msg-Id`, which JetStream drops,
and the router ignores a timer for a step the incident has already left.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
import msgspec

from tocsin.events import timers
from tocsin.events.base import stable_id
from tocsin.events.bus import Bus

name = "timers"

CLAIM = """
SELECT id, kind, incident_id, step, repeat, due_at, payload, traceparent, incident_version
FROM scheduler_timers
WHERE state = 'pending' AND due_at <= $1
ORDER BY due_at
LIMIT $2
FOR UPDATE SKIP LOCKED
"""


async def tick(conn: asyncpg.Connection, bus: Bus, now: datetime, batch: int) -> list[float]:
    """Fire what is due; returns each fired timer's lateness in seconds."""
    async with conn.transaction():
        rows = await conn.fetch(CLAIM, now, batch)
        if not rows:
            return []
        fired = [timers.TimerFired(
            id=stable_id("fired", r["id"]), aggregate_id=r["incident_id"], version=r["incident_version"], at=now,
            timer_id=r["id"],
            kind=r["kind"], due_at=r["due_at"], incident_id=r["incident_id"], step=r["step"],
            repeat=r["repeat"], traceparent=r["traceparent"],
            payload=msgspec.Raw(r["payload"] or b"null")) for r in rows]
        await bus.publish_many([(timers.fired_subject(f.incident_id), f) for f in fired], own_trace=True)
        await conn.execute("UPDATE scheduler_timers SET state = 'fired', fired_at = $2 WHERE id = ANY($1)",
                           [r["id"] for r in rows], now)
    return [(now - r["due_at"]).total_seconds() for r in rows]
