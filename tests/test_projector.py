"""The read models catch up in order after a failure: nothing after a failed batch is applied first."""

from __future__ import annotations

import asyncio
import json

from harness import ONE_TEAM, StackHandle, eventually

TOKEN = "projector-token-000001"
CONFIG = f"{ONE_TEAM}\nroutes:\n  prom: {{source: alertmanager, team: infra, token: {TOKEN}}}\n"


def alert(fp: str) -> str:
    return json.dumps({"version": "4", "alerts": [{"status": "firing", "labels": {"alertname": fp},
                                                    "fingerprint": fp}]})


async def count(stack: StackHandle) -> int:
    return int(await stack.pool.fetchval("SELECT count(*) FROM api_incidents"))


async def test_a_failing_projection_resumes_from_its_position_and_loses_nothing(stack):
    await stack.start(CONFIG)
    for i in range(5):
        assert (await stack.post_alert("alertmanager", alert(f"before-{i}"), TOKEN))[0] == 202
    await eventually(lambda: _equals(count(stack), 5))
    # Break the incident read model: every incident batch now fails...
    await stack.pool.execute("ALTER TABLE api_incident_events RENAME TO api_incident_events_away")
    for i in range(20):
        assert (await stack.post_alert("alertmanager", alert(f"during-{i}"), TOKEN))[0] == 202
    await asyncio.sleep(1.5)
    assert await count(stack) == 5            # nothing applied past the failed batch
    # ...and once it is back, the projector catches up from where it stopped.
    await stack.pool.execute("ALTER TABLE api_incident_events_away RENAME TO api_incident_events")
    await eventually(lambda: _equals(count(stack), 25), timeout=30)
    rows = await stack.pool.fetch("SELECT number, alert_count FROM api_incidents ORDER BY number")
    assert [r["number"] for r in rows] == list(range(1, 26))
    events = await stack.pool.fetchval("SELECT count(*) FROM api_incident_events")
    assert events == 50                        # opened + paged for each, none lost, none twice


async def _equals(value, expected) -> bool:  # type: ignore[no-untyped-def]
    return await value == expected
