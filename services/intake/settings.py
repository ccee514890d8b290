from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    nats_url: str = "nats://127.0.0.1:4222"
    listen: str = "127.0.0.1:8081"
    max_body_bytes: int = 1024 * 1024
    max_raw_bytes: int = 64 * 1024       # of each alert's own payload kept for the incident log
    rate_per_minute: int = 600           # per route, when the route sets none

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            nats_url=os.environ.get("TOCSIN_NATS_URL", cls.nats_url),
            listen=os.environ.get("TOCSIN_INTAKE_HTTP", cls.listen),
            max_body_bytes=int(os.environ.get("TOCSIN_INTAKE_MAX_BODY", cls.max_body_bytes)),
        )
