"""The path of one page through every service, in one process, against real NATS and Postgres."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path

from harness import FakeProvider, StackHandle, eventually
from tocsin.events.keys import env_secret_key
from tocsin.events.signing import read_action_token

ROUTE_TOKEN = "route-token-example-0001"


def config(ntfy: FakeProvider, hook: FakeProvider | None = None, wait: str = "5m") -> str:
    channels = f"""
channels:
  ops-hook: {{type: webhook, url: "{hook.url}/hook", secret: "s3cret-hook"}}
""" if hook else ""
    return f"""
timezone: Europe/Berlin
security: {{allow_private_networks: true}}
providers:
  ntfy: {{server: "{ntfy.url}"}}
users:
  alice:
    contacts: {{push: {{type: ntfy, topic: alice-pages}}}}
  bob:
    contacts: {{push: {{type: ntfy, topic: bob-pages}}}}
{channels}
teams:
  infra:
    members: [alice, bob]
    {"channels: [ops-hook]" if hook else ""}
    rotations:
      primary: {{members: [alice, bob], shift: 1w, start: "2026-01-05T09:00"}}
    overrides:
      - {{rotation: primary, user: alice, start: "2020-01-01T00:00", end: "2040-01-01T00:00"}}
    escalation:
      steps:
        - {{notify: ["rotation:primary"], wait: {wait}}}
        - {{notify: ["user:bob"], wait: {wait}}}
routes:
  prod:
    source: alertmanager
    team: infra
    token: {ROUTE_TOKEN}
"""


def topics(provider: FakeProvider) -> list[str]:
    return [r.json()["topic"] for r in provider.requests]


async def open_incident(stack: StackHandle, fixtures_dir: Path, ntfy: FakeProvider) -> dict:
    body = (fixtures_dir / "alertmanager" / "group-firing-2.json").read_bytes()
    status, answer = await stack.post_alert("alertmanager", body, ROUTE_TOKEN)
    assert status == 202, answer
    assert answer["accepted"] == 2
    await ntfy.wait_for(2)
    items = await eventually(lambda: _items(stack, 2))
    return items


async def _items(stack: StackHandle, n: int) -> list[dict] | None:
    items = await stack.incidents()
    return items if len(items) >= n else None


async def test_alert_pages_the_on_call_person(stack, ntfy, fixtures_dir):
    await stack.start(config(ntfy))
    items = await open_incident(stack, fixtures_dir, ntfy)
    assert topics(ntfy) == ["alice-pages", "alice-pages"]
    page = ntfy.requests[0].json()
    assert page["priority"] == 5
    assert "Disk /var is 9" in page["title"]
    assert page["click"].startswith(stack.url + "/incidents/")
    assert {i["title"] for i in items} == {"Disk /var is 95% full", "Disk /var is 97% full"}
    assert sorted(i["number"] for i in items) == [1, 2]
    detail = await eventually(lambda: _delivered(stack, items[0]["id"]))
    assert detail["deliveries"][0]["status"] == "delivered"
    assert detail["deliveries"][0]["target"] == "alice"
    assert [e["type"] for e in detail["timeline"]][:2] == ["incident.opened", "incident.paged"]


async def _delivered(stack: StackHandle, incident_id: str) -> dict | None:
    detail = await stack.incident(incident_id)
    return detail if detail["deliveries"] and detail["deliveries"][0]["status"] == "delivered" else None


async def test_repeated_alert_attaches_instead_of_paging_again(stack, ntfy, fixtures_dir):
    await stack.start(config(ntfy))
    await open_incident(stack, fixtures_dir, ntfy)
    body = (fixtures_dir / "alertmanager" / "group-firing-2.json").read_bytes()
    assert (await stack.post_alert("alertmanager", body, ROUTE_TOKEN))[0] == 202
    items = await eventually(lambda: _counted(stack))
    assert len(items) == 2
    assert len(ntfy.requests) == 2


async def _counted(stack: StackHandle) -> list[dict] | None:
    items = await stack.incidents()
    return items if all(i["alert_count"] == 2 for i in items) else None


async def test_unacknowledged_incident_escalates_after_its_wait(stack, ntfy, clock, fixtures_dir):
    await stack.start(config(ntfy))
    await open_incident(stack, fixtures_dir, ntfy)
    clock.advance(timedelta(minutes=4))
    await eventually(lambda: _timers(stack, "pending", 2))
    assert len(ntfy.requests) == 2  # not yet: the wait is 5 minutes
    clock.advance(timedelta(minutes=2))
    await ntfy.wait_for(4)
    assert topics(ntfy)[2:] == ["bob-pages", "bob-pages"]
    assert "Escalated" in ntfy.requests[2].json()["title"]


async def _timers(stack: StackHandle, state: str, n: int) -> bool:
    count = await stack.pool.fetchval("SELECT count(*) FROM scheduler_timers WHERE state = $1", state)
    return bool(count == n)


async def test_acknowledged_incident_does_not_escalate(stack, ntfy, clock, fixtures_dir):
    await stack.start(config(ntfy))
    items = await open_incident(stack, fixtures_dir, ntfy)
    for item in items:
        status, body = await stack.api("POST", f"/api/v1/incidents/{item['id']}/acknowledge", user="alice")
        assert status == 200, body
        assert body["status"] == "acknowledged" and body["acknowledged_by"] == "alice"
    await eventually(lambda: _timers(stack, "cancelled", 2))
    clock.advance(timedelta(minutes=30))
    await eventually(lambda: _timers(stack, "cancelled", 2))
    await _settle()
    assert len(ntfy.requests) == 2


async def _settle() -> None:
    import asyncio
    await asyncio.sleep(0.6)  # three scheduler ticks: anything due would have been fired by now


async def test_resolved_alert_resolves_the_incident(stack, ntfy, clock, fixtures_dir):
    await stack.start(config(ntfy))
    await open_incident(stack, fixtures_dir, ntfy)
    resolved = (fixtures_dir / "alertmanager" / "group-all-resolved.json").read_bytes()
    assert (await stack.post_alert("alertmanager", resolved, ROUTE_TOKEN))[0] == 202
    items = await eventually(lambda: _all_status(stack, "resolved"))
    assert all(i["resolved_by"] == "system" for i in items)
    clock.advance(timedelta(hours=1))
    await _settle()
    assert len(ntfy.requests) == 2  # no escalation after the resolve


async def _all_status(stack: StackHandle, status: str) -> list[dict] | None:
    items = await stack.incidents()
    return items if items and all(i["status"] == status for i in items) else None


async def test_new_alert_after_resolve_opens_a_new_incident(stack, ntfy, fixtures_dir):
    await stack.start(config(ntfy))
    await open_incident(stack, fixtures_dir, ntfy)
    resolved = (fixtures_dir / "alertmanager" / "group-all-resolved.json").read_bytes()
    await stack.post_alert("alertmanager", resolved, ROUTE_TOKEN)
    await eventually(lambda: _all_status(stack, "resolved"))
    firing = (fixtures_dir / "alertmanager" / "group-firing-2.json").read_bytes()
    await stack.post_alert("alertmanager", firing, ROUTE_TOKEN)
    await ntfy.wait_for(4)
    items = await eventually(lambda: _items(stack, 4))
    assert sorted(i["number"] for i in items) == [1, 2, 3, 4]


async def test_team_channel_gets_a_signed_webhook(stack, ntfy, webhook, fixtures_dir):
    import hashlib
    import hmac
    await stack.start(config(ntfy, webhook))
    await open_incident(stack, fixtures_dir, ntfy)
    requests = await webhook.wait_for(2)
    for r in requests:
        ts = r.headers["X-Tocsin-Timestamp"]
        expected = "sha256=" + hmac.new(b"s3cret-hook", ts.encode() + b"." + r.body, hashlib.sha256).hexdigest()
        assert r.headers["X-Tocsin-Signature"] == expected
        assert json.loads(r.body)["kind"] == "page"


async def test_human_actions_and_conflicts(stack, ntfy, fixtures_dir):
    await stack.start(config(ntfy))
    items = await open_incident(stack, fixtures_dir, ntfy)
    iid = items[0]["id"]
    status, body = await stack.api("POST", f"/api/v1/incidents/{iid}/notes", json={"note": "looking"})
    assert status == 200, body
    status, body = await stack.api("POST", f"/api/v1/incidents/{iid}/resolve", json={"note": "fixed"})
    assert status == 200 and body["status"] == "resolved" and body["resolved_by"] == "alice"
    for action in ("acknowledge", "resolve", "escalate"):
        status, body = await stack.api("POST", f"/api/v1/incidents/{iid}/{action}")
        assert status == 409, (action, body)
        assert body["error"]["code"] == "conflict"
    status, body = await stack.api("POST", f"/api/v1/incidents/{iid}/notes", json={"note": ""})
    assert status == 422
    status, body = await stack.api("POST", "/api/v1/incidents/nope/acknowledge")
    assert status == 404
    detail = await eventually(lambda: _timeline_has(stack, iid, "incident.resolved"))
    notes = [e["note"] for e in detail["timeline"] if e["type"] == "incident.note_added"]
    assert notes == ["looking", "fixed"]


async def _timeline_has(stack: StackHandle, iid: str, kind: str) -> dict | None:
    detail = await stack.incident(iid)
    return detail if any(e["type"] == kind for e in detail["timeline"]) else None


async def test_escalate_now_pages_the_next_step(stack, ntfy, fixtures_dir):
    await stack.start(config(ntfy))
    items = await open_incident(stack, fixtures_dir, ntfy)
    status, body = await stack.api("POST", f"/api/v1/incidents/{items[0]['id']}/escalate")
    assert status == 200, body
    await ntfy.wait_for(3)
    assert topics(ntfy)[2] == "bob-pages"


async def test_oncall_names_the_override(stack, ntfy):
    await stack.start(config(ntfy))
    status, body = await stack.api("GET", "/api/v1/oncall")
    assert status == 200
    rotation = body["teams"][0]["rotations"][0]
    assert rotation["rotation"] == "primary" and rotation["user"] == "alice" and rotation["override"] is True


async def test_api_requires_a_valid_token(stack, ntfy):
    await stack.start(config(ntfy))
    assert stack.session
    async with stack.session.get(f"{stack.url}/api/v1/incidents") as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "unauthorized"
    async with stack.session.get(f"{stack.url}/api/v1/incidents",
                                 headers={"Authorization": "Bearer tcs_nope"}) as resp:
        assert resp.status == 401
    status, _ = await stack.api("GET", "/api/v1/incidents?limit=0")
    assert status == 422
    status, _ = await stack.api("GET", "/api/v1/incidents?cursor=@@@")
    assert status == 422
    async with stack.session.get(f"{stack.url}/readyz") as resp:
        assert resp.status == 200 and (await resp.json())["postgres"] == "ok"


async def test_sixteen_concurrent_identical_posts_make_one_incident(stack, ntfy):
    import asyncio
    await stack.start(config(ntfy))
    body = json.dumps({"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "Same"}, "fingerprint": "same-fp"}]})
    answers = await asyncio.gather(*(stack.post_alert("alertmanager", body, ROUTE_TOKEN) for _ in range(16)))
    assert [status for status, _ in answers] == [202] * 16
    items = await eventually(lambda: _counted_n(stack, 16))
    assert len(items) == 1 and items[0]["number"] == 1
    await asyncio.sleep(0.5)
    assert len(ntfy.requests) == 1


async def _counted_n(stack: StackHandle, n: int) -> list[dict] | None:
    items = await stack.incidents()
    return items if items and sum(i["alert_count"] for i in items) == n else None


async def test_two_routers_racing_on_one_dedup_key_open_one_incident(stack, ntfy):
    import asyncio

    from tocsin.events.bus import Bus
    from tocsin.router import app as router
    from tocsin.router.settings import Settings as RouterSettings
    await stack.start(config(ntfy), services=("scheduler", "notifier"))
    buses = [await Bus.connect(stack.nats_url, f"router-{i}") for i in range(2)]
    settings = RouterSettings(nats_url=stack.nats_url, public_url=stack.url, batch=1)
    tasks = [asyncio.create_task(router.run(settings, b)) for b in buses]
    try:
        # Different routes would be parallel anyway: put the race on one key, from many alerts at once.
        bodies = [json.dumps({"version": "4", "alerts": [
            {"status": "firing", "labels": {"alertname": "Race", "n": str(i)}, "fingerprint": "race-fp"}]})
            for i in range(24)]
        answers = await asyncio.gather(*(stack.post_alert("alertmanager", b, ROUTE_TOKEN) for b in bodies))
        assert {status for status, _ in answers} == {202}
        items = await eventually(lambda: _counted_n(stack, 24), timeout=30)
        assert len(items) == 1
        await asyncio.sleep(0.5)
        assert len(ntfy.requests) == 1
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for b in buses:
            await b.close()


async def test_group_by_folds_alerts_into_one_incident_that_resolves_when_all_have(stack, ntfy):
    text = config(ntfy).replace(f"    token: {ROUTE_TOKEN}", f"    token: {ROUTE_TOKEN}\n    group_by: [alertname]")
    await stack.start(text)

    def body(fp: str, status: str = "firing", name: str = "DiskFull") -> str:
        return json.dumps({"version": "4", "alerts": [
            {"status": status, "labels": {"alertname": name, "instance": fp}, "fingerprint": fp}]})
    for fp in ("db-01", "db-02", "db-03"):
        assert (await stack.post_alert("alertmanager", body(fp), ROUTE_TOKEN))[0] == 202
    assert (await stack.post_alert("alertmanager", body("web-01", name="HighLatency"), ROUTE_TOKEN))[0] == 202
    items = await eventually(lambda: _counted_n(stack, 4))
    assert sorted(i["alert_count"] for i in items) == [1, 3]
    await asyncio.sleep(0.3)
    assert len(ntfy.requests) == 2          # one page per group, not per alert
    for fp in ("db-01", "db-02"):
        await stack.post_alert("alertmanager", body(fp, "resolved"), ROUTE_TOKEN)
    await eventually(lambda: _counted_n(stack, 6))
    disk = next(i for i in await stack.incidents() if i["alert_count"] == 5)
    assert disk["status"] == "triggered"    # db-03 still fires
    await stack.post_alert("alertmanager", body("db-03", "resolved"), ROUTE_TOKEN)
    resolved = await eventually(lambda: _resolved_count(stack, 1))
    assert resolved[0]["title"] == disk["title"]


async def _resolved_count(stack: StackHandle, n: int) -> list[dict] | None:
    items = await stack.incidents(status="resolved")
    return items if len(items) == n else None


async def test_reminders_while_acknowledged_stop_at_resolve(stack, ntfy, clock, fixtures_dir):
    text = config(ntfy).replace("    escalation:", "    reminders: {every: 15m}\n    escalation:", 1)
    await stack.start(text)
    items = await open_incident(stack, fixtures_dir, ntfy)
    for item in items:
        status, _ = await stack.api("POST", f"/api/v1/incidents/{item['id']}/acknowledge", user="bob")
        assert status == 200
    await eventually(lambda: _timers_of_kind(stack, "remind", "pending", 2))
    clock.advance(timedelta(minutes=16))
    await ntfy.wait_for(4)
    for reminder in ntfy.requests[2:4]:
        assert reminder.json()["topic"] == "bob-pages"       # whoever acknowledged it
        assert reminder.json()["title"].startswith("Reminder: ")
    clock.advance(timedelta(minutes=16))
    await ntfy.wait_for(6)                  # and again, every 15 minutes
    for item in items:
        status, _ = await stack.api("POST", f"/api/v1/incidents/{item['id']}/resolve")
        assert status == 200
    await eventually(lambda: _timers_of_kind(stack, "remind", "pending", 0))
    clock.advance(timedelta(hours=2))
    await _settle()
    assert len(ntfy.requests) == 6
    assert all(r.json()["title"].startswith("Reminder: ") for r in ntfy.requests[2:])


async def _timers_of_kind(stack: StackHandle, kind: str, state: str, n: int) -> bool:
    count = await stack.pool.fetchval("SELECT count(*) FROM scheduler_timers WHERE kind = $1 AND state = $2",
                                      kind, state)
    return bool(count == n)


def silenced_config(ntfy: FakeProvider, minutes: int) -> str:
    from datetime import UTC, datetime
    ends = (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M")
    # timezone UTC, so the silence's local times are UTC
    return config(ntfy).replace("timezone: Europe/Berlin", "timezone: UTC") + f"""
silences:
  - {{matchers: {{alertname: DiskFull, instance: "=~db-0[12]:9100"}}, starts: "2020-01-01T00:00",
     ends: "{ends}", comment: maintenance}}
"""


async def test_a_silenced_alert_is_recorded_not_paged_and_pages_when_the_silence_ends(stack, ntfy, clock,
                                                                                    fixtures_dir):
    await stack.start(silenced_config(ntfy, 60))
    body = (fixtures_dir / "alertmanager" / "group-firing-2.json").read_bytes()
    assert (await stack.post_alert("alertmanager", body, ROUTE_TOKEN))[0] == 202
    items = await eventually(lambda: _items(stack, 2))
    for item in items:
        detail = await eventually(lambda i=item: _timeline_has(stack, i["id"], "incident.silenced"))
        silenced = next(e for e in detail["timeline"] if e["type"] == "incident.silenced")
        assert silenced["comment"] == "maintenance"
    await _settle()
    assert ntfy.requests == []
    clock.advance(timedelta(minutes=61))
    await ntfy.wait_for(2)
    assert topics(ntfy) == ["alice-pages", "alice-pages"]


async def test_a_silenced_incident_resolved_before_the_end_never_pages(stack, ntfy, clock, fixtures_dir):
    await stack.start(silenced_config(ntfy, 60))
    firing = (fixtures_dir / "alertmanager" / "group-firing-2.json").read_bytes()
    resolved = (fixtures_dir / "alertmanager" / "group-all-resolved.json").read_bytes()
    await stack.post_alert("alertmanager", firing, ROUTE_TOKEN)
    await eventually(lambda: _items(stack, 2))
    await stack.post_alert("alertmanager", resolved, ROUTE_TOKEN)
    await eventually(lambda: _all_status(stack, "resolved"))
    clock.advance(timedelta(hours=2))
    await _settle()
    assert ntfy.requests == []


async def test_shift_reminder_tells_the_next_person_once(stack, ntfy, clock, monkeypatch):
    from datetime import UTC, datetime
    monkeypatch.setenv("TOCSIN_SCHEDULER_SHIFT_CHECK", "0.2")
    first_handoff = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    await stack.start(f"""
timezone: UTC
security: {{allow_private_networks: true}}
providers: {{ntfy: {{server: "{ntfy.url}"}}}}
users:
  alice: {{contacts: {{push: {{type: ntfy, topic: alice-pages}}}}}}
  bob: {{contacts: {{push: {{type: ntfy, topic: bob-pages}}}}}}
teams:
  infra:
    members: [alice, bob]
    rotations: {{primary: {{members: [alice, bob], shift: 1d, start: "{first_handoff}"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"]}}]}}
    shift_reminder: 24h
""")
    [reminder] = await ntfy.wait_for(1)
    assert reminder.json()["topic"] == "alice-pages"          # alice takes over in two hours
    assert "On call for infra (primary) from" in reminder.json()["title"]
    await _settle()
    assert len(ntfy.requests) == 1                             # once, though the scheduler ticks on
    clock.advance(timedelta(hours=3))                          # bob's shift is now less than 24 h away
    await ntfy.wait_for(2)
    assert ntfy.requests[1].json()["topic"] == "bob-pages"
    await _settle()
    assert len(ntfy.requests) == 2
    count = await stack.pool.fetchval("SELECT count(*) FROM scheduler_shift_reminders")
    assert count == 2


async def test_ntfy_action_buttons_acknowledge_as_the_person_paged(stack, ntfy, fixtures_dir):
    await stack.start(config(ntfy))
    await open_incident(stack, fixtures_dir, ntfy)
    page = ntfy.requests[0].json()
    buttons = {a["label"]: a for a in page["actions"]}
    assert buttons["Open incident"]["action"] == "view"
    ack = buttons["Acknowledge"]
    assert ack["action"] == "http" and ack["method"] == "POST"
    assert ack["url"].startswith(f"{stack.url}/api/v1/answer/") and ack["url"].endswith("?action=acknowledge")
    token = ack["url"].split("/answer/")[1].split("?")[0]
    incident_id, user, _ = read_action_token(env_secret_key(), token)
    assert user == "alice"
    incident = await stack.incident(incident_id)
    assert incident["status"] == "triggered"

    # Following the link (a mail scanner, a link preview) only shows a confirm page.
    async with stack.session.get(ack["url"].split("?")[0]) as resp:
        assert resp.status == 200
        text = await resp.text()
        assert "answering as <b>alice</b>" in text and "method=post" in text
    assert (await stack.incident(incident["id"]))["status"] == "triggered"

    # A forged or altered token is refused and changes nothing.
    forged = ack["url"].replace("/answer/", "/answer/x")
    async with stack.session.post(forged, headers={"Accept": "application/json"}) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "bad_link"

    async with stack.session.post(ack["url"], headers=ack["headers"]) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "acknowledged"
    detail = await eventually(lambda: _acknowledged(stack, incident["id"]))
    assert detail["acknowledged_by"] == "alice"
    # Pressing it again is harmless; resolving from the same notification works too.
    async with stack.session.post(ack["url"], headers=ack["headers"]) as resp:
        assert resp.status == 200
    async with stack.session.post(buttons["Resolve"]["url"], headers={"Accept": "application/json"}) as resp:
        assert (await resp.json())["status"] == "resolved"


async def _acknowledged(stack: StackHandle, incident_id: str) -> dict | None:
    detail = await stack.incident(incident_id)
    return detail if detail["status"] == "acknowledged" else None
