"""DEADLETTER stream: what no retry can fix, kept for operators to see and replay (`deadletter.<kind>`).

The original message travels whole (base64 of its bytes, as it was on the bus), so a replay sends exactly
what was asked, and an undecodable one can still be read by a person.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from tocsin.events.base import Event

Reason = Literal["permanent", "max_deliveries", "undecodable"]


class DeadLettered(Event, frozen=True, kw_only=True, tag="deadletter"):
    notification_id: str = ""    # empty when the command could not even be decoded
    channel_kind: str
    channel: str = ""
    user: str = ""
    reason: Reason
    error: str = ""
    attempts: int = 0
    subject: str                 # where the original was published (notify.<kind>)
    payload: str                 # base64 of the original message's bytes


DeadLetterEvent = DeadLettered
decoder = msgspec.json.Decoder(DeadLetterEvent)


def subject(kind: str) -> str:
    return f"deadletter.{kind}"
