"""Backpressure: past TOCSIN_INTAKE_MAX_BACKLOG alerts waiting for the router, the intake takes nothing
(HTTP 503 `backlogged` with Retry-After, mail 451) until the router has caught up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest

from harness import ONE_TEAM, StackHandle, eventually, free_port
from tocsin.events.streams import ALERTS, ROUTER_ALERTS
from tocsin.intake.backlog import REFRESH
from tocsin.intake.settings import Settings
from tocsin.router import app as router

AM_TOKEN = "alertmanager-token-0001"
PD_TOKEN = "pagerduty-token-000001"
MAIL_TOKEN = "mail-route-token-0001"
BOUND = 5

CONFIG = f"""
{ONE_TEAM}
routes:
  am: {{source: alertmanager, team: infra, token: {AM_TOKEN}}}
  pd: {{source: pagerduty, team: infra, token: {PD_TOKEN}}}
  mail: {{source: email, team: infra, token: {MAIL_TOKEN}}}
"""


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> int:
    port = free_port()
    monkeypatch.setenv("TOCSIN_SMTP", f"127.0.0.1:{port}")
    monkeypatch.setenv("TOCSIN_UDP", "off")
    monkeypatch.setenv("TOCSIN_INTAKE_MAX_BACKLOG", str(BOUND))
    return port


def group(key: str) -> str:
    return json.dumps({"version": "4", "status": "firing",
                       "alerts": [{"status": "firing", "labels": {"alertname": key}, "fingerprint": key}]})


async def post(stack: StackHandle, path: str, body: str, token: str) -> tuple[int, Any, str | None]:
    assert stack.session
    async with stack.session.post(f"{stack.url}{path}", data=body, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers.get("Retry-After")


async def stored(stack: StackHandle) -> int:
    return int((await stack.bus.js.stream_info(ALERTS.name)).state.messages)


async def backlog(stack: StackHandle) -> int:
    info = await stack.bus.js.consumer_info(ALERTS.name, ROUTER_ALERTS.durable)
    return (info.num_pending or 0) + (info.num_ack_pending or 0)


def mail(n: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "zabbix@example.net"
    msg["To"] = f"{MAIL_TOKEN}@tocsin.example.org"
    msg["Subject"] = f"Disk full {n}"
    msg["Message-ID"] = f"<backlog-{n}@example.net>"
    msg.set_content("Only 2 GiB left.")
    return msg


async def test_past_the_bound_nothing_is_accepted_until_the_router_catches_up(stack: StackHandle, smtp: int) -> None:
    await stack.start(CONFIG, services=())   # no router: the backlog only grows
    # No router has ever run, so there is no backlog to read: alerts are taken.
    status, _, _ = await post(stack, "/api/v1/intake/alertmanager", group("before-any-router"), AM_TOKEN)
    assert status == 202
    # The router's durable consumer, as a router that ran once and stopped leaves it.
    await stack.bus.js.add_consumer(ALERTS.name, ROUTER_ALERTS.config())

    accepted = 0
    started = time.monotonic()

    async def until_refused() -> tuple[int, Any, str | None] | None:
        nonlocal accepted
        answer = await post(stack, "/api/v1/intake/alertmanager", group(f"fill-{accepted}"), AM_TOKEN)
        if answer[0] == 202:
            accepted += 1
            return None
        return answer

    status, body, retry_after = await eventually(until_refused, timeout=30, interval=0.02)
    assert status == 503, body
    assert body["error"]["code"] == "backlogged"
    assert body["error"]["details"]["limit"] == BOUND and body["error"]["details"]["backlog"] > BOUND
    assert retry_after is not None and int(retry_after) > 0
    assert accepted + 1 > BOUND
    # The backlog was read about once a second, not once per request.
    assert stack.stack and stack.stack.intake.backlog
    reads = stack.stack.intake.backlog.reads
    assert reads <= math.ceil((time.monotonic() - started) / REFRESH) + 1

    # Nothing is taken while backlogged, at any door.
    before = await stored(stack)
    status, body, _ = await post(stack, "/api/v1/intake/alertmanager", group("refused"), AM_TOKEN)
    assert (status, body["error"]["code"]) == (503, "backlogged")
    status, body, _ = await post(stack, "/v2/enqueue", json.dumps({
        "routing_key": PD_TOKEN, "event_action": "trigger",
        "payload": {"summary": "refused", "source": "db-01", "severity": "critical"}}), "")
    assert (status, body["error"]["code"]) == (503, "backlogged")
    with pytest.raises(aiosmtplib.SMTPDataError) as refused:
        await aiosmtplib.send(mail(1), hostname="127.0.0.1", port=smtp, timeout=10)
    assert refused.value.code == 451
    # Bad requests are still told what is wrong with them first.
    status, body, _ = await post(stack, "/api/v1/intake/alertmanager", group("x"), "not-a-token-at-all")
    assert status == 401
    assert await stored(stack) == before

    # The router comes back, works the backlog off, and the intake takes alerts again.
    task = asyncio.create_task(router.run(stack.stack.router_settings, stack.bus, stack.clock))
    try:
        await eventually(lambda: _zero(backlog(stack)), timeout=60)
        await eventually(lambda: _accepted(stack), timeout=30, interval=0.2)
        _, answer = await aiosmtplib.send(mail(2), hostname="127.0.0.1", port=smtp, timeout=10)
        assert answer.startswith("2.0.0 OK")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_the_bound_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOCSIN_INTAKE_MAX_BACKLOG", raising=False)
    assert Settings.from_env().max_backlog == 20_000
    monkeypatch.setenv("TOCSIN_INTAKE_MAX_BACKLOG", "0")     # no bound
    assert Settings.from_env().max_backlog == 0
    monkeypatch.setenv("TOCSIN_INTAKE_MAX_BACKLOG", "lots")
    with pytest.raises(ValueError):
        Settings.from_env()


async def _zero(value: Any) -> bool:
    return await value == 0  # type: ignore[no-any-return]


async def _accepted(stack: StackHandle) -> bool:
    status, _, _ = await post(stack, "/api/v1/intake/alertmanager", group("after-the-drain"), AM_TOKEN)
    return status == 202
