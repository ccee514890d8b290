"""Generic webhook: the notification as JSON, signed with HMAC-SHA256 when the channel has a secret.

Receivers check `X-Tocsin-Signature: sha256=<hex of HMAC(secret, "<timestamp>.<body>")>` and refuse a
`X-Tocsin-Timestamp` older than a few minutes (replay protection).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import ClassVar

import msgspec

from tocsin.events.notify import NotificationRequested
from tocsin.notifier.channels.base import Channel, DeliveryResult, Target, result_of


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class WebhookChannel(Channel):
    kind: ClassVar[str] = "webhook"

    async def send(self, message: NotificationRequested, target: Target) -> DeliveryResult:
        body = msgspec.json.encode({
            "notification_id": message.id, "kind": message.message_kind, "incident_id": message.aggregate_id,
            "incident_number": message.incident_number, "status": message.status, "title": message.title,
            "details": message.body, "severity": message.severity, "link": message.link,
            "user": message.user, "channel": message.channel, "at": message.at,
        })
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "User-Agent": "Tocsin",
                   "X-Tocsin-Notification-Id": message.id, "X-Tocsin-Timestamp": timestamp}
        if target.get("secret"):
            headers["X-Tocsin-Signature"] = signature(target.get("secret"), timestamp, body)
        async with self.session.post(target.get("url"), data=body, headers=headers,
                                     allow_redirects=False) as resp:
            return await result_of(resp, resp.headers.get("X-Request-Id", ""))
