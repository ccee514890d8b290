"""What every bench prints its figures with: quantiles, CPU time of a process, the machine."""

from __future__ import annotations

import asyncio
import itertools
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def pct(values: list[float], q: float) -> float:
    """The q-quantile (nearest rank), in milliseconds, of values in seconds; nan when there are none."""
    s = sorted(values)
    return 1000 * s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))] if s else math.nan


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a process so far (Linux /proc); nan without a pid or once it is gone."""
    if pid is None:
        return math.nan
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    return f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}"


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


Sample = tuple[float, int, dict[str, float]]   # (monotonic time, messages done, CPU seconds per process)


async def consumer_done(bus: Any, stream: str, durable: str, total: int) -> int:
    """Of `total` messages put on `stream`, how many the durable consumer has acked."""
    info = await bus.js.consumer_info(stream, durable)
    return total - (info.num_pending or 0) - (info.num_ack_pending or 0)


async def watch_drain(bus: Any, stream: str, durable: str, total: int, pids: dict[str, int | None],
                      alive: Callable[[], bool] = lambda: True, stall: float = 60,
                      poll: float = 0.02) -> list[Sample]:
    """Samples until the consumer has acked all `total`; fails on a stall or a dead consuming process."""
    samples: list[Sample] = []
    moved = time.monotonic()
    while True:
        n = await consumer_done(bus, stream, durable, total)
        t = time.monotonic()
        samples.append((t, n, {k: cpu_seconds(p) for k, p in pids.items()}))
        if n >= total:
            return samples
        if len(samples) > 1 and n != samples[-2][1]:
            moved = t
        if t - moved > stall:
            raise RuntimeError(f"{durable}: no progress for {stall:.0f} s at {n} of {total}")
        if not alive():
            raise RuntimeError(f"{durable}: the consuming process exited at {n} of {total}")
        await asyncio.sleep(poll)


def crossing(samples: list[Sample], count: float) -> float:
    """The interpolated time at which `count` messages were done."""
    for (t0, n0, _), (t1, n1, _) in itertools.pairwise(samples):
        if n0 < count <= n1:
            return t0 + (t1 - t0) * (count - n0) / (n1 - n0)
    return samples[-1][0]
