"""`tocsin demo` loads a working installation through the normal apply path and says how to page it;
`tocsin migrate --check` tells a schema that is behind from one that is up to date."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from harness import StackHandle, eventually
from tocsin.api import config_store

ROOT = Path(__file__).resolve().parents[1]


async def tocsin(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "tocsin", *args, cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_demo_loads_and_its_test_alert_pages(stack: StackHandle) -> None:
    await stack.start("users: {}")
    env = {**os.environ, "TOCSIN_NATS_URL": stack.nats_url, "TOCSIN_DATABASE_URL": stack.database_url,
           "TOCSIN_HTTP": f"127.0.0.1:{stack.port}"}
    rc, out, err = await tocsin("demo", env=env)
    assert rc == 0, err
    assert "demo-alice, demo-bob, demo-carol" in out and "demo-ops" in out and "demo-webhook" in out
    async with stack.pool.acquire() as conn:
        _, config = await config_store.current(conn)
    assert set(config.teams) == {"demo-ops"} and len(config.users) == 3
    assert config.routes["demo-webhook"].token_sha256

    # The printed command sends an alert that opens an incident and pages the terminal.
    command = out.split("Send a test alert:", 1)[1].split("\n\n", 1)[0]
    proc = await asyncio.create_subprocess_shell(command, stdout=asyncio.subprocess.PIPE)
    answer, _ = await proc.communicate()
    assert proc.returncode == 0 and b'"accepted": 1' in answer, answer
    incident = await eventually(lambda: _paged(stack))
    assert incident["team"] == "demo-ops" and incident["title"] == "Disk /var is 97% full on db-01"

    # Loading it again changes nothing and says so; no token is shown twice.
    rc, again, _ = await tocsin("demo", env=env)
    assert rc == 0 and "already loaded" in again and "Bearer tcs_" not in again
    assert not re.search(r"demo-webhook: \S{16,}", again)


async def _paged(stack: StackHandle) -> Any:
    # demo-alice, the demo team's owner (alice of the harness is not in the demo's config).
    status, page = await stack.api("GET", "/api/v1/incidents", user="demo-alice")
    if status != 200 or not page["items"]:
        return None
    status, detail = await stack.api("GET", f"/api/v1/incidents/{page['items'][0]['id']}", user="demo-alice")
    return detail if any(d["status"] == "delivered" for d in detail["deliveries"]) else None


async def test_migrate_check_says_when_the_schema_is_behind(pg_admin_url: str) -> None:
    name = f"tocsin_empty_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {**os.environ, "TOCSIN_DATABASE_URL": pg_admin_url.rpartition("/")[0] + f"/{name}",
               "TOCSIN_NATS_URL": "nats://127.0.0.1:1"}
        rc, out, _ = await tocsin("migrate", "--check", env=env)
        assert rc == 1 and "pending migrations" in out and "001_read_models" in out
        rc, out, _ = await tocsin("migrate", env=env)
        assert rc == 0 and "applied" in out
        rc, out, _ = await tocsin("migrate", "--check", env=env)
        assert rc == 0 and "up to date" in out
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
