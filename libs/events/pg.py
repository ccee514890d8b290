"""Postgres helpers: each service owns its tables and ships its own numbered migrations."""

from __future__ import annotations

from importlib import resources

import asyncpg

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS tocsin_migrations (
    component text NOT NULL,
    version   int  NOT NULL,
    name      text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)"""


def migration_files(package: str) -> list[tuple[int, str, str]]:
    """(version, name, sql) of `<package>/migrations/NNN_name.sql`, in order."""
    folder = resources.files(package) / "migrations"
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            out.append((version, entry.name, entry.read_text()))
    return sorted(out)


async def migrate(conn: asyncpg.Connection, component: str, package: str) -> list[str]:
    """Apply what is missing, each migration in its own transaction, under an advisory lock so that two
    processes starting together do not both apply."""
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(727001)")
        await conn.execute(MIGRATIONS_TABLE)
        done = {r["version"] for r in await conn.fetch(
            "SELECT version FROM tocsin_migrations WHERE component = $1", component)}
        for version, name, sql in migration_files(package):
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO tocsin_migrations (component, version, name) VALUES ($1, $2, $3)",
                               component, version, name)
            applied.append(f"{component}/{name}")
    return applied


async def pending(conn: asyncpg.Connection, component: str, package: str) -> list[str]:
    await conn.execute(MIGRATIONS_TABLE)
    done = {r["version"] for r in await conn.fetch(
        "SELECT version FROM tocsin_migrations WHERE component = $1", component)}
    return [f"{component}/{name}" for version, name, _ in migration_files(package) if version not in done]
