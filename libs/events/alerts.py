"""ALERTS stream: one normalized event per alert that a monitoring tool sent in."""

from __future__ import annotations

from typing import Literal

import msgspec

from tocsin.events.base import Event

Severity = Literal["critical", "error", "warning", "info"]
AlertStatus = Literal["firing", "resolved"]


class Link(msgspec.Struct, frozen=True, kw_only=True):
    href: str
    text: str = ""


class AlertReceived(Event, frozen=True, kw_only=True, tag="alert.received"):
    """What every intake source is normalized to; `aggregate_id` is the alert id."""

    source: str
    route: str
    dedup_key: str
    status: AlertStatus
    severity: Severity = "critical"
    title: str
    details: str = ""
    labels: dict[str, str] = {}
    links: list[Link] = []
    raw: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))  # the sender's own payload
    acknowledge: bool = False       # the sender reports it acknowledged (PagerDuty, Opsgenie, Zabbix)


AlertEvent = AlertReceived

SUBJECT_PREFIX = "alerts"


def subject(route: str) -> str:
    return f"{SUBJECT_PREFIX}.{route}"


decoder = msgspec.json.Decoder(AlertEvent)

# A manual incident (POST /api/v1/incidents) travels as an alert of its team's manual route. '/' is not
# allowed in configured route names (and is allowed in NATS subjects and KV keys), so this route can never
# collide with one from the config.
MANUAL_PREFIX = "manual/"


def manual_route(team: str) -> str:
    return MANUAL_PREFIX + team


def manual_team(route: str) -> str | None:
    """The team of a manual route, or None for a configured route."""
    return route[len(MANUAL_PREFIX):] if route.startswith(MANUAL_PREFIX) else None
