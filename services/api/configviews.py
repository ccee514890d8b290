"""`PUT /api/v1/config` and `GET /api/v1/config`: config as code over HTTP."""

from __future__ import annotations

import msgspec
import yaml
from aiohttp import web

from tocsin.api import config_store
from tocsin.api.context import Context
from tocsin.events.config import MAX_CONFIG_BYTES, ConfigError, read_config, redacted, warnings
from tocsin.events.web import ApiError, read_json_body


async def put_config(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    # The whole config spans every team (and users, providers): administrators only. Team owners change
    # their own team's objects through the per-object endpoints.
    caller.require_admin("config:write")
    if request.content_type not in ("application/yaml", "application/x-yaml", "text/yaml", "application/json",
                                     "text/plain", ""):
        raise ApiError(415, "send the config as application/yaml or application/json")
    raw = await read_json_body(request, MAX_CONFIG_BYTES, any_type=True)
    try:
        # Substitution of ${NAME} happens on the machine that holds the file, never from the server's env.
        config = read_config(raw, env={})
        result = await config_store.apply(ctx.pool, ctx.bus, config, by=caller.user, via=caller.via)
    except ConfigError as exc:
        raise ApiError(422, "the config has errors; nothing was applied",
                       details=[{"path": p, "message": m} for p, m in exc.errors]) from None
    return web.json_response({
        "revision": result.revision, "changed": result.changed, "new_route_tokens": result.new_tokens,
        "warnings": [{"path": p, "message": m} for p, m in warnings(config.config)]})


async def get_config(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    (await ctx.caller(request)).require_admin("config:read")
    async with ctx.pool.acquire() as conn:
        revision, config = await config_store.current(conn)
    doc = redacted(config)
    if "yaml" in request.headers.get("Accept", ""):
        return web.Response(text=yaml.safe_dump(doc, sort_keys=False), content_type="application/yaml")
    return web.json_response({"revision": revision, "config": doc}, dumps=lambda v: msgspec.json.encode(v).decode())


def add_routes(app: web.Application) -> None:
    app.router.add_put("/api/v1/config", put_config)
    app.router.add_get("/api/v1/config", get_config)
