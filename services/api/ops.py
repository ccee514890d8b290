"""`GET /metrics`: every metric of this process (all services under `tocsin up`), plus what is read at
scrape time: how far each JetStream consumer and each read model is behind its stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from tocsin.api.context import Context
from tocsin.events.metrics import GaugeFamily, metrics_page
from tocsin.events.openapi import Endpoint
from tocsin.events.streams import ALL_STREAMS

log = logging.getLogger("tocsin.api")


def lag_collector(ctx: Context):  # type: ignore[no-untyped-def]
    """Consumer lag per stream and consumer (messages not yet delivered, and delivered but not yet
    acknowledged), and read-model lag per stream (events the projector has not applied)."""
    async def collect() -> list[GaugeFamily]:
        pending: list[tuple[dict[str, str], float]] = []
        unacked: list[tuple[dict[str, str], float]] = []
        projection: list[tuple[dict[str, str], float]] = []
        tops: dict[str, int] = {}
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                for stream in ALL_STREAMS:
                    info = await ctx.bus.js.stream_info(stream.name)
                    tops[stream.name] = info.state.last_seq
                    for consumer in await ctx.bus.js.consumers_info(stream.name):
                        if not consumer.config.durable_name:
                            continue   # ordered consumers (projector, config watchers) have no lasting name
                        labels = {"stream": stream.name, "consumer": consumer.config.durable_name}
                        pending.append((labels, float(consumer.num_pending or 0)))
                        unacked.append((labels, float(consumer.num_ack_pending or 0)))
                rows = await ctx.pool.fetch("SELECT stream, last_seq FROM api_projection_offsets")
                done = {r["stream"]: r["last_seq"] for r in rows}
                projection = [({"stream": s}, float(max(0, tops.get(s, 0) - done.get(s, 0))))
                              for s in ("ALERTS", "INCIDENTS", "DELIVERIES")]
        return [
            GaugeFamily("tocsin_consumer_pending_messages",
                        "Messages in the stream not yet delivered to the consumer", pending),
            GaugeFamily("tocsin_consumer_ack_pending_messages",
                        "Messages delivered to the consumer and not yet acknowledged", unacked),
            GaugeFamily("tocsin_projection_lag_events",
                        "Events in the stream the API's read models do not have yet", projection),
        ]
    return collect


ENDPOINTS = [
    Endpoint("GET", "/metrics", metrics_page, "Prometheus metrics (text format 0.0.4)", content="text/plain",
             tag="health"),
]
