"""What every bench prints its figures with: quantiles, CPU time of a process, the machine."""

from __future__ import annotations

import math
import os
import platform
from pathlib import Path


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
