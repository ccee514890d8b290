"""`/metrics`: the Prometheus text format, parsed back, with the numbers that things actually did."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest

from harness import FakeProvider, StackHandle, eventually
from tocsin.events.metrics import Registry

TOKEN = "metrics-route-token-0123456789"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+-]+|\+Inf|-Inf|NaN)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[Series, dict[str, str]]:
    """Samples and declared types; fails on any line that is not valid exposition format."""
    series: Series = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            assert kind in ("counter", "gauge", "histogram"), line
            types[name] = kind
            continue
        if line.startswith("# HELP ") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample: {line!r}"
        name, labels = m.group(1), frozenset(LABEL.findall(m.group(3) or ""))
        family = re.sub(r"_(total|bucket|sum|count)$", "", name)
        assert family in types or name in types, f"{name} has no TYPE"
        assert (name, labels) not in series, f"duplicate series {line}"
        series[(name, labels)] = float(m.group(4))
    return series, types


def value(series: Series, name: str, **labels: str) -> float:
    return series.get((name, frozenset(labels.items())), 0.0)


def total(series: Series, name: str, **labels: str) -> float:
    """Summed over the labels not given."""
    return sum(v for (n, ls), v in series.items() if n == name and set(labels.items()) <= ls)


def check_histograms(series: Series, types: dict[str, str]) -> None:
    buckets: dict[tuple[str, frozenset[tuple[str, str]]], list[tuple[float, float]]] = defaultdict(list)
    for (name, labels), v in series.items():
        if name.endswith("_bucket") and types.get(name[:-7]) == "histogram":
            le = dict(labels)["le"]
            buckets[(name[:-7], frozenset(x for x in labels if x[0] != "le"))].append((float(le), v))
    for (family, labels), points in buckets.items():
        points.sort()
        counts = [c for _, c in points]
        assert counts == sorted(counts), f"{family} buckets are not cumulative"
        assert math.isinf(points[-1][0])
        assert points[-1][1] == series[(f"{family}_count", labels)]


def test_the_registry_writes_valid_exposition_text() -> None:
    import asyncio
    registry = Registry()
    c = registry.counter("t_things", "Things", ("kind",))
    c.inc(kind='say "hi"\n')
    c.inc(2, kind="plain")
    assert registry.counter("t_things", "Things", ("kind",)) is c
    h = registry.histogram("t_seconds", "Time", ("route",), buckets=(0.1, 1))
    for v in (0.05, 0.5, 5):
        h.observe(v, route="/x/{id}")
    text = asyncio.run(registry.render())
    series, types = parse(text)
    assert value(series, "t_things_total", kind="plain") == 2
    assert value(series, "t_things_total", kind='say \\"hi\\"\\n') == 1
    assert value(series, "t_seconds_bucket", route="/x/{id}", le="0.1") == 1
    assert value(series, "t_seconds_bucket", route="/x/{id}", le="1") == 2
    assert value(series, "t_seconds_count", route="/x/{id}") == 3
    assert value(series, "t_seconds_sum", route="/x/{id}") == pytest.approx(5.55)
    check_histograms(series, types)
    with pytest.raises(ValueError):
        c.inc(other="x")
    with pytest.raises(ValueError):
        c.inc(-1, kind="plain")
    with pytest.raises(ValueError):
        registry.histogram("t_things", "Things")


def config(ntfy: FakeProvider) -> str:
    return f"""
security: {{allow_private_networks: true}}
providers: {{ntfy: {{server: "{ntfy.url}"}}}}
users:
  alice: {{contacts: {{push: {{type: ntfy, topic: alice-pages}}}}}}
  bob: {{contacts: {{push: {{type: ntfy, topic: bob-pages}}}}}}
teams:
  infra:
    members: [alice, bob]
    rotations: {{primary: {{members: [alice], shift: 1d, start: "2026-01-01T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"], wait: 1m}}, {{notify: ["user:bob"]}}]}}
routes:
  hooks: {{source: webhook, team: infra, token: {TOKEN}}}
"""


async def scrape(stack: StackHandle) -> tuple[Series, dict[str, str], str]:
    assert stack.session
    async with stack.session.get(f"{stack.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await resp.text()
    series, types = parse(text)
    return series, types, text


async def test_metrics_count_alerts_deliveries_timers_lag_and_latency(stack: StackHandle, ntfy: FakeProvider,
                                                                      ) -> None:
    await stack.start(config(ntfy))
    # Counters belong to the process and other tests ran in it: compare before and after.
    before, _, _ = await scrape(stack)

    status, _ = await stack.post_alert("webhook", {"title": "disk full", "dedup_key": "d1"}, TOKEN)
    assert status == 202
    status, _ = await stack.post_alert("webhook", {"title": "x"}, "wrong-token-0123456789")
    assert status == 401
    status, _ = await stack.post_alert("webhook", b"not json", TOKEN)
    assert status in (415, 422)
    await ntfy.wait_for(1)
    items = await eventually(lambda: _incidents(stack))
    # The escalation's wait passes: the scheduler fires the timer and records how late it was.
    stack.clock.advance(timedelta(minutes=2))
    await ntfy.wait_for(2, timeout=30)

    async def settled() -> Any:
        series, types, text = await scrape(stack)
        done = (total(series, "tocsin_deliveries_total", channel_kind="ntfy", outcome="delivered")
                - total(before, "tocsin_deliveries_total", channel_kind="ntfy", outcome="delivered")) >= 2
        return (series, types, text) if done else None
    after, types, text = await eventually(settled, timeout=30)

    def delta(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    assert delta("tocsin_alerts_received_total", source="webhook", outcome="accepted") == 1
    assert delta("tocsin_alerts_received_total", source="webhook", outcome="unauthorized") == 1
    assert delta("tocsin_alerts_received_total", source="webhook", outcome="invalid") == 1
    assert delta("tocsin_deliveries_total", channel_kind="ntfy", outcome="failed") == 0
    assert delta("tocsin_timer_lateness_seconds_count") >= 1
    assert types["tocsin_timer_lateness_seconds"] == "histogram"
    # Latency per route pattern, never per id.
    assert delta("tocsin_http_request_duration_seconds_count", route="/api/v1/intake/{source}",
                 method="POST", status="202") == 1
    assert delta("tocsin_http_request_duration_seconds_count", route="/api/v1/incidents", method="GET",
                 status="200") >= 1
    assert items[0]["id"] not in text
    # Consumer lag per stream and durable consumer, and how far the read models are behind.
    consumers = {dict(ls).get("consumer") for (n, ls) in after if n == "tocsin_consumer_pending_messages"}
    assert {"router-alerts", "router-timers", "notifier-ntfy", "scheduler-requests"} <= consumers
    assert value(after, "tocsin_consumer_pending_messages", stream="ALERTS", consumer="router-alerts") == 0
    assert ("tocsin_projection_lag_events", frozenset({("stream", "INCIDENTS")})) in after
    check_histograms(after, types)


async def _incidents(stack: StackHandle) -> Any:
    items = await stack.incidents()
    return items or None
