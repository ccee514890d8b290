"""The event envelope every stream shares.

Every event carries its own id (also the `Nats-Msg-Id`, so a retried publish is dropped by JetStream),
the aggregate it belongs to and that aggregate's version, the time it happened, and the W3C trace
context of the request that caused it. New fields always get defaults so that old events still decode.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    id: str
    aggregate_id: str = ""
    version: int = 0
    at: datetime
    traceparent: str = ""


def new_id() -> str:
    """A time-ordered 128-bit id (UUIDv7 layout), so ids sort by creation time."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 | 0b10 << 62 | (
        rand & ((1 << 62) - 1)
    )
    return str(uuid.UUID(int=value))


def stable_id(*parts: str) -> str:
    """A deterministic id for things that must come out the same when a step is retried."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "tocsin:" + "\x1f".join(parts)))


def utcnow() -> datetime:
    return datetime.now(UTC)
