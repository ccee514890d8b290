"""NOTIFY stream: commands to the notifier, one subject per channel kind (`notify.<kind>`)."""

from __future__ import annotations

from typing import Literal

import msgspec

from tocsin.events.base import Event

MessageKind = Literal["page", "escalation", "reminder", "resolved", "acknowledged", "test", "notice", "shift"]


class NotificationRequested(Event, frozen=True, kw_only=True, tag="notification.requested"):
    """Send one message through one channel. `id` is the notification id: the ledger key that keeps a
    redelivered command from sending twice. `aggregate_id` is the incident id (empty for notices)."""

    channel_kind: str
    channel: str               # a shared channel's name, or "<user>/<contact>" for a person's contact
    user: str = ""             # the person paged, empty for a shared channel
    destination: dict[str, str] = {}   # kind-specific address fields (topic, url, ...), secrets excluded
    message_kind: MessageKind = "page"
    incident_number: int = 0
    title: str
    body: str = ""
    severity: str = "critical"
    link: str = ""
    status: str = "triggered"
    by: str = ""               # who acknowledged or resolved, on such a notice (chat channels show it)


NotifyEvent = NotificationRequested
decoder = msgspec.json.Decoder(NotifyEvent)


def subject(kind: str) -> str:
    return f"notify.{kind}"
