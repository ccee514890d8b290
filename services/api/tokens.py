"""The caller's own credentials, and route intake tokens.

- `GET /api/v1/me/tokens` (never the secret), `POST /api/v1/me/tokens` `{"name", "scopes"}` → the token, shown
  once, with no scope the caller lacks; `DELETE /api/v1/me/tokens/{id}` revokes.
- `POST /api/v1/me/feeds` `{"team"?}` → a secret calendar URL of the caller's shifts, or of a team's shifts;
  `GET /api/v1/me/feeds`, `DELETE /api/v1/me/feeds/{id}`.
- `POST /api/v1/routes/{name}/token` (the route team's owner, or an administrator) → a new intake token; the
  old one stops working.
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec
from aiohttp import web

from tocsin.api import audit, auth, config_store
from tocsin.api.context import Context
from tocsin.api.login import read_struct
from tocsin.events.base import new_id
from tocsin.events.config import hash_token
from tocsin.events.openapi import Endpoint
from tocsin.events.web import ApiError

FEED_PREFIX = "tcf_"


class NewToken(msgspec.Struct, forbid_unknown_fields=True):
    name: str = ""
    scopes: list[str] = msgspec.field(default_factory=lambda: list(auth.DEFAULT_SCOPES))


class NewFeed(msgspec.Struct, forbid_unknown_fields=True):
    team: str = ""


async def list_tokens(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    return web.json_response({"items": await auth.list_tokens(ctx.pool, caller.user)})


async def create_token(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    body = await read_struct(request, NewToken)
    if len(body.name) > auth.MAX_TOKEN_NAME:
        raise ApiError(422, f"a name is at most {auth.MAX_TOKEN_NAME} characters", details={"path": "name"})
    allowed = caller.scopes_allowed()
    for i, scope in enumerate(body.scopes):
        if scope not in auth.SCOPES:
            raise ApiError(422, f"unknown scope {scope!r} (one of {', '.join(auth.SCOPES)})",
                           details={"path": f"scopes[{i}]"})
        if scope not in allowed:
            raise ApiError(403, f"you cannot give a token the {scope!r} scope", code="insufficient_scope",
                           details={"path": f"scopes[{i}]"})
    if not body.scopes:
        raise ApiError(422, "a token needs at least one scope", details={"path": "scopes"})
    token_id, token = await auth.create_token_row(ctx.pool, caller.user, name=body.name,
                                                  scopes=tuple(body.scopes))
    await audit.record(ctx.bus, caller, "token.created", target=token_id,
                       details={"name": body.name, "scopes": sorted(set(body.scopes))})
    return web.json_response({"id": token_id, "name": body.name, "scopes": sorted(set(body.scopes)),
                              "token": token}, status=201, headers={"Cache-Control": "no-store"})


async def revoke_token(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    token_id = request.match_info["id"]
    if not await auth.revoke_token(ctx.pool, caller.user, token_id):
        raise ApiError(404, "no such token")
    await audit.record(ctx.bus, caller, "token.revoked", target=token_id)
    return web.Response(status=204)


async def regenerate_route_token(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    name = request.match_info["route"]

    def may(team: str) -> None:
        caller.require_team(team, "owner", "config:write", what="route")
    caller.require("config:write")
    try:
        revision, token = await config_store.regenerate_route_token(
            ctx.pool, ctx.bus, name, by=caller.user, via=caller.via, team_check=may, sealer=ctx.sealer)
    except config_store.UnknownRoute:
        raise ApiError(404, "no such route") from None
    return web.json_response({"route": name, "token": token, "revision": revision},
                             headers={"Cache-Control": "no-store"})


def feed_url(ctx: Context, token: str) -> str:
    return f"{ctx.settings.public_url}/api/v1/calendar/{token}.ics"


async def create_feed(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    caller.require("incidents:read")
    body = await read_struct(request, NewFeed)
    if body.team and (body.team not in ctx.config.directory.config.teams or caller.team_role(body.team) is None):
        raise ApiError(404, "no such team", details={"path": "team"})
    token = FEED_PREFIX + secrets.token_urlsafe(32)
    feed_id = new_id()
    await ctx.pool.execute("INSERT INTO api_feeds (id, user_name, team, token_sha256) VALUES ($1, $2, $3, $4)",
                           feed_id, caller.user, body.team, hash_token(token))
    await audit.record(ctx.bus, caller, "feed.created", target=feed_id, team=body.team)
    return web.json_response({"id": feed_id, "team": body.team or None, "url": feed_url(ctx, token)},
                             status=201, headers={"Cache-Control": "no-store"})


async def list_feeds(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    rows = await ctx.pool.fetch("SELECT id, team, created_at FROM api_feeds WHERE user_name = $1 "
                                "AND revoked_at IS NULL ORDER BY created_at", caller.user)
    return web.json_response({"items": [{"id": r["id"], "team": r["team"] or None,
                                         "created_at": r["created_at"].isoformat()} for r in rows]})


async def revoke_feed(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    result = await ctx.pool.execute(
        "UPDATE api_feeds SET revoked_at = now() WHERE id = $1 AND user_name = $2 AND revoked_at IS NULL",
        request.match_info["id"], caller.user)
    if not result.endswith(" 1"):
        raise ApiError(404, "no such feed")
    await audit.record(ctx.bus, caller, "feed.revoked", target=request.match_info["id"])
    return web.Response(status=204)


_MINE: dict[str, Any] = {"scope": "", "tag": "tokens and feeds"}
ENDPOINTS = [
    Endpoint("GET", "/api/v1/me/tokens", list_tokens, "The caller's tokens (never the secret)", **_MINE),
    Endpoint("POST", "/api/v1/me/tokens", create_token, "A new personal token, shown once", request=NewToken,
             responses={201: None}, **_MINE),
    Endpoint("DELETE", "/api/v1/me/tokens/{id}", revoke_token, "Revoke one of the caller's tokens",
             responses={204: None}, errors=(404,), **_MINE),
    Endpoint("GET", "/api/v1/me/feeds", list_feeds, "The caller's calendar feeds (without their URLs)", **_MINE),
    Endpoint("POST", "/api/v1/me/feeds", create_feed, "A calendar feed URL of the caller's or a team's shifts",
             request=NewFeed, responses={201: None}, errors=(404,), scope="incidents:read", tag="tokens and feeds"),
    Endpoint("DELETE", "/api/v1/me/feeds/{id}", revoke_feed, "Revoke a calendar feed", responses={204: None},
             errors=(404,), **_MINE),
    Endpoint("POST", "/api/v1/routes/{route}/token", regenerate_route_token,
             "A new intake token for a route (the old one stops working)", scope="config:write",
             team="route", errors=(404,), tag="config objects"),
]
