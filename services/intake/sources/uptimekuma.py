"""Uptime Kuma webhook notification (content type application/json): `{heartbeat, monitor, msg}`.

A monitor going DOWN fires and coming back UP resolves, both keyed by the monitor id. PENDING and MAINTENANCE
beats are not alerts: the request is accepted with nothing in it (Uptime Kuma does not notify for them by
default; a later DOWN or UP says what happened). A message-only notification (`heartbeat` null) is either the
"Test" button (`<name> Testing`: an info alert with a key of its own, so every press shows up) or a notice such
as a certificate about to expire (a warning keyed by its text, so a repeat attaches to the open one).
"""

from __future__ import annotations

import hashlib
import uuid

import msgspec

from tocsin.events.alerts import AlertStatus, Link
from tocsin.intake.sources.base import Incoming, Normalized, PayloadError, clip, decode, map_severity

DOWN, UP, PENDING, MAINTENANCE = 0, 1, 2, 3
STATUS: dict[int, AlertStatus] = {DOWN: "firing", UP: "resolved"}
TEST_SUFFIX = " Testing"   # server.js testNotification: Notification.send(notification, name + " Testing")


class Tag(msgspec.Struct):
    name: str
    value: str | None = None


class Heartbeat(msgspec.Struct):
    status: int
    monitorID: int | str | None = None
    msg: str | None = None
    time: str | None = None
    localDateTime: str | None = None
    timezone: str | None = None


class Monitor(msgspec.Struct):
    id: int | str
    name: str | None = None
    pathName: str | None = None
    description: str | None = None
    type: str | None = None
    url: str | None = None
    hostname: str | None = None
    port: int | str | None = None
    tags: list[Tag] | None = None


class Notification(msgspec.Struct):
    heartbeat: Heartbeat | None = None
    monitor: Monitor | None = None
    msg: str | None = None


def parse(incoming: Incoming) -> list[Normalized]:
    note = decode(incoming.body, Notification)
    assert isinstance(note, Notification)
    if note.heartbeat is None:
        return [_message_only(note, incoming.body)]
    beat = note.heartbeat
    if beat.status in (PENDING, MAINTENANCE):
        return []
    if beat.status not in STATUS:
        raise PayloadError(f"unknown heartbeat status {beat.status} (0 down, 1 up, 2 pending, 3 maintenance)",
                           "heartbeat.status")
    monitor_id = str(note.monitor.id if note.monitor is not None else beat.monitorID or "").strip()
    if not monitor_id:
        raise PayloadError("no monitor id in monitor.id or heartbeat.monitorID", "monitor")
    labels = _labels(note.monitor, monitor_id)
    name = (note.monitor.name if note.monitor else None) or f"Monitor {monitor_id}"
    reason = (beat.msg or "").strip()
    state = "is down" if beat.status == DOWN else "is up"
    title = f"{name.strip() or 'Monitor ' + monitor_id} {state}" + (f": {reason}" if reason else "")
    return [Normalized(
        dedup_key=f"uptimekuma-monitor-{monitor_id}", status=STATUS[beat.status], title=clip(title, 500),
        severity=map_severity(labels.get("severity")), details=clip(_details(note), 10_000), labels=labels,
        links=_links(note.monitor), raw=incoming.body)]


def _message_only(note: Notification, body: bytes) -> Normalized:
    msg = (note.msg or "").strip()
    if not msg:
        raise PayloadError("a notification without a heartbeat needs a msg", "msg")
    test = msg.endswith(TEST_SUFFIX.strip()) and len(msg) > len(TEST_SUFFIX.strip())
    key = (f"uptimekuma-test-{uuid.uuid4().hex}" if test
           else f"uptimekuma-notice-{hashlib.sha256(msg.encode('utf-8', 'replace')).hexdigest()[:16]}")
    labels = _labels(note.monitor, str(note.monitor.id)) if note.monitor is not None else {}
    return Normalized(dedup_key=key, status="firing", title=clip(msg, 500), severity="info" if test else "warning",
                      details=clip(msg, 10_000), labels=labels, links=_links(note.monitor), raw=body)


def _labels(monitor: Monitor | None, monitor_id: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    if monitor is not None:
        # Tags become labels, so a route can match them (`env: prod`); a tag used twice keeps both values.
        for tag in monitor.tags or []:
            if name := tag.name.strip():
                value = (tag.value or "").strip()
                old = labels.get(name)
                labels[name] = value if not old else (f"{old},{value}" if value else old)
        for key, text in (("monitor_name", monitor.name), ("monitor_path", monitor.pathName),
                          ("monitor_type", monitor.type)):
            if text and text.strip():
                labels[key] = text.strip()
    labels["monitor_id"] = monitor_id
    return labels


def _details(note: Notification) -> str:
    beat, monitor = note.heartbeat, note.monitor
    assert beat is not None
    lines = [(beat.msg or "").strip()]
    if monitor is not None:
        if monitor.description and monitor.description.strip():
            lines.append(monitor.description.strip())
        target = monitor.url if _is_web_url(monitor.url) else (
            f"{monitor.hostname}:{monitor.port}" if monitor.hostname and monitor.port else monitor.hostname)
        if target:
            lines.append(f"Target: {target}")
    if beat.localDateTime and beat.timezone:
        lines.append(f"At: {beat.localDateTime} ({beat.timezone})")
    elif beat.time:
        lines.append(f"At: {beat.time} UTC")
    return "\n".join(line for line in lines if line)


def _links(monitor: Monitor | None) -> list[Link]:
    if monitor is None or not _is_web_url(monitor.url):
        return []
    assert monitor.url is not None
    return [Link(href=monitor.url, text="Monitored URL")]


def _is_web_url(href: str | None) -> bool:
    # A monitor of another type keeps the editor's default url "https://": no host, no link.
    if not href or len(href) > 4096:
        return False
    lower = href.lower()
    return any(lower.startswith(s) and len(href) > len(s) for s in ("http://", "https://"))
