"""People: the users the config names, merged by name with the users only the database knows.

The config (`users:` in tocsin.yaml) is where people, their contacts and their teams live. Passwords never
go in the config: they are argon2id hashes in `api_passwords`. Someone the config does not name can still
exist for the API, as a row of `api_users`: the first administrator made by `tocsin user create-admin`
before any config is applied. Such a person has no team (teams name config users only), so unless an
administrator, they see nothing.

Merging: a person is known when either source names them. Name and email come from the config when it
has them. The global role is admin when either source says admin, because `create-admin` is an
operator's deliberate act at the server's shell (which can read the database anyway); taking it back means
setting that `api_users` row's role to user.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

import asyncpg
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tocsin.events.config import NAME, Config

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
# argon2id with OWASP's recommended minimum (m=19 MiB, t=2, p=1). The library default (64 MiB, 4 lanes)
# took 0.7 s a sign-in on the 2-core test machine under load, and 64 MiB per concurrent sign-in; this takes
# about a quarter of that. Hashes made with other parameters are upgraded at the next sign-in.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
# Verified against when the user has no password, so an unknown name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("tocsin: nobody has this password")
_COMMON = frozenset({
    "password", "password1", "password12", "password123", "password1234", "passw0rd", "qwerty", "qwertyuiop",
    "123456789012", "1234567890", "letmein", "welcome", "iloveyou", "admin", "administrator", "changeme",
    "correcthorse", "correcthorsebatterystaple", "trustno1", "monkey", "dragon", "football", "baseball",
    "tocsin", "oncall", "abc123", "abcdefghijkl", "qwertyuiop123", "asdfghjkl", "zaq12wsx",
})


class WeakPassword(ValueError):
    pass


@dataclass(frozen=True)
class Person:
    username: str
    name: str
    email: str
    role: str             # admin | user
    in_config: bool


def check_password(password: str, username: str = "") -> None:
    """Raise WeakPassword saying why a password is not good enough."""
    if len(password) < MIN_PASSWORD:
        raise WeakPassword(f"a password is at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise WeakPassword(f"a password is at most {MAX_PASSWORD} characters")
    folded = re.sub(r"[^a-z0-9]", "", password.lower())
    if len(set(password)) < 5:
        raise WeakPassword("a password needs more different characters")
    if folded in _COMMON or folded.rstrip("0123456789!") in _COMMON:
        raise WeakPassword("this password is too common")
    if username and username.lower() in password.lower():
        raise WeakPassword("a password must not contain the username")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


async def find(conn: asyncpg.Pool | asyncpg.Connection, config: Config, username: str) -> Person | None:
    if not NAME.match(username or ""):
        return None
    u = config.users.get(username)
    row = await conn.fetchrow("SELECT name, email, role FROM api_users WHERE username = $1", username)
    if u is None and row is None:
        return None
    admin = (u is not None and u.role == "admin") or (row is not None and row["role"] == "admin")
    return Person(username=username,
                  name=(u.name if u is not None and u.name else row["name"] if row else ""),
                  email=(u.email if u is not None and u.email else row["email"] if row else ""),
                  role="admin" if admin else "user", in_config=u is not None)


async def find_by_email(conn: asyncpg.Pool | asyncpg.Connection, config: Config, email: str) -> Person | None:
    """The one person with this email (case-insensitive); None when nobody or more than one has it."""
    wanted = email.strip().lower()
    if not wanted:
        return None
    names = {n for n, u in config.users.items() if u.email.lower() == wanted}
    names |= {r["username"] for r in await conn.fetch(
        "SELECT username FROM api_users WHERE lower(email) = $1", wanted)}
    if len(names) != 1:
        return None
    return await find(conn, config, names.pop())


async def verify_password(conn: asyncpg.Pool | asyncpg.Connection, username: str, password: str) -> bool:
    """True when `password` is this user's. Takes about as long whether or not the user or a password
    exists, so the answer does not tell which names are real. Upgrades an old hash's parameters."""
    stored = await conn.fetchval("SELECT hash FROM api_passwords WHERE username = $1", username)
    try:
        await asyncio.to_thread(_hasher.verify, stored or _DUMMY_HASH, password[:MAX_PASSWORD])
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if stored is None:
        return False
    if _hasher.check_needs_rehash(stored):
        await set_password(conn, username, password)
    return True


async def set_password(conn: asyncpg.Pool | asyncpg.Connection, username: str, password: str) -> None:
    digest = await asyncio.to_thread(hash_password, password)
    await conn.execute(
        "INSERT INTO api_passwords (username, hash) VALUES ($1, $2) "
        "ON CONFLICT (username) DO UPDATE SET hash = EXCLUDED.hash, updated_at = now()", username, digest)


async def create_admin(conn: asyncpg.Connection, username: str, *, email: str, password: str, by: str) -> None:
    """Make (or promote) `username` an administrator with this password."""
    if not NAME.match(username):
        raise ValueError("a username is letters, digits, '.', '_' or '-' (at most 63)")
    if "@" not in email:
        raise ValueError("not an email address")
    check_password(password, username)
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO api_users (username, email, role, created_by) VALUES ($1, $2, 'admin', $3) "
            "ON CONFLICT (username) DO UPDATE SET email = EXCLUDED.email, role = 'admin'", username, email, by)
        await set_password(conn, username, password)
