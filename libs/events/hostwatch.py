"""HOSTS stream: what the scheduler makes of heartbeats, for the router to tell people; and the pure rules.

The scheduler reads every heartbeat (one durable consumer shared by its replicas), keeps each host's
state in Postgres, and publishes a `HostNotice` on `hosts.<host>` when something worth telling happens:

| kind       | when                                                           | text                        |
|------------|----------------------------------------------------------------|-----------------------------|
| `booted`   | a `boot` datagram (watched hosts)                              | `{host} booted`             |
| `shutdown` | a `shutdown` datagram (watched hosts)                          | `{host} udp shutdown`       |
| `overdue`  | no datagram within `overdue_after` (the scheduler's tick)      | `{host} udp overdue`        |
| `back`     | the first datagram after `overdue`                             | `{host} udp is back`        |
| `metric`   | a metric changed level, or is still not OK after `renotify`    | see `thresholds.py`         |

`on_beat` is the state machine of one host; it has no I/O and no clock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from tocsin.events.base import Event
from tocsin.events.heartbeats import HeartbeatReceived
from tocsin.events.thresholds import Level, Rule, transition

NoticeKind = Literal["booted", "shutdown", "overdue", "back", "metric"]
HostStatus = Literal["up", "overdue", "down"]
OVERDUE_INTERVALS = 3


class HostNotice(Event, frozen=True, kw_only=True, tag="host.notice"):
    """`aggregate_id` is the host. `id` is derived from the heartbeat (or the overdue episode, or the
    re-notification) that caused it, so a scheduler that does its work again publishes the same ids."""

    host: str
    kind: NoticeKind
    text: str
    metric: str = ""
    level: str = ""             # metric notices: OK, WARNING or CRITICAL
    renotify: int = 0           # metric notices: 0 for the change itself, then 1, 2, ... while not OK


HostEvent = HostNotice
decoder = msgspec.json.Decoder(HostEvent)
SUBJECT_PREFIX = "hosts"


def subject(host: str) -> str:
    return f"{SUBJECT_PREFIX}.{host}"


def text(host: str, kind: NoticeKind) -> str:
    return {"booted": f"{host} booted", "shutdown": f"{host} udp shutdown", "overdue": f"{host} udp overdue",
            "back": f"{host} udp is back"}.get(kind, host)


@dataclass(frozen=True)
class HostState:
    """One host as the scheduler knows it. `last_received_at` is the intake's clock (to skip a beat older
    than one already applied); `last_seen` and `overdue_at` are the scheduler's clock."""

    host: str
    status: HostStatus = "up"
    last_seen: datetime | None = None
    last_received_at: datetime | None = None
    overdue_at: datetime | None = None


@dataclass(frozen=True)
class MetricState:
    level: Level = "OK"
    value: float = 0.0
    since: datetime | None = None


@dataclass(frozen=True)
class Told:
    """Something to tell: a liveness notice, or a metric's change of level."""

    kind: NoticeKind
    text: str
    metric: str = ""
    level: str = ""


def overdue_after(interval: timedelta, configured: timedelta | None) -> timedelta:
    return configured if configured else OVERDUE_INTERVALS * interval


def on_beat(state: HostState | None, metrics: dict[str, MetricState], beat: HeartbeatReceived, *,
            now: datetime, watch: bool, late_after: timedelta, rules: dict[str, Rule]) -> tuple[
        HostState, dict[str, MetricState], list[Told]]:
    """Apply one heartbeat. Returns the host's new state, the metrics whose state changed, and what to tell.

    A beat older than the last one applied (two scheduler replicas, or a redelivery) changes nothing.
    Liveness notices are for watched hosts only; thresholds apply wherever a profile is named.
    """
    host = beat.host
    if state is not None and state.last_received_at is not None and beat.received_at < state.last_received_at:
        return state, {}, []
    told: list[Told] = []
    was = state.status if state is not None else "up"
    if watch and was == "overdue":
        told.append(Told("back", text(host, "back")))
    if watch and beat.event == "boot":
        told.append(Told("booted", text(host, "booted")))
    if watch and beat.event == "shutdown":
        told.append(Told("shutdown", text(host, "shutdown")))
    # A host that says it shuts down is not expected to beat again: it is not overdue, it is down.
    down = beat.event == "shutdown"
    new_state = HostState(host=host, status="down" if down else "up", last_seen=now,
                          last_received_at=beat.received_at, overdue_at=None if down else now + late_after)
    changed: dict[str, MetricState] = {}
    for metric, rule in rules.items():
        if metric not in beat.metrics:
            continue
        value = beat.metrics[metric]
        previous = metrics.get(metric, MetricState())
        change = transition(host, metric, rule, previous.level, value)
        if change is None:
            changed[metric] = MetricState(level=previous.level, value=value, since=previous.since)
        else:
            changed[metric] = MetricState(level=change.level, value=value, since=now)
            told.append(Told("metric", change.text, metric=metric, level=change.level))
    return new_state, changed, told
