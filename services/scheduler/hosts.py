"""Heartbeats in, host state in Postgres, `HostNotice`s out (boot, shutdown, back, metric levels).

Every scheduler replica shares one durable consumer on HEARTBEATS, so each beat is applied by one of
them; the state is in Postgres, so all of them (and a restarted one) see every host's last beat. A batch
is applied in one transaction that locks the rows of its hosts; its notices are published before the
commit, with ids derived from the beats, so a batch done again publishes the same ids (JetStream keeps
one) and a beat older than one already applied changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from tocsin.events import hostwatch
from tocsin.events.base import Event, stable_id
from tocsin.events.bus import Bus
from tocsin.events.directory import Directory
from tocsin.events.durations import parse_duration
from tocsin.events.heartbeats import HeartbeatReceived
from tocsin.events.hostwatch import HostState, MetricState
from tocsin.events.thresholds import Rule, parse_profile

log = logging.getLogger("tocsin.scheduler.hosts")

UPSERT_HOSTS = """
INSERT INTO scheduler_hosts (host, status, last_seen, last_received_at, overdue_at, updated_at)
SELECT *, now() FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[])
ON CONFLICT (host) DO UPDATE SET status = EXCLUDED.status, last_seen = EXCLUDED.last_seen,
    last_received_at = EXCLUDED.last_received_at, overdue_at = EXCLUDED.overdue_at, updated_at = now()
"""

# A metric that keeps its level keeps its re-notification schedule; one that changes level starts anew. One
# without a schedule (renotify was off, or the profile changed) gets one when renotify is on again.
UPSERT_METRICS = """
INSERT INTO scheduler_host_metrics (host, metric, level, value, since, renotify_at, renotified)
SELECT *, 0 FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::timestamptz[], $6::timestamptz[])
ON CONFLICT (host, metric) DO UPDATE SET level = EXCLUDED.level, value = EXCLUDED.value, since = EXCLUDED.since,
    renotify_at = CASE WHEN scheduler_host_metrics.since IS DISTINCT FROM EXCLUDED.since
                         OR scheduler_host_metrics.renotify_at IS NULL
                       THEN EXCLUDED.renotify_at ELSE scheduler_host_metrics.renotify_at END,
    renotified = CASE WHEN scheduler_host_metrics.since IS DISTINCT FROM EXCLUDED.since
                      THEN 0 ELSE scheduler_host_metrics.renotified END
"""


def host_settings(directory: Directory, host: str, announced: int) -> tuple[bool, timedelta, dict[str, Rule]]:
    """(watch, overdue after, threshold rules) of a host in the current config."""
    config = directory.config
    spec: dict[str, Any] = config.hosts.get(host, {})
    interval = parse_duration(spec["interval"]) if isinstance(spec.get("interval"), str) else timedelta(
        seconds=max(announced, 1))
    configured = parse_duration(spec["overdue_after"]) if isinstance(spec.get("overdue_after"), str) else None
    profile = spec.get("thresholds")
    rules = parse_profile(config.thresholds[profile]) if isinstance(profile, str) and \
        profile in config.thresholds else {}
    return spec.get("watch") is True, hostwatch.overdue_after(interval, configured), rules


def renotify_every(directory: Directory) -> timedelta:
    try:
        return parse_duration(directory.config.renotify)
    except ValueError:
        return timedelta()


async def apply_beats(conn: asyncpg.Connection, bus: Bus, directory: Directory, beats: list[HeartbeatReceived],
                      now: datetime) -> int:
    """Apply beats in stream order; returns how many notices were published."""
    if not beats:
        return 0
    hosts = sorted({b.host for b in beats})
    async with conn.transaction():
        # Rows first (a new host too), then lock them in one order, so two replicas never deadlock.
        await conn.execute("INSERT INTO scheduler_hosts (host) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
                           hosts)
        states: dict[str, HostState | None] = {}
        for r in await conn.fetch("SELECT * FROM scheduler_hosts WHERE host = ANY($1) ORDER BY host FOR UPDATE",
                                  hosts):
            states[r["host"]] = None if r["last_seen"] is None else HostState(
                host=r["host"], status=r["status"], last_seen=r["last_seen"],
                last_received_at=r["last_received_at"], overdue_at=r["overdue_at"])
        metrics: dict[str, dict[str, MetricState]] = {h: {} for h in hosts}
        for r in await conn.fetch("SELECT host, metric, level, value, since FROM scheduler_host_metrics "
                                  "WHERE host = ANY($1)", hosts):
            metrics[r["host"]][r["metric"]] = MetricState(level=r["level"], value=r["value"], since=r["since"])
        every = renotify_every(directory)
        changed_metrics: dict[tuple[str, str], MetricState] = {}
        out: list[tuple[str, Event]] = []
        for beat in beats:
            watch, late_after, rules = host_settings(directory, beat.host, beat.interval)
            state, changed, told = hostwatch.on_beat(states[beat.host], metrics[beat.host], beat, now=now,
                                                     watch=watch, late_after=late_after, rules=rules)
            states[beat.host] = state
            metrics[beat.host].update(changed)
            changed_metrics.update({(beat.host, m): s for m, s in changed.items()})
            for t in told:
                out.append((hostwatch.subject(beat.host), hostwatch.HostNotice(
                    id=stable_id("host", beat.id, t.kind, t.metric), aggregate_id=beat.host, at=now,
                    host=beat.host, kind=t.kind, text=t.text, metric=t.metric, level=t.level)))
        rows = [s for s in states.values() if s is not None]
        await conn.execute(UPSERT_HOSTS, [s.host for s in rows], [s.status for s in rows],
                           [s.last_seen for s in rows], [s.last_received_at for s in rows],
                           [s.overdue_at for s in rows])
        if changed_metrics:
            items = list(changed_metrics.items())
            await conn.execute(
                UPSERT_METRICS, [h for (h, _), _ in items], [m for (_, m), _ in items],
                [s.level for _, s in items], [s.value for _, s in items], [s.since for _, s in items],
                [s.since + every if s.level != "OK" and every and s.since else None for _, s in items])
        if out:
            await bus.publish_many(out)
    return len(out)
