"""The API: JSON endpoints, health, and the projector that keeps the read models."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from aiohttp import web

from tocsin.api import (
    answers,
    apidocs,
    audit,
    calendar,
    callbacks_mattermost,
    callbacks_pushover,
    callbacks_slack,
    callbacks_telegram,
    callbacks_twilio,
    config_store,
    configviews,
    incidents,
    login,
    notices,
    objects,
    oidc,
    oncall,
    ops,
    pushover_receipts,
    send_tests,
    silences,
    stream,
    teams,
    tokens,
    ui,
)
from tocsin.api.alert_routing import routing_answer
from tocsin.api.context import CONTEXT, Context
from tocsin.api.projector import Projector
from tocsin.api.settings import Settings
from tocsin.events import openapi, pg
from tocsin.events.bus import Bus
from tocsin.events.config import read_config
from tocsin.events.configbus import ConfigWatcher
from tocsin.events.metrics import REGISTRY, http_metrics
from tocsin.events.openapi import Endpoint, Param, respond
from tocsin.events.tasks import cancel_and_wait
from tocsin.events.web import ApiError, error_middleware

log = logging.getLogger("tocsin.api")


class Health(msgspec.Struct, kw_only=True):
    status: str


class Ready(msgspec.Struct, kw_only=True):
    status: str
    nats: str
    postgres: str


class AlertView(msgspec.Struct, kw_only=True):
    """An alert as intake normalized it, `raw` as the sender sent it, and the incident it opened or joined."""

    id: str
    at: str
    source: str
    route: str
    dedup_key: str
    status: str
    severity: str
    title: str
    details: str = ""
    labels: dict[str, str] = {}
    links: list[dict[str, str]] = []
    raw: Any = None
    incident_id: str | None
    routing: dict[str, Any] | None = None    # what routing did with it, or why nobody was paged


async def healthz(request: web.Request) -> web.Response:
    return respond(Health(status="ok"))


async def readyz(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    checks = {"nats": "ok" if ctx._bus is not None and ctx._bus.connected else "down", "postgres": "down"}
    if ctx._pool is not None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await ctx._pool.fetchval("SELECT 1")
            checks["postgres"] = "ok"
    if any(v != "ok" for v in checks.values()):
        raise ApiError(503, "not ready", details=checks)
    return respond(Ready(status="ready", **checks))


async def get_alert(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    caller.require("incidents:read")
    row = await ctx.pool.fetchrow("SELECT * FROM api_alerts WHERE id = $1", request.match_info["id"])
    if row is None:
        raise ApiError(404, "no such alert (or not projected yet)")
    incident = await ctx.pool.fetchrow(
        "SELECT e.incident_id, i.team FROM api_incident_events e LEFT JOIN api_incidents i ON i.id = e.incident_id "
        "WHERE e.body->>'alert_id' = $1 LIMIT 1", row["id"])
    route = ctx.config.directory.config.routes.get(row["route"])
    team = incident["team"] if incident is not None and incident["team"] else route.team if route else ""
    if caller.team_role(team) is None:   # an alert is its team's, like its incident (access.py)
        raise ApiError(404, "no such alert (or not projected yet)")
    body = json.loads(row["body"])
    body.pop("type", None)
    body["incident_id"] = incident["incident_id"] if incident is not None else None
    body["routing"] = await routing_answer(ctx.pool, row["id"])
    return web.json_response(body)


async def apply_config_file(ctx: Context, path: str) -> None:
    config = read_config(await asyncio.to_thread(Path(path).read_bytes))
    result = await config_store.apply(ctx.pool, ctx.bus, config, by=f"file:{path}", sealer=ctx.sealer)
    for route, token in result.new_tokens.items():
        print(f"route {route}: new intake token {token} (shown once)", flush=True)


ENDPOINTS = [
    Endpoint("GET", "/healthz", healthz, "Alive", responses={200: Health}, tag="health"),
    Endpoint("GET", "/readyz", readyz, "NATS and Postgres reachable", responses={200: Ready}, tag="health"),
    Endpoint("GET", "/api/v1/alerts/{id}", get_alert, "An alert and the incident it opened or joined",
             scope="incidents:read", team="alert's route", responses={200: AlertView}, errors=(404,),
             params=(Param("id", "path", description="the alert id from the intake's answer"),), tag="alerts"),
]


def add_routes(app: web.Application) -> None:
    """Every endpoint goes through the registry, which adds the route and writes the spec."""
    openapi.install(app, [*ENDPOINTS, *incidents.ENDPOINTS, *oncall.ENDPOINTS, *configviews.ENDPOINTS,
                          *objects.ENDPOINTS, *teams.ENDPOINTS, *notices.ENDPOINTS, *answers.ENDPOINTS,
                          *apidocs.ENDPOINTS, *ops.ENDPOINTS,
                          *callbacks_twilio.ENDPOINTS, *callbacks_pushover.ENDPOINTS,
                          *callbacks_telegram.ENDPOINTS, *callbacks_slack.ENDPOINTS, *callbacks_mattermost.ENDPOINTS,
                          *silences.ENDPOINTS, *login.ENDPOINTS, *oidc.ENDPOINTS, *tokens.ENDPOINTS,
                          *audit.ENDPOINTS, *calendar.ENDPOINTS, *stream.ENDPOINTS, *ui.ENDPOINTS,
                          *send_tests.ENDPOINTS])
    ui.load(app)


def create_app(settings: Settings, *, bus: Bus | None = None, pool: asyncpg.Pool | None = None,
               extra_routes: list[object] | None = None) -> web.Application:
    """The API app. Given a bus and pool (under `tocsin up`), it shares them; alone, it opens its own."""
    app = web.Application(middlewares=[http_metrics, error_middleware], client_max_size=settings.max_body_bytes + 1024)
    ctx = Context(settings)
    app[CONTEXT] = ctx
    add_routes(app)
    broadcaster = stream.install(app, heartbeat=settings.stream_heartbeat)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        own_bus, own_pool = bus is None, pool is None
        b = bus or await Bus.connect(settings.nats_url, "tocsin-api")
        p = pool or await asyncpg.create_pool(settings.database_url, min_size=1, max_size=10)
        watcher = ConfigWatcher(b)
        projector_task = None
        collect = None
        try:
            await b.ensure_streams()
            async with p.acquire() as conn:
                await pg.migrate(conn, "api", "tocsin.api")
            await watcher.start()
            ctx.attach(b, p, watcher)
            collect = ops.lag_collector(ctx)
            REGISTRY.collector("consumer-lag", collect)
            if settings.config_file:
                await apply_config_file(ctx, settings.config_file)
            projector = Projector(b, p, settings.database_url)
            ctx.extra["projector"] = projector
            projector_task = asyncio.create_task(projector.run(), name="projector")
            await broadcaster.start(settings.database_url, p)
            yield
        finally:
            await broadcaster.stop()
            if projector_task is not None:
                await cancel_and_wait([projector_task], 10)
            REGISTRY.remove_collector("consumer-lag", collect)
            await watcher.stop()
            if own_pool:
                await p.close()
            if own_bus:
                await b.close()

    app.cleanup_ctx.append(resources)
    app.cleanup_ctx.append(pushover_receipts.receipt_poller)
    return app
