"""Personal API tokens: shown once, stored as SHA-256 hashes, looked up per request."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from tocsin.events.base import new_id
from tocsin.events.config import hash_token
from tocsin.events.web import ApiError

TOKEN_PREFIX = "tcs_"
SCOPES = ("alerts:write", "incidents:read", "incidents:write", "config:read", "config:write", "admin")
DEFAULT_SCOPES = ("incidents:read", "incidents:write")


@dataclass(frozen=True)
class Caller:
    user: str
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if scope not in self.scopes and "admin" not in self.scopes:
            raise ApiError(403, f"this token lacks the {scope!r} scope")


async def create_token(conn: asyncpg.Connection, user: str, *, name: str = "",
                       scopes: tuple[str, ...] = DEFAULT_SCOPES) -> str:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(unknown)} (known: {', '.join(SCOPES)})")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO api_tokens (id, user_name, name, token_sha256, scopes) VALUES ($1, $2, $3, $4, $5)",
        new_id(), user, name, hash_token(token), list(scopes))
    return token


async def authenticate(request: web.Request, pool: asyncpg.Pool) -> Caller:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "missing bearer token", headers={"WWW-Authenticate": 'Bearer realm="tocsin"'})
    row = await pool.fetchrow(
        "UPDATE api_tokens SET last_used_at = now() WHERE token_sha256 = $1 AND revoked_at IS NULL "
        "RETURNING user_name, scopes", hash_token(token.strip()))
    if row is None:
        raise ApiError(401, "unknown or revoked token", headers={"WWW-Authenticate": 'Bearer realm="tocsin"'})
    return Caller(user=row["user_name"], scopes=frozenset(row["scopes"]))
