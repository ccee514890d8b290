"""Fallback: a page that fails for good goes to the person's next contact at once, once, while it matters.

Every service runs in this process against real NATS and Postgres; ntfy and the webhook are local fakes.
alice's rules: ntfy first, then her webhook after an hour (the hour never passes in these tests, so a page
on the webhook can only be the fallback).
"""

from __future__ import annotations

import asyncio
import json

import msgspec
from aiohttp import web

from harness import FakeProvider, StackHandle, eventually
from tocsin.events import deliveries, incidents
from tocsin.events.streams import INCIDENTS

TOKEN = "fallback-route-token-0001"


def config(ntfy: FakeProvider, hook: FakeProvider, *, shared: bool = False, third: bool = False) -> str:
    channel = f"""
channels:
  ops-hook: {{type: webhook, url: "{hook.url}/shared"}}
""" if shared else ""
    extra_contact = f', out: {{type: webhook, url: "{hook.url}/third"}}' if third else ""
    extra_rule = ", {contact: out, after: 2h}" if third else ""
    return f"""
security: {{allow_private_networks: true}}
providers: {{ntfy: {{server: "{ntfy.url}"}}}}
users:
  alice:
    contacts:
      {{push: {{type: ntfy, topic: alice-pages}}, hook: {{type: webhook, url: "{hook.url}/alice"}}{extra_contact}}}
    rules: [{{contact: push}}, {{contact: hook, after: 1h}}{extra_rule}]
{channel}
teams:
  infra:
    members: [alice]
    {"channels: [ops-hook]" if shared else ""}
    rotations: {{primary: {{members: [alice], shift: 1w, start: "2026-01-05T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"], wait: 1h}}]}}
routes:
  prom: {{source: alertmanager, team: infra, token: {TOKEN}}}
"""


def alert(fingerprint: str = "fp-1") -> str:
    return json.dumps({"version": "4", "status": "firing", "alerts": [{
        "status": "firing", "labels": {"alertname": fingerprint}, "fingerprint": fingerprint,
        "annotations": {"summary": f"alert {fingerprint}"}}]})


def refuse(_: object) -> web.Response:
    return web.Response(status=400, text="unknown topic")


async def timeline(stack: StackHandle, incident_id: str) -> list[incidents.IncidentEvent]:
    return [incidents.decoder.decode(d) for _, d in
            await stack.bus.read_subject(INCIDENTS.name, incidents.subject(incident_id))]


async def fallbacks(stack: StackHandle, incident_id: str) -> list[incidents.ContactFellBack]:
    return [e for e in await timeline(stack, incident_id) if isinstance(e, incidents.ContactFellBack)]


async def only_incident(stack: StackHandle) -> dict:
    async def one() -> dict | None:
        items = await stack.incidents()
        return items[0] if items else None
    return await eventually(one, timeout=20)


def on(hook: FakeProvider, path: str) -> list:
    return [r for r in hook.requests if r.path == path]


async def arrived(hook: FakeProvider, path: str) -> list:
    return on(hook, path)


async def test_permanent_failure_pages_the_next_contact_at_once_and_records_it(stack, ntfy, webhook):
    ntfy.default = refuse
    await stack.start(config(ntfy, webhook))
    assert (await stack.post_alert("alertmanager", alert(), TOKEN))[0] == 202

    await eventually(lambda: arrived(webhook, "/alice"), timeout=20)
    incident = await only_incident(stack)
    [fell] = await eventually(lambda: fallbacks(stack, incident["id"]))
    assert (fell.user, fell.failed_contact, fell.contact) == ("alice", "push", "hook")
    assert fell.error.startswith("HTTP 400")
    [page] = on(webhook, "/alice")
    body = page.json()
    assert (body["kind"], body["incident_id"], body["user"]) == ("page", incident["id"], "alice")
    assert body["notification_id"] == fell.notification_id
    detail = await eventually(lambda: _with_type(stack, incident["id"], "incident.fallback"))
    assert [e["type"] for e in detail["timeline"]].count("incident.fallback") == 1
    await asyncio.sleep(1.0)
    assert len(on(webhook, "/alice")) == 1, "one fallback for one failure"


async def _with_type(stack: StackHandle, incident_id: str, kind: str) -> dict | None:
    detail = await stack.incident(incident_id)
    return detail if kind in [e["type"] for e in detail["timeline"]] else None


async def test_a_redelivered_failure_falls_back_once(stack, ntfy, webhook):
    ntfy.default = refuse
    await stack.start(config(ntfy, webhook))
    assert (await stack.post_alert("alertmanager", alert(), TOKEN))[0] == 202
    incident = await only_incident(stack)
    [fell] = await eventually(lambda: fallbacks(stack, incident["id"]), timeout=20)
    await eventually(lambda: arrived(webhook, "/alice"))
    failed = [deliveries.decoder.decode(d) for _, d in
              await stack.bus.read_subject("DELIVERIES", deliveries.subject("ntfy"))]
    [event] = [e for e in failed if isinstance(e, deliveries.DeliveryFailed)]

    # The same failure again, past JetStream's dedup (another Nats-Msg-Id), as after a long outage.
    for n in range(3):
        await stack.bus.js.publish(deliveries.subject("ntfy"), msgspec.json.encode(event),
                                   headers={"Nats-Msg-Id": f"again-{n}"})

    async def consumed() -> bool:
        info = await stack.bus.js.consumer_info("DELIVERIES", "router-deliveries")
        return info.num_pending == 0 and info.num_ack_pending == 0
    await eventually(consumed, timeout=20)
    await asyncio.sleep(0.5)
    assert [f.id for f in await fallbacks(stack, incident["id"])] == [fell.id]
    assert len(on(webhook, "/alice")) == 1
    assert len(ntfy.requests) == 1


async def test_a_failed_fallback_falls_back_again_to_the_contact_after(stack, ntfy, webhook):
    ntfy.default = refuse
    webhook.default = lambda r: web.Response(status=410 if r.path == "/alice" else 200)
    await stack.start(config(ntfy, webhook, third=True))
    assert (await stack.post_alert("alertmanager", alert(), TOKEN))[0] == 202
    incident = await only_incident(stack)

    chain = await eventually(lambda: _at_least(stack, incident["id"], 2), timeout=30)
    assert [(f.failed_contact, f.contact) for f in chain] == [("push", "hook"), ("hook", "out")]
    await eventually(lambda: arrived(webhook, "/third"))
    assert len(on(webhook, "/alice")) == 1


async def _at_least(stack: StackHandle, incident_id: str, n: int) -> list | None:
    items = await fallbacks(stack, incident_id)
    return items if len(items) >= n else None


async def test_no_contact_left_is_recorded_on_the_timeline(stack, ntfy, webhook):
    ntfy.default = refuse
    webhook.default = 403
    await stack.start(config(ntfy, webhook))
    assert (await stack.post_alert("alertmanager", alert(), TOKEN))[0] == 202
    incident = await only_incident(stack)
    chain = await eventually(lambda: _at_least(stack, incident["id"], 2), timeout=30)
    assert [(f.failed_contact, f.contact) for f in chain] == [("push", "hook"), ("hook", "")]


async def test_no_fallback_once_acknowledged(stack, ntfy, webhook):
    release = asyncio.Event()

    async def refuse_later(_: object) -> web.Response:
        await release.wait()
        return web.Response(status=400, text="unknown topic")

    ntfy.default = refuse_later
    await stack.start(config(ntfy, webhook))
    assert (await stack.post_alert("alertmanager", alert(), TOKEN))[0] == 202
    incident = await only_incident(stack)
    await ntfy.wait_for(1, timeout=20)
    status, _ = await stack.api("POST", f"/api/v1/incidents/{incident['id']}/acknowledge", user="alice")
    assert status == 200
    release.set()   # the page fails only now, after the acknowledgement

    async def failure_consumed() -> bool:
        events = [deliveries.decoder.decode(d) for _, d in
                  await stack.bus.read_subject("DELIVERIES", deliveries.subject("ntfy"))]
        info = await stack.bus.js.consumer_info("DELIVERIES", "router-deliveries")
        return (any(isinstance(e, deliveries.DeliveryFailed) for e in events)
                and info.num_pending == 0 and info.num_ack_pending == 0)
    await eventually(failure_consumed, timeout=20)
    await asyncio.sleep(0.5)
    assert await fallbacks(stack, incident["id"]) == []
    assert webhook.requests == []


async def test_a_shared_channel_failure_has_no_fallback(stack, ntfy, webhook):
    webhook.default = lambda r: web.Response(status=404 if r.path == "/shared" else 200)
    await stack.start(config(ntfy, webhook, shared=True))
    assert (await stack.post_alert("alertmanager", alert(), TOKEN))[0] == 202
    incident = await only_incident(stack)
    await eventually(lambda: arrived(webhook, "/shared"), timeout=20)

    async def shared_failed() -> bool:
        info = await stack.bus.js.consumer_info("DELIVERIES", "router-deliveries")
        events = [deliveries.decoder.decode(d) for _, d in
                  await stack.bus.read_subject("DELIVERIES", deliveries.subject("webhook"))]
        return (any(isinstance(e, deliveries.DeliveryFailed) and e.channel == "ops-hook" for e in events)
                and info.num_pending == 0 and info.num_ack_pending == 0)
    await eventually(shared_failed, timeout=20)
    await asyncio.sleep(0.5)
    assert await fallbacks(stack, incident["id"]) == []
    assert on(webhook, "/alice") == [], "alice's ntfy page worked; her webhook rule waits its hour"
