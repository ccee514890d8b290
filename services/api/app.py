"""The API: JSON endpoints, health, and the projector that keeps the read models."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from aiohttp import web

from tocsin.api import (
    answers,
    audit,
    calendar,
    config_store,
    configviews,
    incidents,
    login,
    oidc,
    oncall,
    stream,
    tokens,
    ui,
)
from tocsin.api.context import CONTEXT, Context
from tocsin.api.projector import Projector
from tocsin.api.settings import Settings
from tocsin.events import pg
from tocsin.events.bus import Bus
from tocsin.events.config import read_config
from tocsin.events.configbus import ConfigWatcher
from tocsin.events.tasks import cancel_and_wait
from tocsin.events.web import ApiError, error_middleware

log = logging.getLogger("tocsin.api")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


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
    return web.json_response({"status": "ready", **checks})


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
    return web.json_response(body)


async def apply_config_file(ctx: Context, path: str) -> None:
    config = read_config(await asyncio.to_thread(Path(path).read_bytes))
    result = await config_store.apply(ctx.pool, ctx.bus, config, by=f"file:{path}")
    for route, token in result.new_tokens.items():
        print(f"route {route}: new intake token {token} (shown once)", flush=True)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/api/v1/alerts/{id}", get_alert)
    incidents.add_routes(app)
    oncall.add_routes(app)
    configviews.add_routes(app)
    answers.add_routes(app)
    login.add_routes(app)
    oidc.add_routes(app)
    tokens.add_routes(app)
    audit.add_routes(app)
    calendar.add_routes(app)
    ui.add_routes(app)


def create_app(settings: Settings, *, bus: Bus | None = None, pool: asyncpg.Pool | None = None,
               extra_routes: list[object] | None = None) -> web.Application:
    """The API app. Given a bus and pool (under `tocsin up`), it shares them; alone, it opens its own."""
    app = web.Application(middlewares=[error_middleware], client_max_size=settings.max_body_bytes + 1024)
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
        try:
            await b.ensure_streams()
            async with p.acquire() as conn:
                await pg.migrate(conn, "api", "tocsin.api")
            await watcher.start()
            ctx.attach(b, p, watcher)
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
            await watcher.stop()
            if own_pool:
                await p.close()
            if own_bus:
                await b.close()

    app.cleanup_ctx.append(resources)
    return app
