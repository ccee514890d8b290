"""Silences through the API behave like the config's: recorded, not paged, and paged when they end."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from harness import StackHandle, eventually
from tocsin.api.silences import parse_request
from tocsin.events.web import ApiError

TOKEN = "silence-route-token-0001"
CONFIG = """
timezone: Europe/Berlin
security: {{allow_private_networks: true}}
providers: {{ntfy: {{server: "{ntfy}"}}}}
users:
  alice: {{role: admin, contacts: {{push: {{type: ntfy, topic: alice-pages}}}}}}   # silences: administrators
  reader: {{}}
  nobody: {{}}
teams:
  infra:
    members: [alice]
    rotations: {{primary: {{members: [alice], shift: 1d, start: "2026-01-01T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"]}}]}}
routes:
  prod: {{source: alertmanager, team: infra, token: {token}}}
"""


def body(fingerprint: str, **labels: str) -> dict[str, Any]:
    return {"version": "4", "status": "firing", "receiver": "tocsin", "alerts": [{
        "status": "firing", "labels": {"alertname": "DiskFull", **labels}, "annotations": {"summary": fingerprint},
        "startsAt": "2026-11-27T04:19:59Z", "fingerprint": fingerprint}]}


def iso(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat()


async def routed(stack: StackHandle, alert_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        status, answer = await stack.api("GET", f"/api/v1/alerts/{alert_id}")
        return answer["routing"] if status == 200 and answer["routing"]["outcome"] != "pending" else None
    return await eventually(done)  # type: ignore[no-any-return]


async def post_alert(stack: StackHandle, fingerprint: str, **labels: str) -> str:
    status, answer = await stack.post_alert("alertmanager", body(fingerprint, **labels), TOKEN)
    assert status == 202, answer
    return str(answer["alerts"][0]["alert_id"])


async def test_an_api_silence_holds_the_page_until_it_is_expired(stack, ntfy):
    await stack.start(CONFIG.format(ntfy=ntfy.url, token=TOKEN))
    status, silence = await stack.api("POST", "/api/v1/silences", json={
        "matchers": {"instance": "=~db-0[12]"}, "ends": iso(timedelta(hours=2)), "comment": "disk swap"})
    assert status == 201, silence
    assert silence["state"] == "active" and silence["created_by"] == "alice" and silence["expired_by"] is None

    held = await routed(stack, await post_alert(stack, "fp-1", instance="db-01"))
    assert held["outcome"] == "silenced" and held["silence"]["id"] == silence["id"]
    assert held["silence"]["comment"] == "disk swap"
    free = await routed(stack, await post_alert(stack, "fp-2", instance="db-03"))
    assert free["outcome"] == "opened"
    await ntfy.wait_for(1)
    incident = await stack.incident(held["incident_id"])
    assert [e["silence_id"] for e in incident["timeline"] if e["type"] == "incident.silenced"] == [silence["id"]]

    status, listed = await stack.api("GET", "/api/v1/silences")
    assert status == 200 and [s["id"] for s in listed["items"]] == [silence["id"]]

    # expired now: the silenced incident still fires, so it pages now, not at the silence's old end
    status, ended = await stack.api("DELETE", f"/api/v1/silences/{silence['id']}")
    assert status == 200 and ended["state"] == "expired" and ended["expired_by"] == "alice"
    await ntfy.wait_for(2)
    assert [r.json()["topic"] for r in ntfy.requests] == ["alice-pages", "alice-pages"]
    assert "fp-1" in ntfy.requests[1].json()["message"]
    status, listed = await stack.api("GET", "/api/v1/silences?state=expired")
    assert [s["id"] for s in listed["items"]] == [silence["id"]]
    assert (await stack.api("DELETE", f"/api/v1/silences/{silence['id']}"))[0] == 409
    after = await routed(stack, await post_alert(stack, "fp-3", instance="db-02"))
    assert after["outcome"] == "opened"


async def test_an_api_silence_that_ends_on_time_pages_and_survives_a_restart(stack, ntfy, clock):
    await stack.start(CONFIG.format(ntfy=ntfy.url, token=TOKEN))
    status, silence = await stack.api("POST", "/api/v1/silences", json={
        "matchers": {"service": "db"}, "ends": iso(timedelta(minutes=30))})
    assert status == 201, silence
    await stack.stop()
    await stack.start(CONFIG.format(ntfy=ntfy.url, token=TOKEN))
    status, listed = await stack.api("GET", "/api/v1/silences?state=active")
    assert [s["id"] for s in listed["items"]] == [silence["id"]]
    held = await routed(stack, await post_alert(stack, "fp-9", service="db"))
    assert held["outcome"] == "silenced" and held["silence"]["id"] == silence["id"]
    await asyncio.sleep(0.5)
    assert ntfy.requests == []
    clock.advance(timedelta(minutes=31))
    await ntfy.wait_for(1)


async def test_scopes_and_unknown_ids(stack, ntfy):
    await stack.start(CONFIG.format(ntfy=ntfy.url, token=TOKEN))
    await stack.token("reader", scopes=("incidents:read",))
    await stack.token("nobody", scopes=("config:read",))
    good = {"matchers": {"service": "db"}, "ends": iso(timedelta(hours=1))}
    assert (await stack.api("POST", "/api/v1/silences", user="reader", json=good))[0] == 403
    assert (await stack.api("GET", "/api/v1/silences", user="reader"))[0] == 200
    assert (await stack.api("GET", "/api/v1/silences", user="nobody"))[0] == 403
    status, created = await stack.api("POST", "/api/v1/silences", json=good)
    assert status == 201
    assert (await stack.api("DELETE", f"/api/v1/silences/{created['id']}", user="reader"))[0] == 403
    for bad_id in ("no-such-silence", "a.b", "*", ">"):
        status, answer = await stack.api("DELETE", f"/api/v1/silences/{bad_id}")
        assert status == 404, (bad_id, answer)
    assert (await stack.api("GET", "/api/v1/silences?state=sleeping"))[0] == 422
    # a silence that has not started yet, expired: it never covers anything
    status, later = await stack.api("POST", "/api/v1/silences", json={
        "matchers": {"service": "db"}, "starts": iso(timedelta(hours=1)), "ends": iso(timedelta(hours=2))})
    assert status == 201 and later["state"] == "pending"
    status, ended = await stack.api("DELETE", f"/api/v1/silences/{later['id']}")
    assert status == 200 and ended["state"] == "expired" and ended["starts"] == ended["ends"]
    status, answer = await stack.api("POST", "/api/v1/silences", json={"matchers": {"x": "=~("}, "ends": "2040-01-01"})
    assert status == 422 and answer["error"]["details"]["path"] == "matchers.x"
    assert answer["error"]["code"]


NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_times_with_an_offset_are_exact_and_without_are_in_the_config_zone():
    _, starts, ends, _ = parse_request({"matchers": {"env": "staging"}, "starts": "2026-12-01T22:00",
                                        "ends": "2026-12-02T02:00:00+00:00"}, "Europe/Berlin", NOW)
    assert starts == datetime(2026, 12, 1, 21, 0, tzinfo=UTC)
    assert ends == datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    _, starts, _, _ = parse_request({"matchers": {"env": "staging"}, "ends": "2026-12-02T02:00Z"}, "UTC", NOW)
    assert starts == NOW


@pytest.mark.parametrize(("request_body", "path"), [
    ([], ""),
    ({"ends": "2026-12-02T02:00"}, "matchers"),
    ({"matchers": {}, "ends": "2026-12-02T02:00"}, "matchers"),
    ({"matchers": {"env": 3}, "ends": "2026-12-02T02:00"}, "matchers.env"),
    ({"matchers": {"env": "=~" + "a" * 300}, "ends": "2026-12-02T02:00"}, "matchers.env"),
    ({"matchers": {"env": "!~[z-a]"}, "ends": "2026-12-02T02:00"}, "matchers.env"),
    ({"matchers": {"env": "prod"}}, "ends"),
    ({"matchers": {"env": "prod"}, "ends": "tomorrow"}, "ends"),
    ({"matchers": {"env": "prod"}, "ends": "2026-11-27T11:00Z"}, "ends"),                   # already past
    ({"matchers": {"env": "prod"}, "starts": "2026-12-03T00:00", "ends": "2026-12-02T00:00"}, "ends"),
    ({"matchers": {"env": "prod"}, "ends": "2028-12-02T00:00"}, "ends"),                    # over a year
    ({"matchers": {"env": "prod"}, "starts": 5, "ends": "2026-12-02T00:00"}, "starts"),
    ({"matchers": {"env": "prod"}, "ends": "2026-12-02T00:00", "comment": ["x"]}, "comment"),
    ({"matchers": {"env": "prod"}, "ends": "2026-12-02T00:00", "comment": "x" * 1001}, "comment"),
    ({"matchers": {"env": "prod"}, "ends": "2026-12-02T00:00", "createdBy": "x"}, "createdBy"),
])
def test_bad_requests_name_their_path(request_body, path):
    with pytest.raises(ApiError) as err:
        parse_request(request_body, "UTC", NOW)
    assert err.value.status == 422 and err.value.details == {"path": path}


