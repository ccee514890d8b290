"""Router decisions/s: how fast one router process works through a backlog of alerts, beside a plain consumer.

    python bench/router.py [--alerts 20000] [--variants new,attach] [--incidents 200] [--samples 300] [--json]

For each variant the bench starts its own NATS (`EmbeddedNats`, JetStream file storage, as in production),
publishes a config straight onto the CONFIG stream (the router needs no Postgres): one user with a webhook
contact, one team with a two-step escalation policy (so every new incident also asks for an escalation
timer, as in real use) and one Alertmanager route. It then pre-loads `--alerts` AlertReceived events onto
the ALERTS stream, each about 1 KB (the sender's payload included), before any consumer reads them:

- `new`: every alert has its own dedup key, so every one opens an incident: a dedup slot, an incident
  number, the `incident.opened` and `incident.paged` appends, a notify command and a timer request.
  That is the router's most expensive path.
- `attach`: the first `--incidents` alerts open that many incidents; of the whole backlog 90 % then
  carry one of those dedup keys (an alert storm folding into open incidents: a dedup lookup and an
  `alert.attached` append each) and the other 10 % open new incidents. The order is shuffled (seeded).

Then, in one run on the same stored messages:

1. **baseline**: a plain durable pull consumer on ALERTS in this process (nats-py on uvloop, as the
   services run), `fetch(64)` and `ack()` per message, no decoding: how fast a Python client can take the
   same messages off the same server. Run first, while nothing else is busy.
2. **the router**: ONE `python -m tocsin router` subprocess (TOCSIN_NATS_URL pointing at the bench's NATS).
   The `router-alerts` durable consumer is created beforehand with the router's own settings, so the
   bench can watch it from the start.

Both drains are watched the same way: the bench polls the consumer's info every 20 ms; the alerts decided
so far are `total - num_pending - num_ack_pending` (delivered and acked). Reported: the drain rate from the
first decision to the last, the steady rate between 10 % and 90 % of the backlog (interpolated), the
router's start-up time (spawn to first decision) and the CPU the router process and nats-server used per
decision (from /proc).

A backlog has no per-alert latency worth reporting (an alert's wait is its place in the queue), so p50/p99
come from a third step: with the backlog gone, `--samples` alerts of the same kind are published one at a
time, 10-100 ms apart (a random pause, so that they land at every point of the router's fetch cycle),
each timed from the start of its publish to the router's last output for it, seen by a core NATS
subscription in this process: the notify command and the escalation timer request of a new incident, or
the `alert.attached` event of an attached alert. The baseline consumer fetches each of those alerts too:
publish → fetched is the floor any consumer pays before it can decide anything.

Exit status is non-zero only on errors (the router exiting, a drain that stops moving for 60 s, a decision
that never shows), never because a figure is low.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import nats
from measure import crossing, load_average, machine, pct, watch_drain
from nats.js import JetStreamContext

from tocsin.cli import use_uvloop
from tocsin.embedded import EmbeddedNats
from tocsin.events import alerts, incidents, timers
from tocsin.events.base import new_id, stable_id, utcnow
from tocsin.events.bus import Bus
from tocsin.events.config import CONFIG_SUBJECT, ConfigApplied, hash_token, read_config
from tocsin.events.streams import ROUTER_ALERTS, ConsumerDef

TOKEN = "bench-router-token-0001"
ROUTE = "bench"
CONFIG = """
security: {allow_private_networks: true}
users:
  bench: {contacts: {hook: {type: webhook, url: "http://127.0.0.1:9/page"}}}
teams:
  bench:
    members: [bench]
    rotations: {primary: {members: [bench], shift: 1w, start: "2026-01-05T09:00"}}
    escalation:   # two steps, so that every new incident also asks the scheduler for an escalation timer
      steps: [{notify: ["rotation:primary"], wait: 1h}, {notify: ["user:bench"], wait: 1h}]
routes:
  bench: {source: alertmanager, team: bench, token: TOKEN, rate_limit: 1000000000}
""".replace("TOKEN", TOKEN)
BASELINE = ConsumerDef("ALERTS", "bench-baseline", "alerts.>", ack_wait=ROUTER_ALERTS.ack_wait)
BATCH = 64   # the router's default batch (router Settings.batch)
POLL = 0.02






# ----------------------------------------------------------------------------- the backlog

RAW = msgspec.json.encode({   # about what Alertmanager sends for one alert
    "status": "firing", "labels": {"alertname": "BenchHighLatency", "severity": "critical", "job": "api",
                                   "namespace": "prod", "pod": "api-7d9f8b6c5d-x2x7q", "cluster": "eu-1"},
    "annotations": {"summary": "p99 latency above 500 ms for 10 minutes",
                    "description": "The api job in prod answers slowly; see the dashboard.",
                    "runbook_url": "https://runbooks.example.com/api/latency"},
    "startsAt": "2026-11-27T06:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://prometheus.example.com/graph?g0.expr=histogram_quantile%280.99%29",
    "fingerprint": "0123456789abcdef"})


def alert(key: str, n: int) -> alerts.AlertReceived:
    aid = new_id()
    return alerts.AlertReceived(
        id=aid, aggregate_id=aid, version=1, at=utcnow(), source="alertmanager", route=ROUTE, dedup_key=key,
        status="firing", severity="critical", title=f"BenchHighLatency on {key} ({n})",
        labels={"alertname": "BenchHighLatency", "severity": "critical", "instance": key},
        raw=msgspec.Raw(RAW))


def backlog(variant: str, total: int, open_incidents: int, rng: random.Random) -> tuple[list[str], list[str]]:
    """Dedup keys in publish order, and the keys of the incidents that the attach variant keeps open."""
    if variant == "new":
        return [f"new-{i}" for i in range(total)], []
    hot = [f"hot-{i}" for i in range(open_incidents)]
    attaching = round(0.9 * total)
    rest = [rng.choice(hot) for _ in range(attaching)] + [f"new-{i}" for i in range(total - attaching - len(hot))]
    rng.shuffle(rest)
    return hot + rest, hot


async def publish_config(bus: Bus) -> None:
    config = read_config(CONFIG, env={}).config
    routes = {n: msgspec.structs.replace(r, token="", token_sha256=hash_token(r.token))
              for n, r in config.routes.items()}
    config = msgspec.structs.replace(config, routes=routes)
    await bus.publish(CONFIG_SUBJECT, ConfigApplied(id=new_id(), at=utcnow(), revision=1, config=config))


async def preload(bus: Bus, keys: list[str]) -> float:
    t = time.monotonic()
    for i in range(0, len(keys), 500):
        await bus.publish_many([(alerts.subject(ROUTE), alert(k, i + j)) for j, k in enumerate(keys[i:i + 500])],
                               timeout=30)
    return len(keys) / (time.monotonic() - t)


# ----------------------------------------------------------------------------- watching a drain


def summarize(samples: list[tuple[float, int, dict[str, float]]], total: int, started: float) -> dict[str, float]:
    first = next(i for i, s in enumerate(samples) if s[1] > 0)
    t_first, n_first, cpu_first = samples[first]
    t_last, _, cpu_last = samples[-1]
    out = {
        "rate": (total - n_first) / (t_last - t_first) if t_last > t_first else math.nan,
        "steady_rate": 0.8 * total / (crossing(samples, 0.9 * total) - crossing(samples, 0.1 * total)),
        "seconds": t_last - t_first, "startup_s": t_first - started,
    }
    for name in cpu_last:
        out[f"cpu_{name}_ms_per_alert"] = 1000 * (cpu_last[name] - cpu_first[name]) / max(1, total - n_first)
    # The rate in whole seconds of the drain: how even it is.
    windows, t, i = [], t_first, first
    while t + 1 <= t_last:
        n0 = samples[i][1]
        while i < len(samples) - 1 and samples[i][0] < t + 1:
            i += 1
        windows.append((samples[i][1] - n0) / (samples[i][0] - t))
        t = samples[i][0]
    out["slowest_second"] = min(windows) if windows else math.nan
    out["fastest_second"] = max(windows) if windows else math.nan
    return out


async def plain_pull(bus: Bus) -> JetStreamContext.PullSubscription:
    """The baseline reads with nats-py's own pull subscription, not the bus's Puller: a plain client."""
    await bus.js.add_consumer(BASELINE.stream, BASELINE.config())
    return await bus.js.pull_subscribe_bind(BASELINE.durable, BASELINE.stream)


async def baseline_drain(bus: Bus, total: int, nats_pid: int | None) -> dict[str, float]:
    sub = await plain_pull(bus)
    done = asyncio.Event()

    async def drain() -> None:
        count = 0
        while count < total:
            try:
                msgs = await sub.fetch(BATCH, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            for msg in msgs:
                await msg.ack()
            count += len(msgs)
        await bus.nc.flush()
        done.set()

    started = time.monotonic()
    task = asyncio.create_task(drain())
    try:
        samples = await watch_drain(bus, "ALERTS", BASELINE.durable, total, {"self": os.getpid(), "nats": nats_pid},
                                    poll=POLL)
    finally:
        await asyncio.wait_for(task, 30)
        await sub.unsubscribe()
    return summarize(samples, total, started)


# ----------------------------------------------------------------------------- one at a time


class _Aggregate(msgspec.Struct):
    aggregate_id: str = ""


class Outputs:
    """What the router publishes, seen on a core subscription: futures resolved per alert."""

    def __init__(self) -> None:
        self.waiting: dict[str, tuple[asyncio.Future[float], set[str]]] = {}

    def expect(self, *keys: str) -> asyncio.Future[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        left = set(keys)   # one set shared by every key of this alert
        for key in keys:
            self.waiting[key] = (fut, left)
        return fut

    def seen(self, key: str) -> None:
        entry = self.waiting.pop(key, None)
        if entry is None:
            return
        fut, keys = entry
        keys.discard(key)
        if not keys and not fut.done():
            fut.set_result(time.monotonic())

    async def on_msg(self, msg) -> None:  # type: ignore[no-untyped-def]
        subject = msg.subject
        if subject.startswith("timers.requested."):
            event = timers.decoder.decode(msg.data)
            if isinstance(event, timers.TimerRequested) and event.kind == "escalate":
                self.seen(f"timer:{event.incident_id}")
        elif subject.startswith("notify."):
            self.seen(f"notify:{msgspec.json.decode(msg.data, type=_Aggregate).aggregate_id}")
        elif subject.startswith("incidents."):
            event = incidents.decoder.decode(msg.data)
            if isinstance(event, incidents.AlertAttached):
                self.seen(f"attached:{event.alert_id}")


async def one_at_a_time(bus: Bus, variant: str, hot: list[str], samples: int, rng: random.Random) -> dict[str, float]:
    outputs = Outputs()
    subs = [await bus.nc.subscribe(s, cb=outputs.on_msg) for s in ("timers.requested.>", "notify.>", "incidents.>")]
    base_sub = await plain_pull(bus)
    await bus.nc.flush()
    router_lat: list[float] = []
    base_lat: list[float] = []
    try:
        for i in range(samples):
            event = alert(f"one-{i}" if variant == "new" else rng.choice(hot), i)
            if variant == "new":
                iid = stable_id("incident", event.id)
                fut = outputs.expect(f"timer:{iid}", f"notify:{iid}")
            else:
                fut = outputs.expect(f"attached:{event.id}")
            fetch = asyncio.create_task(base_sub.fetch(1, timeout=10))
            # A random pause, so that the alerts land at every point of the router's fetch cycle; it also
            # lets the baseline's fetch park at the server, as the router's does.
            await asyncio.sleep(rng.uniform(0.01, 0.1))
            t = time.monotonic()
            await bus.publish_many([(alerts.subject(ROUTE), event)])
            msgs = await fetch
            base_lat.append(time.monotonic() - t)
            for msg in msgs:
                await msg.ack()
            try:
                router_lat.append(await asyncio.wait_for(fut, 10) - t)
            except TimeoutError:
                raise RuntimeError(f"the router's output for sample alert {i} never showed") from None
    finally:
        for s in subs:
            await s.unsubscribe()
        await base_sub.unsubscribe()
    return {"p50_ms": pct(router_lat, .5), "p99_ms": pct(router_lat, .99), "max_ms": pct(router_lat, 1),
            "base_p50_ms": pct(base_lat, .5), "base_p99_ms": pct(base_lat, .99), "count": len(router_lat),
            "over_100ms": sum(x > 0.1 for x in router_lat)}


# ----------------------------------------------------------------------------- one variant


def start_router(nats_url: str, log: Path) -> subprocess.Popen[bytes]:
    """`python -m tocsin router` as its own process, as it is deployed; no OTEL export."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["TOCSIN_NATS_URL"] = nats_url
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "tocsin", "router"], stdout=out, stderr=out, env=env)


async def run_variant(variant: str, args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    rng = random.Random(20261127)
    keys, hot = backlog(variant, args.alerts, args.incidents, rng)
    nats_server = EmbeddedNats(tmp / variant / "nats").start()
    nats_pid = nats_server.proc.pid if nats_server.proc else None
    router: subprocess.Popen[bytes] | None = None
    log = tmp / variant / "router.log"
    bus = await Bus.connect(nats_server.url, "bench-router")
    try:
        await bus.ensure_streams()
        await publish_config(bus)
        await bus.js.add_consumer("ALERTS", ROUTER_ALERTS.config())
        await bus.js.add_consumer("ALERTS", BASELINE.config())
        publish_rate = await preload(bus, keys)
        result: dict[str, object] = {"variant": variant, "alerts": len(keys), "new_incidents": len(set(keys)),
                                     "preload_rate": publish_rate, "load_before": load_average()}
        result["baseline"] = await baseline_drain(bus, len(keys), nats_pid)

        started = time.monotonic()
        router = start_router(nats_server.url, log)
        samples = await watch_drain(bus, "ALERTS", ROUTER_ALERTS.durable, len(keys),
                                    {"router": router.pid, "nats": nats_pid}, alive=lambda: router.poll() is None,
                                    poll=POLL)
        result["router"] = summarize(samples, len(keys), started)
        result["load_after_drain"] = load_average()
        await asyncio.sleep(1)   # let the router finish its trailing work (its incidents consumer)
        result["latency"] = await one_at_a_time(bus, variant, hot, args.samples, rng)
        if router.poll() is not None:
            raise RuntimeError(f"the router exited with {router.returncode}")
        return result
    except BaseException:
        if log.exists():
            print("router log (last lines):\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]),
                  file=sys.stderr)
        raise
    finally:
        if router is not None and router.poll() is None:
            router.send_signal(signal.SIGTERM)
            try:
                router.wait(15)
            except subprocess.TimeoutExpired:
                router.kill()
                router.wait(5)
        await bus.close()
        nats_server.stop()


def report(results: list[dict], command: str) -> None:  # type: ignore[type-arg]
    print(f"command  {command}")
    print(f"machine  {machine()}; NATS embedded (JetStream file storage), one router process, uvloop")
    for r in results:
        b, ro, lat = r["baseline"], r["router"], r["latency"]
        print(f"\nvariant {r['variant']}: {r['alerts']} alerts pre-loaded, {r['new_incidents']} distinct dedup keys "
              f"(pre-loaded at {r['preload_rate']:.0f}/s); load average {r['load_before']} before, "
              f"{r['load_after_drain']} after the router's drain")
        rows = [
            ("", "drain /s", "steady 10-90 % /s", "slowest / fastest 1 s", "CPU ms/alert (proc, nats)", "start-up"),
            ("baseline: fetch(64) + ack", f"{b['rate']:.0f}", f"{b['steady_rate']:.0f}",
             "(shorter than 1 s)" if math.isnan(b["slowest_second"]) else
             f"{b['slowest_second']:.0f} / {b['fastest_second']:.0f}",
             f"{b['cpu_self_ms_per_alert']:.3f}, {b['cpu_nats_ms_per_alert']:.3f}", ""),
            ("router (one process)", f"{ro['rate']:.0f}", f"{ro['steady_rate']:.0f}",
             f"{ro['slowest_second']:.0f} / {ro['fastest_second']:.0f}",
             f"{ro['cpu_router_ms_per_alert']:.2f}, {ro['cpu_nats_ms_per_alert']:.2f}", f"{ro['startup_s']:.1f} s"),
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            cells = [c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
            print("  " + "  ".join(cells))
        print(f"  router / baseline: {ro['rate'] / b['rate']:.3f} (drain), {ro['steady_rate'] / b['steady_rate']:.3f} "
              f"(steady); router drain {ro['seconds']:.1f} s, baseline {b['seconds']:.2f} s")
        print(f"  one at a time ({lat['count']}): publish → router's last output p50 / p99 / max "
              f"{lat['p50_ms']:.2f} / {lat['p99_ms']:.2f} / {lat['max_ms']:.2f} ms; "
              f"publish → plain consumer fetched p50 / p99 {lat['base_p50_ms']:.2f} / {lat['base_p99_ms']:.2f} ms "
              f"({lat['p50_ms'] / lat['base_p50_ms']:.1f}x); router over 100 ms: {lat['over_100ms']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--alerts", type=int, default=20_000, help="alerts pre-loaded per variant (default 20000)")
    parser.add_argument("--variants", default="new,attach", help="new, attach or both (default new,attach)")
    parser.add_argument("--incidents", type=int, default=200, help="open incidents of the attach variant (200)")
    parser.add_argument("--samples", type=int, default=300, help="alerts sent one at a time afterwards (300)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line of results")
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if any(v not in ("new", "attach") for v in variants):
        parser.error("--variants takes new and/or attach")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # so that the cleanup below runs
    use_uvloop()   # as the tocsin command runs every service, the router included
    tmp = Path(tempfile.mkdtemp(prefix="tocsin-bench-router-"))
    try:
        results = [asyncio.run(run_variant(v, args, tmp)) for v in variants]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, shlex.join(["python", *sys.argv]))
    if args.json:
        print(json.dumps(results, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
