"""Follow the applied config on the CONFIG stream, so services pick up changes without a restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from nats.js.api import DeliverPolicy

from tocsin.events.bus import Bus
from tocsin.events.config import CONFIG_SUBJECT, Config, applied_decoder
from tocsin.events.directory import Directory
from tocsin.events.streams import CONFIG

log = logging.getLogger("tocsin.config")


class ConfigWatcher:
    """Holds the current Directory; `start()` returns once the latest applied config is loaded."""

    def __init__(self, bus: Bus, on_change: Callable[[Directory], None] | None = None) -> None:
        self.bus = bus
        self.directory = Directory.build(Config())
        self.loaded = asyncio.Event()
        self._on_change = on_change
        self._sub: Any = None

    async def start(self) -> None:
        last = await self.bus.last_on_subject(CONFIG.name, CONFIG_SUBJECT)
        if last is not None:
            self._apply(last[1])
        self._sub = await self.bus.js.subscribe(
            CONFIG_SUBJECT, cb=self._on_msg, ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW if last is not None else DeliverPolicy.ALL)
        self.loaded.set()

    async def _on_msg(self, msg) -> None:  # type: ignore[no-untyped-def]
        self._apply(msg.data)

    def _apply(self, data: bytes) -> None:
        try:
            event = applied_decoder.decode(data)
        except Exception:
            log.exception("could not decode an applied config; keeping revision %s", self.directory.revision)
            return
        if event.revision < self.directory.revision:
            return
        self.directory = Directory.build(event.config, event.revision)
        log.info("config revision %s loaded", event.revision)
        if self._on_change:
            self._on_change(self.directory)

    async def stop(self) -> None:
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:
                pass
