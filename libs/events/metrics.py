"""Prometheus metrics, written out by hand in the text exposition format (version 0.0.4), no dependency.

Each service asks the registry for its metrics once (`REGISTRY.counter(...)` returns the same metric when
asked again), so under `tocsin up`, where every service runs in one process, one `/metrics` shows them
all. Values that live elsewhere (JetStream consumer positions) come from collectors run at scrape time.

The registry is one per process on purpose, like every Prometheus client's default registry: metrics are
counted where things happen, in every service, and read in one place.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

Labels = tuple[str, ...]
Sample = tuple[str, dict[str, str], float]           # name (with suffix), labels, value
Collector = Callable[[], Awaitable[list["GaugeFamily"]]]

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LATENESS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value)) if value != int(value) else str(int(value))


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labelnames: Labels) -> None:
        self.name, self.help, self.labelnames = name, help_text, labelnames
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> Labels:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {tuple(labels)}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def samples(self) -> list[Sample]:
        raise NotImplementedError

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]
        lines += [f"{name}{_labels(labels)} {_number(value)}" for name, labels, value in self.samples()]
        return lines


class Counter(_Metric):
    kind = "counter"

    def __init__(self, name: str, help_text: str, labelnames: Labels) -> None:
        super().__init__(name, help_text, labelnames)
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self) -> list[Sample]:
        return [(f"{self.name}_total", dict(zip(self.labelnames, k, strict=True)), v)
                for k, v in sorted(self._values.items())]


class Histogram(_Metric):
    kind = "histogram"

    def __init__(self, name: str, help_text: str, labelnames: Labels, buckets: Iterable[float]) -> None:
        super().__init__(name, help_text, labelnames)
        self.buckets = tuple(sorted(buckets))
        self._counts: dict[Labels, list[int]] = {}
        self._sums: dict[Labels, float] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            counts = self._counts.setdefault(key, [0] * (len(self.buckets) + 1))
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    counts[i] += 1
                    break
            else:
                counts[-1] += 1
            self._sums[key] = self._sums.get(key, 0.0) + value

    def count(self, **labels: str) -> int:
        return sum(self._counts.get(self._key(labels), []))

    def samples(self) -> list[Sample]:
        out: list[Sample] = []
        for key, counts in sorted(self._counts.items()):
            labels = dict(zip(self.labelnames, key, strict=True))
            running = 0
            for bound, n in zip((*self.buckets, math.inf), counts, strict=True):
                running += n
                out.append((f"{self.name}_bucket", {**labels, "le": _number(bound)}, running))
            out.append((f"{self.name}_sum", labels, self._sums[key]))
            out.append((f"{self.name}_count", labels, running))
        return out


@dataclass
class GaugeFamily:
    """Gauge values read at scrape time by a collector."""

    name: str
    help: str
    values: list[tuple[dict[str, str], float]]

    def render(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge",
                *(f"{self.name}{_labels(labels)} {_number(v)}" for labels, v in self.values)]


class Registry:
    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}
        self._collectors: dict[str, Collector] = {}
        self._lock = threading.Lock()

    def _get(self, name: str, make: Callable[[], _Metric], kind: type[_Metric]) -> _Metric:
        with self._lock:
            metric = self._metrics.get(name)
            if metric is None:
                metric = self._metrics[name] = make()
            if not isinstance(metric, kind):
                raise ValueError(f"{name} is already a {metric.kind}")
            return metric

    def counter(self, name: str, help_text: str, labels: Labels = ()) -> Counter:
        return self._get(name, lambda: Counter(name, help_text, labels), Counter)  # type: ignore[return-value]

    def histogram(self, name: str, help_text: str, labels: Labels = (),
                  buckets: Iterable[float] = HTTP_BUCKETS) -> Histogram:
        return self._get(name, lambda: Histogram(name, help_text, labels, buckets),  # type: ignore[return-value]
                         Histogram)

    def collector(self, name: str, collect: Collector) -> None:
        """Run `collect` at every scrape (the latest one registered under a name wins)."""
        self._collectors[name] = collect

    def remove_collector(self, name: str, collect: Collector | None) -> None:
        if self._collectors.get(name) is collect:
            del self._collectors[name]

    async def render(self) -> str:
        lines: list[str] = []
        for metric in list(self._metrics.values()):
            lines += metric.render()
        for collect in list(self._collectors.values()):
            for family in await collect():
                lines += family.render()
        return "\n".join(lines) + "\n"


REGISTRY = Registry()
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# The metrics every deployment shares, named once here so that the services and the docs agree.
ALERTS_RECEIVED = REGISTRY.counter(
    "tocsin_alerts_received", "Alert requests at the intake, by source and outcome "
    "(accepted, unauthorized, forbidden, too_large, invalid, rate_limited, unavailable)", ("source", "outcome"))
DELIVERIES = REGISTRY.counter(
    "tocsin_deliveries", "Notification delivery outcomes, by channel kind (delivered, failed, retry)",
    ("channel_kind", "outcome"))
TIMER_LATENESS = REGISTRY.histogram(
    "tocsin_timer_lateness_seconds", "How long after its due time each timer (escalation, reminder) fired",
    buckets=LATENESS_BUCKETS)
HTTP_DURATION = REGISTRY.histogram(
    "tocsin_http_request_duration_seconds", "HTTP request latency, by route (the path pattern), method "
    "and status", ("method", "route", "status"))


@web.middleware
async def http_metrics(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> web.StreamResponse:
    """Latency per route pattern (`/api/v1/incidents/{id}`, never the id itself, which would make a
    series per incident); a path that matches no route counts as `unmatched`."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        HTTP_DURATION.observe(time.perf_counter() - started, method=request.method, route=route,
                              status=str(status))


async def metrics_page(request: web.Request) -> web.Response:
    return web.Response(text=await REGISTRY.render(), headers={"Content-Type": CONTENT_TYPE})
