"""INCIDENTS stream: the incident aggregate, as pure `decide` / `evolve`.

Every event of one incident goes to the subject `incidents.<id>`; an append names the sequence of the
last event it has seen (`Nats-Expected-Last-Subject-Sequence`), so two writers can never interleave.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, assert_never

import msgspec

from tocsin.events.alerts import AlertStatus, Severity
from tocsin.events.base import Event

IncidentStatus = Literal["triggered", "acknowledged", "resolved"]

SUBJECT_PREFIX = "incidents"


def subject(incident_id: str) -> str:
    return f"{SUBJECT_PREFIX}.{incident_id}"


# ---------------------------------------------------------------- events


class IncidentOpened(Event, frozen=True, kw_only=True, tag="incident.opened"):
    number: int
    route: str
    team: str
    source: str
    dedup_key: str
    title: str
    severity: Severity
    details: str = ""
    alert_id: str = ""
    labels: dict[str, str] = {}


class AlertAttached(Event, frozen=True, kw_only=True, tag="incident.alert_attached"):
    alert_id: str
    dedup_key: str
    status: AlertStatus
    title: str = ""


class IncidentAcknowledged(Event, frozen=True, kw_only=True, tag="incident.acknowledged"):
    by: str
    via: str = "api"


class IncidentEscalated(Event, frozen=True, kw_only=True, tag="incident.escalated"):
    step: int
    repeat: int = 0
    by: str = "system"


class TargetsPaged(Event, frozen=True, kw_only=True, tag="incident.paged"):
    """Who was asked to respond at one step: a record for the timeline, written before the pages go out."""

    step: int
    repeat: int = 0
    users: list[str] = []
    channels: list[str] = []
    notification_ids: list[str] = []
    undeliverable: list[str] = []   # "<target>: why", for contacts this version cannot deliver to


class IncidentSilenced(Event, frozen=True, kw_only=True, tag="incident.silenced"):
    """Opened while a silence matched: nobody is paged until `until`; if it still fires then, it pages."""

    until: datetime
    comment: str = ""
    silence_id: str = ""       # `config:<n>` for a silence of tocsin.yaml, else the API silence's id


class ContactFellBack(Event, frozen=True, kw_only=True, tag="incident.fallback"):
    """A page to a person failed for good; the router paged their next contact (`contact`) at once, or
    found none left to try (`contact` empty). Written once per failed notification."""

    user: str
    failed_notification_id: str
    failed_contact: str
    error: str = ""
    contact: str = ""
    notification_id: str = ""


class IncidentResolved(Event, frozen=True, kw_only=True, tag="incident.resolved"):
    by: str
    via: str = "api"
    reason: str = ""


class NoteAdded(Event, frozen=True, kw_only=True, tag="incident.note_added"):
    by: str
    note: str


IncidentEvent = (
    IncidentOpened | AlertAttached | IncidentAcknowledged | IncidentEscalated | TargetsPaged
    | IncidentResolved | NoteAdded | IncidentSilenced | ContactFellBack
)
decoder = msgspec.json.Decoder(IncidentEvent)


# ---------------------------------------------------------------- state


class IncidentState(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    number: int
    status: IncidentStatus
    title: str
    severity: Severity
    team: str
    route: str
    source: str
    dedup_key: str
    details: str = ""
    labels: dict[str, str] = {}
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    alert_count: int = 1
    firing_alerts: frozenset[str] = frozenset()
    step: int = 0
    repeat: int = 0
    alert_id: str = ""         # the alert that opened it
    acknowledged_version: int = 0   # the version of the latest acknowledgement (reminders follow it)
    silenced_until: datetime | None = None
    fallen_back: frozenset[str] = frozenset()   # failed notification ids a fallback was recorded for
    version: int = 0


def evolve(state: IncidentState | None, event: IncidentEvent) -> IncidentState:
    match event:
        case IncidentOpened():
            return IncidentState(
                id=event.aggregate_id, number=event.number, status="triggered", title=event.title,
                severity=event.severity, team=event.team, route=event.route, source=event.source,
                dedup_key=event.dedup_key, details=event.details, labels=event.labels,
                created_at=event.at, updated_at=event.at,
                firing_alerts=frozenset([event.dedup_key]), alert_id=event.alert_id, version=event.version,
            )
        case _ if state is None:
            raise ValueError(f"{event.__class__.__name__} before the incident was opened")
        case AlertAttached():
            firing = (state.firing_alerts | {event.dedup_key} if event.status == "firing"
                      else state.firing_alerts - {event.dedup_key})
            return msgspec.structs.replace(
                state, alert_count=state.alert_count + 1, firing_alerts=firing,
                updated_at=event.at, version=event.version)
        case IncidentAcknowledged():
            return msgspec.structs.replace(
                state, status="acknowledged", acknowledged_at=event.at, acknowledged_by=event.by,
                acknowledged_version=event.version, updated_at=event.at, version=event.version)
        case IncidentEscalated():
            return msgspec.structs.replace(
                state, status="triggered", step=event.step, repeat=event.repeat,
                updated_at=event.at, version=event.version)
        case IncidentResolved():
            return msgspec.structs.replace(
                state, status="resolved", resolved_at=event.at, resolved_by=event.by,
                firing_alerts=frozenset(), updated_at=event.at, version=event.version)
        case IncidentSilenced():
            return msgspec.structs.replace(state, silenced_until=event.until, updated_at=event.at,
                                           version=event.version)
        case TargetsPaged() | NoteAdded():
            return msgspec.structs.replace(state, updated_at=event.at, version=event.version)
        case ContactFellBack():
            return msgspec.structs.replace(state, fallen_back=state.fallen_back | {event.failed_notification_id},
                                           updated_at=event.at, version=event.version)
        case _:
            assert_never(event)


def replay(events: list[IncidentEvent]) -> IncidentState | None:
    state: IncidentState | None = None
    for event in events:
        state = evolve(state, event)
    return state


# ---------------------------------------------------------------- commands


class Open(msgspec.Struct, frozen=True, kw_only=True):
    incident_id: str
    number: int
    route: str
    team: str
    source: str
    dedup_key: str
    title: str
    severity: Severity
    details: str = ""
    alert_id: str = ""
    labels: dict[str, str] = {}


class AttachAlert(msgspec.Struct, frozen=True, kw_only=True):
    alert_id: str
    dedup_key: str
    status: AlertStatus
    title: str = ""


class Acknowledge(msgspec.Struct, frozen=True, kw_only=True):
    by: str
    via: str = "api"


class Resolve(msgspec.Struct, frozen=True, kw_only=True):
    by: str
    via: str = "api"
    reason: str = ""


class Escalate(msgspec.Struct, frozen=True, kw_only=True):
    """Move from step (`from_step`, `from_repeat`) to (`to_step`, `to_repeat`).

    A timer that fired for a step the incident has already left is stale and decides nothing.
    """

    from_step: int
    from_repeat: int
    to_step: int
    to_repeat: int
    by: str = "system"


class RecordPage(msgspec.Struct, frozen=True, kw_only=True):
    step: int
    repeat: int
    users: list[str]
    channels: list[str]
    notification_ids: list[str]
    undeliverable: list[str] = []


class AddNote(msgspec.Struct, frozen=True, kw_only=True):
    by: str
    note: str


class Silence(msgspec.Struct, frozen=True, kw_only=True):
    until: datetime
    comment: str = ""
    silence_id: str = ""


class FallBack(msgspec.Struct, frozen=True, kw_only=True):
    user: str
    failed_notification_id: str
    failed_contact: str
    error: str = ""
    contact: str = ""
    notification_id: str = ""


Command = Open | AttachAlert | Acknowledge | Resolve | Escalate | RecordPage | AddNote | Silence | FallBack


class InvalidTransition(Exception):
    """A person asked for something the incident's state does not allow (the API answers 409)."""


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """What `decide` needs to stamp events with, besides the command: ids and the time."""

    event_id: str
    at: datetime
    traceparent: str = ""


def decide(state: IncidentState | None, command: Command, env: Envelope) -> list[IncidentEvent]:
    version = (state.version if state else 0) + 1
    common: dict[str, Any] = {"id": env.event_id, "at": env.at, "version": version, "traceparent": env.traceparent}
    match command:
        case Open():
            if state is not None:
                return []  # already opened (a retried open): nothing new
            return [IncidentOpened(
                aggregate_id=command.incident_id, number=command.number, route=command.route,
                team=command.team, source=command.source, dedup_key=command.dedup_key,
                title=command.title, severity=command.severity, details=command.details,
                alert_id=command.alert_id, labels=command.labels, **common)]
        case _ if state is None:
            raise InvalidTransition("no such incident")
        case AttachAlert():
            if state.status == "resolved":
                raise InvalidTransition("incident is resolved; a new alert opens a new incident")
            resolve_id = env.event_id + "-resolve"
            if command.status == "resolved" and not state.firing_alerts:
                # Every alert already resolved but the incident not: a try that stored the attach and
                # stopped before the resolve. Finish it (same id as that try would have used).
                return [IncidentResolved(aggregate_id=state.id, by="system", via="alert",
                                         reason="all alerts resolved", **{**common, "id": resolve_id})]
            events: list[IncidentEvent] = [AlertAttached(
                aggregate_id=state.id, alert_id=command.alert_id, dedup_key=command.dedup_key,
                status=command.status, title=command.title, **common)]
            firing = (state.firing_alerts | {command.dedup_key} if command.status == "firing"
                      else state.firing_alerts - {command.dedup_key})
            if not firing:
                events.append(IncidentResolved(
                    aggregate_id=state.id, by="system", via="alert", reason="all alerts resolved",
                    **{**common, "id": resolve_id, "version": version + 1}))
            return events
        case Acknowledge():
            if state.status != "triggered":
                raise InvalidTransition(f"incident is {state.status}, not triggered")
            return [IncidentAcknowledged(aggregate_id=state.id, by=command.by, via=command.via, **common)]
        case Resolve():
            if state.status == "resolved":
                raise InvalidTransition("incident is already resolved")
            return [IncidentResolved(aggregate_id=state.id, by=command.by, via=command.via,
                                     reason=command.reason, **common)]
        case Escalate():
            if state.status == "resolved":
                raise InvalidTransition("incident is resolved")
            if (state.step, state.repeat) != (command.from_step, command.from_repeat):
                return []  # stale: the incident has moved on since this was asked
            if command.by == "system" and state.status != "triggered":
                return []  # an acknowledged incident does not escalate by itself
            return [IncidentEscalated(aggregate_id=state.id, step=command.to_step, repeat=command.to_repeat,
                                      by=command.by, **common)]
        case RecordPage():
            return [TargetsPaged(aggregate_id=state.id, step=command.step, repeat=command.repeat,
                                 users=command.users, channels=command.channels,
                                 notification_ids=command.notification_ids,
                                 undeliverable=command.undeliverable, **common)]
        case Silence():
            if state.status != "triggered":
                return []
            return [IncidentSilenced(aggregate_id=state.id, until=command.until, comment=command.comment,
                                     silence_id=command.silence_id, **common)]
        case FallBack():
            # Only while somebody still has to answer, and once per failed notification.
            if state.status != "triggered" or command.failed_notification_id in state.fallen_back:
                return []
            return [ContactFellBack(aggregate_id=state.id, user=command.user,
                                    failed_notification_id=command.failed_notification_id,
                                    failed_contact=command.failed_contact, error=command.error,
                                    contact=command.contact, notification_id=command.notification_id, **common)]
        case AddNote():
            note = command.note.strip()
            if not note:
                raise InvalidTransition("a note needs some text")
            return [NoteAdded(aggregate_id=state.id, by=command.by, note=note, **common)]
        case _:
            assert_never(command)
