from __future__ import annotations

import os
from dataclasses import dataclass

from tocsin.events.keys import env_secret_key


@dataclass(frozen=True)
class Settings:
    nats_url: str = "nats://127.0.0.1:4222"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/tocsin"
    listen: str = "127.0.0.1:8080"
    public_url: str = "http://127.0.0.1:8080"
    config_file: str = ""               # applied at start when set (TOCSIN_CONFIG)
    max_body_bytes: int = 1024 * 1024
    stream_heartbeat: float = 15.0      # seconds between keep-alive comments on /api/v1/stream

    secret_key: bytes = b""            # TOCSIN_SECRET_KEY, or the data dir's under `tocsin up`

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            secret_key=env_secret_key(),
            nats_url=os.environ.get("TOCSIN_NATS_URL", cls.nats_url),
            database_url=os.environ.get("TOCSIN_DATABASE_URL", cls.database_url),
            listen=os.environ.get("TOCSIN_HTTP", cls.listen),
            public_url=os.environ.get("TOCSIN_PUBLIC_URL", cls.public_url).rstrip("/"),
            config_file=os.environ.get("TOCSIN_CONFIG", ""),
            stream_heartbeat=float(os.environ.get("TOCSIN_STREAM_HEARTBEAT", cls.stream_heartbeat)),
        )
