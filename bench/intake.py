"""Intake throughput and latency: alerts/s and p50/p99 for one intake process, beside raw JetStream.

    python bench/intake.py [--seconds 10] [--json]

Runs `tocsin intake` as its own process against its own NATS (JetStream, file storage), with the config
published straight onto the CONFIG stream (the intake needs no Postgres). Then, in one run:

1. raw JetStream: C concurrent publishers, each awaiting its ack, for C = 16 and 64 (the baseline: what
   the intake does per request, without HTTP, parsing or auth);
2. the intake under wrk (a native load client; a Python client would eat a core of this 2-core machine)
   at 16 and 64 connections, one Alertmanager alert per request, a unique fingerprint each;
3. the intake at a fixed 1,000 alerts/s, open loop, from a Python client: latency p50/p99 (wrk is closed
   loop, so its latencies under saturation say little about a fixed rate);
4. step 2 at 64 connections again while a router and a notifier run in their own processes: with a
   provider answering at once, with the provider taking 2 s per page, and with the notifier stopped. The
   three rates match: the intake never waits on delivery (what they share is the machine's two cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import msgspec
from aiohttp import web
from measure import pct

from tocsin.embedded import EmbeddedNats, free_port
from tocsin.events.base import new_id, utcnow
from tocsin.events.bus import Bus
from tocsin.events.config import CONFIG_SUBJECT, ConfigApplied, hash_token, read_config

TOKEN = "bench-intake-token-0001"
CONFIG = """
security: {{allow_private_networks: true}}
users:
  bench: {{contacts: {{hook: {{type: webhook, url: "{sink}/page"}}}}}}
teams:
  bench:
    members: [bench]
    rotations: {{primary: {{members: [bench], shift: 1w, start: "2026-01-05T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"], wait: 1h}}]}}
routes:
  bench: {{source: alertmanager, team: bench, token: {token}, rate_limit: 1000000000}}
"""
LUA = """
counter = 0
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  counter = counter + 1
  local body = string.format('{"version":"4","status":"firing","alerts":[{"status":"firing",' ..
    '"labels":{"alertname":"Bench","severity":"critical"},"fingerprint":"fp-%d-%d"}]}',
    math.random(1, 1000000000), counter)
  return wrk.format("POST", "/api/v1/intake/alertmanager",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer TOKEN"}, body)
end
""".replace("TOKEN", TOKEN)



async def publish_config(bus: Bus, sink: str) -> None:
    config = read_config(CONFIG.format(sink=sink, token=TOKEN), env={}).config
    routes = {n: msgspec.structs.replace(r, token="", token_sha256=hash_token(r.token))
              for n, r in config.routes.items()}
    config = msgspec.structs.replace(config, routes=routes)
    await bus.publish(CONFIG_SUBJECT, ConfigApplied(id=new_id(), at=utcnow(), revision=1, config=config))


async def raw_jetstream(bus: Bus, concurrency: int, seconds: float) -> float:
    await bus.js.add_stream(name="BENCH_RAW", subjects=["benchraw.>"])
    payload = b"x" * 400
    count = 0
    stop = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal count
        while time.monotonic() < stop:
            await bus.js.publish("benchraw.a", payload, headers={"Nats-Msg-Id": uuid.uuid4().hex})
            count += 1
    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = count / (time.monotonic() - start)
    await bus.js.delete_stream("BENCH_RAW")
    return rate


def run_wrk(url: str, connections: int, seconds: int, script: Path) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(script),
                          url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)

    def latency(label: str) -> float:
        m = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    return {"rate": rate, "p50_ms": latency("50"), "p99_ms": latency("99"),
            "non_2xx": float(errors.group(1)) if errors else 0.0}


async def fixed_rate(url: str, rate: int, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256)) as session:
        async def one(i: int) -> None:
            body = json.dumps({"version": "4", "alerts": [{"status": "firing", "labels": {"alertname": "B"},
                                                           "fingerprint": f"fixed-{i}-{uuid.uuid4().hex}"}]})
            t = time.monotonic()
            async with session.post(url, data=body, headers={"Authorization": f"Bearer {TOKEN}",
                                                             "Content-Type": "application/json"}) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
            latencies.append(time.monotonic() - t)
        t0 = time.monotonic()
        tasks = []
        for i in range(int(rate * seconds)):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - t0
    return {"rate": len(latencies) / elapsed, "p50_ms": pct(latencies, 0.5), "p99_ms": pct(latencies, 0.99),
            "non_202": float(sum(n for s, n in statuses.items() if s != 202))}


def service(name: str, nats_url: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "ab")
    return subprocess.Popen([sys.executable, "-m", "tocsin", name], stdout=out, stderr=out,
                            env={**os.environ, **env, "TOCSIN_NATS_URL": nats_url})


async def wait_http(url: str) -> None:
    async with aiohttp.ClientSession() as s:
        for _ in range(200):
            try:
                async with s.get(url) as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} never answered")


async def main(args: argparse.Namespace) -> dict[str, object]:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk; make bench does)")
    tmp = Path(tempfile.mkdtemp(prefix="tocsin-bench-intake-"))
    nats = EmbeddedNats(tmp / "nats").start()
    procs: list[subprocess.Popen[bytes]] = []
    slow_runner = None
    try:
        bus = await Bus.connect(nats.url, "bench")
        await bus.ensure_streams()

        provider_delay = [0.0]

        async def slow(request: web.Request) -> web.Response:
            await asyncio.sleep(provider_delay[0])
            return web.json_response({})
        app = web.Application()
        app.router.add_post("/page", slow)
        slow_runner = web.AppRunner(app, access_log=None)
        await slow_runner.setup()
        sink_port = free_port()
        await web.TCPSite(slow_runner, "127.0.0.1", sink_port).start()
        await publish_config(bus, f"http://127.0.0.1:{sink_port}")

        port = free_port()
        procs.append(service("intake", nats.url, {"TOCSIN_INTAKE_HTTP": f"127.0.0.1:{port}"}, tmp / "intake.log"))
        base = f"http://127.0.0.1:{port}"
        await wait_http(f"{base}/readyz")
        script = tmp / "post.lua"
        script.write_text(LUA)
        intake_url = f"{base}/api/v1/intake/alertmanager"
        run_wrk(intake_url, 16, 2, script)   # warm up

        results: dict[str, object] = {}
        for c in (16, 64):
            results[f"raw_jetstream_c{c}"] = {"rate": await raw_jetstream(bus, c, args.seconds)}
            results[f"intake_wrk_c{c}"] = await asyncio.to_thread(run_wrk, intake_url, c, args.seconds, script)
        results["intake_fixed_1000"] = await fixed_rate(intake_url, 1000, args.seconds)
        procs.append(service("router", nats.url, {}, tmp / "router.log"))
        notifier = service("notifier", nats.url, {}, tmp / "notifier.log")
        procs.append(notifier)
        await asyncio.sleep(2)
        for name, delay in (("healthy", 0.0), ("stuck", 2.0)):
            provider_delay[0] = delay
            results[f"intake_wrk_c64_notifier_{name}"] = await asyncio.to_thread(
                run_wrk, intake_url, 64, args.seconds, script)
        notifier.send_signal(signal.SIGKILL)
        notifier.wait(10)
        results["intake_wrk_c64_notifier_stopped"] = await asyncio.to_thread(
            run_wrk, intake_url, 64, args.seconds, script)
        await bus.close()
        return results
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        if slow_runner is not None:
            await slow_runner.cleanup()
        nats.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def report(results: dict[str, object], seconds: float) -> None:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"machine: {os.cpu_count()} cores, {cpu}; Python {platform.python_version()}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}  ({seconds:.0f} s per step)\n")
    print(f"{'step':42} {'alerts/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for name, r in results.items():
        r = dict(r)  # type: ignore[call-overload]
        errors = r.get("non_2xx", r.get("non_202", 0))
        print(f"{name:42} {r['rate']:10.0f} {r.get('p50_ms', float('nan')):8.2f} "
              f"{r.get('p99_ms', float('nan')):8.2f} {errors:7.0f}")
    for c in (16, 64):
        raw = results[f"raw_jetstream_c{c}"]["rate"]  # type: ignore[index]
        http = results[f"intake_wrk_c{c}"]["rate"]  # type: ignore[index]
        print(f"\nintake / raw JetStream at concurrency {c}: {http / raw:.2f}  (target >= 0.50)")
    healthy = results["intake_wrk_c64_notifier_healthy"]["rate"]  # type: ignore[index]
    for name in ("stuck", "stopped"):
        rate = results[f"intake_wrk_c64_notifier_{name}"]["rate"]  # type: ignore[index]
        print(f"intake rate with the notifier {name} / with it healthy: {rate / healthy:.2f}")
    fixed = results["intake_fixed_1000"]
    print(f"p99 at 1,000 alerts/s: {fixed['p99_ms']:.1f} ms  (target <= 25 ms)")  # type: ignore[index]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    out = asyncio.run(main(args))
    report(out, args.seconds)
    if args.json:
        print(json.dumps(out))
