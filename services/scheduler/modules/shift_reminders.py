"""Tell the next person `shift_reminder` before their shift starts (a TimerFired of kind `shift`).

A row per reminder, inserted in the same transaction that publishes it, makes two schedulers (or one
that restarts) remind once: the second insert waits for the first commit, then finds the row.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import asyncpg
import msgspec

from tocsin.events import timers
from tocsin.events.base import stable_id
from tocsin.events.bus import Bus
from tocsin.events.directory import Directory
from tocsin.events.durations import parse_duration

name = "shift_reminders"


async def tick(conn: asyncpg.Connection, bus: Bus, directory: Directory, now: datetime,
               known: set[str] | None = None) -> int:
    """`known` holds the keys this scheduler already saw stored, so that a shift inside its lead time costs
    no transaction on every later tick."""
    known = set() if known is None else known
    due: list[tuple[str, timers.ShiftDue]] = []
    for (team, rotation_name), rotation in directory.rotations().items():
        lead = parse_duration(directory.config.teams[team].shift_reminder)
        if not lead:
            continue
        for shift in rotation.shifts(now, now + lead + timedelta(seconds=1)):
            if now < shift.start <= now + lead:
                key = f"{team}/{rotation_name}/{shift.user}/{shift.start.isoformat()}"
                if key in known:
                    continue
                due.append((key, timers.ShiftDue(team=team, rotation=rotation_name, user=shift.user, start=shift.start,
                                          end=shift.end, timezone=rotation.timezone)))
    if not due:
        return 0
    async with conn.transaction():
        new = {r["key"] for r in await conn.fetch(
            "INSERT INTO scheduler_shift_reminders (key) SELECT unnest($1::text[]) "
            "ON CONFLICT (key) DO NOTHING RETURNING key", [k for k, _ in due])}
        events = [timers.TimerFired(
            id=stable_id("shift", key), at=now, timer_id=stable_id("shift-timer", key), kind="shift",
            due_at=shift.start, incident_id="", payload=msgspec.Raw(msgspec.json.encode(shift)))
            for key, shift in due if key in new]
        if events:
            await bus.publish_many([(timers.fired_subject("shift"), e) for e in events])
    known.update(k for k, _ in due)
    if len(known) > 100_000:   # shifts long past; they cannot come within a lead time again
        known.clear()
    return len(events)
