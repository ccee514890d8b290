"""Stream, subject and durable consumer definitions, created idempotently at start.

| stream     | subjects                 | written by            | read by                        |
|------------|--------------------------|-----------------------|--------------------------------|
| ALERTS     | alerts.<route>           | intake                | router, api projector          |
| INCIDENTS  | incidents.<incident id>  | router, api           | scheduler, api projector       |
| TIMERS     | timers.requested/.fired  | router / scheduler    | scheduler / router             |
| NOTIFY     | notify.<channel kind>    | router                | notifier (one consumer a kind) |
| DELIVERIES | deliveries.<kind>        | notifier              | api projector                  |
| CONFIG     | config.applied           | api (config apply)    | intake, router, notifier, ...  |
| HEARTBEATS | heartbeats.<host>        | intake (UDP)          | scheduler (host watching)      |
| HOSTS      | hosts.<host>             | scheduler             | router (host notices)          |
| ROUTING    | routing.<route>          | router                | api projector                  |
| SILENCES   | silences.<silence id>    | api                   | router, scheduler, api         |
| DEADLETTER | deadletter.<kind>        | notifier              | operators (`tocsin dead-letters`) |
| AUDIT      | audit.<object>           | api                   | api projector                  |

INCIDENTS keeps one subject per aggregate with the event type in the payload, so that
`Nats-Expected-Last-Subject-Sequence` guards every append on every server version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)


@dataclass(frozen=True)
class StreamDef:
    name: str
    subjects: list[str]
    max_age: timedelta | None = None
    max_msgs_per_subject: int = -1
    duplicate_window: timedelta = timedelta(minutes=2)
    retention: RetentionPolicy = RetentionPolicy.LIMITS

    def config(self, replicas: int = 1) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            retention=self.retention,
            storage=StorageType.FILE,
            max_age=self.max_age.total_seconds() if self.max_age else None,
            max_msgs_per_subject=self.max_msgs_per_subject,
            duplicate_window=self.duplicate_window.total_seconds(),
            discard=DiscardPolicy.OLD,
            num_replicas=replicas,
            allow_direct=True,
        )


ALERTS = StreamDef("ALERTS", ["alerts.>"], max_age=timedelta(days=90))
INCIDENTS = StreamDef("INCIDENTS", ["incidents.>"])
TIMERS = StreamDef("TIMERS", ["timers.>"], max_age=timedelta(days=30))
NOTIFY = StreamDef("NOTIFY", ["notify.>"], max_age=timedelta(days=30))
DELIVERIES = StreamDef("DELIVERIES", ["deliveries.>"], max_age=timedelta(days=365))
CONFIG = StreamDef("CONFIG", ["config.>"], max_msgs_per_subject=20)
# A datagram is accepted up to 2 minutes either side of its `ts`; the window covers that span, so a copy
# replayed within it (after the intake restarted and forgot the host's sequence) is still stored once.
HEARTBEATS = StreamDef("HEARTBEATS", ["heartbeats.>"], max_age=timedelta(days=7),
                       duplicate_window=timedelta(minutes=5))

# What the scheduler makes of heartbeats (boot, shutdown, overdue, back, thresholds), for the router.
HOSTS = StreamDef("HOSTS", ["hosts.>"], max_age=timedelta(days=30))
# What the router did with each alert ("why was nobody paged?"); kept as long as the alerts.
ROUTING = StreamDef("ROUTING", ["routing.>"], max_age=timedelta(days=90))
# Silences made through the API: one subject per silence holding its latest state, kept until deleted.
SILENCES = StreamDef("SILENCES", ["silences.>"], max_msgs_per_subject=1)

# What no retry can fix (permanent failures, undecodable commands, max deliveries), to see and replay.
DEADLETTER = StreamDef("DEADLETTER", ["deadletter.>"], max_age=timedelta(days=90))
# Who changed what and who acted on incidents (libs/events/audit.py); kept, like INCIDENTS.
AUDIT = StreamDef("AUDIT", ["audit.>"])

ALL_STREAMS = (ALERTS, INCIDENTS, TIMERS, NOTIFY, DELIVERIES, CONFIG, HEARTBEATS, HOSTS, ROUTING, SILENCES,
               DEADLETTER, AUDIT)

# The notifier's delivery ledger: one key per notification id, so a redelivered command is not sent twice.
DELIVERY_LEDGER_BUCKET = "tocsin_delivery_ledger"
# The router's dedup index: route + dedup key -> the open incident (compare-and-set on the key's revision).
DEDUP_BUCKET = "tocsin_dedup"
# Small counters (the human-friendly incident number).
COUNTERS_BUCKET = "tocsin_counters"


@dataclass(frozen=True)
class ConsumerDef:
    stream: str
    durable: str
    filter_subject: str
    ack_wait: timedelta = timedelta(seconds=30)
    max_deliver: int = -1
    max_ack_pending: int = 1000
    extra: dict[str, object] = field(default_factory=dict)
    deliver_policy: DeliverPolicy = DeliverPolicy.ALL

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            filter_subject=self.filter_subject,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=self.deliver_policy,
            ack_wait=self.ack_wait.total_seconds(),
            max_deliver=self.max_deliver,
            max_ack_pending=self.max_ack_pending,
        )


# The router decides in milliseconds; a short ack wait means a router killed mid-batch is replaced fast.
ROUTER_ALERTS = ConsumerDef("ALERTS", "router-alerts", "alerts.>", ack_wait=timedelta(seconds=10))
ROUTER_TIMERS = ConsumerDef("TIMERS", "router-timers", "timers.fired.>", ack_wait=timedelta(seconds=10))
# The router follows incidents too, to start reminders when someone acknowledges (through the API or a tool).
ROUTER_INCIDENTS = ConsumerDef("INCIDENTS", "router-incidents", "incidents.>", ack_wait=timedelta(seconds=10))
# The router follows deliveries, to page a person's next contact when one fails for good (fallback.py).
# Created at the stream's end: an upgrade does not replay a year of old deliveries through it.
ROUTER_DELIVERIES = ConsumerDef("DELIVERIES", "router-deliveries", "deliveries.>", ack_wait=timedelta(seconds=10),
                                deliver_policy=DeliverPolicy.NEW)
SCHEDULER_REQUESTS = ConsumerDef("TIMERS", "scheduler-requests", "timers.requested.>")
SCHEDULER_INCIDENTS = ConsumerDef("INCIDENTS", "scheduler-incidents", "incidents.>")
# Host watching: the scheduler keeps each host's state in Postgres; the router tells what it publishes.
SCHEDULER_HEARTBEATS = ConsumerDef("HEARTBEATS", "scheduler-heartbeats", "heartbeats.>")
# One notice in flight across all routers: `overdue` must open the incident before `back` resolves it.
ROUTER_HOSTS = ConsumerDef("HOSTS", "router-hosts", "hosts.>", ack_wait=timedelta(seconds=10), max_ack_pending=1)


def notifier_consumer(kind: str) -> ConsumerDef:
    # A send can take longer than the ack wait (a slow provider, retries inside the deadline): the worker
    # marks progress every few seconds, so a healthy send is never handed to a second replica, while a
    # dead worker's page moves to another one within the ack wait.
    return ConsumerDef("NOTIFY", f"notifier-{kind}", f"notify.{kind}", ack_wait=timedelta(seconds=15),
                       max_deliver=20, max_ack_pending=256)
