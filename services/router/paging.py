"""Who to page for one escalation step, and the commands that page them.

Every id here is derived from (incident, step, round, target), so doing a step again after a crash
produces the same notifications and timers, which the bus and the notifier's ledger keep once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from tocsin.events.base import stable_id
from tocsin.events.config import DELIVERABLE_KINDS, is_secret
from tocsin.events.directory import Directory
from tocsin.events.durations import parse_duration
from tocsin.events.incidents import IncidentState
from tocsin.events.notify import MessageKind, NotificationRequested
from tocsin.events.timers import TimerRequested

DEFAULT_WAIT = "5m"


@dataclass
class Page:
    users: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)
    notifications: list[NotificationRequested] = field(default_factory=list)
    timers: list[TimerRequested] = field(default_factory=list)
    undeliverable: list[str] = field(default_factory=list)


def next_position(directory: Directory, team: str, step: int, repeat: int) -> tuple[int, int] | None:
    policy = directory.config.teams[team].escalation
    if step + 1 < len(policy.steps):
        return step + 1, repeat
    if repeat < policy.repeat:
        return 0, repeat + 1
    return None


def resolve_targets(directory: Directory, state: IncidentState, step: int, when: datetime) -> tuple[
        list[str], list[str]]:
    """The people and shared channels of one step, each once, in the order the policy names them."""
    config = directory.config
    team = config.teams[state.team]
    users: list[str] = []
    channels: list[str] = []
    steps = team.escalation.steps
    for target in steps[step].notify if step < len(steps) else []:
        kind, _, ref = target.partition(":")
        if kind == "rotation" and ref in team.rotations:
            users.append(directory.on_call(state.team, ref, when))
        elif kind == "user":
            users.append(ref)
        elif kind == "team" and ref in config.teams:
            users.extend(config.teams[ref].members)
        elif kind == "channel":
            channels.append(ref)
    return list(dict.fromkeys(users)), list(dict.fromkeys(channels))


# The `route` of an incident opened for an overdue heartbeat host: `host:<name>` (no route has a colon).
HOST_ROUTE_PREFIX = "host:"


def host_channels(directory: Directory, host: str) -> list[str]:
    """Where a host's notices go: its own `channels`, else `default_channels`."""
    spec = directory.config.hosts.get(host, {})
    own = spec.get("channels")
    return [str(c) for c in own] if isinstance(own, list) and own else list(directory.config.default_channels)


def broadcast_channels(directory: Directory, state: IncidentState) -> list[str]:
    """Channels told of every incident of the route and team: the route's (else the defaults) and the team's.
    A host's incident goes to the host's channels (else the defaults) and the team's."""
    config = directory.config
    route = config.routes.get(state.route)
    if state.route.startswith(HOST_ROUTE_PREFIX):
        route_channels = host_channels(directory, state.route.removeprefix(HOST_ROUTE_PREFIX))
    else:
        route_channels = route.channels if route and route.channels else config.default_channels
    team = config.teams.get(state.team)
    return list(dict.fromkeys([*route_channels, *(team.channels if team else [])]))


def public_fields(dest: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in dest.items() if not is_secret(k, dest)}


def plan_step(directory: Directory, state: IncidentState, step: int, repeat: int, *, now: datetime,
              link: str, message_kind: MessageKind, include_broadcast: bool) -> Page:
    page = Page()
    users, channels = resolve_targets(directory, state, step, now)
    if include_broadcast:
        channels = list(dict.fromkeys([*broadcast_channels(directory, state), *channels]))
    page.users, page.channels = users, channels
    common: dict[str, Any] = {"aggregate_id": state.id, "at": now, "message_kind": message_kind,
              "incident_number": state.number, "title": state.title, "body": state.details,
              "severity": state.severity, "link": link, "status": state.status}
    position = f"{step}.{repeat}"
    for user in users:
        for rule in directory.contact_plan(user):
            if rule.kind not in DELIVERABLE_KINDS:
                page.undeliverable.append(f"{user}/{rule.contact}: {rule.kind} delivery is not available")
                continue
            nid = stable_id("notify", state.id, position, user, rule.contact)
            note = NotificationRequested(id=nid, channel_kind=rule.kind, channel=f"{user}/{rule.contact}",
                                         user=user, destination=public_fields(rule.destination), **common)
            if rule.after.total_seconds() <= 0:
                page.notifications.append(note)
            else:
                page.timers.append(TimerRequested(
                    id=stable_id("timer", nid), aggregate_id=state.id, version=state.version, at=now,
                    kind="contact",
                    due_at=now + rule.after, incident_id=state.id, step=step, repeat=repeat,
                    payload=msgspec.Raw(msgspec.json.encode(note))))
    for name in channels:
        found = directory.channel(name)
        if found is None:
            continue
        kind, dest = found
        if kind not in DELIVERABLE_KINDS:
            page.undeliverable.append(f"{name}: {kind} delivery is not available")
            continue
        nid = stable_id("notify", state.id, position, "channel", name)
        page.notifications.append(NotificationRequested(
            id=nid, channel_kind=kind, channel=name, destination=public_fields(dest), **common))
    nxt = next_position(directory, state.team, step, repeat)
    if nxt is not None:
        steps = directory.config.teams[state.team].escalation.steps
        wait = parse_duration(steps[step].wait or DEFAULT_WAIT)
        page.timers.append(TimerRequested(
            id=stable_id("escalate", state.id, position), aggregate_id=state.id, version=state.version, at=now,
            kind="escalate",
            due_at=now + wait, incident_id=state.id, step=step, repeat=repeat))
    return page
