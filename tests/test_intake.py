"""The intake door: strict answers to bad input, nothing published for it, 503 while the bus is down."""

from __future__ import annotations

import json

import pytest

from harness import ONE_TEAM, StackHandle, eventually
from tocsin.embedded import EmbeddedNats
from tocsin.events.streams import ALERTS

AM_TOKEN = "alertmanager-token-0001"
GRAFANA_TOKEN = "grafana-token-00000001"
LIMITED_TOKEN = "limited-token-00000001"

CONFIG = f"""
{ONE_TEAM}
routes:
  am: {{source: alertmanager, team: infra, token: {AM_TOKEN}, max_body_bytes: 4096}}
  graf: {{source: grafana, team: infra, token: {GRAFANA_TOKEN}}}
  limited: {{source: alertmanager, team: infra, token: {LIMITED_TOKEN}, rate_limit: 2}}
"""

ALERT = {"status": "firing", "labels": {"alertname": "X"}, "fingerprint": "f1"}


def group(*alerts: dict) -> str:
    return json.dumps({"version": "4", "status": "firing", "alerts": list(alerts)})


async def stored_alerts(stack: StackHandle) -> int:
    info = await stack.bus.js.stream_info(ALERTS.name)
    return int(info.state.messages)


BAD = [
    # (id, source, token, content type, body, status, code, path)
    ("no token", "alertmanager", "", "application/json", group(ALERT), 401, "unauthorized", None),
    ("unknown token", "alertmanager", "not-a-token-at-all", "application/json", group(ALERT), 401,
     "unauthorized", None),
    ("token of another source", "alertmanager", GRAFANA_TOKEN, "application/json", group(ALERT), 403,
     "forbidden", None),
    ("unknown source", "nagios", AM_TOKEN, "application/json", group(ALERT), 404, "not_found", None),
    ("body over the route's limit", "alertmanager", AM_TOKEN, "application/json",
     group({**ALERT, "annotations": {"description": "x" * 5000}}), 413, "payload_too_large", None),
    ("xml", "alertmanager", AM_TOKEN, "application/xml", "<alert/>", 415, "unsupported_media_type", None),
    ("not json", "alertmanager", AM_TOKEN, "application/json", "{nope", 422, "unprocessable", None),
    ("json but not an object", "alertmanager", AM_TOKEN, "application/json", "[1, 2]", 422, "unprocessable", None),
    ("no alerts", "alertmanager", AM_TOKEN, "application/json", group(), 422, "unprocessable", "alerts"),
    ("bad status", "alertmanager", AM_TOKEN, "application/json", group({**ALERT, "status": "on fire"}), 422,
     "unprocessable", "alerts[0]"),
    ("labels not a map", "alertmanager", AM_TOKEN, "application/json", group({**ALERT, "labels": [1]}), 422,
     "unprocessable", "alerts[0]"),
    ("empty body", "alertmanager", AM_TOKEN, "application/json", "", 422, "unprocessable", None),
]


@pytest.mark.parametrize(("case", "source", "token", "ctype", "body", "status", "code", "path"), BAD,
                         ids=[b[0] for b in BAD])
async def test_bad_input_is_refused_and_nothing_is_published(stack, case, source, token, ctype, body, status,
                                                             code, path):
    await stack.start(CONFIG)
    assert stack.session
    headers = {"Content-Type": ctype}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with stack.session.post(f"{stack.url}/api/v1/intake/{source}", data=body, headers=headers) as resp:
        answer = await resp.json()
        assert resp.status == status, answer
    assert answer["error"]["code"] == code
    assert answer["error"]["message"]
    if path is not None:
        assert answer["error"]["details"]["path"] == path
    assert await stored_alerts(stack) == 0


async def test_token_in_query_string_and_accepted_answer(stack):
    await stack.start(CONFIG)
    assert stack.session
    async with stack.session.post(f"{stack.url}/api/v1/intake/alertmanager?token={AM_TOKEN}",
                                  data=group(ALERT, {**ALERT, "fingerprint": "f2", "status": "resolved"}),
                                  headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 202
        answer = await resp.json()
    assert answer["accepted"] == 2
    assert [a["dedup_key"] for a in answer["alerts"]] == ["f1", "f2"]
    assert await stored_alerts(stack) == 2


async def test_fixture_payloads_normalize(stack, fixtures_dir):
    await stack.start(CONFIG)
    body = (fixtures_dir / "alertmanager" / "group-firing-2.json").read_bytes()
    status, answer = await stack.post_alert("alertmanager", body, AM_TOKEN, headers={})
    # The fixture is 975 bytes, under the route's 4 KiB limit.
    assert status == 202, answer
    alert_id = answer["alerts"][0]["alert_id"]
    status, alert = await eventually(lambda: _alert(stack, alert_id))
    assert alert["source"] == "alertmanager" and alert["route"] == "am"
    assert alert["dedup_key"] == "37cbb9468aa83d1c"
    assert alert["status"] == "firing" and alert["severity"] == "critical"
    assert alert["title"] == "Disk /var is 95% full"
    assert alert["details"] == "Only 2.1 GiB left on /var"
    assert alert["labels"]["instance"] == "db-01:9100"
    assert alert["links"][0] == {"href": "http://prometheus:9090/graph?g0.expr=disk", "text": "Source"}
    assert alert["raw"]["fingerprint"] == "37cbb9468aa83d1c"
    assert alert["incident_id"]


async def _alert(stack: StackHandle, alert_id: str):
    status, body = await stack.api("GET", f"/api/v1/alerts/{alert_id}")
    return (status, body) if status == 200 and body.get("incident_id") else None


async def test_rate_limit_answers_429_with_retry_after(stack):
    await stack.start(CONFIG)
    assert stack.session
    answers = []
    for i in range(3):
        async with stack.session.post(
                f"{stack.url}/api/v1/intake/alertmanager", data=group({**ALERT, "fingerprint": f"r{i}"}),
                headers={"Authorization": f"Bearer {LIMITED_TOKEN}", "Content-Type": "application/json"}) as resp:
            answers.append((resp.status, resp.headers.get("Retry-After"), await resp.json()))
    assert [a[0] for a in answers] == [202, 202, 429]
    assert int(answers[2][1]) >= 1
    assert answers[2][2]["error"]["code"] == "rate_limited"
    assert await stored_alerts(stack) == 2


async def test_bus_down_answers_503_then_recovers(stack, nats_server: EmbeddedNats | None):
    if nats_server is None:
        pytest.skip("needs the harness's own NATS server to stop and start it")
    await stack.start(CONFIG)
    nats_server.stop()
    status, answer = await stack.post_alert("alertmanager", group(ALERT), AM_TOKEN)
    assert status == 503, answer
    assert answer["error"]["code"] == "unavailable"
    nats_server.start()   # same port, same store

    async def accepted():
        status, _ = await stack.post_alert("alertmanager", group(ALERT), AM_TOKEN)
        return status == 202
    await eventually(accepted, timeout=20, interval=0.3)
    assert await stored_alerts(stack) == 1
