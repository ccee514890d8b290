"""Apply a validated config: merge with what is there (or replace, with `prune`), keep route tokens as
hashes, store the revision and publish it so every service picks it up. All or nothing.

Every change goes through here, whole files (`apply`) and single objects from the API (`change`): each
makes a new revision validated whole, so an invalid change changes nothing. Secrets are sealed in the
stored document and on the CONFIG stream; `current` opens them, so merging compares plain values.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
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
    is_secret,
    validate,
)
from tocsin.events.sealing import MASK, Sealer

COLLECTIONS = ("providers", "users", "channels", "teams", "routes", "hosts", "thresholds")


@dataclass
class ApplyResult:
    revision: int
    new_tokens: dict[str, str] = field(default_factory=dict)   # route -> token, shown once
    changed: bool = True


class RevisionConflict(Exception):
    """The config changed since the revision the caller read (If-Match)."""


async def current(conn: asyncpg.Connection, sealer: Sealer | None = None) -> tuple[int, Config]:
    """The applied revision and config, its secrets unsealed."""
    row = await conn.fetchrow("SELECT revision, document FROM api_config_revisions ORDER BY revision DESC LIMIT 1")
    if row is None:
        return 0, Config()
    return row["revision"], (sealer or Sealer.from_env()).unseal_config(
        msgspec.json.decode(row["document"], type=Config))


def restore_masked(new: Config, old: Config) -> tuple[Config, list[tuple[str, str]]]:
    """A secret sent back as the mask (what GET and export show) keeps the stored value at the same place;
    a mask where nothing is stored is an error (the real value never reached this side)."""
    errors: list[tuple[str, str]] = []
    old_doc = msgspec.to_builtins(old)

    def walk(value: Any, before: Any, path: str) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                prior = before.get(k) if isinstance(before, dict) else None
                sub = f"{path}.{k}" if path else str(k)
                if is_secret(k, value) and v == MASK:
                    if prior in (None, "", MASK):
                        errors.append((sub, "is the mask ******** but no value is stored here; send the secret"))
                    out[k] = prior
                else:
                    out[k] = walk(v, prior, sub)
            return out
        if isinstance(value, list):
            return [walk(v, before[i] if isinstance(before, list) and i < len(before) else None, f"{path}[{i}]")
                    for i, v in enumerate(value)]
        return value

    doc = walk(msgspec.to_builtins(new), old_doc, "")
    return (new if errors else msgspec.convert(doc, Config)), errors


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


async def apply(pool: asyncpg.Pool, bus: Bus, config: ConfigFile, *, by: str = "", via: str = "",
                sealer: Sealer | None = None) -> ApplyResult:
    """Apply a file: what it names replaces what was there (all of it with `prune`)."""
    return await change(pool, bus, lambda old: merge(old, config), by=by, via=via, sealer=sealer)


async def change(pool: asyncpg.Pool, bus: Bus, edit: Callable[[Config], Config], *, by: str = "",
                 via: str = "", expected: int | None = None, sealer: Sealer | None = None) -> ApplyResult:
    """Make a new revision from the current config by `edit`; see _change. A change is audited."""
    result = await _change(pool, bus, edit, by=by, expected=expected, sealer=sealer)
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


async def _change(pool: asyncpg.Pool, bus: Bus, edit: Callable[[Config], Config], *, by: str = "",
                  expected: int | None = None, sealer: Sealer | None = None) -> ApplyResult:
    """Make a new revision from the current config by `edit` (which may raise to refuse), validated
    whole. `expected` is the revision the caller read: another revision since is a RevisionConflict."""
    sealer = sealer or Sealer.from_env()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(727002)")
        revision, old = await current(conn, sealer)
        if expected is not None and expected != revision:
            raise RevisionConflict(f"the config is at revision {revision}, not {expected}; read it again")
        edited, errors = restore_masked(edit(old), old)
        if errors:
            raise ConfigError(errors)
        merged, new_tokens = _with_token_hashes(edited, old)
        errors = validate(merged)
        if errors:
            raise ConfigError(errors)
        if revision and not new_tokens and msgspec.to_builtins(merged) == msgspec.to_builtins(old):
            return ApplyResult(revision=revision, changed=False)
        sealed = sealer.seal_config(merged)
        revision = await conn.fetchval(
            "INSERT INTO api_config_revisions (document, applied_by) VALUES ($1, $2) RETURNING revision",
            msgspec.json.encode(sealed).decode(), by)
        # Published inside the transaction: if the bus does not take it, no revision is recorded either.
        await bus.publish(CONFIG_SUBJECT, ConfigApplied(id=new_id(), at=utcnow(), revision=revision,
                                                        config=sealed))
    return ApplyResult(revision=revision, new_tokens=new_tokens)


class UnknownRoute(LookupError):
    pass


async def regenerate_route_token(pool: asyncpg.Pool, bus: Bus, route: str, *, by: str, via: str,
                                 team_check: Callable[[str], None] | None = None,
                                 sealer: Sealer | None = None) -> tuple[int, str]:
    """A new intake token for `route` (the old one stops working as soon as the services load the new
    revision). `team_check(team)` runs under the lock, on the route as it is then. Returns (revision, token)."""
    token = secrets.token_urlsafe(24)
    team = ""

    def edit(old: Config) -> Config:
        nonlocal team
        if route not in old.routes:
            raise UnknownRoute(route)
        team = old.routes[route].team
        if team_check is not None:
            team_check(team)
        routes = {**old.routes, route: msgspec.structs.replace(old.routes[route], token=token, token_sha256="")}
        return msgspec.structs.replace(old, routes=routes)
    result = await _change(pool, bus, edit, by=by, sealer=sealer)
    await _audit(bus, by, via, "route.token_regenerated", target=route, team=team,
                 details={"revision": result.revision})
    return result.revision, token
