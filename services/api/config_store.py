"""Apply a validated config: merge with what is there (or replace, with `prune`), keep route tokens as
hashes, store the revision and publish it so every service picks it up. All or nothing."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec

from tocsin.events import audit
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


async def apply(pool: asyncpg.Pool, bus: Bus, config: ConfigFile, *, by: str = "", via: str = "") -> ApplyResult:
    result = await _apply(pool, bus, config, by=by)
    if result.changed:
        await _audit(bus, by, via, "config.applied", target=str(result.revision),
                     details={"revision": result.revision, "new_route_tokens": sorted(result.new_tokens)})
    return result


async def _audit(bus: Bus, actor: str, via: str, action: str, *, target: str, team: str = "",
                 details: dict[str, Any]) -> None:
    if not via:
        via = actor.partition(":")[0] if ":" in actor else "api"
    await bus.publish(audit.subject(action), audit.recorded(actor, action, target=target, team=team, via=via,
                                                           details=details))


async def _apply(pool: asyncpg.Pool, bus: Bus, config: ConfigFile, *, by: str) -> ApplyResult:
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
        revision = await _store(conn, bus, merged, document, by)
    return ApplyResult(revision=revision, new_tokens=new_tokens)


async def _store(conn: asyncpg.Connection, bus: Bus, merged: Config, document: str, by: str) -> int:
    revision: int = await conn.fetchval(
        "INSERT INTO api_config_revisions (document, applied_by) VALUES ($1, $2) RETURNING revision",
        document, by)
    # Published inside the transaction: if the bus does not take it, no revision is recorded either.
    await bus.publish(CONFIG_SUBJECT, ConfigApplied(id=new_id(), at=utcnow(), revision=revision, config=merged))
    return revision


class UnknownRoute(LookupError):
    pass


async def regenerate_route_token(pool: asyncpg.Pool, bus: Bus, route: str, *, by: str, via: str,
                                 team_check: Any = None) -> tuple[int, str]:
    """A new intake token for `route` (the old one stops working as soon as the services load the new
    revision). `team_check(team)` runs under the lock, on the route as it is then. Returns (revision, token)."""
    token = secrets.token_urlsafe(24)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(727002)")
        _, old = await current(conn)
        if route not in old.routes:
            raise UnknownRoute(route)
        if team_check is not None:
            team_check(old.routes[route].team)
        routes = {**old.routes, route: msgspec.structs.replace(old.routes[route], token="",
                                                               token_sha256=hash_token(token))}
        merged = msgspec.structs.replace(old, routes=routes)
        revision = await _store(conn, bus, merged, msgspec.json.encode(merged).decode(), by)
    await _audit(bus, by, via, "route.token_regenerated", target=route, team=old.routes[route].team,
                 details={"revision": revision})
    return revision, token
