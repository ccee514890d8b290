"""End-to-end page latency: alerts in at a fixed rate through the intake, pages out at a webhook sink.

    python bench/e2e_latency.py [--rate 200] [--seconds 20] [--warmup 3] [--json]

Two processes share the machine. This (parent) process runs the whole Stack (intake, router, scheduler,
notifier, API and its projector) as `tocsin up` does, against its own NATS and Postgres (Postgres with
durable=False, fsync off: a bench, not a store) or the servers in TOCSIN_NATS_URL / TOCSIN_DATABASE_URL.
One child process is both the load generator and the webhook sink, so an alert's send time and its page's
arrival time come from one clock (time.monotonic in one process), and the sink costs the Stack nothing.

Before the Stack starts, the child measures a raw JetStream baseline at the same rate: publish (awaiting
the ack) to a file stream, consumed by a durable pull consumer (fetch + ack) in the same process. Then it
sends Alertmanager webhook bodies open-loop (request i leaves at t0 + i/rate, whatever earlier ones took),
one alert per request with a unique fingerprint and a unique id in `annotations.summary`, which becomes
the incident title that the webhook page carries: every page is matched to its alert.

Exit status is non-zero only on errors (refused alerts, lost pages), never because a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import multiprocessing as mp
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

from measure import cpu_seconds, machine, pct

ROUTE_TOKEN = "bench-route-token-0001"
CONFIG = """\
security: {{allow_private_networks: true}}
users:
  bench: {{contacts: {{hook: {{type: webhook, url: "{sink}/page"}}}}}}
teams:
  bench:
    members: [bench]
    rotations: {{primary: {{members: [bench], shift: 1w, start: "2026-01-05T09:00"}}}}
    escalation:   # two steps, so that every incident also asks the scheduler for an escalation timer
      steps: [{{notify: ["rotation:primary"], wait: 1h}}, {{notify: ["user:bench"], wait: 1h}}]
routes:
  bench:
    source: alertmanager
    team: bench
    token: {token}
    rate_limit: 100000000   # alerts a minute; the default (600/min) would refuse most of the load
"""




async def receive(conn) -> tuple:  # type: ignore[no-untyped-def, type-arg]
    """The next message from the other process, without a thread (which could block a clean exit)."""
    loop = asyncio.get_running_loop()
    readable: asyncio.Event = asyncio.Event()
    loop.add_reader(conn.fileno(), readable.set)
    try:
        if not conn.poll():
            await readable.wait()
    finally:
        loop.remove_reader(conn.fileno())
    return conn.recv()  # type: ignore[no-any-return]


async def open_loop(rate: float, count: int, send, lags: list[float]) -> None:  # type: ignore[no-untyped-def]
    """Start send(i) at t0 + i/rate for i < count, never waiting for earlier sends; then wait for all."""
    tasks = []
    t0 = time.monotonic() + 0.05
    for i in range(count):
        due = t0 + i / rate
        if (delay := due - time.monotonic()) > 0:
            await asyncio.sleep(delay)
        lags.append(time.monotonic() - due)
        tasks.append(asyncio.create_task(send(i)))
    await asyncio.gather(*tasks)


# ---------------------------------------------------------------------------- child: generator and sink


async def raw_jetstream(nats_url: str, rate: float, seconds: float) -> dict[str, float]:
    import nats
    from nats.js.api import StorageType, StreamConfig
    nc = await nats.connect(nats_url, allow_reconnect=False, connect_timeout=5, max_reconnect_attempts=1)
    js = nc.jetstream()
    stream = f"BENCH_RAW_{uuid.uuid4().hex[:8]}"
    subject = f"{stream.lower()}.x"
    await js.add_stream(StreamConfig(name=stream, subjects=[subject], storage=StorageType.FILE))
    sub = await js.pull_subscribe(subject, durable="bench", stream=stream)
    sent: dict[int, float] = {}
    rtt: list[float] = []
    count, pad = int(rate * seconds), b"x" * 900   # about the size of an AlertReceived event

    async def consumer() -> None:
        while len(rtt) < count:
            try:
                msgs = await sub.fetch(64, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            now = time.monotonic()
            for msg in msgs:
                rtt.append(now - sent[int(msg.data.split(b" ", 1)[0])])
                await msg.ack()

    async def publish(i: int) -> None:
        sent[i] = time.monotonic()
        await js.publish(subject, b"%d " % i + pad, headers={"Nats-Msg-Id": f"{stream}-{i}"})

    task = asyncio.create_task(consumer())
    await open_loop(rate, count, publish, [])
    await asyncio.wait_for(task, 30)
    await js.delete_stream(stream)
    await nc.close()
    warm = int(rate)   # the first second warms the connection and the consumer: left out
    return {"raw_p50_ms": pct(rtt[warm:], .5), "raw_p99_ms": pct(rtt[warm:], .99), "raw_count": count - warm}


async def child(conn, nats_url: str, sink_port: int, rate: float, seconds: float, warmup: float) -> None:  # type: ignore[no-untyped-def]
    import aiohttp
    from aiohttp import web
    pages: dict[str, float] = {}
    duplicates = 0

    async def sink(request: web.Request) -> web.Response:
        nonlocal duplicates
        now = time.monotonic()
        uid = json.loads(await request.read())["title"].rsplit(" ", 1)[-1]
        duplicates += uid in pages
        pages.setdefault(uid, now)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/page", sink)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", sink_port).start()

    result: dict[str, object] = {**await raw_jetstream(nats_url, rate, min(seconds, 10) + 1)}
    conn.send(("baseline", result))
    _, intake_url = await receive(conn)
    cpu0, run = time.process_time(), uuid.uuid4().hex[:8]
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
    headers = {"Authorization": f"Bearer {ROUTE_TOKEN}", "Content-Type": "application/json"}
    sent: dict[str, float] = {}
    intake: dict[str, float] = {}
    refused: list[str] = []

    async def send(uid: str) -> None:
        body = json.dumps({"version": "4", "status": "firing", "receiver": "tocsin", "alerts": [{
            "status": "firing", "fingerprint": uid, "startsAt": "2026-01-01T00:00:00Z",
            "labels": {"alertname": "Bench", "severity": "critical", "instance": f"host-{uid}"},
            "annotations": {"summary": f"bench alert {uid}"}}]})
        sent[uid] = t = time.monotonic()
        try:
            async with session.post(intake_url, data=body, headers=headers) as resp:
                text = await resp.text()
                if resp.status == 202:
                    intake[uid] = time.monotonic() - t
                else:
                    refused.append(f"{resp.status} {text[:200]}")
        except (aiohttp.ClientError, OSError) as exc:
            refused.append(f"{type(exc).__name__}: {exc}")

    # Ready means paged end to end: the router and notifier load the config a moment after the Stack starts.
    deadline = time.monotonic() + 30
    while not pages and time.monotonic() < deadline:
        await send(f"probe-{run}-{len(sent)}")
        await asyncio.sleep(0.3)
    if not pages:
        raise RuntimeError(f"no page arrived within 30 s of the stack starting; refused: {refused[-3:]}")

    n_warm, n_meas = int(rate * warmup), int(rate * seconds)
    uids = [f"{run}-{i}" for i in range(n_warm + n_meas)]
    lags: list[float] = []
    await open_loop(rate, len(uids), lambda i: send(uids[i]), lags)
    measured = uids[n_warm:]
    accepted = [u for u in measured if u in intake]
    # A backlog is late, not lost: wait while pages still come; what 10 s of silence leaves is lost.
    count, changed = len(pages), time.monotonic()
    while any(u not in pages for u in uids if u in intake) and time.monotonic() - changed < 10:
        await asyncio.sleep(0.1)
        if len(pages) != count:
            count, changed = len(pages), time.monotonic()
    e2e = [pages[u] - sent[u] for u in accepted if u in pages]
    paged_all = [pages[u] for u in uids if u in pages]
    took = [intake[u] for u in accepted]
    result.update(
        rate_target=rate, rate_achieved=(n_meas - 1) / (sent[measured[-1]] - sent[measured[0]]),
        pages_per_s=len(paged_all) / (max(paged_all) - sent[uids[0]]) if paged_all else 0.0,
        sent=n_meas, accepted=len(accepted), refused=len(refused), paged=len(e2e), alerts_total=len(sent),
        lost=len(accepted) - len(e2e), duplicate_pages=duplicates, refusals=refused[:5],
        generator_lag_p99_ms=pct(lags[n_warm:], .99), intake_p50_ms=pct(took, .5),
        intake_p99_ms=pct(took, .99), page_p50_ms=pct(e2e, .5), page_p90_ms=pct(e2e, .9),
        page_p99_ms=pct(e2e, .99), page_max_ms=pct(e2e, 1),
    )
    await session.close()
    await runner.cleanup()
    result["cpu_generator_s"] = time.process_time() - cpu0
    conn.send(("result", result))


def child_main(conn, *args) -> None:  # type: ignore[no-untyped-def]
    try:
        asyncio.run(child(conn, *args))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise


# ---------------------------------------------------------------------------- parent: the stack


async def serve_stack(conn, nats_url: str, database_url: str, config: Path, nats_pid: int | None) -> dict:  # type: ignore[no-untyped-def, type-arg]
    from tocsin.embedded import free_port
    from tocsin.up import Stack, migrate_all

    async def expect(kind: str) -> dict:  # type: ignore[type-arg]
        try:
            got, payload = await receive(conn)
        except EOFError:
            got, payload = "error", "it exited"
        if got != kind:
            raise RuntimeError(f"the load generator failed: {payload}")
        return payload  # type: ignore[no-any-return]

    await migrate_all(database_url)
    await expect("baseline")
    port = free_port()
    stack = Stack(nats_url, database_url, http=f"127.0.0.1:{port}", config_file=str(config))
    await stack.start()
    try:
        cpu0, nats0 = time.process_time(), cpu_seconds(nats_pid)
        conn.send(("go", f"http://127.0.0.1:{port}/api/v1/intake/alertmanager"))
        result = await expect("result")
        result.update(cpu_stack_s=time.process_time() - cpu0, cpu_nats_s=cpu_seconds(nats_pid) - nats0)
        return result
    finally:
        await stack.stop()



def report(r: dict, warmup: float) -> None:  # type: ignore[type-arg]
    def ms(*keys: str, digits: int = 1) -> str:
        return " / ".join(f"{r[k + '_ms']:.{digits}f}" for k in keys) + " ms"
    def verdict(value: float, limit: float) -> str:
        return "met" if value <= limit else f"MISSED by {value - limit:.0f} ms"
    n = r["alerts_total"]
    rows = [
        ("command", r["command"]), ("machine", r["machine"]), ("servers", r["servers"]),
        ("rate target / achieved", f"{r['rate_target']:g}/s / {r['rate_achieved']:.1f}/s "
                                   f"(generator lag p99 {r['generator_lag_p99_ms']:.1f} ms)"),
        ("alerts sent / accepted / paged / lost", f"{r['sent']} / {r['accepted']} / {r['paged']} / "
         f"{r['lost']} (refused {r['refused']}, duplicate pages {r['duplicate_pages']}; "
         f"{warmup:g} s warm-up not counted)"),
        ("pages delivered per second", f"{r['pages_per_s']:.1f}/s (first send to last page)"),
        ("intake 202 p50 / p99", ms("intake_p50", "intake_p99")),
        ("alert → page p50 / p90 / p99 / max", ms("page_p50", "page_p90", "page_p99", "page_max")),
        ("raw JetStream pub→consume p50 / p99", f"{ms('raw_p50', 'raw_p99', digits=2)} ({r['raw_count']} msgs)"),
        ("page p50 / raw p50", f"{r['page_p50_ms'] / r['raw_p50_ms']:.1f}x"),
        ("CPU for the alert phase", f"stack {r['cpu_stack_s']:.1f} s ({1000 * r['cpu_stack_s'] / n:.1f} "
         f"ms/alert), nats-server {r['cpu_nats_s']:.1f} s, generator+sink {r['cpu_generator_s']:.1f} s "
         f"({n} alerts)"),
        ("targets at 200/s: p50 ≤ 15, p99 ≤ 100 ms", f"p50 {verdict(r['page_p50_ms'], 15)}, "
         f"p99 {verdict(r['page_p99_ms'], 100)}" + ("" if r["rate_target"] == 200 else " (not a 200/s run)")),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows + [("refused", x) for x in r["refusals"]]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=float, default=200, help="alerts a second (default 200)")
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds (default 20)")
    parser.add_argument("--warmup", type=float, default=3, help="seconds sent first, not counted (default 3)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line of results")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # so that the cleanup below runs
    for listener in ("TOCSIN_SMTP", "TOCSIN_UDP"):   # the mail and UDP intakes are not measured here
        os.environ.setdefault(listener, "off")
    # The api and notifier refuse to start without the installation's key; a bench's stack gets a throwaway one.
    os.environ.setdefault("TOCSIN_SECRET_KEY", "bench-" + uuid.uuid4().hex + uuid.uuid4().hex)

    from tocsin.cli import use_uvloop
    from tocsin.embedded import EmbeddedNats, EmbeddedPostgres, free_port
    from tocsin.events.observability import setup_logging, setup_tracing
    setup_logging("bench", "WARNING")
    setup_tracing("bench")   # as `tocsin up` does: spans are made, exported only when OTEL_* says so
    tmp = Path(tempfile.mkdtemp(prefix="tocsin-bench-"))
    tmp.chmod(0o755)   # the embedded Postgres runs as the postgres user when we are root
    nats_url, database_url = os.environ.get("TOCSIN_NATS_URL", ""), os.environ.get("TOCSIN_DATABASE_URL", "")
    servers = f"NATS {nats_url or 'embedded, JetStream file storage'}; Postgres " + (
        "from TOCSIN_DATABASE_URL" if database_url else "embedded with durable=False (fsync off)")
    nats_server = pg_server = proc = None
    try:
        if not nats_url:
            nats_server = EmbeddedNats(tmp / "nats").start()
            nats_url = nats_server.url
        if not database_url:
            pg_server = EmbeddedPostgres(tmp / "postgres", durable=False).start()
            database_url = pg_server.url()
        sink_port = free_port()
        config = tmp / "tocsin.yaml"
        config.write_text(CONFIG.format(sink=f"http://127.0.0.1:{sink_port}", token=ROUTE_TOKEN))
        ctx = mp.get_context("spawn")
        conn, child_conn = ctx.Pipe()
        proc = ctx.Process(target=child_main, name="bench-generator", daemon=True, args=(
            child_conn, nats_url, sink_port, args.rate, args.seconds, args.warmup))
        machine_line = machine()
        proc.start()
        child_conn.close()   # so that a dead child shows as EOF here instead of a wait forever
        nats_pid = nats_server.proc.pid if nats_server and nats_server.proc else None
        use_uvloop()   # as the tocsin command runs every service
        profile_to = os.environ.get("BENCH_PROFILE")   # a path: cProfile the stack's process into it
        profiler = cProfile.Profile() if profile_to else None
        if profiler:
            profiler.enable()
        result = asyncio.run(serve_stack(conn, nats_url, database_url, config, nats_pid))
        if profiler and profile_to:
            profiler.disable()
            profiler.dump_stats(profile_to)
        result.update(command=shlex.join(["python", *sys.argv]), machine=machine_line, servers=servers)
        report(result, args.warmup)
        if args.json:
            print(json.dumps(result, default=str))
        if result["refused"] or result["lost"]:
            print(f"ERROR: {result['refused']} alerts refused, {result['lost']} pages lost", file=sys.stderr)
            return 1
        return 0
    finally:
        if proc is not None:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        if pg_server:
            pg_server.stop()
        if nats_server:
            nats_server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
