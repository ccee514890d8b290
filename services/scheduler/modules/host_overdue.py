"""A watched host that sent nothing within its `overdue_after` is overdue: publish `{host} udp overdue`.

Rows are claimed with FOR UPDATE SKIP LOCKED, marked overdue and published in one transaction, so two
schedulers tell each overdue spell once. The notice id comes from the host's last beat: a scheduler
killed between the publish and the commit publishes the same id again, which JetStream keeps once.
The next beat makes the host `up` again and says `{host} udp is back` (see tocsin.scheduler.hosts).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

from tocsin.events import hostwatch
from tocsin.events.base import stable_id
from tocsin.events.bus import Bus
from tocsin.events.directory import Directory

name = "host_overdue"

CLAIM = """
SELECT host, last_seen FROM scheduler_hosts
WHERE status = 'up' AND overdue_at <= $1
ORDER BY overdue_at
LIMIT $2
FOR UPDATE SKIP LOCKED
"""


async def tick(conn: asyncpg.Connection, bus: Bus, directory: Directory, now: datetime, batch: int = 500) -> int:
    async with conn.transaction():
        rows = await conn.fetch(CLAIM, now, batch)
        if not rows:
            return 0
        watched = [r for r in rows if directory.config.hosts.get(r["host"], {}).get("watch") is True]
        quiet = sorted({r["host"] for r in rows} - {r["host"] for r in watched})
        if quiet:   # not watched (any more): nothing to tell until its next beat sets a new deadline
            await conn.execute("UPDATE scheduler_hosts SET overdue_at = NULL WHERE host = ANY($1)", quiet)
        if watched:
            await bus.publish_many([(hostwatch.subject(r["host"]), hostwatch.HostNotice(
                id=stable_id("host-overdue", r["host"], r["last_seen"].isoformat()), aggregate_id=r["host"],
                at=now, host=r["host"], kind="overdue", text=hostwatch.text(r["host"], "overdue")))
                for r in watched])
            await conn.execute("UPDATE scheduler_hosts SET status = 'overdue', updated_at = now() "
                               "WHERE host = ANY($1)", [r["host"] for r in watched])
    return len(watched)
