"""Durations as people write them in tocsin.yaml: `30s`, `5m`, `1h`, `1d`, `1w`, `2w`, `1h30m`."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"(\d{1,6})([smhdw])")
_WHOLE = re.compile(r"(?:\d{1,6}[smhdw])+")


def parse_duration(text: str) -> timedelta:
    value = text.strip()
    if not _WHOLE.fullmatch(value):
        raise ValueError(f"not a duration: {text!r} (use 30s, 5m, 1h, 1d, 1w, 1h30m)")
    return timedelta(seconds=sum(int(n) * _UNITS[u] for n, u in _PART.findall(value)))


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    out = []
    for unit, size in (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)
