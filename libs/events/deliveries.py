"""DELIVERIES stream: what the notifier did with each notification."""

from __future__ import annotations

import msgspec

from tocsin.events.base import Event


class DeliveryAttempted(Event, frozen=True, kw_only=True, tag="delivery.attempted"):
    notification_id: str
    channel_kind: str
    channel: str
    user: str = ""
    attempt: int
    outcome: str               # ok | retry | permanent
    error: str = ""


class Delivered(Event, frozen=True, kw_only=True, tag="delivery.delivered"):
    notification_id: str
    channel_kind: str
    channel: str
    user: str = ""
    attempts: int
    provider_id: str = ""
    bundle_id: str = ""        # sent inside one message with other pages to the same contact (bundling)


class DeliveryFailed(Event, frozen=True, kw_only=True, tag="delivery.failed"):
    notification_id: str
    channel_kind: str
    channel: str
    user: str = ""
    attempts: int
    error: str


DeliveryEvent = DeliveryAttempted | Delivered | DeliveryFailed
decoder = msgspec.json.Decoder(DeliveryEvent)


def subject(kind: str) -> str:
    return f"deliveries.{kind}"
