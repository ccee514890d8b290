"""The embedded Postgres both ways: the machine's binaries, and the pgserver package where there are none."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import asyncpg
import pytest

from tocsin.embedded import EmbeddedPostgres, PgserverPostgres, embedded_postgres, postgres_bindir
from tocsin.up import migrate_all, pending_all


@pytest.fixture
def root() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="tocsin-embedded-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def exercise(url: str) -> tuple[list[str], list[str], int]:
    async def go() -> tuple[list[str], list[str], int]:
        applied = await migrate_all(url)
        pending = await pending_all(url)
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("INSERT INTO api_config_revisions (document) VALUES ('{}')")
            count = await conn.fetchval("SELECT count(*) FROM api_config_revisions")
        finally:
            await conn.close()
        return applied, pending, count
    return asyncio.run(go())


@pytest.mark.parametrize("kind", ["binaries", "pgserver"])
def test_embedded_postgres_keeps_its_data_across_restarts(root, kind, monkeypatch):
    if kind == "binaries" and postgres_bindir() is None:
        pytest.skip("no PostgreSQL server binaries on this machine")
    monkeypatch.setenv("TOCSIN_EMBEDDED_POSTGRES", "pgserver" if kind == "pgserver" else "")
    server = embedded_postgres(root / "pg")
    assert isinstance(server, PgserverPostgres if kind == "pgserver" else EmbeddedPostgres)
    server.start()
    try:
        applied, pending, count = exercise(server.url())
        assert "api/001_read_models.sql" in applied and pending == [] and count == 1
    finally:
        server.stop()
    again = embedded_postgres(root / "pg").start()
    try:
        applied, pending, count = exercise(again.url())
        assert applied == [] and pending == [] and count == 2
    finally:
        again.stop()
