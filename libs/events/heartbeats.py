"""HEARTBEATS stream: one event per UDP heartbeat datagram the intake accepted, and the datagram's signing rule.

A datagram is `{"host", "event": "boot"|"alive"|"shutdown", "interval", "seq", "ts"?, "metrics"?, "sig"?}`.
`sig` is the lowercase hex HMAC-SHA256, with the host's key, of the datagram without `sig` as canonical JSON
(keys sorted, no spaces: exactly what `canonical()` returns). The sender and the intake both use this module,
so the two cannot drift apart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any, Literal

import msgspec

from tocsin.events.base import Event

HeartbeatKind = Literal["boot", "alive", "shutdown"]
KINDS: tuple[HeartbeatKind, ...] = ("boot", "alive", "shutdown")
MAX_DATAGRAM = 8 * 1024


class HeartbeatReceived(Event, frozen=True, kw_only=True, tag="heartbeat.received"):
    """`aggregate_id` is the host. `id`, also the `Nats-Msg-Id`, is `<host>-<ts or boot epoch>-<seq>`, so a
    datagram that arrives twice is stored once."""

    host: str
    event: HeartbeatKind
    interval: int                       # seconds, as the host announces it
    seq: int
    metrics: dict[str, float] = {}      # dotted names: {"cpu_monitor": {"cpu_percent": 1}} -> "cpu_monitor.cpu_percent"
    received_at: datetime
    ts: float | None = None             # the sender's clock (seconds since the epoch), when the datagram has one
    boot_ts: float | None = None        # the `ts` of the boot this datagram follows, when known
    epoch: str = ""                     # the boot epoch that names datagrams without `ts`
    signed: bool = False                # the host has a key and the signature matched
    peer: str = ""                      # the address the datagram came from


HeartbeatEvent = HeartbeatReceived

SUBJECT_PREFIX = "heartbeats"


def subject(host: str) -> str:
    return f"{SUBJECT_PREFIX}.{host}"


decoder = msgspec.json.Decoder(HeartbeatEvent)


def canonical(datagram: dict[str, Any]) -> bytes:
    """The bytes that are signed: the datagram without `sig`, keys sorted, no spaces, non-ASCII escaped."""
    rest = {k: v for k, v in datagram.items() if k != "sig"}
    return json.dumps(rest, sort_keys=True, separators=(",", ":")).encode()


def signature(datagram: dict[str, Any], key: str) -> str:
    return hmac.new(key.encode(), canonical(datagram), hashlib.sha256).hexdigest()


def signature_ok(datagram: dict[str, Any], key: str) -> bool:
    sig = datagram.get("sig")
    if not isinstance(sig, str):
        return False
    # Bytes, not str: compare_digest refuses non-ASCII text, and `sig` comes from anyone on the network.
    return hmac.compare_digest(signature(datagram, key).encode(), sig.encode("utf-8", "replace"))
