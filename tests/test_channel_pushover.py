"""Pushover: a local fake of its API (messages and receipts), status → outcome, emergency priority with a
receipt, and the emergency acknowledgement end to end: app acknowledges → callback → receipt checked →
incident acknowledged as the person paged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from provider_fakes import PUSHOVER_TOKEN, PUSHOVER_USER, FakePushover, open_one_incident, team_config

from harness import StackHandle, eventually
from tocsin.events.base import utcnow
from tocsin.events.notify import NotificationRequested
from tocsin.events.signing import read_action_token
from tocsin.notifier.channels.base import ActionLinks, Target
from tocsin.notifier.channels.pushover import PushoverChannel

LINK = "https://tocsin.example/incidents/01J0000000000000000000INC1"
KEY = b"k" * 32


def page(**changes: Any) -> NotificationRequested:
    fields: dict[str, Any] = {
        "id": "notif-0001", "aggregate_id": "inc-0001", "at": utcnow(), "channel_kind": "pushover",
        "channel": "alice/po", "user": "alice", "destination": {}, "incident_number": 42,
        "title": "Disk /var is 97% full", "body": "on db-1, mounted at /var", "severity": "critical", "link": LINK}
    fields.update(changes)
    return NotificationRequested(**fields)


def target(fake: FakePushover, **fields: str) -> Target:
    return Target(fields={"user_key": PUSHOVER_USER, **fields},
                  provider={"token": PUSHOVER_TOKEN, "base_url": fake.url})


@pytest_asyncio.fixture
async def pushover() -> AsyncIterator[FakePushover]:
    async with FakePushover() as fake:
        yield fake


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        yield s


def channel(session: aiohttp.ClientSession) -> PushoverChannel:
    return PushoverChannel(session, ActionLinks("https://tocsin.example", KEY))


def sent(fake: FakePushover, i: int = 0) -> dict[str, str]:
    return dict(parse_qsl(fake.requests[i].body.decode()))


def answer(status: int, body: dict[str, Any] | str, headers: dict[str, str] | None = None) -> Any:
    if isinstance(body, str):
        return lambda _: web.Response(status=status, text=body, headers=headers)
    return lambda _: web.json_response(body, status=status, headers=headers)


PUSHOVER_OUTCOMES = [
    (answer(200, {"status": 1, "request": "r1"}), "ok"),
    (answer(200, {"status": 0, "errors": ["odd"], "request": "r1"}), "permanent"),
    (answer(400, {"user": "invalid", "errors": ["user identifier is invalid"], "status": 0}), "permanent"),
    (answer(400, {"errors": ["message cannot be blank"], "status": 0}), "permanent"),
    (answer(401, {"errors": ["unauthorized"], "status": 0}), "permanent"),
    (answer(429, {"errors": ["application over quota"], "status": 0}, {"Retry-After": "30"}), "retry"),
    (answer(500, "<html>Internal Server Error</html>"), "retry"),
    (answer(503, "busy"), "retry"),
]


@pytest.mark.parametrize(("reply", "expected"), PUSHOVER_OUTCOMES)
async def test_pushover_answer_classifies_the_delivery(reply, expected, pushover, session):
    pushover.answers = [reply]
    result = await channel(session).send(page(severity="warning"), target(pushover))
    assert result.outcome == expected, result
    assert len(pushover.requests) == 1
    if expected != "ok":
        assert result.error.startswith("HTTP ")
        assert PUSHOVER_TOKEN not in result.error


async def test_retry_after_is_reported(pushover, session):
    pushover.answers = [PUSHOVER_OUTCOMES[5][0]]
    result = await channel(session).send(page(), target(pushover))
    assert (result.outcome, result.retry_after) == ("retry", 30.0)
    assert "over quota" in result.error


async def test_real_fake_refuses_a_wrong_user_key_permanently(pushover, session):
    result = await channel(session).send(page(), target(pushover, user_key="u" * 30))
    assert result.outcome == "permanent"
    assert "user identifier is not a valid user" in result.error


async def test_emergency_page_wire_format_and_receipt(pushover, session):
    result = await channel(session).send(page(), target(pushover))

    assert result.outcome == "ok"
    assert result.provider_id in pushover.receipts, "the receipt is the provider id"
    [request] = pushover.requests
    assert (request.method, request.path) == ("POST", "/1/messages.json")
    form = sent(pushover)
    assert form | {"token": PUSHOVER_TOKEN, "user": PUSHOVER_USER, "priority": "2", "retry": "60",
                   "expire": "3600", "title": "#42 [CRITICAL] Disk /var is 97% full",
                   "message": "on db-1, mounted at /var", "url": LINK, "url_title": "Open incident"} == form
    assert form["callback"].startswith("https://tocsin.example/api/v1/callbacks/pushover/")
    assert read_action_token(KEY, form["callback"].rsplit("/", 1)[1])[:2] == ("inc-0001", "alice")


@pytest.mark.parametrize(("changes", "fields", "priority", "emergency"), [
    ({"severity": "error"}, {}, "1", False),
    ({"severity": "warning"}, {}, "0", False),
    ({"severity": "info"}, {}, "-1", False),
    ({"severity": "warning"}, {"priority": "2"}, "2", True),         # the contact asks for emergency
    ({}, {"priority": "1"}, "1", False),
    ({"message_kind": "resolved"}, {}, "0", False),                   # never rings until acknowledged
    ({"message_kind": "acknowledged"}, {"priority": "2"}, "0", False),
])
async def test_priority(changes, fields, priority, emergency, pushover, session):
    await channel(session).send(page(**changes), target(pushover, **fields))
    form = sent(pushover)
    assert form["priority"] == priority
    assert ("retry" in form, "expire" in form, "callback" in form) == (emergency,) * 3


async def test_contact_retry_expire_sound_and_device(pushover, session):
    await channel(session).send(page(), target(pushover, retry="30", expire="600", sound="siren", device="phone"))
    form = sent(pushover)
    assert (form["retry"], form["expire"], form["sound"], form["device"]) == ("30", "600", "siren", "phone")


async def test_limits(pushover, session):
    await channel(session).send(page(title="t" * 400, body="b" * 3000), target(pushover))
    form = sent(pushover)
    assert len(form["title"]) <= 250 and len(form["message"]) <= 1024
    assert form["url"] == LINK


# ------------------------------------------------------------------ end to end: emergency acknowledgement


async def start(stack: StackHandle, fake: FakePushover, fixtures_dir: Any) -> tuple[dict[str, Any], dict[str, str]]:
    await stack.start(team_config(
        f'  pushover: {{token: "{PUSHOVER_TOKEN}", base_url: "{fake.url}"}}',
        f'{{po: {{type: pushover, user_key: "{PUSHOVER_USER}", priority: 2}}}}'))
    incident = await open_one_incident(stack, fixtures_dir)
    await fake.wait_for(1)
    form = sent(fake)

    async def recorded() -> Any:
        detail = await stack.incident(incident["id"])
        return [d for d in detail["deliveries"] if d["status"] == "delivered"]
    [delivery] = await eventually(recorded)
    assert delivery["provider_id"] in fake.receipts
    return incident, form | {"receipt": delivery["provider_id"]}


def callback_body(receipt: str) -> dict[str, str]:
    # What Pushover posts to the callback URL.
    return {"receipt": receipt, "acknowledged": "1", "acknowledged_at": "1767225600",
            "acknowledged_by": PUSHOVER_USER, "acknowledged_by_device": "phone"}


async def test_emergency_acknowledgement_acknowledges_as_the_person_paged(stack, pushover, fixtures_dir):
    incident, form = await start(stack, pushover, fixtures_dir)
    assert form["priority"] == "2" and form["callback"].startswith(f"{stack.url}/api/v1/callbacks/pushover/")
    assert form["user"] == PUSHOVER_USER, "the contact's user key comes from the config, not the command"

    # A callback before Pushover has the acknowledgement changes nothing.
    async with stack.session.post(form["callback"], data=callback_body(form["receipt"])) as resp:
        assert resp.status == 409
        assert (await resp.json())["error"]["code"] == "not_acknowledged"
    assert (await stack.incident(incident["id"]))["status"] == "triggered"

    pushover.acknowledge(form["receipt"])
    async with stack.session.post(form["callback"], data=callback_body(form["receipt"])) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["status"] == "acknowledged"

    async def acknowledged() -> Any:
        detail = await stack.incident(incident["id"])
        return detail if detail["status"] == "acknowledged" else None
    assert (await eventually(acknowledged))["acknowledged_by"] == "alice"
    receipt_checks = [r for r in pushover.requests if r.method == "GET"]
    assert receipt_checks and receipt_checks[-1].path == f"/1/receipts/{form['receipt']}.json"


async def test_a_callback_with_another_receipt_or_a_forged_link_changes_nothing(stack, pushover, fixtures_dir):
    incident, form = await start(stack, pushover, fixtures_dir)
    # Another emergency message of the same app, acknowledged: its receipt is not this page's.
    other = "r" + "7" * 29
    pushover.receipts[other] = {"acknowledged": 1}
    async with stack.session.post(form["callback"], data=callback_body(other)) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "wrong_receipt"

    pushover.acknowledge(form["receipt"])
    token = form["callback"].rsplit("/", 1)[1]
    forged = form["callback"].replace(token, token[:-3] + ("xyz" if not token.endswith("xyz") else "abc"))
    async with stack.session.post(forged, data=callback_body(form["receipt"])) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "bad_link"
    async with stack.session.post(form["callback"], data={"receipt": "../../etc"}) as resp:
        assert resp.status == 422
    await asyncio.sleep(0.2)
    assert (await stack.incident(incident["id"]))["status"] == "triggered"


# ------------------------------------------------------------------ the fallback: polling receipts


async def start_polling(stack: StackHandle, fake: FakePushover, fixtures_dir: Any,
                        poll: str) -> tuple[dict[str, Any], str]:
    await stack.start(team_config(
        f'  pushover: {{token: "{PUSHOVER_TOKEN}", base_url: "{fake.url}", poll: {poll}}}',
        f'{{po: {{type: pushover, user_key: "{PUSHOVER_USER}", priority: 2}}}}'))
    incident = await open_one_incident(stack, fixtures_dir)

    async def recorded() -> Any:
        detail = await stack.incident(incident["id"])
        return [d["provider_id"] for d in detail["deliveries"] if d["status"] == "delivered"]
    [receipt] = await eventually(recorded)
    return incident, receipt


async def test_polling_acknowledges_once_pushover_reports_the_receipt_acknowledged(stack, pushover, fixtures_dir):
    from tocsin.api.context import CONTEXT
    from tocsin.api.pushover_receipts import poll_once
    incident, receipt = await start_polling(stack, pushover, fixtures_dir, "1h")   # the loop stays out of the way
    ctx = stack.stack.runner.app[CONTEXT]

    assert await poll_once(ctx) == 0
    assert [r.path for r in pushover.requests if r.method == "GET"] == [f"/1/receipts/{receipt}.json"]
    assert (await stack.incident(incident["id"]))["status"] == "triggered"

    pushover.acknowledge(receipt)
    assert await poll_once(ctx) == 1

    async def acknowledged() -> Any:
        detail = await stack.incident(incident["id"])
        return detail if detail["status"] == "acknowledged" else None
    detail = await eventually(acknowledged)
    assert detail["acknowledged_by"] == "alice"
    assert any(e.get("via") == "pushover" for e in detail["timeline"] if e["type"] == "incident.acknowledged")
    # Acknowledged: its receipt is not asked about again.
    asked = len([r for r in pushover.requests if r.method == "GET"])
    assert await poll_once(ctx) == 0
    assert len([r for r in pushover.requests if r.method == "GET"]) == asked


async def test_the_api_polls_by_itself_when_told_to(stack, pushover, fixtures_dir):
    incident, receipt = await start_polling(stack, pushover, fixtures_dir, "5s")
    pushover.acknowledge(receipt)

    async def acknowledged() -> Any:
        detail = await stack.incident(incident["id"])
        return detail if detail["status"] == "acknowledged" else None
    assert (await eventually(acknowledged, timeout=40))["acknowledged_by"] == "alice"
