from __future__ import annotations

import os
from dataclasses import dataclass

from tocsin.events.keys import env_secret_key


@dataclass(frozen=True)
class Settings:
    nats_url: str = "nats://127.0.0.1:4222"
    kinds: tuple[str, ...] = ()          # empty: every kind this notifier can deliver
    concurrency: int = 64                # notifications in flight per kind
    send_deadline: float = 20.0          # retries inside one delivery attempt stop after this
    http_timeout: float = 10.0
    max_deliveries: int = 20             # then the notification is recorded as failed
    public_url: str = "http://127.0.0.1:8080"   # where answer links point (the API)
    secret_key: bytes = b""            # TOCSIN_SECRET_KEY, or the data dir's under `tocsin up`

    @classmethod
    def from_env(cls, kinds: str = "") -> Settings:
        chosen = kinds or os.environ.get("TOCSIN_NOTIFIER_KINDS", "")
        return cls(
            secret_key=env_secret_key(),
            public_url=os.environ.get("TOCSIN_PUBLIC_URL", cls.public_url).rstrip("/"),
            nats_url=os.environ.get("TOCSIN_NATS_URL", cls.nats_url),
            kinds=tuple(k.strip() for k in chosen.split(",") if k.strip()),
        )
