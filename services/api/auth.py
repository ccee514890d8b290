"""Personal API tokens: shown once, stored as SHA-256 hashes, listed without their secret, revocable."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg

from tocsin.api.access import SCOPES, Caller
from tocsin.events.base import new_id
from tocsin.events.config import hash_token

TOKEN_PREFIX = "tcs_"
DEFAULT_SCOPES = ("incidents:read", "incidents:write")
MAX_TOKEN_NAME = 100

__all__ = ["DEFAULT_SCOPES", "SCOPES", "TOKEN_PREFIX", "Caller", "create_token", "list_tokens", "revoke_token"]


async def create_token(conn: asyncpg.Connection | asyncpg.Pool, user: str, *, name: str = "",
                       scopes: tuple[str, ...] = DEFAULT_SCOPES) -> str:
    return (await create_token_row(conn, user, name=name, scopes=scopes))[1]


async def create_token_row(conn: asyncpg.Connection | asyncpg.Pool, user: str, *, name: str = "",
                           scopes: tuple[str, ...] = DEFAULT_SCOPES) -> tuple[str, str]:
    """(id, token) of a new token; the token itself is never stored."""
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scopes: {', '.join(unknown)} (known: {', '.join(SCOPES)})")
    if not scopes:
        raise ValueError("a token needs at least one scope")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = new_id()
    await conn.execute(
        "INSERT INTO api_tokens (id, user_name, name, token_sha256, scopes) VALUES ($1, $2, $3, $4, $5)",
        token_id, user, name[:MAX_TOKEN_NAME], hash_token(token), sorted(set(scopes)))
    return token_id, token


async def list_tokens(conn: asyncpg.Connection | asyncpg.Pool, user: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, name, scopes, created_at, last_used_at FROM api_tokens "
        "WHERE user_name = $1 AND revoked_at IS NULL ORDER BY created_at", user)
    return [{"id": r["id"], "name": r["name"], "scopes": list(r["scopes"]),
             "created_at": r["created_at"].isoformat(),
             "last_used_at": r["last_used_at"].isoformat() if r["last_used_at"] else None} for r in rows]


async def revoke_token(conn: asyncpg.Connection | asyncpg.Pool, user: str, token_id: str) -> bool:
    """Revoke one of `user`'s own tokens; False when they have no such live token."""
    result = await conn.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND user_name = $2 AND revoked_at IS NULL",
        token_id, user)
    return result.endswith(" 1")
