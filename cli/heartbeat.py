"""`tocsin heartbeat`: the small sender a host runs.

`boot` (seq 1) at start, `alive` every interval (with metrics from a command, when one is given),
`shutdown` on SIGINT/SIGTERM; every datagram carries `ts`, and `sig` when there is a key. Prints nothing
but errors. The key is better given in `TOCSIN_HEARTBEAT_KEY` than on the command line, where other users
of the machine can read it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
import time
from typing import Any

from tocsin.events.durations import parse_duration
from tocsin.events.heartbeats import MAX_DATAGRAM, signature

DEFAULT_SERVER = "127.0.0.1:9999"


def parse_interval(text: str) -> int:
    """`30` or `30s`, `1m`, ...: whole seconds, at least one."""
    seconds = int(text) if text.strip().isdigit() else int(parse_duration(text).total_seconds())
    if seconds < 1:
        raise ValueError("the interval is at least 1s")
    return seconds


def parse_server(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"not HOST:PORT: {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_metrics(text: str) -> tuple[dict[str, float], list[str]]:
    """`name value` lines (blank lines and `#` comments skipped) -> metrics, and the lines that are not."""
    metrics: dict[str, float] = {}
    bad: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            if len(parts) != 2:
                raise ValueError(line)
            value = float(parts[1])
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(line)
        except ValueError:
            bad.append(line)
            continue
        metrics[parts[0]] = value
    return metrics, bad


class Sender:
    def __init__(self, host: str, interval: int, server: tuple[str, int], key: str = "",
                 metrics_command: str = "") -> None:
        self.host, self.interval, self.server, self.key = host, interval, server, key
        self.metrics_command = metrics_command
        self.seq = 0
        self.last_ts = 0.0
        self._last_error = ""

    def error(self, message: str) -> None:
        # The same trouble every interval is said once, until something else goes wrong.
        if message != self._last_error:
            print(f"tocsin heartbeat: {message}", file=sys.stderr, flush=True)
        self._last_error = message

    def datagram(self, event: str, metrics: dict[str, float] | None = None) -> bytes:
        self.seq += 1
        # Strictly rising, in milliseconds: a boot right after a shutdown must still be newer than it.
        self.last_ts = max(round(time.time(), 3), round(self.last_ts + 0.001, 3))
        body: dict[str, Any] = {"host": self.host, "event": event, "interval": self.interval, "seq": self.seq,
                                "ts": self.last_ts}
        if metrics:
            body["metrics"] = metrics
        if self.key:
            body["sig"] = signature(body, self.key)
        data = json.dumps(body, separators=(",", ":")).encode()
        if len(data) > MAX_DATAGRAM and metrics:
            self.error(f"{len(metrics)} metrics make the datagram larger than {MAX_DATAGRAM} bytes; sent without")
            self.seq -= 1
            return self.datagram(event)
        return data

    async def send(self, event: str, metrics: dict[str, float] | None = None) -> None:
        data = self.datagram(event, metrics)
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(*self.server, type=socket.SOCK_DGRAM)
            family, kind, proto, _, address = infos[0]
            with socket.socket(family, kind, proto) as sock:
                sock.sendto(data, address)
        except OSError as exc:
            self.error(f"cannot send to {self.server[0]}:{self.server[1]}: {exc}")

    async def collect(self) -> dict[str, float]:
        if not self.metrics_command:
            return {}
        timeout = max(1.0, min(self.interval * 0.8, 30.0))
        try:
            proc = await asyncio.create_subprocess_shell(
                self.metrics_command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            self.error(f"metrics command failed to start: {exc}")
            return {}
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            self.error(f"metrics command took longer than {timeout:.0f}s; sent without metrics")
            return {}
        if proc.returncode != 0:
            detail = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
            self.error(f"metrics command exited with {proc.returncode}: {detail[0]}")
            return {}
        metrics, bad = parse_metrics(out.decode(errors="replace"))
        if bad:
            self.error(f"metrics command printed {len(bad)} line(s) that are not `name value`, e.g. {bad[0]!r}")
        return metrics

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        await self.send("boot")
        next_at = loop.time() + self.interval
        while True:
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, next_at - loop.time()))
                break
            except TimeoutError:
                pass
            metrics = await self.collect()
            if stop.is_set():
                break
            await self.send("alive", metrics)
            # Keep to the beat; after a stall (a suspended machine), start again from now.
            next_at = max(next_at + self.interval, loop.time())
        await self.send("shutdown")


async def _main(sender: Sender) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await sender.run(stop)


def main(host: str, interval: str, server: str, key: str, metrics_command: str) -> int:
    try:
        sender = Sender(host, parse_interval(interval), parse_server(server), key, metrics_command)
    except ValueError as exc:
        print(f"tocsin heartbeat: {exc}", file=sys.stderr)
        return 2
    asyncio.run(_main(sender))
    return 0
