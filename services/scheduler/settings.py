from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    nats_url: str = "nats://127.0.0.1:4222"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/tocsin"
    tick_seconds: float = 0.2
    batch: int = 500
    shift_check_seconds: float = 10.0   # how often to look for shifts to announce

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            nats_url=os.environ.get("TOCSIN_NATS_URL", cls.nats_url),
            database_url=os.environ.get("TOCSIN_DATABASE_URL", cls.database_url),
            tick_seconds=float(os.environ.get("TOCSIN_SCHEDULER_TICK", cls.tick_seconds)),
            shift_check_seconds=float(os.environ.get("TOCSIN_SCHEDULER_SHIFT_CHECK", cls.shift_check_seconds)),
        )
