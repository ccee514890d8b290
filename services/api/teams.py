"""Teams and what belongs to a team: members, rotations, overrides and the escalation policy.

The same rules as `objects.py`: one revision per write, validated whole, 404 / 409 / 422, `If-Match`.
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from tocsin.api.access import Caller
from tocsin.api.objects import (
    IF_MATCH,
    body,
    check_name,
    current,
    etag,
    need,
    reader,
    removed,
    replaced,
    write,
    writer,
)
from tocsin.events.config import Config, Escalation, OverrideSpec, RotationSpec, Team
from tocsin.events.openapi import Endpoint, Param, respond
from tocsin.events.web import ApiError


class Teams(msgspec.Struct, kw_only=True):
    revision: int
    teams: dict[str, Team]


class Membership(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    admin: bool = False


class Overrides(msgspec.Struct, kw_only=True):
    revision: int
    overrides: list[OverrideSpec]     # in order; an override's index is its place here


def _team(config: Config, name: str) -> Team:
    return need(config.teams, name, "team")  # type: ignore[no-any-return]


def _owner(caller: Caller, config: Config, name: str) -> None:
    """Team objects are changed by the team's owners (and administrators); a new team by an administrator.
    Teams are visible to everyone (like who is on call), so a caller without the role gets 403, not 404."""
    if name not in config.teams:
        caller.require_admin("config:write")
    elif not caller.can(name, "owner"):
        raise ApiError(403, f"this needs the owner role in team {name!r}")


def _with_team(config: Config, name: str, **changes: Any) -> Config:
    return replaced(config, "teams", name, msgspec.structs.replace(_team(config, name), **changes))


async def list_teams(request: web.Request) -> web.Response:
    ctx, _ = await reader(request)
    revision, config = await current(ctx)
    return respond(Teams(revision=revision, teams=config.teams), headers=etag(revision))


async def get_team(request: web.Request) -> web.Response:
    ctx, _ = await reader(request)
    revision, config = await current(ctx)
    return respond(_team(config, request.match_info["team"]), headers=etag(revision))


async def put_team(request: web.Request) -> web.Response:
    ctx, caller = await writer(request)
    name = request.match_info["team"]
    check_name(name, "team")
    team: Team = await body(request, Team)
    created = False

    def edit(config: Config) -> Config:
        nonlocal created
        created = name not in config.teams
        _owner(caller, config, name)
        return replaced(config, "teams", name, team)
    result = await write(ctx, request, caller, edit)
    return respond(team, status=201 if created else 200, headers=etag(result.revision))


async def delete_team(request: web.Request) -> web.Response:
    ctx, caller = await writer(request)
    caller.require_admin("config:write")
    name = request.match_info["team"]
    result = await write(ctx, request, caller, lambda c: removed(c, "teams", name, "team"), deleting=True)
    return web.Response(status=204, headers=etag(result.revision))


async def put_member(request: web.Request) -> web.Response:
    """Add a user to a team (or change whether they are one of its admins)."""
    ctx, caller = await writer(request)
    tname, uname = request.match_info["team"], request.match_info["user"]
    member: Membership = await body(request, Membership)

    def edit(config: Config) -> Config:
        _team(config, tname)
        _owner(caller, config, tname)
        team = _team(config, tname)
        need(config.users, uname, "user")
        members = team.members if uname in team.members else [*team.members, uname]
        admins = [a for a in team.admins if a != uname] + ([uname] if member.admin else [])
        return _with_team(config, tname, members=members, admins=admins)
    result = await write(ctx, request, caller, edit)
    return respond(member, headers=etag(result.revision))


async def delete_member(request: web.Request) -> web.Response:
    """Take a user out of a team; refused (409) while the team's rotations or overrides name them."""
    ctx, caller = await writer(request)
    tname, uname = request.match_info["team"], request.match_info["user"]

    def edit(config: Config) -> Config:
        _team(config, tname)
        _owner(caller, config, tname)
        team = _team(config, tname)
        if uname not in team.members and uname not in team.admins:
            raise ApiError(404, f"{uname!r} is not a member of {tname!r}")
        uses = [f"teams.{tname}.rotations.{r}" for r, spec in team.rotations.items() if uname in spec.members]
        uses += [f"teams.{tname}.overrides[{i}]" for i, o in enumerate(team.overrides) if o.user == uname]
        if uses:
            raise ApiError(409, f"{uname} is still on call in this team; change these first",
                           details=[{"path": p, "message": f"names {uname}"} for p in uses])
        return _with_team(config, tname, members=[m for m in team.members if m != uname],
                          admins=[a for a in team.admins if a != uname])
    result = await write(ctx, request, caller, edit, deleting=True)
    return web.Response(status=204, headers=etag(result.revision))


async def put_rotation(request: web.Request) -> web.Response:
    ctx, caller = await writer(request)
    tname, rname = request.match_info["team"], request.match_info["rotation"]
    check_name(rname, "rotation")
    spec: RotationSpec = await body(request, RotationSpec)
    created = False

    def edit(config: Config) -> Config:
        nonlocal created
        _team(config, tname)
        _owner(caller, config, tname)
        team = _team(config, tname)
        created = rname not in team.rotations
        return _with_team(config, tname, rotations={**team.rotations, rname: spec})
    result = await write(ctx, request, caller, edit)
    return respond(spec, status=201 if created else 200, headers=etag(result.revision))


async def delete_rotation(request: web.Request) -> web.Response:
    ctx, caller = await writer(request)
    tname, rname = request.match_info["team"], request.match_info["rotation"]

    def edit(config: Config) -> Config:
        _team(config, tname)
        _owner(caller, config, tname)
        team = _team(config, tname)
        need(team.rotations, rname, "rotation")
        return _with_team(config, tname, rotations={k: v for k, v in team.rotations.items() if k != rname})
    result = await write(ctx, request, caller, edit, deleting=True)
    return web.Response(status=204, headers=etag(result.revision))


async def list_overrides(request: web.Request) -> web.Response:
    ctx, _ = await reader(request)
    revision, config = await current(ctx)
    return respond(Overrides(revision=revision, overrides=_team(config, request.match_info["team"]).overrides),
                   headers=etag(revision))


async def add_override(request: web.Request) -> web.Response:
    ctx, caller = await writer(request)
    tname = request.match_info["team"]
    override: OverrideSpec = await body(request, OverrideSpec)

    def edit(config: Config) -> Config:
        _team(config, tname)
        _owner(caller, config, tname)
        return _with_team(config, tname, overrides=[*_team(config, tname).overrides, override])
    result = await write(ctx, request, caller, edit)
    return respond(override, status=201, headers=etag(result.revision))


async def delete_override(request: web.Request) -> web.Response:
    """By index in the list (as GET shows it); send If-Match so a list that changed meanwhile is refused."""
    ctx, caller = await writer(request)
    tname, text = request.match_info["team"], request.match_info["index"]
    if not text.isdigit():
        raise ApiError(404, "an override is named by its index in the list, from 0")
    index = int(text)

    def edit(config: Config) -> Config:
        _team(config, tname)
        _owner(caller, config, tname)
        overrides = list(_team(config, tname).overrides)
        if index >= len(overrides):
            raise ApiError(404, f"team {tname!r} has {len(overrides)} overrides; no index {index}")
        del overrides[index]
        return _with_team(config, tname, overrides=overrides)
    result = await write(ctx, request, caller, edit, deleting=True)
    return web.Response(status=204, headers=etag(result.revision))


async def get_escalation(request: web.Request) -> web.Response:
    ctx, _ = await reader(request)
    revision, config = await current(ctx)
    return respond(_team(config, request.match_info["team"]).escalation, headers=etag(revision))


async def put_escalation(request: web.Request) -> web.Response:
    ctx, caller = await writer(request)
    tname = request.match_info["team"]
    policy: Escalation = await body(request, Escalation)
    def edit(config: Config) -> Config:
        _team(config, tname)
        _owner(caller, config, tname)
        return _with_team(config, tname, escalation=policy)
    result = await write(ctx, request, caller, edit)
    return respond(policy, headers=etag(result.revision))


_T, _U = Param("team", "path"), Param("user", "path")
_R, _I = Param("rotation", "path"), Param("index", "path", schema={"type": "integer", "minimum": 0})
_READ: dict[str, Any] = {"scope": "config:read", "tag": "teams", "team": "path:team"}
_WRITE: dict[str, Any] = {"scope": "config:write", "tag": "teams", "team": "path:team"}
_ERRORS = (404, 409, 422)

ENDPOINTS = [
    Endpoint("GET", "/api/v1/teams", list_teams, "Every team", responses={200: Teams}, scope="config:read",
             tag="teams", team="each team (filtered to the caller's)"),
    Endpoint("GET", "/api/v1/teams/{team}", get_team, "A team", responses={200: Team}, errors=(404,),
             params=(_T,), **_READ),
    Endpoint("PUT", "/api/v1/teams/{team}", put_team, "Create or replace a team", request=Team,
             responses={200: Team, 201: Team}, errors=_ERRORS, params=(_T, IF_MATCH), **_WRITE),
    Endpoint("DELETE", "/api/v1/teams/{team}", delete_team, "Delete a team (409 while routes or hosts name it)",
             responses={204: None}, errors=(404, 409), params=(_T, IF_MATCH), **_WRITE),
    Endpoint("PUT", "/api/v1/teams/{team}/members/{user}", put_member, "Add a member (admin or not)",
             request=Membership, responses={200: Membership}, errors=_ERRORS, params=(_T, _U, IF_MATCH), **_WRITE),
    Endpoint("DELETE", "/api/v1/teams/{team}/members/{user}", delete_member, "Remove a member",
             responses={204: None}, errors=(404, 409), params=(_T, _U, IF_MATCH), **_WRITE),
    Endpoint("PUT", "/api/v1/teams/{team}/rotations/{rotation}", put_rotation, "Create or replace a rotation",
             request=RotationSpec, responses={200: RotationSpec, 201: RotationSpec}, errors=_ERRORS,
             params=(_T, _R, IF_MATCH), **_WRITE),
    Endpoint("DELETE", "/api/v1/teams/{team}/rotations/{rotation}", delete_rotation,
             "Delete a rotation (409 while the escalation names it)", responses={204: None}, errors=(404, 409),
             params=(_T, _R, IF_MATCH), **_WRITE),
    Endpoint("GET", "/api/v1/teams/{team}/overrides", list_overrides, "A team's overrides, in order",
             responses={200: Overrides}, errors=(404,), params=(_T,), **_READ),
    Endpoint("POST", "/api/v1/teams/{team}/overrides", add_override, "Add an override", request=OverrideSpec,
             responses={201: OverrideSpec}, errors=_ERRORS, params=(_T, IF_MATCH), **_WRITE),
    Endpoint("DELETE", "/api/v1/teams/{team}/overrides/{index}", delete_override, "Remove an override by index",
             responses={204: None}, errors=(404, 409), params=(_T, _I, IF_MATCH), **_WRITE),
    Endpoint("GET", "/api/v1/teams/{team}/escalation", get_escalation, "A team's escalation policy",
             responses={200: Escalation}, errors=(404,), params=(_T,), **_READ),
    Endpoint("PUT", "/api/v1/teams/{team}/escalation", put_escalation, "Replace the escalation policy",
             request=Escalation, responses={200: Escalation}, errors=_ERRORS, params=(_T, IF_MATCH), **_WRITE),
]
