"""The intake HTTP door: authenticate the route, parse the source's body, publish, answer after the ack."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web
from opentelemetry import trace

from tocsin.events import alerts, openapi
from tocsin.events.base import new_id, utcnow
from tocsin.events.bus import Bus
from tocsin.events.config import Route
from tocsin.events.configbus import ConfigWatcher
from tocsin.events.metrics import ALERTS_RECEIVED, http_metrics, metrics_page
from tocsin.events.observability import tracer
from tocsin.events.openapi import Endpoint, Param, respond
from tocsin.events.web import ApiError, error_middleware, read_json_body
from tocsin.intake.backlog import Backlog
from tocsin.intake.settings import Settings
from tocsin.intake.sources import PARSERS, Incoming, PayloadError, SignatureError
from tocsin.intake.sources.base import decode

log = logging.getLogger("tocsin.intake")
_tracer = tracer("intake")
# Seconds a sender is asked to wait when the router is behind: about what the router needs to take a few
# thousand alerts off the backlog.
BACKLOG_RETRY_AFTER = 10


class _RoutingKey(msgspec.Struct):
    """Only what /v2/enqueue needs before the parser runs: which route the body is for."""

    routing_key: str = ""


class RateLimiter:
    """A token bucket per route: `rate` alerts a minute, bursts up to the same number."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, rate_per_minute: int, cost: int = 1) -> float:
        """0 when allowed, else the seconds to wait."""
        now = time.monotonic()
        capacity = float(rate_per_minute)
        tokens, last = self._buckets.get(key, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * rate_per_minute / 60.0)
        if tokens >= cost:
            self._buckets[key] = (tokens - cost, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (cost - tokens) * 60.0 / rate_per_minute


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "geniekey") and value.strip():
        return value.strip()
    return request.query.get("token", "")


AnyJson = dict[str, Any]   # each source's own body; the parsers check it


class AcceptedAlert(msgspec.Struct, kw_only=True):
    alert_id: str
    dedup_key: str


class Accepted(msgspec.Struct, kw_only=True):
    accepted: int
    alerts: list[AcceptedAlert]


class Enqueued(msgspec.Struct, kw_only=True):
    status: str
    message: str
    dedup_key: str


OUTCOMES = {401: "unauthorized", 403: "forbidden", 404: "unknown_source", 413: "too_large", 415: "invalid",
            422: "invalid", 429: "rate_limited", 503: "unavailable"}


def counted(handler: Callable[[web.Request], Awaitable[web.Response]]) -> Callable[
        [web.Request], Awaitable[web.Response]]:
    """Count refused requests by source and why (accepted alerts are counted where they are accepted)."""
    @functools.wraps(handler)
    async def run(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except ApiError as exc:
            source = request.match_info.get("source", "pagerduty")
            ALERTS_RECEIVED.inc(source=source if source in PARSERS else "unknown",
                                outcome=OUTCOMES.get(exc.status, str(exc.status)))
            raise
    return run


class Intake:
    """The intake's state: its bus connection and config view are attached once they are open."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.clock = clock
        self.limiter = RateLimiter()
        self._bus: Bus | None = None
        self._config: ConfigWatcher | None = None
        self.backlog: Backlog | None = None

    def attach(self, bus: Bus, config: ConfigWatcher) -> None:
        self._bus, self._config = bus, config
        self.backlog = Backlog(bus, self.settings.max_backlog)

    def backlogged(self) -> int | None:
        """The router's backlog when it is past `max_backlog` (then nothing may be accepted), else None."""
        return self.backlog.over() if self.backlog is not None else None

    def refuse_if_backlogged(self) -> None:
        backlog = self.backlogged()
        if backlog is not None:
            raise ApiError(503, "the router is too far behind; nothing was accepted, retry later",
                           code="backlogged", details={"backlog": backlog, "limit": self.settings.max_backlog},
                           headers={"Retry-After": str(BACKLOG_RETRY_AFTER)})

    @property
    def bus(self) -> Bus:
        if self._bus is None:
            raise ApiError(503, "starting up", headers={"Retry-After": "1"})
        return self._bus

    @property
    def config(self) -> ConfigWatcher:
        if self._config is None:
            raise ApiError(503, "starting up", headers={"Retry-After": "1"})
        return self._config

    def add_routes(self, app: web.Application) -> None:
        """Through the route registry, so the intake's paths are in the API's OpenAPI document too."""
        source = Param("source", "path", schema={"enum": sorted(PARSERS)})
        token = Param("token", description="the route's token, for tools that cannot set a header")
        errors = (401, 403, 404, 413, 415, 422, 429)
        openapi.install(app, [
            Endpoint("POST", "/api/v1/intake/{source}", counted(self.receive), "An alert from a monitoring tool",
                     request=AnyJson, responses={202: Accepted}, errors=errors, params=(source, token),
                     tag="intake", operation="intake"),
            Endpoint("POST", "/api/v1/intake/{source}/{rest:.*}", counted(self.receive),
                     "The same, for tools that add to the URL", request=AnyJson, responses={202: Accepted},
                     errors=errors, params=(source, token), tag="intake", operation="intake_with_suffix"),
            # PagerDuty's own path, for a drop-in URL change.
            Endpoint("POST", "/v2/enqueue", counted(self.enqueue),
                     "PagerDuty Events API v2 (routing_key = route token)", request=AnyJson,
                     responses={202: Enqueued}, errors=errors, tag="intake"),
        ])

    async def receive(self, request: web.Request) -> web.Response:
        source = request.match_info["source"]
        if source not in PARSERS:
            raise ApiError(404, f"unknown source {source!r}", details={"sources": sorted(PARSERS)})
        route_name, route = self._route(bearer_token(request), source)
        self.refuse_if_backlogged()   # before the body is read: a refused request costs next to nothing
        body = await read_json_body(request, route.max_body_bytes or self.settings.max_body_bytes)
        events = await self._accept(request, source, route_name, route, body)
        ALERTS_RECEIVED.inc(len(events), source=source, outcome="accepted")
        return respond(Accepted(accepted=len(events), alerts=[
            AcceptedAlert(alert_id=e.aggregate_id, dedup_key=e.dedup_key) for e in events]), status=202)

    async def enqueue(self, request: web.Request) -> web.Response:
        """PagerDuty Events API v2 at PagerDuty's path. The route token is the body's `routing_key`, so the
        body is read (up to the largest limit of a pagerduty route) before the route is known."""
        routes = self.config.directory.config.routes.values()
        body = await read_json_body(request, max(
            [self.settings.max_body_bytes, *(r.max_body_bytes for r in routes if r.source == "pagerduty")]))
        try:
            envelope = decode(body, _RoutingKey)
        except PayloadError as exc:
            raise ApiError(422, str(exc), details={"path": exc.path} if exc.path else None) from None
        assert isinstance(envelope, _RoutingKey)
        route_name, route = self._route(envelope.routing_key, "pagerduty")
        self.refuse_if_backlogged()
        limit = route.max_body_bytes or self.settings.max_body_bytes
        if len(body) > limit:
            raise ApiError(413, f"body is larger than {limit} bytes")
        events = await self._accept(request, "pagerduty", route_name, route, body)
        ALERTS_RECEIVED.inc(len(events), source="pagerduty", outcome="accepted")
        return respond(Enqueued(status="success", message="Event processed",
                                dedup_key=events[0].dedup_key if events else ""), status=202)

    def _route(self, token: str, source: str) -> tuple[str, Route]:
        """The route of a token: 401 when there is none, 403 when it is a route of another source."""
        found = self.config.directory.route_for_token(token) if token else None
        if found is None:
            raise ApiError(401, "missing or unknown route token",
                           headers={"WWW-Authenticate": 'Bearer realm="tocsin-intake"'})
        if found[1].source != source:
            raise ApiError(403, f"this token belongs to a route for {found[1].source!r}, not {source!r}")
        return found

    async def _accept(self, request: web.Request, source: str, route_name: str, route: Route,
                      body: bytes) -> list[alerts.AlertReceived]:
        """Parse, rate-limit and publish the body of an authenticated request; the events once JetStream
        has them all."""
        with _tracer.start_as_current_span("intake.receive", attributes={
                "tocsin.source": source, "tocsin.route": route_name}):
            incoming = Incoming(body=body, route=route, headers=request.headers, query=request.query,
                                path=request.match_info.get("rest", ""))
            try:
                parsed = PARSERS[source](incoming)
            except PayloadError as exc:
                raise ApiError(422, str(exc), details={"path": exc.path} if exc.path else None) from None
            except SignatureError as exc:
                raise ApiError(401, str(exc), code="bad_signature") from None
            rate = route.rate_limit or self.settings.rate_per_minute
            # A group larger than the whole allowance costs the allowance, so it can ever get through.
            wait = self.limiter.take(route_name, rate, min(len(parsed), rate))
            if wait:
                raise ApiError(429, "rate limit of this route exceeded",
                               headers={"Retry-After": str(max(1, round(wait)))})
            events = self._events(source, route_name, parsed)
            await self._publish(events)
        return events

    def _events(self, source: str, route: str, parsed: list) -> list[alerts.AlertReceived]:  # type: ignore[type-arg]
        now = self.clock()
        span = trace.get_current_span().get_span_context()
        traceparent = f"00-{span.trace_id:032x}-{span.span_id:016x}-01" if span.is_valid else ""
        out = []
        for alert in parsed:
            alert_id = new_id()
            raw = alert.raw if len(alert.raw) <= self.settings.max_raw_bytes else msgspec.json.encode(
                {"truncated": True, "size": len(alert.raw)})
            out.append(alerts.AlertReceived(
                id=alert_id, aggregate_id=alert_id, version=1, at=now, traceparent=traceparent,
                source=source, route=route, dedup_key=alert.dedup_key, status=alert.status,
                severity=alert.severity, title=alert.title, details=alert.details, labels=alert.labels,
                links=alert.links, raw=msgspec.Raw(raw or b"null"), acknowledge=alert.acknowledge))
        return out

    async def _publish(self, events: list[alerts.AlertReceived]) -> None:
        if not self.bus.connected:
            raise ApiError(503, "the event bus is unavailable; nothing was accepted, retry later",
                           headers={"Retry-After": "5"})
        try:
            await self.bus.publish_many([(alerts.subject(e.route), e) for e in events], timeout=5.0)
        except (TimeoutError, Exception) as exc:
            log.warning("publish failed: %s", exc)
            # Some of a group may be stored: a retry by the sender is safe, dedup keys fold it downstream.
            raise ApiError(503, "the event bus did not confirm the alerts; retry later",
                           headers={"Retry-After": "5"}) from None


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def add_health(app: web.Application, bus: Callable[[], Bus | None]) -> None:
    async def ready(request: web.Request) -> web.Response:
        b = bus()
        if b is None or not b.connected:
            raise ApiError(503, "nats is not reachable")
        return web.json_response({"status": "ready", "nats": "ok"})
    app.router.add_get("/healthz", health)
    app.router.add_get("/readyz", ready)


def create_app(settings: Settings) -> web.Application:
    """The intake as its own process: its own listener, bus connection and config view."""
    app = web.Application(middlewares=[http_metrics, error_middleware],
                          client_max_size=settings.max_body_bytes + 1024)
    intake = Intake(settings)
    intake.add_routes(app)
    app.router.add_get("/metrics", metrics_page)   # this process's own (`tocsin up` serves one for all)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        bus = await Bus.connect(settings.nats_url, "tocsin-intake")
        await bus.ensure_streams()
        watcher = ConfigWatcher(bus)
        await watcher.start()
        intake.attach(bus, watcher)
        yield
        await watcher.stop()
        await bus.close()

    async def listeners(app: web.Application) -> AsyncIterator[None]:
        # Mail and UDP heartbeats beside HTTP, on the bus and config view opened just before.
        from tocsin.intake import heartbeats, mail
        async with mail.serve(intake, settings), heartbeats.serve(intake, settings):
            yield

    app.cleanup_ctx.append(resources)
    app.cleanup_ctx.append(listeners)
    add_health(app, lambda: intake._bus)
    return app
