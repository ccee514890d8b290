"""The test harness: real NATS JetStream and real Postgres, fake providers on loopback.

Rules (see tests/README.md): every test gets its own NATS server (or a purged external one) and its own
database cloned from a migrated template, so tests are independent; nothing is mocked on our side.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from harness import FakeClock, FakeProvider, StackHandle, purge_nats
from tocsin.embedded import EmbeddedNats, EmbeddedPostgres
from tocsin.events.bus import Bus
from tocsin.up import Stack, migrate_all

# One key for the whole run, inherited by every service subprocess a test starts (as an operator would set it
# for every api and notifier process). Tests of a missing key unset it themselves.
os.environ.setdefault("TOCSIN_SECRET_KEY", "tocsin-test-key-" + uuid.uuid4().hex)

# Payloads captured from real tools. The project's shared/ folder beside the checkout has the newest;
# tests/fixtures is a copy of it, so a checkout on its own still runs every test.
FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
if not FIXTURES.exists():
    FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """A Postgres server for the whole session: TOCSIN_TEST_DATABASE_URL, or one of our own."""
    external = os.environ.get("TOCSIN_TEST_DATABASE_URL")
    if external:
        yield external
        return
    root = Path(tempfile.mkdtemp(prefix="tocsin-pg-"))
    server = EmbeddedPostgres(root, durable=False).start()
    try:
        yield server.url("postgres")
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _with_db(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> str:
    """A migrated template database; each test clones it (much faster than migrating each time)."""
    name = f"tocsin_tpl_{uuid.uuid4().hex[:8]}"

    async def make() -> None:
        conn = await asyncpg.connect(pg_admin_url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        await migrate_all(_with_db(pg_admin_url, name))
    asyncio.run(make())
    return name


@pytest_asyncio.fixture
async def database_url(pg_admin_url: str, pg_template: str) -> AsyncIterator[str]:
    name = f"tocsin_t_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(pg_admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    finally:
        await conn.close()
    yield _with_db(pg_admin_url, name)
    conn = await asyncpg.connect(pg_admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats | None]:
    if os.environ.get("TOCSIN_TEST_NATS_URL"):
        yield None
        return
    server = EmbeddedNats(tmp_path / "nats").start()
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture
async def nats_url(nats_server: EmbeddedNats | None) -> str:
    external = os.environ.get("TOCSIN_TEST_NATS_URL")
    if external:
        await purge_nats(external)
        return external
    assert nats_server is not None
    return nats_server.url


@pytest_asyncio.fixture
async def bus(nats_url: str) -> AsyncIterator[Bus]:
    b = await Bus.connect(nats_url, "tocsin-test")
    await b.ensure_streams()
    yield b
    await b.close()


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    yield p
    await p.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def ntfy() -> AsyncIterator[FakeProvider]:
    async with FakeProvider("ntfy") as provider:
        yield provider


@pytest_asyncio.fixture
async def webhook() -> AsyncIterator[FakeProvider]:
    async with FakeProvider("webhook") as provider:
        yield provider


@pytest_asyncio.fixture
async def stack(nats_url: str, database_url: str, clock: FakeClock, tmp_path: Path) -> AsyncIterator[
        StackHandle]:
    """Every service in this process (as under `tocsin up`), started by `await stack.start(config_yaml)`."""
    handle = StackHandle(nats_url=nats_url, database_url=database_url, clock=clock, tmp=tmp_path)
    yield handle
    await handle.stop()


__all__ = ["Stack", "timedelta"]
