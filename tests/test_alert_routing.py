"""`GET /api/v1/alerts/{id}` says what routing did with the alert: "why was nobody paged?"."""

from __future__ import annotations

import asyncio
from typing import Any

from harness import FakeProvider, StackHandle, eventually
from tocsin.events import alerts
from tocsin.events.base import new_id, utcnow

TOKEN = "routing-route-token-0001"
STRICT = "routing-strict-token-0001"

CONFIG = """
timezone: UTC
security: {{allow_private_networks: true}}
providers: {{ntfy: {{server: "{ntfy}"}}}}
users:
  alice: {{role: admin, contacts: {{push: {{type: ntfy, topic: alice-pages}}}}}}   # sees alerts of no team
teams:
  infra:
    members: [alice]
    rotations: {{primary: {{members: [alice], shift: 1d, start: "2026-01-01T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"]}}]}}
routes:
  prod: {{source: alertmanager, team: infra, token: {token}}}
  strict:
    source: alertmanager
    team: infra
    token: {strict}
    match: {{severity: critical, env: "=~prod|staging", team: "!=dev"}}
silences:
  - {{matchers: {{service: batch}}, starts: "2020-01-01T00:00", ends: "2040-01-01T00:00", comment: nightly jobs}}
"""


def body(fingerprint: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    labels = {"alertname": "DiskFull", "severity": "critical", **labels}
    return {"version": "4", "status": status, "receiver": "tocsin", "alerts": [{
        "status": status, "labels": labels, "annotations": {"summary": f"{fingerprint} is unwell"},
        "startsAt": "2026-11-27T04:19:59Z", "fingerprint": fingerprint}]}


async def post(stack: StackHandle, payload: dict[str, Any], token: str = TOKEN) -> str:
    status, answer = await stack.post_alert("alertmanager", payload, token)
    assert status == 202, answer
    return str(answer["alerts"][0]["alert_id"])


async def routing(stack: StackHandle, alert_id: str) -> dict[str, Any]:
    async def routed() -> dict[str, Any] | None:
        status, answer = await stack.api("GET", f"/api/v1/alerts/{alert_id}")
        return answer if status == 200 and answer["routing"]["outcome"] != "pending" else None
    answer = await eventually(routed)
    return answer["routing"]  # type: ignore[no-any-return]


async def start(stack: StackHandle, ntfy: FakeProvider) -> None:
    await stack.start(CONFIG.format(ntfy=ntfy.url, token=TOKEN, strict=STRICT))


async def test_opened_then_duplicate_then_resolved(stack, ntfy):
    await start(stack, ntfy)
    first = await routing(stack, await post(stack, body("fp-1")))
    assert first["outcome"] == "opened" and first["paged"] is True and first["route"] == "prod"
    assert first["incident_number"] >= 1 and first["incident_id"]
    assert "paged its first step" in first["reason"]
    await ntfy.wait_for(1)

    again = await routing(stack, await post(stack, body("fp-1")))
    assert again["outcome"] == "attached" and again["paged"] is False
    assert again["incident_id"] == first["incident_id"] and again["effect"] == ""
    assert again["reason"].startswith("duplicate: ")

    resolved = await routing(stack, await post(stack, body("fp-1", status="resolved")))
    assert (resolved["outcome"], resolved["effect"]) == ("attached", "resolved")
    assert resolved["incident_id"] == first["incident_id"]

    orphan = await routing(stack, await post(stack, body("fp-never-fired", status="resolved")))
    assert orphan["outcome"] == "no_incident" and orphan["paged"] is False
    assert "no incident is open" in orphan["reason"]
    assert len(ntfy.requests) == 1


async def test_no_matching_route_names_the_matchers_that_failed(stack, ntfy):
    await start(stack, ntfy)
    answer = await routing(stack, await post(stack, body("fp-2", env="dev", team="dev"), STRICT))
    assert answer["outcome"] == "no_match" and answer["paged"] is False and answer["route"] == "strict"
    assert answer["failed_matchers"] == [
        {"label": "env", "matcher": "=~prod|staging", "actual": "dev"},
        {"label": "team", "matcher": "!=dev", "actual": "dev"}]
    missing = await routing(stack, await post(stack, body("fp-3", team="web"), STRICT))
    assert missing["failed_matchers"] == [{"label": "env", "matcher": "=~prod|staging", "actual": None}]
    ok = await routing(stack, await post(stack, body("fp-4", env="prod"), STRICT))
    assert ok["outcome"] == "opened"


async def test_silenced_says_which_silence(stack, ntfy):
    await start(stack, ntfy)
    answer = await routing(stack, await post(stack, body("fp-5", service="batch")))
    assert answer["outcome"] == "silenced" and answer["paged"] is False
    assert answer["silence"]["id"] == "config:0" and answer["silence"]["comment"] == "nightly jobs"
    assert answer["silence"]["matchers"] == {"service": "batch"}
    assert answer["silence"]["ends"].startswith("2040-01-01T00:00:00")
    incident = await stack.incident(answer["incident_id"])
    assert [e["silence_id"] for e in incident["timeline"] if e["type"] == "incident.silenced"] == ["config:0"]
    await asyncio.sleep(0.5)
    assert ntfy.requests == []


async def test_an_alert_for_a_route_no_longer_configured(stack, ntfy):
    # An alert the intake stored under an earlier config whose route is gone by the time the router reads it.
    await start(stack, ntfy)
    alert_id = new_id()
    await stack.bus.publish(alerts.subject("gone"), alerts.AlertReceived(
        id=alert_id, aggregate_id=alert_id, at=utcnow(), source="alertmanager", route="gone", dedup_key="x",
        status="firing", title="orphan"))
    answer = await routing(stack, alert_id)
    assert answer["outcome"] == "no_route" and answer["paged"] is False
    assert "route is not in the config" in answer["reason"]


async def test_unknown_alert_is_404(stack, ntfy):
    await start(stack, ntfy)
    status, answer = await stack.api("GET", "/api/v1/alerts/no-such-alert")
    assert status == 404 and answer["error"]["message"]
