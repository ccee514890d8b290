"""Apply a validated config: merge with what is there (or replace, with `prune`), keep route tokens as
hashes, store the revision and publish it so every service picks it up. All or nothing."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec

from tocsin.events.base import new_id, utcnow
from tocsin.events.bus import Bus
from tocsin.events.config import (
    CONFIG_SUBJECT,
    Config,
    ConfigApplied,
    ConfigError,
    ConfigFile,
    hash_token,
    validate,
)

COLLECTIONS = ("providers", "users", "channels", "teams", "routes", "hosts", "thresholds")


@dataclass
class ApplyResult:
    revision: int
    new_tokens: dict[str, str] = field(default_factory=dict)   # route -> token, shown once
    changed: bool = True


async def current(conn: asyncpg.Connection) -> tuple[int, Config]:
    row = await conn.fetchrow("SELECT revision, document FROM api_config_revisions ORDER BY revision DESC LIMIT 1")
    if row is None:
        return 0, Config()
    return row["revision"], msgspec.json.decode(row["document"], type=Config)


def merge(old: Config, new: ConfigFile) -> Config:
    """What the file names replaces what was there, object by object; what it leaves out stays as it was.
    With `prune: true` the file is the whole config."""
    if new.config.prune:
        return msgspec.structs.replace(new.config, prune=False)
    changes: dict[str, Any] = {"prune": False}
    for name in Config.__struct_fields__:
        if name == "prune":
            continue
        if name in COLLECTIONS:
            changes[name] = {**getattr(old, name), **getattr(new.config, name)}
        elif name not in new.keys:
            changes[name] = getattr(old, name)
    return msgspec.structs.replace(new.config, **changes)


def _with_token_hashes(config: Config, old: Config) -> tuple[Config, dict[str, str]]:
    routes = {}
    new_tokens: dict[str, str] = {}
    for name, route in config.routes.items():
        if route.token:
            digest = hash_token(route.token)
        elif route.token_sha256:
            digest = route.token_sha256
        elif name in old.routes and old.routes[name].token_sha256:
            digest = old.routes[name].token_sha256
        else:
            token = secrets.token_urlsafe(24)
            new_tokens[name] = token
            digest = hash_token(token)
        routes[name] = msgspec.structs.replace(route, token="", token_sha256=digest)
    return msgspec.structs.replace(config, routes=routes), new_tokens


async def apply(pool: asyncpg.Pool, bus: Bus, config: ConfigFile, *, by: str = "") -> ApplyResult:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(727002)")
        revision, old = await current(conn)
        merged, new_tokens = _with_token_hashes(merge(old, config), old)
        errors = validate(merged)
        if errors:
            raise ConfigError(errors)
        document = msgspec.json.encode(merged).decode()
        if revision and not new_tokens and json.loads(document) == msgspec.to_builtins(old):
            return ApplyResult(revision=revision, changed=False)
        revision = await conn.fetchval(
            "INSERT INTO api_config_revisions (document, applied_by) VALUES ($1, $2) RETURNING revision",
            document, by)
        # Published inside the transaction: if the bus does not take it, no revision is recorded either.
        await bus.publish(CONFIG_SUBJECT, ConfigApplied(id=new_id(), at=utcnow(), revision=revision,
                                                        config=merged))
    return ApplyResult(revision=revision, new_tokens=new_tokens)
