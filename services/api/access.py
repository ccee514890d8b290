"""Who is calling and what they may do: every endpoint's access checks, in one place.

A caller is a person (signed in with a session cookie, or presenting a personal API token) with:
- a global role, `admin` or `user` (config `users.X.role`, or `api_users` for people the config does not name);
- a role per team, derived from the config: `teams.T.admins` are owners, `members` responders, `viewers`
  viewers (the highest wins when a name is in several lists);
- scopes: a token's own; a session has them all.

Rules (docs/api.md, "Roles"): a viewer reads the team's incidents, routes and channels; a responder also
acknowledges, resolves, escalates and adds notes; an owner also changes the team's config objects; an
administrator does everything, everywhere. Scopes narrow this further, never widen it: the `admin` scope
stands for every scope, but a token is still only as strong as its person.

Objects of a team the caller has no role in are invisible: lists leave them out and item endpoints answer
404, exactly as for an id that does not exist, so ids cannot be probed. A caller who can see an object but
may not do what they asked gets 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web

from tocsin.api import sessions, users
from tocsin.events.config import Config, hash_token
from tocsin.events.web import ApiError

SCOPES = ("alerts:write", "incidents:read", "incidents:write", "config:read", "config:write", "admin")
ALL_SCOPES = frozenset(SCOPES)
TEAM_ROLES = ("viewer", "responder", "owner")
_RANK = {role: i + 1 for i, role in enumerate(TEAM_ROLES)}
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_BEARER = {"WWW-Authenticate": 'Bearer realm="tocsin"'}


@dataclass(frozen=True)
class Caller:
    user: str
    role: str                                   # admin | user
    teams: Mapping[str, str] = field(default_factory=dict)   # team -> owner | responder | viewer
    scopes: frozenset[str] = ALL_SCOPES
    via: str = "token"                          # token | session
    csrf_token: str = ""                        # a session's; "" for tokens
    token_id: str = ""
    session_id: str = field(default="", repr=False)
    name: str = ""
    email: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def require(self, scope: str) -> None:
        """The caller's credentials carry `scope` (403 otherwise)."""
        if not self.has_scope(scope):
            raise ApiError(403, f"this token lacks the {scope!r} scope", code="insufficient_scope")

    def require_admin(self, scope: str = "admin") -> None:
        """Administrators only (and, for a token, the scope)."""
        self.require(scope)
        if not self.is_admin:
            raise ApiError(403, "only an administrator may do this")

    def team_role(self, team: str) -> str | None:
        return "owner" if self.is_admin else self.teams.get(team)

    def can(self, team: str, role: str) -> bool:
        have = self.team_role(team)
        return have is not None and _RANK[have] >= _RANK[role]

    def visible_teams(self) -> set[str] | None:
        """The teams whose objects this caller may see; None means all of them (an administrator)."""
        return None if self.is_admin else set(self.teams)

    def require_team(self, team: str, role: str, scope: str, *, what: str = "object") -> None:
        """Scope first, then: no role in `team` -> 404 (as if it did not exist); a role below `role` -> 403."""
        self.require(scope)
        if self.team_role(team) is None:
            raise ApiError(404, f"no such {what}")
        if not self.can(team, role):
            raise ApiError(403, f"this needs the {role} role in team {team!r}")

    def scopes_allowed(self) -> frozenset[str]:
        """The scopes this caller may put on a new token: no more than their own, and `admin` only for an
        administrator (for anyone else it would mean nothing beyond their role, and say otherwise)."""
        own = ALL_SCOPES if "admin" in self.scopes else self.scopes
        return own if self.is_admin else own - {"admin"}

    def me(self) -> dict[str, Any]:
        return {"username": self.user, "name": self.name, "email": self.email, "role": self.role,
                "teams": dict(sorted(self.teams.items())), "csrf_token": self.csrf_token or None,
                "via": self.via, "scopes": sorted(self.scopes)}


def route_team(config: Config, route: str) -> str | None:
    """The team a route belongs to (None for an unknown route)."""
    spec = config.routes.get(route)
    return spec.team if spec is not None else None


def channel_teams(config: Config, channel: str) -> set[str]:
    """The teams that use a shared channel: in `teams.T.channels`, a `channel:` escalation target, or the
    `channels` of one of their routes. A channel no team uses is an administrator's only."""
    teams = {t for t, team in config.teams.items()
             if channel in team.channels
             or any(f"channel:{channel}" in step.notify for step in team.escalation.steps)}
    teams |= {r.team for r in config.routes.values() if channel in r.channels}
    return teams


def can_see_channel(caller: Caller, config: Config, channel: str) -> bool:
    return caller.is_admin or any(caller.team_role(t) is not None for t in channel_teams(config, channel))


def team_roles(config: Config, user: str) -> dict[str, str]:
    roles: dict[str, str] = {}
    for tname, team in config.teams.items():
        for role, names in (("viewer", team.viewers), ("responder", team.members), ("owner", team.admins)):
            if user in names and _RANK[role] > _RANK.get(roles.get(tname, ""), 0):
                roles[tname] = role
    return roles


async def caller_for(pool: asyncpg.Pool, config: Config, user: str, **fields: Any) -> Caller | None:
    """The caller `user` is now, or None when they no longer exist (removed from the config)."""
    person = await users.find(pool, config, user)
    if person is None:
        return None
    return Caller(user=user, role=person.role, teams=team_roles(config, user), name=person.name,
                  email=person.email, **fields)


async def authenticate(request: web.Request, pool: asyncpg.Pool, config: Config, key: bytes) -> Caller:
    """A bearer token if the request has an Authorization header, else the session cookie. A write
    authenticated by the cookie must carry the session's CSRF token in X-CSRF-Token."""
    header = request.headers.get("Authorization")
    if header is not None:
        return await _token_caller(header, pool, config)
    session_id = request.cookies.get(sessions.COOKIE, "")
    session = await sessions.lookup(pool, key, session_id) if session_id else None
    if session is None:
        raise ApiError(401, "sign in, or send a bearer token", headers=_BEARER)
    if request.method not in SAFE_METHODS and not sessions.csrf_ok(
            key, session_id, request.headers.get(sessions.CSRF_HEADER, "")):
        raise ApiError(403, f"a write with a session cookie needs the {sessions.CSRF_HEADER} header "
                            "(the csrf_token from /api/v1/me)", code="csrf")
    caller = await caller_for(pool, config, session.user, via="session", csrf_token=session.csrf_token,
                              session_id=session_id)
    if caller is None:
        raise ApiError(401, "this user no longer exists", headers=_BEARER)
    return caller


async def _token_caller(header: str, pool: asyncpg.Pool, config: Config) -> Caller:
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "missing bearer token", headers=_BEARER)
    row = await pool.fetchrow(
        "SELECT id, user_name, scopes, last_used_at IS NULL OR last_used_at < now() - interval '1 minute' "
        "AS stale FROM api_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL", hash_token(token))
    if row is None:
        raise ApiError(401, "unknown or revoked token", headers=_BEARER)
    if row["stale"]:
        # At most one write a minute per token: last-used is for people, not for accounting.
        await pool.execute("UPDATE api_tokens SET last_used_at = now() WHERE id = $1", row["id"])
    caller = await caller_for(pool, config, row["user_name"], via="token", scopes=frozenset(row["scopes"]),
                              token_id=row["id"])
    if caller is None:
        raise ApiError(401, "this token's user no longer exists", headers=_BEARER)
    return caller
