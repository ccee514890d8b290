"""Sign-in with a password, sign-out, who am I, and changing one's password.

- `POST /api/v1/auth/login` `{"username", "password"}` → `{"user": <me>, "csrf_token"}` and the session cookie;
  401 `bad_credentials` for a wrong name or password alike (and in about the same time); 429 with
  Retry-After after too many failures for a username or from an address.
- `POST /api/v1/auth/logout` → 204, the session revoked in the database (not only the cookie dropped).
- `GET /api/v1/me` → the caller, for a session or a token.
- `POST /api/v1/me/password` `{"current_password", "new_password"}` → 204; the caller's other sessions end.
"""

from __future__ import annotations

import logging
import math
from datetime import timedelta
from typing import Any

import asyncpg
import msgspec
from aiohttp import web

from tocsin.api import audit, sessions, users
from tocsin.api.access import Caller, caller_for
from tocsin.api.context import Context
from tocsin.events.openapi import Endpoint
from tocsin.events.web import ApiError, read_json_body

log = logging.getLogger("tocsin.api.login")

# Failed sign-ins allowed in WINDOW: a few for one name (someone guessing a person's password), more from
# one address (an office behind one NAT mistyping).
WINDOW = timedelta(minutes=15)
USER_LIMIT = 5
ADDRESS_LIMIT = 20
MAX_BODY = 8 * 1024


class Credentials(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    password: str


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True):
    current_password: str
    new_password: str


async def read_struct(request: web.Request, kind: type[Any]) -> Any:
    """A JSON body as `kind`, 422 with the path of what is wrong. JSON only: a cross-site HTML form cannot
    send application/json, which is part of what keeps sign-in safe from login CSRF."""
    if request.content_type != "application/json":
        raise ApiError(415, "send application/json")
    raw = await read_json_body(request, MAX_BODY)
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as exc:
        raise ApiError(422, str(exc)) from None
    except msgspec.DecodeError:
        raise ApiError(422, "body is not valid JSON") from None


def address(request: web.Request) -> str:
    # The peer address. Behind a reverse proxy every request comes from the proxy, so the per-address
    # limit then acts for all together; the per-username limit still holds on its own.
    return request.remote or ""


async def retry_after(pool: asyncpg.Pool, username: str, addr: str) -> int:
    """Seconds until one more attempt is allowed for this name and address; 0 when allowed now."""
    wait = 0.0
    for column, value, limit in (("user_name", username, USER_LIMIT), ("address", addr, ADDRESS_LIMIT)):
        rows = await pool.fetch(
            f"SELECT extract(epoch FROM at + $2::interval - now()) AS left FROM api_login_failures "
            f"WHERE {column} = $1 AND at > now() - $2::interval ORDER BY at DESC LIMIT $3", value, WINDOW, limit)
        if len(rows) >= limit:
            wait = max(wait, float(rows[-1]["left"]))
    return math.ceil(wait) if wait > 0 else 0


async def note_failure(pool: asyncpg.Pool, username: str, addr: str) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM api_login_failures WHERE at < now() - $1::interval", WINDOW)
        await conn.execute("INSERT INTO api_login_failures (user_name, address) VALUES ($1, $2)",
                           username[:100], addr)


def _bad_credentials() -> ApiError:
    return ApiError(401, "wrong username or password", code="bad_credentials")


def _too_many(seconds: int) -> ApiError:
    return ApiError(429, "too many failed sign-ins; try again later", code="rate_limited",
                    headers={"Retry-After": str(seconds)})


async def open_session(request: web.Request, caller: Caller, *, via: str) -> tuple[str, str]:
    """Start and record a session for `caller`: (session id, its CSRF token). Then `set_cookie` it."""
    ctx = Context.of(request)
    key = ctx.settings.secret_key
    session_id = await sessions.start(ctx.pool, key, caller.user, via=via, address=address(request))
    await audit.record(ctx.bus, caller.user, "session.started", target=caller.user, via=via,
                       details={"address": address(request)})
    return session_id, sessions.csrf_token(key, session_id)


def set_cookie(request: web.Request, response: web.StreamResponse, session_id: str) -> None:
    sessions.set_cookie(response, request, Context.of(request).settings.public_url, session_id)
    response.headers["Cache-Control"] = "no-store"


async def login(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    body = await read_struct(request, Credentials)
    username, addr = body.username.strip(), address(request)
    wait = await retry_after(ctx.pool, username, addr)
    if wait:
        raise _too_many(wait)
    config = ctx.config.directory.config
    person = await users.find(ctx.pool, config, username)
    # Verify even for an unknown name (against a dummy hash) so both answers take as long.
    ok = await users.verify_password(ctx.pool, person.username if person else "", body.password)
    if not ok or person is None:
        await note_failure(ctx.pool, username, addr)
        log.warning("failed sign-in", extra={"username": username[:100], "address": addr})
        raise _bad_credentials()
    await ctx.pool.execute("DELETE FROM api_login_failures WHERE user_name = $1", username)
    caller = await caller_for(ctx.pool, config, person.username, via="session")
    assert caller is not None
    session_id, csrf = await open_session(request, caller, via="password")
    response = web.json_response({"user": {**caller.me(), "csrf_token": csrf}, "csrf_token": csrf})
    set_cookie(request, response, session_id)
    return response


async def logout(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    if caller.via != "session":
        raise ApiError(400, "logout ends a session; a token is revoked with DELETE /api/v1/me/tokens/{id}")
    await sessions.revoke(ctx.pool, ctx.settings.secret_key, caller.session_id)
    await audit.record(ctx.bus, caller, "session.ended", target=caller.user)
    response = web.Response(status=204)
    sessions.clear_cookie(response, request, ctx.settings.public_url)
    return response


async def me(request: web.Request) -> web.Response:
    caller = await Context.of(request).caller(request)
    return web.json_response(caller.me(), headers={"Cache-Control": "no-store"})


async def change_password(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    body = await read_struct(request, PasswordChange)
    addr = address(request)
    wait = await retry_after(ctx.pool, caller.user, addr)
    if wait:
        raise _too_many(wait)
    if not await users.verify_password(ctx.pool, caller.user, body.current_password):
        await note_failure(ctx.pool, caller.user, addr)
        raise ApiError(403, "the current password is not right", code="bad_credentials",
                       details={"path": "current_password"})
    try:
        users.check_password(body.new_password, caller.user)
    except users.WeakPassword as exc:
        raise ApiError(422, str(exc), details={"path": "new_password"}) from None
    await users.set_password(ctx.pool, caller.user, body.new_password)
    ended = await sessions.revoke_others(ctx.pool, ctx.settings.secret_key, caller.user, keep=caller.session_id)
    await audit.record(ctx.bus, caller, "user.password_changed", target=caller.user,
                       details={"sessions_ended": ended})
    return web.Response(status=204)


ENDPOINTS = [
    Endpoint("POST", "/api/v1/auth/login", login, "Sign in with a password: a session cookie and its CSRF token",
             request=Credentials, errors=(401, 429), tag="sign-in"),
    Endpoint("POST", "/api/v1/auth/logout", logout, "End this session (revoked on the server)", scope="",
             request_required=False, responses={204: None}, errors=(400,), tag="sign-in"),
    Endpoint("GET", "/api/v1/me", me, "Who is calling: roles, teams, scopes, and a session's CSRF token", scope="",
             tag="sign-in"),
    Endpoint("POST", "/api/v1/me/password", change_password, "Change one's own password (the others' sessions end)",
             scope="", request=PasswordChange, responses={204: None}, errors=(429,), tag="sign-in"),
]
