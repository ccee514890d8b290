"""Notifier deliveries/s: one `tocsin notifier` process, then two, against a local webhook sink.

    python bench/deliveries.py [--count 20000] [--processes 1,2] [--rate 300] [--seconds 5] [--json]

For each number of processes the bench starts its own NATS (`EmbeddedNats`, JetStream file storage) and a
webhook sink in a process of its own (a bare asyncio HTTP/1.1 server that answers `200` with no body, so
the sink costs as little CPU as possible: on 2 cores every cycle it burns is taken from the notifier).
It publishes a config with one shared webhook channel pointing at the sink straight onto the CONFIG
stream, creates the `notifier-webhook` durable consumer with the notifier's own settings, and pre-loads
`--count` NotificationRequested commands onto NOTIFY before any notifier runs. Then it starts the
notifier processes (`python -m tocsin notifier --kinds webhook`, uvloop, no OTEL export) and watches the
consumer every 20 ms: the commands done so far are `count - num_pending - num_ack_pending` (each acked
only once its `Delivered` event is stored and the ledger says delivered). Reported: the drain rate from
the first to the last delivery, the steady rate between 10 % and 90 % of the backlog, the CPU the
notifiers, nats-server and the sink used per delivery.

A backlog has no per-page latency worth reporting (a page's wait is its place in the queue), so p50/p99
come from a second step with the backlog gone: `--rate` commands per second for `--seconds`, each timed
from its publish to its `Delivered` event, seen by a core NATS subscription in this process.

The ratio of the two-process drain rate to the one-process rate is the scale-out figure. This machine
has 2 cores, shared by the notifiers, nats-server, the sink and this process: read it with the CPU
columns beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import crossing, load_average, machine, pct, watch_drain

from tocsin.cli import use_uvloop
from tocsin.embedded import EmbeddedNats
from tocsin.events import deliveries, notify
from tocsin.events.base import new_id, utcnow
from tocsin.events.bus import Bus
from tocsin.events.config import CONFIG_SUBJECT, Config, ConfigApplied, Security
from tocsin.events.notify import NotificationRequested
from tocsin.events.streams import notifier_consumer

POLL = 0.02
CONSUMER = notifier_consumer("webhook")


# ----------------------------------------------------------------------------- the sink


class _Sink(asyncio.Protocol):
    """HTTP/1.1 keep-alive: read a request head and its Content-Length body, answer 200, repeat."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            length = 0
            for line in self.buffer[:head_end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            end = head_end + 4 + length
            if len(self.buffer) < end:
                return
            self.buffer = self.buffer[end:]
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Request-Id: sink\r\n\r\n")


def run_sink(port: int) -> None:
    use_uvloop()

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(_Sink, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()
    asyncio.run(serve())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------------------- the commands


def command(n: int, url: str, prefix: str) -> NotificationRequested:
    return NotificationRequested(
        id=f"{prefix}-{n}", aggregate_id=new_id(), at=utcnow(), channel_kind="webhook", channel="sink",
        destination={"url": url}, incident_number=n, title=f"Disk /var is 97% full on db-{n}",
        body="on db-1, mounted at /var; 3.1 GB left", severity="critical",
        link="https://tocsin.example/incidents/01J0000000000000000000INC1")


async def preload(bus: Bus, url: str, count: int) -> float:
    t = time.monotonic()
    for i in range(0, count, 500):
        await bus.publish_many([(notify.subject("webhook"), command(n, url, "bench"))
                                for n in range(i, min(count, i + 500))], timeout=30)
    return count / (time.monotonic() - t)


def summarize(samples: list[tuple[float, int, dict[str, float]]], total: int) -> dict[str, float]:
    first = next(i for i, s in enumerate(samples) if s[1] > 0)
    t_first, n_first, cpu_first = samples[first]
    t_last, _, cpu_last = samples[-1]
    out = {"rate": (total - n_first) / (t_last - t_first) if t_last > t_first else math.nan,
           "steady_rate": 0.8 * total / (crossing(samples, 0.9 * total) - crossing(samples, 0.1 * total)),
           "seconds": t_last - t_first}
    for name in cpu_last:
        out[f"cpu_{name}_ms"] = 1000 * (cpu_last[name] - cpu_first[name]) / max(1, total - n_first)
    return out


async def at_a_fixed_rate(bus: Bus, url: str, rate: float, seconds: float) -> dict[str, float]:
    """Publish `rate` commands a second; time each from its publish to its Delivered event."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
    finished = asyncio.Event()
    total = int(rate * seconds)

    async def on_delivery(msg) -> None:  # type: ignore[no-untyped-def]
        event = deliveries.decoder.decode(msg.data)
        if isinstance(event, deliveries.Delivered) and event.notification_id in sent:
            latencies.append(time.monotonic() - sent.pop(event.notification_id))
            if len(latencies) == total:
                finished.set()

    sub = await bus.nc.subscribe(deliveries.subject("webhook"), cb=on_delivery)
    await bus.nc.flush()
    start = time.monotonic()
    for n in range(total):
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
        cmd = command(n, url, "timed")
        sent[cmd.id] = time.monotonic()
        await bus.publish_many([(notify.subject("webhook"), cmd)])
    try:
        await asyncio.wait_for(finished.wait(), 60)
    finally:
        await sub.unsubscribe()
    return {"count": len(latencies), "p50_ms": pct(latencies, .5), "p99_ms": pct(latencies, .99),
            "max_ms": pct(latencies, 1)}


# ----------------------------------------------------------------------------- one run


def start(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=out, env=env)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)   # a profiler wrapped around a notifier writes its report on SIGINT
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def run(processes: int, args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    where = tmp / f"p{processes}"
    nats_server = EmbeddedNats(where / "nats").start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(TOCSIN_NATS_URL=nats_server.url, TOCSIN_SECRET_KEY=env.get("TOCSIN_SECRET_KEY") or "bench-" + "k" * 40)
    sink = start([sys.executable, __file__, "--sink", str(port)], where / "sink.log", env)
    notifiers: list[subprocess.Popen[bytes]] = []
    url = f"http://127.0.0.1:{port}/hook"
    bus = await Bus.connect(nats_server.url, "bench-deliveries")
    try:
        await bus.ensure_streams()
        config = Config(security=Security(allow_private_networks=True),
                        channels={"sink": {"type": "webhook", "url": url}})
        await bus.publish(CONFIG_SUBJECT, ConfigApplied(id=new_id(), at=utcnow(), revision=1, config=config))
        await bus.js.add_consumer(CONSUMER.stream, CONSUMER.config())
        result: dict[str, object] = {"processes": processes, "count": args.count,
                                     "preload_rate": await preload(bus, url, args.count),
                                     "load_before": load_average()}
        # BENCH_NOTIFIER_WRAP runs each notifier under a profiler, e.g. "pyinstrument -o /tmp/n.html" (ad hoc).
        wrap = shlex.split(os.environ.get("BENCH_NOTIFIER_WRAP", "")) or [sys.executable]
        notifiers = [start([*wrap, "-m", "tocsin", "notifier", "--kinds", "webhook"],
                           where / f"notifier-{i}.log", env) for i in range(processes)]
        pids: dict[str, int | None] = {f"notifier{i}": p.pid for i, p in enumerate(notifiers)}
        pids.update(nats=nats_server.proc.pid if nats_server.proc else None, sink=sink.pid)
        samples = await watch_drain(bus, CONSUMER.stream, CONSUMER.durable, args.count, pids,
                                    alive=lambda: all(p.poll() is None for p in notifiers), poll=POLL)
        drain = summarize(samples, args.count)
        drain["cpu_notifiers_ms"] = sum(v for k, v in drain.items() if k.startswith("cpu_notifier"))
        result["drain"] = drain
        result["load_after"] = load_average()
        result["latency"] = await at_a_fixed_rate(bus, url, args.rate, args.seconds)
        return result
    except BaseException:
        for log in sorted(where.glob("*.log")):
            print(f"{log.name} (last lines):\n" + "\n".join(log.read_text(errors="replace").splitlines()[-10:]),
                  file=sys.stderr)
        raise
    finally:
        for proc in [*notifiers, sink]:
            stop(proc)
        await bus.close()
        nats_server.stop()


def report(results: list[dict], command: str) -> None:  # type: ignore[type-arg]
    print(f"command  {command}")
    print(f"machine  {machine()}; NATS embedded (JetStream file storage); notifiers on uvloop; sink: bare asyncio")
    print("\n  procs  drain /s  steady 10-90 % /s  CPU ms/delivery (notifiers, nats, sink)  "
          "fixed rate: publish → Delivered p50 / p99 / max")
    for r in results:
        d, lat = r["drain"], r["latency"]
        print(f"  {r['processes']:>5}  {d['rate']:>8.0f}  {d['steady_rate']:>17.0f}  "
              f"{d['cpu_notifiers_ms']:>13.3f}, {d['cpu_nats_ms']:.3f}, {d['cpu_sink_ms']:.3f}          "
              f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f} / {lat['max_ms']:.1f} ms ({lat['count']} pages)")
    if len(results) == 2:
        one, two = (r["drain"] for r in results)
        print(f"\n  two processes / one: {two['rate'] / one['rate']:.2f}x (drain), "
              f"{two['steady_rate'] / one['steady_rate']:.2f}x (steady)")
    for r in results:
        print(f"  {r['processes']} process(es): {r['count']} pre-loaded at {r['preload_rate']:.0f}/s; "
              f"load average {r['load_before']} before, {r['load_after']} after the drain")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=20_000, help="commands pre-loaded per run (default 20000)")
    parser.add_argument("--processes", default="1,2", help="notifier processes per run (default 1,2)")
    parser.add_argument("--rate", type=float, default=300, help="commands/s of the latency step (default 300)")
    parser.add_argument("--seconds", type=float, default=5, help="length of the latency step (default 5)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line of results")
    parser.add_argument("--sink", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        run_sink(args.sink)
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    use_uvloop()
    tmp = Path(tempfile.mkdtemp(prefix="tocsin-bench-deliveries-"))
    try:
        results = [asyncio.run(run(int(n), args, tmp)) for n in args.processes.split(",")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, "python bench/deliveries.py " + shlex.join(sys.argv[1:]))
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
