"""Kill a service for real (SIGKILL) at a bad moment and restart it: nothing lost, nothing paged twice."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
from aiohttp import web

from harness import FakeProvider, Received, ServiceProcess, StackHandle, eventually

pytestmark = pytest.mark.e2e

TOKEN = "crash-route-token-000001"


def config(ntfy: FakeProvider) -> str:
    return f"""
security: {{allow_private_networks: true}}
providers: {{ntfy: {{server: "{ntfy.url}"}}}}
users:
  alice: {{contacts: {{push: {{type: ntfy, topic: alice-pages}}}}}}
teams:
  infra:
    members: [alice]
    rotations: {{primary: {{members: [alice], shift: 1w, start: "2026-01-05T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"], wait: 1h}}]}}
routes:
  prom: {{source: alertmanager, team: infra, token: {TOKEN}}}
"""


def alert(fingerprint: str) -> str:
    return json.dumps({"version": "4", "status": "firing", "alerts": [{
        "status": "firing", "labels": {"alertname": fingerprint}, "fingerprint": fingerprint,
        "annotations": {"summary": f"alert {fingerprint}"}}]})


async def delivery_status(stack: StackHandle) -> list[tuple[str, int]]:
    rows = await stack.pool.fetch("SELECT status, attempts FROM api_deliveries")
    return [(r["status"], r["attempts"]) for r in rows]


async def test_notifier_killed_mid_delivery_delivers_once_after_restart(stack, ntfy, tmp_path):
    """The command is on the bus and the provider call is in flight when the notifier dies."""
    await stack.start(config(ntfy), services=("router", "scheduler"))
    hang = asyncio.Event()

    async def never_answer(_: Received) -> web.Response:
        await hang.wait()
        return web.json_response({}, status=200)

    ntfy.answers = [never_answer]
    first = ServiceProcess("notifier", stack.nats_url, stack.database_url, tmp_path / "n1.log").start()
    try:
        assert (await stack.post_alert("alertmanager", alert("fp-1"), TOKEN))[0] == 202
        await ntfy.wait_for(1, timeout=30)   # the provider has the request; it is never answered
        first.kill()
    finally:
        first.stop()
        hang.set()
    assert await delivery_status(stack) == []   # nothing recorded as delivered: the answer never came
    second = ServiceProcess("notifier", stack.nats_url, stack.database_url, tmp_path / "n2.log").start()
    try:
        await ntfy.wait_for(2, timeout=90)     # redelivered after the consumer's ack wait
        await eventually(lambda: _delivered(stack), timeout=30)
        await asyncio.sleep(1.0)
        answered = [r for r in ntfy.requests[1:]]
        assert len(answered) == 1, "the restarted notifier sent the page exactly once"
        assert answered[0].json()["topic"] == "alice-pages"
    finally:
        second.stop()


async def _delivered(stack: StackHandle) -> bool:
    return [s for s, _ in await delivery_status(stack)] == ["delivered"]


async def test_router_killed_during_a_burst_loses_nothing_and_pages_each_alert_once(stack, ntfy, tmp_path):
    await stack.start(config(ntfy), services=("scheduler", "notifier"))
    router = ServiceProcess("router", stack.nats_url, stack.database_url, tmp_path / "r1.log").start()
    count = 60
    try:
        async def send(i: int) -> int:
            return (await stack.post_alert("alertmanager", alert(f"fp-{i}"), TOKEN))[0]
        first_half = await asyncio.gather(*(send(i) for i in range(count // 2)))
        await ntfy.wait_for(3, timeout=30)    # the router is busy with the burst...
        router.kill()                         # ...and dies in the middle of it
        second_half = await asyncio.gather(*(send(i) for i in range(count // 2, count)))
        assert set(first_half + second_half) == {202}
    finally:
        router.stop()
    router = ServiceProcess("router", stack.nats_url, stack.database_url, tmp_path / "r2.log").start()
    try:
        await ntfy.wait_for(count, timeout=90)
        await asyncio.sleep(1.5)
        titles = Counter(r.json()["message"] for r in ntfy.requests)
        assert len(titles) == count, "every accepted alert was paged"
        assert max(titles.values()) == 1, f"paged twice: {[t for t, n in titles.items() if n > 1]}"
        items = await eventually(lambda: _all(stack, count), timeout=30)
        assert sorted(i["number"] for i in items) == sorted({i["number"] for i in items})
    finally:
        router.stop()


async def _all(stack: StackHandle, count: int) -> list[dict] | None:
    items = await stack.incidents(limit="500")
    return items if len(items) == count else None
