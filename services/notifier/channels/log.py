"""The demo sink: prints the page on the notifier's standard output. Needs no account anywhere."""

from __future__ import annotations

import sys
from typing import ClassVar

from tocsin.events.notify import NotificationRequested
from tocsin.notifier.channels.base import Channel, DeliveryResult, Target, text_body


class LogChannel(Channel):
    kind: ClassVar[str] = "log"

    async def send(self, message: NotificationRequested, target: Target) -> DeliveryResult:
        who = message.user or message.channel
        print(f"\n=== PAGE to {who} ({message.channel}) ===\n{text_body(message)}\n", file=sys.stdout, flush=True)
        return DeliveryResult.ok()
