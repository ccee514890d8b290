"""Config objects one at a time: users, their contact methods, shared channels and routes.

Each write is a config revision like a whole file (`config_store.change`): validated whole, so an
invalid change changes nothing (422 with every error's path); a delete that would leave a reference
dangling (a user still in a rotation) is 409 with the references; `If-Match: "<revision>"` makes a write
conditional (409 when the config moved on). Answers carry the revision as `ETag`. Secrets are write-only:
answers show `********`, and a PUT that sends the mask back keeps the stored value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec
from aiohttp import web

from tocsin.api import config_store
from tocsin.api.access import Caller, can_see_channel
from tocsin.api.config_store import RevisionConflict
from tocsin.api.context import Context
from tocsin.events.config import NAME, Config, ConfigError, Route, User, is_secret
from tocsin.events.openapi import Endpoint, Param, decode_body, respond
from tocsin.events.sealing import MASK
from tocsin.events.web import ApiError, read_json_body

MAX_OBJECT = 256 * 1024
ChannelSpec = dict[str, Any]     # {"type": kind, ...the fields of that kind}; see docs/configuration.md


class Users(msgspec.Struct, kw_only=True):
    revision: int
    users: dict[str, User]


class Channels(msgspec.Struct, kw_only=True):
    revision: int
    channels: dict[str, ChannelSpec]


class Routes(msgspec.Struct, kw_only=True):
    revision: int
    routes: dict[str, Route]


# ------------------------------------------------------------------ shared by every object endpoint


def masked(value: Any) -> Any:
    """A plain document with every secret shown as the mask."""
    if isinstance(value, dict):
        return {k: MASK if is_secret(k, value) and v not in (None, "") else masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


def route_view(route: Route) -> dict[str, Any]:
    doc = masked(msgspec.to_builtins(route))
    doc.pop("token", None)
    doc.pop("token_sha256", None)
    return doc  # type: ignore[no-any-return]


def if_match(request: web.Request) -> int | None:
    value = request.headers.get("If-Match", "").strip()
    if not value or value == "*":
        return None
    text = value.removeprefix("W/").strip('"')
    if not text.isdigit():
        raise ApiError(422, 'If-Match is a revision, as ETag gives it: "12"', details={"path": "If-Match"})
    return int(text)


def etag(revision: int) -> dict[str, str]:
    return {"ETag": f'"{revision}"'}


async def reader(request: web.Request) -> tuple[Context, Caller]:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    caller.require("config:read")
    return ctx, caller


async def writer(request: web.Request) -> tuple[Context, Caller]:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    caller.require("config:write")
    return ctx, caller


async def current(ctx: Context) -> tuple[int, Config]:
    async with ctx.pool.acquire() as conn:
        return await config_store.current(conn, ctx.sealer)


async def body(request: web.Request, kind: Any) -> Any:
    return decode_body(await read_json_body(request, MAX_OBJECT), kind)


async def write(ctx: Context, request: web.Request, caller: Caller, edit: Callable[[Config], Config], *,
                deleting: bool = False) -> config_store.ApplyResult:
    """One change as one revision. Errors of a delete are references to what was deleted: 409."""
    try:
        return await config_store.change(ctx.pool, ctx.bus, edit, by=caller.user, via=caller.via,
                                         expected=if_match(request), sealer=ctx.sealer)
    except RevisionConflict as exc:
        raise ApiError(409, str(exc)) from None
    except ConfigError as exc:
        details = [{"path": p, "message": m} for p, m in exc.errors]
        if deleting:
            raise ApiError(409, "still in use; remove these references first", details=details) from None
        raise ApiError(422, "the change has errors; nothing was changed", details=details) from None


def need(mapping: dict[str, Any], name: str, what: str) -> Any:
    if name not in mapping:
        raise ApiError(404, f"no {what} {name!r}")
    return mapping[name]


def replaced(config: Config, collection: str, name: str, value: Any) -> Config:
    return msgspec.structs.replace(config, **{collection: {**getattr(config, collection), name: value}})


def removed(config: Config, collection: str, name: str, what: str) -> Config:
    entries = dict(getattr(config, collection))
    need(entries, name, what)
    del entries[name]
    return msgspec.structs.replace(config, **{collection: entries})


def check_name(name: str, what: str) -> None:
    if not NAME.match(name):
        raise ApiError(422, f"a {what} name is letters, digits, '.', '_' or '-' (at most 63)", details={"path": what})


# ------------------------------------------------------------------ users and their contacts


async def list_users(request: web.Request) -> web.Response:
    ctx, _ = await reader(request)
    revision, config = await current(ctx)
    return respond(masked({"revision": revision, "users": msgspec.to_builtins(config.users)}),
                   headers=etag(revision))


async def get_user(request: web.Request) -> web.Response:
    ctx, _ = await reader(request)
    revision, config = await current(ctx)
    user = need(config.users, request.match_info["user"], "user")
    return respond(masked(msgspec.to_builtins(user)), headers=etag(revision))


async def put_user(request: web.Request) -> web.Response:
    ctx, caller = await writer(request)
    caller.require_admin("config:write")   # a user's role and teams are an administrator's to set
    name = request.match_info["user"]
    check_name(name, "user")
    user: User = await body(request, User)
    created = False

    def edit(config: Config) -> Config:
        nonlocal created
        created = name not in config.users
        return replaced(config, "users", name, user)
    result = await write(ctx, request, caller, edit)
    _, config = await current(ctx)
    return respond(masked(msgspec.to_builtins(config.users[name])), status=201 if created else 200,
                   headers=etag(result.revision))


async def delete_user(request: web.Request) -> web.Response:
    ctx, caller = await writer(request)
    caller.require_admin("config:write")
    name = request.match_info["user"]
    result = await write(ctx, request, caller, lambda c: removed(c, "users", name, "user"), deleting=True)
    return web.Response(status=204, headers=etag(result.revision))


async def put_contact(request: web.Request) -> web.Response:
    ctx, caller = await writer(request)
    uname, cname = request.match_info["user"], request.match_info["contact"]
    if uname != caller.user:   # people keep their own contacts; an administrator anyone's
        caller.require_admin("config:write")
    check_name(cname, "contact")
    contact: ChannelSpec = await body(request, ChannelSpec)
    created = False

    def edit(config: Config) -> Config:
        nonlocal created
        user = need(config.users, uname, "user")
        created = cname not in user.contacts
        return replaced(config, "users", uname,
                        msgspec.structs.replace(user, contacts={**user.contacts, cname: contact}))
    result = await write(ctx, request, caller, edit)
    _, config = await current(ctx)
    return respond(masked(config.users[uname].contacts[cname]), status=201 if created else 200,
                   headers=etag(result.revision))


async def delete_contact(request: web.Request) -> web.Response:
    ctx, caller = await writer(request)
    uname, cname = request.match_info["user"], request.match_info["contact"]
    if uname != caller.user:   # people keep their own contacts; an administrator anyone's
        caller.require_admin("config:write")

    def edit(config: Config) -> Config:
        user = need(config.users, uname, "user")
        need(user.contacts, cname, "contact")
        contacts = {k: v for k, v in user.contacts.items() if k != cname}
        return replaced(config, "users", uname, msgspec.structs.replace(user, contacts=contacts))
    result = await write(ctx, request, caller, edit, deleting=True)
    return web.Response(status=204, headers=etag(result.revision))


# ------------------------------------------------------------------ shared channels


async def list_channels(request: web.Request) -> web.Response:
    ctx, caller = await reader(request)
    revision, config = await current(ctx)
    visible = {n: c for n, c in config.channels.items() if can_see_channel(caller, config, n)}
    return respond({"revision": revision, "channels": masked(visible)}, headers=etag(revision))


async def get_channel(request: web.Request) -> web.Response:
    ctx, caller = await reader(request)
    revision, config = await current(ctx)
    name = request.match_info["channel"]
    if not can_see_channel(caller, config, name):
        raise ApiError(404, f"no channel {name!r}")
    return respond(masked(need(config.channels, name, "channel")), headers=etag(revision))


async def put_channel(request: web.Request) -> web.Response:
    ctx, caller = await writer(request)
    caller.require_admin("config:write")   # a shared channel can serve several teams
    name = request.match_info["channel"]
    check_name(name, "channel")
    channel: ChannelSpec = await body(request, ChannelSpec)
    created = False

    def edit(config: Config) -> Config:
        nonlocal created
        created = name not in config.channels
        return replaced(config, "channels", name, channel)
    result = await write(ctx, request, caller, edit)
    _, config = await current(ctx)
    return respond(masked(config.channels[name]), status=201 if created else 200, headers=etag(result.revision))


async def delete_channel(request: web.Request) -> web.Response:
    ctx, caller = await writer(request)
    caller.require_admin("config:write")
    name = request.match_info["channel"]
    result = await write(ctx, request, caller, lambda c: removed(c, "channels", name, "channel"), deleting=True)
    return web.Response(status=204, headers=etag(result.revision))


# ------------------------------------------------------------------ routes


async def list_routes(request: web.Request) -> web.Response:
    ctx, caller = await reader(request)
    revision, config = await current(ctx)
    return respond({"revision": revision, "routes": {n: route_view(r) for n, r in config.routes.items()
                                                     if caller.team_role(r.team) is not None}},
                   headers=etag(revision))


async def get_route(request: web.Request) -> web.Response:
    ctx, caller = await reader(request)
    revision, config = await current(ctx)
    route = need(config.routes, request.match_info["route"], "route")
    if caller.team_role(route.team) is None:
        raise ApiError(404, f"no route {request.match_info['route']!r}")
    return respond(route_view(route), headers=etag(revision))


async def put_route(request: web.Request) -> web.Response:
    """Create or replace a route. Without a token, a new route gets one, shown once in this answer as
    `token`; a replaced route keeps its token."""
    ctx, caller = await writer(request)
    name = request.match_info["route"]
    check_name(name, "route")
    route: Route = await body(request, Route)
    created = False

    def edit(config: Config) -> Config:
        nonlocal created
        created = name not in config.routes
        if not created:   # the owner of the team it is in now, and of the team it goes to
            caller.require_team(config.routes[name].team, "owner", "config:write", what="route")
        if not caller.can(route.team, "owner"):
            raise ApiError(403, f"this needs the owner role in team {route.team!r}", details={"path": "team"})
        return replaced(config, "routes", name, route)
    result = await write(ctx, request, caller, edit)
    _, config = await current(ctx)
    view = route_view(config.routes[name])
    if name in result.new_tokens:
        view["token"] = result.new_tokens[name]
    return respond(view, status=201 if created else 200, headers=etag(result.revision))


async def delete_route(request: web.Request) -> web.Response:
    ctx, caller = await writer(request)
    name = request.match_info["route"]

    def edit(config: Config) -> Config:
        if name in config.routes:
            caller.require_team(config.routes[name].team, "owner", "config:write", what="route")
        return removed(config, "routes", name, "route")
    result = await write(ctx, request, caller, edit, deleting=True)
    return web.Response(status=204, headers=etag(result.revision))


# ------------------------------------------------------------------ the table

IF_MATCH = Param("If-Match", "header", description='the revision read (ETag), e.g. "12": 409 if it moved on')
_U, _C = Param("user", "path"), Param("contact", "path")
_CH, _R = Param("channel", "path"), Param("route", "path")
_READ: dict[str, Any] = {"scope": "config:read", "tag": "config objects"}
_WRITE: dict[str, Any] = {"scope": "config:write", "tag": "config objects"}


def _put(path: str, handler: Any, summary: str, kind: Any, params: tuple[Param, ...], team: str | None = None
         ) -> Endpoint:
    return Endpoint("PUT", path, handler, summary, request=kind, responses={200: kind, 201: kind}, team=team,
                    errors=(404, 409, 422), params=(*params, IF_MATCH), **_WRITE)


def _delete(path: str, handler: Any, summary: str, params: tuple[Param, ...], team: str | None = None
            ) -> Endpoint:
    return Endpoint("DELETE", path, handler, summary, responses={204: None}, errors=(404, 409), team=team,
                    params=(*params, IF_MATCH), **_WRITE)


ENDPOINTS = [
    Endpoint("GET", "/api/v1/users", list_users, "Every user", responses={200: Users}, **_READ),
    Endpoint("GET", "/api/v1/users/{user}", get_user, "A user", responses={200: User}, errors=(404,),
             params=(_U,), **_READ),
    _put("/api/v1/users/{user}", put_user, "Create or replace a user", User, (_U,)),
    _delete("/api/v1/users/{user}", delete_user, "Delete a user (409 while a team or rotation names them)", (_U,)),
    _put("/api/v1/users/{user}/contacts/{contact}", put_contact, "Add or replace a contact method", ChannelSpec,
         (_U, _C)),
    _delete("/api/v1/users/{user}/contacts/{contact}", delete_contact, "Remove a contact method", (_U, _C)),
    Endpoint("GET", "/api/v1/channels", list_channels, "Every shared channel", responses={200: Channels},
             **_READ),
    Endpoint("GET", "/api/v1/channels/{channel}", get_channel, "A shared channel, secrets masked",
             responses={200: ChannelSpec}, errors=(404,), params=(_CH,), **_READ),
    _put("/api/v1/channels/{channel}", put_channel, "Create or replace a shared channel", ChannelSpec, (_CH,)),
    _delete("/api/v1/channels/{channel}", delete_channel, "Delete a shared channel", (_CH,)),
    Endpoint("GET", "/api/v1/routes", list_routes, "Every route (tokens never shown)", responses={200: Routes},
             team="each route's team", **_READ),
    Endpoint("GET", "/api/v1/routes/{route}", get_route, "A route", responses={200: Route}, errors=(404,),
             team="route", params=(_R,), **_READ),
    _put("/api/v1/routes/{route}", put_route, "Create or replace a route (a new one's token is in the answer)",
         Route, (_R,), team="body:team and route"),
    _delete("/api/v1/routes/{route}", delete_route, "Delete a route", (_R,), team="route"),
]
