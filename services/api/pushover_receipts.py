"""Receipt polling: the fallback for installations Pushover's callback cannot reach.

With `providers.pushover.poll: 30s`, the API asks Pushover's receipt API about each emergency page of a
still-triggered incident (sent in the last 3 hours, Pushover's longest `expire`) every 30 s, and
acknowledges the incident as the person paged once Pushover reports the receipt acknowledged. One API
replica polls at a time (a Postgres advisory lock), so more replicas do not multiply the queries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from tocsin.api.answers import AnswerRefused, act_as
from tocsin.api.callbacks_pushover import receipt_acknowledged
from tocsin.api.context import CONTEXT, Context
from tocsin.events.durations import parse_duration
from tocsin.events.tasks import cancel_and_wait
from tocsin.events.web import ApiError

log = logging.getLogger("tocsin.api.pushover")
LOCK = 0x70757368   # "push": one poller across API replicas
IDLE = 5.0          # seconds between looks at the config while polling is off
OPEN_RECEIPTS = """
SELECT d.incident_id, d.provider_id, COALESCE(NULLIF(d.user_name, ''), d.channel) AS who
FROM api_deliveries d JOIN api_incidents i ON i.id = d.incident_id
WHERE d.channel_kind = 'pushover' AND d.status = 'delivered' AND i.status = 'triggered'
  AND d.provider_id ~ '^[A-Za-z0-9]{30}$' AND d.updated_at > now() - interval '3 hours'
ORDER BY d.updated_at LIMIT 200
"""


def poll_interval(ctx: Context) -> float:
    """Seconds between polls, 0 when polling is off."""
    pushover = ctx.provider("pushover")
    if not pushover.get("poll") or not pushover.get("token"):
        return 0.0
    return parse_duration(str(pushover["poll"])).total_seconds()


async def poll_once(ctx: Context) -> int:
    """Ask about every open emergency receipt; acknowledge what Pushover reports acknowledged. Returns how
    many incidents were acknowledged (0 also when another replica holds the lock)."""
    pushover = ctx.provider("pushover")
    base_url = str(pushover.get("base_url") or "https://api.pushover.net")
    acknowledged = 0
    async with ctx.pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK):
            return 0
        try:
            rows = await conn.fetch(OPEN_RECEIPTS)
            for row in rows:
                try:
                    if not await receipt_acknowledged(base_url, str(pushover["token"]), row["provider_id"]):
                        continue
                    await act_as(ctx, incident_id=row["incident_id"], user=row["who"], action="acknowledge",
                                 via="pushover")
                    acknowledged += 1
                except (ApiError, AnswerRefused) as exc:
                    log.warning("pushover receipt of incident %s: %s", row["incident_id"], exc)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", LOCK)
    return acknowledged


async def _run(ctx: Context) -> None:
    while True:
        every = 0.0
        with contextlib.suppress(ApiError):   # not started up yet
            every = poll_interval(ctx)
        await asyncio.sleep(every or IDLE)
        if every:
            try:
                await poll_once(ctx)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("polling Pushover receipts failed; trying again in %.0fs", every)


async def receipt_poller(app: web.Application) -> AsyncIterator[None]:
    """A cleanup context, added after the one that attaches the bus and pool."""
    task = asyncio.create_task(_run(app[CONTEXT]), name="pushover-receipts")
    yield
    await cancel_and_wait([task], 5)
