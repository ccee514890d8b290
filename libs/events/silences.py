"""SILENCES stream: silences made through the API, merged by the router with the config's `silences:`.

One subject per silence, `silences.<id>`, holding only its latest event (`SilenceCreated`, then perhaps
`SilenceExpired` with `ends` moved to the moment it was expired). Both carry the whole silence, so the
stream is the current set of silences and survives every restart. A silence behaves exactly like one in
tocsin.yaml: an alert whose labels match while it is active opens its incident without paging, and the
incident pages when the silence ends (or is expired) if it still fires.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from nats.js.api import DeliverPolicy

from tocsin.events.base import Event

log = logging.getLogger("tocsin.silences")
STREAM = "SILENCES"
SUBJECT_PREFIX = "silences"


class Silence(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    matchers: dict[str, str]
    starts: datetime              # UTC
    ends: datetime                # UTC
    comment: str = ""
    created_by: str = ""
    expired_by: str = ""          # who expired it before its end, if anyone

    def active(self, when: datetime) -> bool:
        return self.starts <= when < self.ends


class SilenceCreated(Event, frozen=True, kw_only=True, tag="silence.created"):
    silence: Silence


class SilenceExpired(Event, frozen=True, kw_only=True, tag="silence.expired"):
    silence: Silence              # with `ends` set to when it was expired


SilenceEvent = SilenceCreated | SilenceExpired
decoder = msgspec.json.Decoder(SilenceEvent)


def subject(silence_id: str) -> str:
    return f"{SUBJECT_PREFIX}.{silence_id}"


def parse_time(text: str, zone: str) -> datetime:
    """ISO 8601 with an offset (`2026-12-01T22:00:00+01:00`, `...Z`) is that instant; without one it is
    local wall-clock time in the config's zone, as in tocsin.yaml. Raises ValueError."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=ZoneInfo(zone))


class SilenceWatcher:
    """The current API silences, kept up to date; `start()` returns once every stored one is loaded."""

    def __init__(self, bus: Any, on_change: Callable[[Silence], None] | None = None) -> None:
        self.bus = bus
        self.silences: dict[str, Silence] = {}
        self._on_change = on_change
        self._sub: Any = None
        self._seen = 0
        self._wanted = 0
        self._loaded = asyncio.Event()

    async def start(self, timeout: float = 10) -> None:
        info = await self.bus.js.stream_info(STREAM)
        self._wanted = info.state.last_seq if info.state.messages else 0
        if self._wanted == 0:
            self._loaded.set()
        self._sub = await self.bus.js.subscribe(f"{SUBJECT_PREFIX}.>", stream=STREAM, cb=self._on_msg,
                                                ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
        try:
            async with asyncio.timeout(timeout):
                await self._loaded.wait()
        except TimeoutError:
            log.error("silences: loaded up to %s of %s within %s s; going on", self._seen, self._wanted, timeout)

    async def _on_msg(self, msg: Any) -> None:
        self._seen = max(self._seen, msg.metadata.sequence.stream)
        if self._seen >= self._wanted:
            self._loaded.set()
        try:
            event = decoder.decode(msg.data)
        except msgspec.DecodeError:
            log.error("undecodable silence event at %s skipped", msg.subject)
            return
        self.silences[event.silence.id] = event.silence
        if self._on_change is not None:
            self._on_change(event.silence)

    async def stop(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:
                pass
