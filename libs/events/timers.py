"""TIMERS stream: the router asks for a timer, the scheduler says when it fired.

Timer kinds: `escalate` (a step's wait passed), `contact` (a contact rule's delay passed; `payload`
holds the notification to send if the incident is still unacknowledged), `remind` (an acknowledged
incident is still open; `step` counts the reminders, `version` is the acknowledgement's), `unsilence`
(the silence an incident was opened under ends: page it if it still fires), `shift` (someone's shift
starts soon: `payload` says whose and when; no incident).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from tocsin.events.base import Event

TimerKind = Literal["escalate", "contact", "remind", "unsilence", "shift"]


class TimerRequested(Event, frozen=True, kw_only=True, tag="timer.requested"):
    """`id` is the timer id: asking twice for the same timer keeps one."""

    kind: TimerKind
    due_at: datetime
    incident_id: str
    step: int = 0
    repeat: int = 0
    payload: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))


class TimerFired(Event, frozen=True, kw_only=True, tag="timer.fired"):
    timer_id: str
    kind: TimerKind
    due_at: datetime
    incident_id: str
    step: int = 0
    repeat: int = 0
    by: str = "system"          # a person, when the API asks to escalate now
    payload: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))


class Unsilence(msgspec.Struct, frozen=True):
    """The payload of an `unsilence` timer: the silence the incident waits for (`config:<n>` or an API id)."""

    silence_id: str = ""


def unsilence_payload(payload: msgspec.Raw) -> Unsilence:
    try:
        return msgspec.json.decode(payload, type=Unsilence | None) or Unsilence()
    except msgspec.DecodeError:
        return Unsilence()


class ShiftDue(msgspec.Struct, frozen=True):
    """The payload of a `shift` TimerFired: whose shift starts when (UTC), and the rotation's zone."""

    team: str
    rotation: str
    user: str
    start: datetime
    end: datetime
    timezone: str


TimerEvent = TimerRequested | TimerFired
decoder = msgspec.json.Decoder(TimerEvent)


def requested_subject(incident_id: str) -> str:
    return f"timers.requested.{incident_id}"


def fired_subject(incident_id: str) -> str:
    return f"timers.fired.{incident_id}"
