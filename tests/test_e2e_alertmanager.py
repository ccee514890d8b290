"""A real Prometheus Alertmanager sends its webhooks to Tocsin: page, acknowledge, escalate, resolve."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from harness import FakeProvider, StackHandle, eventually, free_port

pytestmark = pytest.mark.e2e

ROUTE_TOKEN = "am-route-token-0000000001"


class Alertmanager:
    def __init__(self, tmp: Path, target: str) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.config = tmp / "alertmanager.yml"
        self.config.write_text(f"""
route:
  receiver: tocsin
  group_by: ['alertname', 'instance']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: tocsin
    webhook_configs:
      - url: {target}/api/v1/intake/alertmanager
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials: {ROUTE_TOKEN}}}
""")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if binary is None:
            pytest.fail("prometheus-alertmanager is not installed (make test installs it)")
        self.log = open(self.tmp / "alertmanager.log", "wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.config}", f"--storage.path={self.tmp / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            stdout=self.log, stderr=self.log)

        async def ready() -> bool:
            try:
                async with aiohttp.ClientSession() as s, s.get(f"{self.url}/-/ready") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False
        await eventually(ready, timeout=20, interval=0.1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    async def fire(self, name: str, instance: str, *, resolved: bool = False, summary: str = "") -> None:
        now = datetime.now(UTC)
        alert = {"labels": {"alertname": name, "instance": instance, "severity": "critical"},
                 "annotations": {"summary": summary or f"{name} on {instance}"},
                 "startsAt": (now - timedelta(minutes=1)).isoformat()}
        if resolved:
            alert["endsAt"] = (now - timedelta(seconds=1)).isoformat()
        async with aiohttp.ClientSession() as s, s.post(f"{self.url}/api/v2/alerts", json=[alert]) as resp:
            assert resp.status == 200, await resp.text()


CONFIG = """
security: {{allow_private_networks: true}}
providers: {{ntfy: {{server: "{ntfy}"}}}}
users:
  alice: {{contacts: {{push: {{type: ntfy, topic: alice-pages}}}}}}
  bob: {{contacts: {{push: {{type: ntfy, topic: bob-pages}}}}}}
teams:
  infra:
    members: [alice, bob]
    rotations: {{primary: {{members: [alice], shift: 1w, start: "2026-01-05T09:00"}}}}
    escalation:
      steps:
        - {{notify: ["rotation:primary"], wait: 10m}}
        - {{notify: ["user:bob"]}}
routes:
  prom: {{source: alertmanager, team: infra, token: {token}}}
"""


@pytest_asyncio.fixture
async def am(stack: StackHandle, ntfy: FakeProvider, tmp_path: Path) -> AsyncIterator[Alertmanager]:
    await stack.start(CONFIG.format(ntfy=ntfy.url, token=ROUTE_TOKEN))
    manager = Alertmanager(tmp_path, stack.url)
    await manager.start()
    yield manager
    manager.stop()


async def one_incident(stack: StackHandle, status: str) -> dict | None:
    items = await stack.incidents()
    return items[0] if len(items) == 1 and items[0]["status"] == status else None


async def test_alertmanager_alert_pages_the_on_call_person(am, stack, ntfy):
    await am.fire("DiskFull", "db-01:9100", summary="Disk /var is 95% full")
    [page] = await ntfy.wait_for(1, timeout=30)
    assert page.json()["topic"] == "alice-pages"
    assert "Disk /var is 95% full" in page.json()["title"]
    incident = await eventually(lambda: one_incident(stack, "triggered"))
    assert incident["source"] == "alertmanager" and incident["route"] == "prom"


async def test_acknowledged_alertmanager_incident_does_not_escalate(am, stack, ntfy, clock):
    await am.fire("DiskFull", "db-01:9100")
    await ntfy.wait_for(1, timeout=30)
    incident = await eventually(lambda: one_incident(stack, "triggered"))
    status, body = await stack.api("POST", f"/api/v1/incidents/{incident['id']}/acknowledge")
    assert status == 200 and body["status"] == "acknowledged"
    clock.advance(timedelta(minutes=15))
    await asyncio.sleep(1.5)   # Alertmanager re-sends and the scheduler ticks several times meanwhile
    assert [r.json()["topic"] for r in ntfy.requests] == ["alice-pages"]


async def test_ignored_alertmanager_incident_escalates_after_its_wait(am, stack, ntfy, clock):
    await am.fire("DiskFull", "db-01:9100")
    await ntfy.wait_for(1, timeout=30)
    await eventually(lambda: one_incident(stack, "triggered"))
    clock.advance(timedelta(minutes=11))
    await ntfy.wait_for(2, timeout=30)
    assert [r.json()["topic"] for r in ntfy.requests] == ["alice-pages", "bob-pages"]


async def test_resolved_in_alertmanager_resolves_the_incident(am, stack, ntfy):
    await am.fire("DiskFull", "db-01:9100")
    await ntfy.wait_for(1, timeout=30)
    await eventually(lambda: one_incident(stack, "triggered"))
    await am.fire("DiskFull", "db-01:9100", resolved=True)
    incident = await eventually(lambda: one_incident(stack, "resolved"), timeout=30)
    assert incident["resolved_by"] == "system"
    assert incident["alert_count"] >= 2
