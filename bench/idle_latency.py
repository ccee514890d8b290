"""Delivery latency after idle gaps: nats-py's fetch loop (the bus before) beside the bus's Puller, in one run.

    python bench/idle_latency.py [--messages 300] [--pairs 4] [--gap 1.0,2.5] [--group 1,3]
                                 [--spacing 0.02,0.4] [--json]

The stall this measures: a consumer that idles sends one pull request per second (the fetch timeout). With
nats-py's `fetch(batch, timeout=1)` the server's 408 for an expired request can arrive after the client's
own timer, the next fetch reads it as its answer and opens a second request, and a message that arrives
then can wait for the older request to expire (up to ~1 s).

The bench starts its own NATS (`EmbeddedNats`, JetStream file storage) and one stream. It makes `--pairs`
pairs of durable consumers on that stream, all with the same filter, so every message is delivered to each:

- `old`: the consume loop the bus had, `PullSubscription.fetch(64, timeout=1)` from nats-py 2.16
  (`old_consume` below, kept so that the two can be compared in one run);
- `new`: `tocsin.events.bus.consume` on the bus's `Puller` (batch 64, idle timeout 1 s, as the router runs).

Then it publishes `--messages` messages one at a time, in groups as an incident starts: an idle pause drawn
from `--gap` (seconds, uniform; long enough for every pull request to expire), then 1-3 messages
(`--group`) `--spacing` seconds apart. The stall needs that shape: the first message after the idle period
is taken by one of the two open requests, a second one within the next second by the other, lingering one.
Random pauses make the messages land at every point of each consumer's 1 s pull cycle. A message's
latency, per consumer, is from the start of its publish to the moment the consumer's handler gets it (one
clock: everything runs in this process, on uvloop as the services do). Every consumer acks what it gets.

Printed per path: count, p50 / p99 / max, and how many deliveries took over 500 ms; for the new path also the
Puller's own counters (requests given up on, stale statuses and messages). Exit status is non-zero only on
errors (a message never delivered to some consumer), never because a figure is high.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
from measure import load_average, machine, pct
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from tocsin.cli import use_uvloop
from tocsin.embedded import EmbeddedNats
from tocsin.events.bus import Bus, consume
from tocsin.events.puller import Puller, PullStats
from tocsin.events.streams import ConsumerDef

STREAM, SUBJECT = "IDLE_BENCH", "idle.bench"
BATCH, IDLE_TIMEOUT = 64, 1.0   # the router's batch and the bus's idle timeout
SLOW = 0.5


async def old_consume(sub: JetStreamContext.PullSubscription, handle: Callable[[list[Msg]], Awaitable[None]]) -> None:
    """The bus's consume loop before the Puller: nats-py's fetch, a timeout meaning "nothing yet"."""
    while True:
        try:
            msgs = await sub.fetch(BATCH, timeout=IDLE_TIMEOUT)
        except (TimeoutError, nats.errors.TimeoutError):
            continue
        await handle(msgs)


class Receiver:
    """One consumer's handler: when each message reached it."""

    def __init__(self) -> None:
        self.got: dict[int, float] = {}

    async def __call__(self, msgs: list[Msg]) -> None:
        now = time.monotonic()
        for msg in msgs:
            self.got.setdefault(int(msg.data), now)
            await msg.ack()


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, object]:
    server = EmbeddedNats(tmp / "nats").start()
    bus = await Bus.connect(server.url, "bench-idle")
    tasks: list[asyncio.Task[None]] = []
    try:
        await bus.js.add_stream(name=STREAM, subjects=[SUBJECT])
        receivers: dict[str, list[Receiver]] = {"old": [], "new": []}
        pullers: list[Puller] = []
        for i in range(args.pairs):
            old = ConsumerDef(STREAM, f"old-{i}", SUBJECT)
            await bus.js.add_consumer(STREAM, old.config())
            sub = await bus.js.pull_subscribe_bind(old.durable, STREAM)
            receivers["old"].append(Receiver())
            tasks.append(asyncio.create_task(old_consume(sub, receivers["old"][-1])))
            puller = await bus.pull(ConsumerDef(STREAM, f"new-{i}", SUBJECT))
            pullers.append(puller)
            receivers["new"].append(Receiver())
            tasks.append(asyncio.create_task(consume(puller, receivers["new"][-1], batch=BATCH,
                                                     idle_timeout=IDLE_TIMEOUT, name=f"new-{i}")))
        rng = random.Random(args.seed)
        low, high = args.gap
        load_before = load_average()
        sent: dict[int, float] = {}
        await asyncio.sleep(high)
        while len(sent) < args.messages:
            await asyncio.sleep(rng.uniform(low, high))          # idle: every consumer's request expires
            for i in range(rng.randint(*args.group)):            # then the first alerts of an incident
                if i:
                    await asyncio.sleep(rng.uniform(*args.spacing))
                n = len(sent)
                sent[n] = time.monotonic()
                await bus.js.publish(SUBJECT, str(n).encode(), headers={"Nats-Msg-Id": f"idle-{n}"})
        for _ in range(150):   # up to 15 s for the last deliveries
            if all(len(r.got) == len(sent) for rs in receivers.values() for r in rs):
                break
            await asyncio.sleep(0.1)
        result: dict[str, object] = {"messages": len(sent), "pairs": args.pairs, "gap": [low, high],
                                     "group": list(args.group), "spacing": list(args.spacing),
                                     "load_before": load_before, "load_after": load_average()}
        for path, rs in receivers.items():
            missing = sum(len(sent) - len(r.got) for r in rs)
            if missing:
                raise RuntimeError(f"{path}: {missing} deliveries never came")
            lat = [r.got[n] - t for r in rs for n, t in sent.items()]
            result[path] = {"count": len(lat), "p50_ms": pct(lat, .5), "p99_ms": pct(lat, .99),
                            "max_ms": pct(lat, 1), "over_500ms": sum(x > SLOW for x in lat)}
        total = PullStats()
        for p in pullers:
            for field in vars(total):
                setattr(total, field, getattr(total, field) + getattr(p.stats, field))
        result["new_stats"] = vars(total)
        return result
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        await bus.close()
        server.stop()


def report(r: dict, command: str) -> None:  # type: ignore[type-arg]
    print(f"command  {command}")
    print(f"machine  {machine()}; NATS embedded (JetStream file storage), uvloop; load average "
          f"{r['load_before']} before, {r['load_after']} after")
    print(f"{r['messages']} messages one at a time, in groups of {r['group'][0]}-{r['group'][1]} "
          f"{r['spacing'][0]}-{r['spacing'][1]} s apart, each group after {r['gap'][0]}-{r['gap'][1]} s idle; "
          f"each delivered to {r['pairs']} consumers per path (batch {BATCH}, idle timeout {IDLE_TIMEOUT:.0f} s)")
    for path, title in (("old", "old: nats-py fetch"), ("new", "new: bus Puller")):
        x = r[path]
        print(f"  {title:20s} {x['count']:5d} deliveries  p50 {x['p50_ms']:7.2f} ms  p99 {x['p99_ms']:7.2f} ms  "
              f"max {x['max_ms']:7.1f} ms  over {SLOW * 1000:.0f} ms: {x['over_500ms']}")
    s = r["new_stats"]
    print(f"  new Puller counters: {s['requests']} requests, {s['abandoned']} given up, "
          f"{s['stale_statuses']} stale statuses, {s['stale_messages']} stale messages")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=300, help="messages sent one at a time (300)")
    parser.add_argument("--pairs", type=int, default=4, help="consumers per path, each gets every message (4)")
    parser.add_argument("--gap", default="1.0,2.5", help="idle pause before each group, min,max seconds")
    parser.add_argument("--group", default="1,3", help="messages per group, min,max (1,3)")
    parser.add_argument("--spacing", default="0.02,0.4", help="pause between a group's messages, min,max s")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="also print one JSON line of results")
    args = parser.parse_args()
    args.gap = tuple(float(x) for x in args.gap.split(","))
    args.group = tuple(int(x) for x in args.group.split(","))
    args.spacing = tuple(float(x) for x in args.spacing.split(","))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # so that the cleanup below runs
    use_uvloop()
    tmp = Path(tempfile.mkdtemp(prefix="tocsin-bench-idle-"))
    try:
        result = asyncio.run(run(args, tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(result, shlex.join(["python", *sys.argv]))
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
