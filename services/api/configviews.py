"""`PUT /api/v1/config` and `GET /api/v1/config`: config as code over HTTP."""

from __future__ import annotations

from typing import Any

import msgspec
import yaml
from aiohttp import web

from tocsin.api import config_store
from tocsin.api.context import Context
from tocsin.events.config import MAX_CONFIG_BYTES, Config, ConfigError, read_config, redacted, warnings
from tocsin.events.openapi import Endpoint, respond
from tocsin.events.web import ApiError, read_json_body


class PathMessage(msgspec.Struct, kw_only=True):
    path: str
    message: str


class Applied(msgspec.Struct, kw_only=True):
    revision: int
    changed: bool
    new_route_tokens: dict[str, str]     # route -> its generated intake token, shown this once
    warnings: list[PathMessage]


class AppliedConfig(msgspec.Struct, kw_only=True):
    revision: int
    config: dict[str, Any]               # the config with secrets masked and route tokens left out


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
        result = await config_store.apply(ctx.pool, ctx.bus, config, by=caller.user, via=caller.via, sealer=ctx.sealer)
    except ConfigError as exc:
        raise ApiError(422, "the config has errors; nothing was applied",
                       details=[{"path": p, "message": m} for p, m in exc.errors]) from None
    return respond(Applied(revision=result.revision, changed=result.changed, new_route_tokens=result.new_tokens,
                           warnings=[PathMessage(path=p, message=m) for p, m in warnings(config.config)]))


async def get_config(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    (await ctx.caller(request)).require_admin("config:read")
    async with ctx.pool.acquire() as conn:
        revision, config = await config_store.current(conn, ctx.sealer)
    doc = redacted(config)
    if "yaml" in request.headers.get("Accept", ""):
        return web.Response(text=yaml.safe_dump(doc, sort_keys=False), content_type="application/yaml")
    return respond(AppliedConfig(revision=revision, config=doc))


ENDPOINTS = [
    Endpoint("PUT", "/api/v1/config", put_config, "Apply a tocsin.yaml (YAML or JSON), all or nothing",
             scope="config:write", request=Config, responses={200: Applied}, tag="config"),
    Endpoint("GET", "/api/v1/config", get_config, "The applied config, secrets masked (YAML with Accept)",
             scope="config:read", responses={200: AppliedConfig}, tag="config"),
]
