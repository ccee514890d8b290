"""A metric still WARNING or CRITICAL `renotify` after it was last told is told again, with its last value.

Claimed with FOR UPDATE SKIP LOCKED and published in the same transaction, so two schedulers tell it once.
The id counts the re-notifications of one spell at one level, so a retried tick repeats the same id.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from tocsin.events import hostwatch
from tocsin.events.base import stable_id
from tocsin.events.bus import Bus
from tocsin.events.directory import Directory
from tocsin.events.durations import parse_duration
from tocsin.events.thresholds import notice_text, parse_profile

name = "threshold_renotify"

CLAIM = """
SELECT host, metric, level, value, since, renotified FROM scheduler_host_metrics
WHERE level <> 'OK' AND renotify_at <= $1
ORDER BY renotify_at
LIMIT $2
FOR UPDATE SKIP LOCKED
"""


async def tick(conn: asyncpg.Connection, bus: Bus, directory: Directory, now: datetime, batch: int = 500) -> int:
    config = directory.config
    try:
        every = parse_duration(config.renotify)
    except ValueError:
        every = None
    async with conn.transaction():
        rows = await conn.fetch(CLAIM, now, batch)
        if not rows:
            return 0
        out = []
        stop: list[tuple[str, str]] = []
        for r in rows:
            profile = config.hosts.get(r["host"], {}).get("thresholds")
            rule = parse_profile(config.thresholds[profile]).get(r["metric"]) \
                if isinstance(profile, str) and profile in config.thresholds else None
            if not every or rule is None:   # renotify turned off, or the metric no longer watched
                stop.append((r["host"], r["metric"]))
                continue
            count = r["renotified"] + 1
            out.append((r, count, hostwatch.HostNotice(
                id=stable_id("renotify", r["host"], r["metric"], r["since"].isoformat(), str(count)),
                aggregate_id=r["host"], at=now, host=r["host"], kind="metric", metric=r["metric"],
                level=r["level"], renotify=count,
                text=notice_text(r["host"], r["metric"], r["value"], r["level"], rule.threshold_of(r["level"])))))
        if stop:
            await conn.execute(
                "UPDATE scheduler_host_metrics m SET renotify_at = NULL FROM unnest($1::text[], $2::text[]) "
                "AS s(host, metric) WHERE m.host = s.host AND m.metric = s.metric",
                [h for h, _ in stop], [m for _, m in stop])
        if out:
            await bus.publish_many([(hostwatch.subject(r["host"]), notice) for r, _, notice in out])
            await conn.execute(
                "UPDATE scheduler_host_metrics m SET renotify_at = $3, renotified = s.n "
                "FROM unnest($1::text[], $2::text[], $4::int[]) AS s(host, metric, n) "
                "WHERE m.host = s.host AND m.metric = s.metric",
                [r["host"] for r, _, _ in out], [r["metric"] for r, _, _ in out], now + every if every else None,
                [n for _, n, _ in out])
    return len(out)
