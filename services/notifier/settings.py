from __future__ import annotations

import os
from dataclasses import dataclass

from tocsin.events.durations import parse_duration
from tocsin.events.keys import env_secret_key


@dataclass(frozen=True)
class Settings:
    nats_url: str = "nats://127.0.0.1:4222"
    kinds: tuple[str, ...] = ()          # empty: every kind this notifier can deliver
    concurrency: int = 200               # notifications held at once per kind (sending, paced or bundled)
    sends: int = 64                      # of those, at most this many being sent (fewer while short of CPU)
    send_deadline: float = 20.0          # retries inside one delivery attempt stop after this
    http_timeout: float = 10.0
    max_deliveries: int = 20             # then the notification is recorded as failed
    public_url: str = "http://127.0.0.1:8080"   # where answer links point (the API)
    secret_key: bytes = b""            # TOCSIN_SECRET_KEY, or the data dir's under `tocsin up`
    max_hold: float = 60.0               # a rate-limit slot further away: NAK with that delay instead of holding
    # Per-contact bundling, for the kinds whose channel class turns it on (None: the class's own default).
    bundle_window: float | None = None   # TOCSIN_BUNDLE_WINDOW, seconds; 0 turns bundling off everywhere
    bundle_threshold: int | None = None  # TOCSIN_BUNDLE_THRESHOLD: pages per window sent on their own

    @classmethod
    def from_env(cls, kinds: str = "") -> Settings:
        chosen = kinds or os.environ.get("TOCSIN_NOTIFIER_KINDS", "")
        window = os.environ.get("TOCSIN_BUNDLE_WINDOW", "")
        threshold = os.environ.get("TOCSIN_BUNDLE_THRESHOLD", "")
        return cls(
            sends=int(os.environ.get("TOCSIN_NOTIFIER_SENDS", "") or cls.sends),
            bundle_window=_seconds(window) if window else None,
            bundle_threshold=int(threshold) if threshold else None,
            secret_key=env_secret_key(),
            public_url=os.environ.get("TOCSIN_PUBLIC_URL", cls.public_url).rstrip("/"),
            nats_url=os.environ.get("TOCSIN_NATS_URL", cls.nats_url),
            kinds=tuple(k.strip() for k in chosen.split(",") if k.strip()),
        )


def _seconds(text: str) -> float:
    """`10`, `10s` or `1m`."""
    try:
        return float(text)
    except ValueError:
        return parse_duration(text).total_seconds()
