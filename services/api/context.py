"""The API's one service object, on a typed AppKey: no module-level singletons."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web

from tocsin.api.access import Caller, authenticate
from tocsin.api.settings import Settings
from tocsin.events.bus import Bus
from tocsin.events.config import is_secret
from tocsin.events.configbus import ConfigWatcher
from tocsin.events.repository import IncidentRepository
from tocsin.events.sealing import Sealer
from tocsin.events.web import ApiError


@dataclass
class Context:
    settings: Settings
    _bus: Bus | None = None
    _pool: asyncpg.Pool | None = None
    _config: ConfigWatcher | None = None
    _repo: IncidentRepository | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @staticmethod
    def of(request: web.Request) -> Context:
        return request.app[CONTEXT]

    def attach(self, bus: Bus, pool: asyncpg.Pool, config: ConfigWatcher) -> None:
        self._bus, self._pool, self._config = bus, pool, config
        self._repo = IncidentRepository(bus, cache_size=0)

    def _need(self, value: object) -> object:
        if value is None:
            raise ApiError(503, "starting up", headers={"Retry-After": "1"})
        return value

    @property
    def bus(self) -> Bus:
        return self._need(self._bus)  # type: ignore[return-value]

    @property
    def pool(self) -> asyncpg.Pool:
        return self._need(self._pool)  # type: ignore[return-value]

    @property
    def config(self) -> ConfigWatcher:
        return self._need(self._config)  # type: ignore[return-value]

    @property
    def repo(self) -> IncidentRepository:
        return self._need(self._repo)  # type: ignore[return-value]

    @property
    def sealer(self) -> Sealer:
        """Seals and opens secrets at rest, with the installation's key."""
        if "sealer" not in self.extra:
            self.extra["sealer"] = Sealer(self.settings.secret_key)
        return self.extra["sealer"]  # type: ignore[return-value]

    def provider(self, name: str) -> dict[str, Any]:
        """A `providers:` block of the running config with its secrets opened (they are sealed at rest and
        on the CONFIG stream); empty when the block is not configured."""
        block = self.config.directory.config.providers.get(name) or {}
        return {k: self.sealer.unseal(v) if is_secret(k, block) and isinstance(v, str) else v
                for k, v in block.items()}

    async def caller(self, request: web.Request) -> Caller:
        """Who is asking (401 if nobody; 403 for a cookie write without the CSRF token). See access.py."""
        return await authenticate(request, self.pool, self.config.directory.config, self.settings.secret_key)


CONTEXT = web.AppKey("tocsin_context", Context)
