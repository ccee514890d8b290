"""The read models are disposable: `tocsin projections rebuild` drops them and replays the streams, and
they come back row for row, while the running projector keeps going."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from harness import FakeProvider, StackHandle, eventually
from tocsin.api.projector import READ_MODELS, STREAMS, rebuild

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "rebuild-route-token-0123456789"
KEYS = {"api_projection_offsets": "stream", "api_incidents": "id", "api_incident_events": "incident_id, seq",
        "api_deliveries": "notification_id", "api_alerts": "id", "api_alert_routing": "alert_id", "api_audit": "seq"}


def config(ntfy: FakeProvider) -> str:
    return f"""
security: {{allow_private_networks: true}}
providers: {{ntfy: {{server: "{ntfy.url}"}}}}
users:
  alice: {{contacts: {{push: {{type: ntfy, topic: alice-pages}}}}}}
teams:
  infra:
    members: [alice]
    rotations: {{primary: {{members: [alice], shift: 1d, start: "2026-01-01T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"]}}]}}
routes:
  hooks: {{source: webhook, team: infra, token: {TOKEN}}}
"""


async def snapshot(stack: StackHandle) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for table in READ_MODELS:
        rows = await stack.pool.fetch(f"SELECT * FROM {table} ORDER BY {KEYS[table]}")
        out[table] = [dict(r) for r in rows]
    return out


async def caught_up(stack: StackHandle) -> bool:
    for stream in STREAMS:
        top = (await stack.bus.js.stream_info(stream)).state.last_seq
        done = await stack.pool.fetchval("SELECT last_seq FROM api_projection_offsets WHERE stream = $1", stream)
        if top and (done or 0) < top:
            return False
    return True


async def some_history(stack: StackHandle, ntfy: FakeProvider) -> None:
    for i in range(4):
        status, _ = await stack.post_alert("webhook", {"title": f"alert {i}", "dedup_key": f"k{i % 3}"}, TOKEN)
        assert status == 202
    await ntfy.wait_for(3)
    items = await eventually(lambda: _incidents(stack, 3))
    await stack.api("POST", f"/api/v1/incidents/{items[0]['id']}/acknowledge", json={"note": "on it"})
    await stack.api("POST", f"/api/v1/incidents/{items[1]['id']}/resolve")
    await eventually(lambda: caught_up(stack))


async def _incidents(stack: StackHandle, n: int) -> Any:
    items = await stack.incidents()
    return items if len(items) == n else None


async def test_rebuild_gives_the_same_read_models(stack: StackHandle, ntfy: FakeProvider) -> None:
    await stack.start(config(ntfy))
    await some_history(stack, ntfy)
    before = await snapshot(stack)
    assert len(before["api_incidents"]) == 3 and len(before["api_alerts"]) == 4
    assert before["api_deliveries"] and len(before["api_incident_events"]) > 6

    # Lose and spoil some of it: the rebuild does not depend on what is there.
    await stack.pool.execute("DELETE FROM api_incident_events WHERE seq % 2 = 0")
    await stack.pool.execute("UPDATE api_incidents SET title = 'spoiled'")
    await stack.pool.execute("DELETE FROM api_alerts")
    assert await snapshot(stack) != before

    counts = await rebuild(stack.bus, stack.pool)
    assert counts["ALERTS"] == 4 and counts["INCIDENTS"] == len(before["api_incident_events"])
    assert await snapshot(stack) == before

    # The projector that was running goes on from where the rebuild left off.
    status, _ = await stack.post_alert("webhook", {"title": "after", "dedup_key": "new"}, TOKEN)
    assert status == 202
    await eventually(lambda: _incidents(stack, 4))
    await eventually(lambda: caught_up(stack))
    after = await snapshot(stack)
    assert len(after["api_alerts"]) == 5
    assert [r for r in after["api_incident_events"] if r["incident_id"] in {i["id"] for i in before["api_incidents"]}
            ] == before["api_incident_events"]


async def test_the_command_rebuilds_against_a_running_stack(stack: StackHandle, ntfy: FakeProvider) -> None:
    await stack.start(config(ntfy))
    await some_history(stack, ntfy)
    before = await snapshot(stack)
    await stack.pool.execute("TRUNCATE api_incidents, api_deliveries")
    env = {**os.environ, "TOCSIN_NATS_URL": stack.nats_url, "TOCSIN_DATABASE_URL": stack.database_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tocsin", "projections", "rebuild", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()
    assert "ALERTS 4 events" in out.decode()
    assert await snapshot(stack) == before
