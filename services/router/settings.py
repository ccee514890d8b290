from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    nats_url: str = "nats://127.0.0.1:4222"
    public_url: str = "http://127.0.0.1:8080"
    batch: int = 64

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            nats_url=os.environ.get("TOCSIN_NATS_URL", cls.nats_url),
            public_url=os.environ.get("TOCSIN_PUBLIC_URL", cls.public_url).rstrip("/"),
        )
