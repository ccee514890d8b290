"""The delivery ledger: one key per notification id in a JetStream key-value bucket.

`sending` is written before the provider is called and `delivered` / `failed` after it answered. A command
redelivered after a crash finds `delivered` and is not sent again; one that finds `sending` was cut off
mid-call, and is sent again (the provider may or may not have it: at-least-once, never silently lost).
"""

from __future__ import annotations

from typing import Literal

import msgspec
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from tocsin.events.base import utcnow

State = Literal["sending", "delivered", "failed"]


class Entry(msgspec.Struct):
    state: State
    attempts: int = 0
    provider_id: str = ""
    error: str = ""
    at: str = ""
    bundle_id: str = ""


class Ledger:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def get(self, notification_id: str) -> Entry | None:
        try:
            entry = await self.kv.get(notification_id)
        except KeyNotFoundError:
            return None
        return msgspec.json.decode(entry.value, type=Entry) if entry.value else None

    async def claim(self, notification_id: str) -> Entry | None:
        """Write `sending` for a notification seen for the first time (one round trip) and return None;
        for one seen before, return what the ledger holds and write nothing."""
        try:
            await self.kv.create(notification_id, msgspec.json.encode(Entry(state="sending",
                                                                            at=utcnow().isoformat())))
            return None
        except KeyWrongLastSequenceError:
            return await self.get(notification_id) or Entry(state="sending")

    async def put(self, notification_id: str, entry: Entry) -> None:
        entry.at = utcnow().isoformat()
        await self.kv.put(notification_id, msgspec.json.encode(entry))
