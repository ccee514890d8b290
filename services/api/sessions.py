"""Browser sessions: a random id in an HttpOnly cookie, known to the server only by an HMAC of it.

The id is 256 random bits. Postgres keeps `HMAC(derive(secret_key, "session-id"), id)`, so a leaked copy of
the table cannot be replayed as a cookie, and changing the installation key ends every session. The CSRF
token is derived from the id the same way (`derive(secret_key, "csrf")`): nothing extra to store, and it is
worthless without the cookie. A session ends when revoked (logout, password change), after `IDLE` without a
request, or `ABSOLUTE` after sign-in, whichever comes first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from aiohttp import web

from tocsin.events.keys import derive

COOKIE = "tocsin_session"
CSRF_HEADER = "X-CSRF-Token"
IDLE = timedelta(hours=12)
ABSOLUTE = timedelta(days=7)
# last_seen_at is written at most this often, so a busy UI does not turn every read into a write.
TOUCH_EVERY = timedelta(minutes=1)
MAX_COOKIE = 128


@dataclass(frozen=True)
class Session:
    user: str
    via: str
    csrf_token: str


def _mac(key: bytes, purpose: str, session_id: str) -> bytes:
    return hmac.new(derive(key, purpose), session_id.encode(), hashlib.sha256).digest()


def id_hmac(key: bytes, session_id: str) -> str:
    return _mac(key, "session-id", session_id).hex()


def csrf_token(key: bytes, session_id: str) -> str:
    return base64.urlsafe_b64encode(_mac(key, "csrf", session_id)).rstrip(b"=").decode()


def csrf_ok(key: bytes, session_id: str, presented: str) -> bool:
    return hmac.compare_digest(csrf_token(key, session_id).encode(), presented.encode())


async def start(pool: asyncpg.Pool, key: bytes, user: str, *, via: str, address: str) -> str:
    session_id = secrets.token_urlsafe(32)
    await pool.execute(
        "INSERT INTO api_sessions (id_hmac, user_name, via, address, expires_at) "
        "VALUES ($1, $2, $3, $4, now() + $5::interval)", id_hmac(key, session_id), user, via, address, ABSOLUTE)
    return session_id


async def lookup(pool: asyncpg.Pool, key: bytes, session_id: str) -> Session | None:
    if not session_id or len(session_id) > MAX_COOKIE:
        return None
    digest = id_hmac(key, session_id)
    row = await pool.fetchrow(
        "SELECT user_name, via, last_seen_at < now() - $2::interval AS stale FROM api_sessions "
        "WHERE id_hmac = $1 AND revoked_at IS NULL AND expires_at > now() AND last_seen_at > now() - $3::interval",
        digest, TOUCH_EVERY, IDLE)
    if row is None:
        return None
    if row["stale"]:
        await pool.execute("UPDATE api_sessions SET last_seen_at = now() WHERE id_hmac = $1", digest)
    return Session(user=row["user_name"], via=row["via"], csrf_token=csrf_token(key, session_id))


async def revoke(pool: asyncpg.Pool, key: bytes, session_id: str) -> None:
    await pool.execute("UPDATE api_sessions SET revoked_at = now() WHERE id_hmac = $1 AND revoked_at IS NULL",
                       id_hmac(key, session_id))


async def revoke_others(pool: asyncpg.Pool, key: bytes, user: str, keep: str = "") -> int:
    """End every session of `user` except `keep` (after a password change). Returns how many ended."""
    result = await pool.execute(
        "UPDATE api_sessions SET revoked_at = now() WHERE user_name = $1 AND revoked_at IS NULL AND id_hmac <> $2",
        user, id_hmac(key, keep) if keep else "")
    return int(result.split()[-1])


def is_secure(request: web.Request, public_url: str) -> bool:
    return public_url.startswith("https://") or request.secure


def set_cookie(response: web.StreamResponse, request: web.Request, public_url: str, session_id: str) -> None:
    response.set_cookie(COOKIE, session_id, httponly=True, samesite="Lax", path="/",
                        secure=is_secure(request, public_url), max_age=int(ABSOLUTE.total_seconds()))


def clear_cookie(response: web.StreamResponse, request: web.Request, public_url: str) -> None:
    response.del_cookie(COOKIE, path="/", secure=is_secure(request, public_url), httponly=True, samesite="Lax")
