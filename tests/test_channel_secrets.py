"""No secret of the email, SMS, voice and Pushover channels (SMTP password, Twilio auth token, Pushover
application token and user key) appears in any error recorded for a failed delivery, in the delivery ledger,
or in any log line, even when the provider quotes the whole request back in its error.

A running notifier on real NATS, fed commands as the router sends them (public fields only), against
providers that fail in the most talkative way they can.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from provider_fakes import (
    PUSHOVER_TOKEN,
    PUSHOVER_USER,
    SMTP_PASSWORD,
    SMTP_USER,
    TWILIO_SID,
    TWILIO_TOKEN,
    FakePushover,
    FakeTwilio,
    SmtpSink,
)

from harness import Received, eventually, free_port
from tocsin.events import deliveries, notify
from tocsin.events.base import new_id, utcnow
from tocsin.events.bus import Bus
from tocsin.events.config import CONFIG_SUBJECT, ConfigApplied, parse_config
from tocsin.events.notify import NotificationRequested
from tocsin.events.streams import DELIVERIES, DELIVERY_LEDGER_BUCKET
from tocsin.notifier import app as notifier_app
from tocsin.notifier.settings import Settings

SECRETS = (SMTP_PASSWORD, TWILIO_TOKEN, PUSHOVER_TOKEN, PUSHOVER_USER)
KINDS = ("email", "sms", "voice", "pushover")
pytestmark = pytest.mark.filterwarnings("ignore:.*(BasicAuth|'auth' parameter|Requiring AUTH).*")


def quote_everything(received: Received) -> dict[str, Any]:
    """Everything the request carried, credentials decoded, as a careless provider might echo it."""
    auth = received.headers.get("Authorization", "")
    decoded = base64.b64decode(auth.removeprefix("Basic ")).decode() if auth.startswith("Basic ") else auth
    # Credentials first: errors are cut to a few hundred characters, and the quote must reach them.
    return {"authorization": decoded, "body": received.body.decode(), "headers": received.headers}


def twilio_echo(received: Received) -> web.Response:
    echo = json.dumps(quote_everything(received))
    return web.json_response({"code": 21211, "message": f"cannot send: {echo}", "status": 400}, status=400)


def pushover_echo(received: Received) -> web.Response:
    return web.json_response({"errors": [json.dumps(quote_everything(received))], "status": 0}, status=400)


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink(login=(SMTP_USER, SMTP_PASSWORD)).start()
    yield sink
    sink.stop()


@pytest_asyncio.fixture
async def fakes() -> AsyncIterator[tuple[FakeTwilio, FakePushover]]:
    async with FakeTwilio() as twilio, FakePushover() as pushover:
        yield twilio, pushover


def config_text(smtp_port: int, twilio_url: str, pushover_url: str) -> str:
    return f"""
security: {{allow_private_networks: true}}
providers:
  smtp: {{host: 127.0.0.1, port: {smtp_port}, starttls: false, username: "{SMTP_USER}",
          password: "{SMTP_PASSWORD}", from: tocsin@example.com}}
  twilio: {{account_sid: {TWILIO_SID}, auth_token: "{TWILIO_TOKEN}", from: "+15550001111",
            base_url: "{twilio_url}"}}
  pushover: {{token: "{PUSHOVER_TOKEN}", base_url: "{pushover_url}"}}
users:
  alice:
    email: alice@example.com
    phone: "+15550003333"
    contacts:
      email: {{type: email}}
      sms: {{type: sms}}
      voice: {{type: voice}}
      pushover: {{type: pushover, user_key: "{PUSHOVER_USER}", priority: 2}}
"""


def command(nid: str, kind: str) -> NotificationRequested:
    # As the router sends it: public fields only (never user_key); the notifier adds secrets from its config.
    destination = {"email": {"to": "alice@example.com"}, "sms": {"to": "+15550003333"},
                   "voice": {"to": "+15550003333"}, "pushover": {"priority": "2"}}[kind]
    return NotificationRequested(
        id=nid, aggregate_id="inc-0001", at=utcnow(), channel_kind=kind, channel=f"alice/{kind}", user="alice",
        destination=destination, incident_number=42, title="Disk /var is 97% full", body="on db-1",
        link="https://tocsin.example/incidents/inc-0001")


@contextlib.asynccontextmanager
async def running_notifier(bus: Bus, nats_url: str) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(notifier_app.run(
        Settings(nats_url=nats_url, kinds=KINDS, send_deadline=1.0, max_deliveries=1,
                 secret_key=b"k" * 32, public_url="https://tocsin.example"), bus=bus))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def recorded(bus: Bus) -> list[tuple[bytes, deliveries.DeliveryEvent]]:
    out = []
    for kind in KINDS:
        for _, data in await bus.read_subject(DELIVERIES.name, deliveries.subject(kind)):
            out.append((data, deliveries.decoder.decode(data)))
    return out


async def test_no_secret_in_any_recorded_error_ledger_or_log(bus, nats_url, smtp, fakes, caplog):
    caplog.set_level(logging.DEBUG)
    twilio, pushover = fakes
    twilio.default = twilio_echo
    pushover.default = pushover_echo
    smtp.replies["DATA"] = [f"554 5.7.1 rejected, your login was {SMTP_USER} / {SMTP_PASSWORD}"]
    config = parse_config(config_text(smtp.port, twilio.url, pushover.url), env={})
    await bus.publish(CONFIG_SUBJECT, ConfigApplied(id=new_id(), at=utcnow(), revision=1, config=config))
    closed = f"http://127.0.0.1:{free_port()}"
    commands = [command(f"n-{kind}", kind) for kind in KINDS]
    for c in commands:
        await bus.publish(notify.subject(c.channel_kind), c)

    async with running_notifier(bus, nats_url) as task:
        async def all_failed() -> Any:
            if task.done():
                task.result()
            failed = {e.notification_id for _, e in await recorded(bus) if isinstance(e, deliveries.DeliveryFailed)}
            return failed >= {c.id for c in commands}
        await eventually(all_failed, timeout=30)

        # Then every provider unreachable: transport errors are recorded too.
        bad = config_text(free_port(), closed, closed)
        await bus.publish(CONFIG_SUBJECT, ConfigApplied(id=new_id(), at=utcnow(), revision=2,
                                                        config=parse_config(bad, env={})))

        async def applied() -> bool:
            return any(r.getMessage() == "config revision 2 loaded" for r in caplog.records)
        await eventually(applied)
        unreachable = [command(f"u-{kind}", kind) for kind in KINDS]
        for c in unreachable:
            await bus.publish(notify.subject(c.channel_kind), c)

        async def all_tried() -> Any:
            ids = {e.notification_id for _, e in await recorded(bus)
                   if isinstance(e, deliveries.DeliveryFailed | deliveries.DeliveryAttempted)}
            return ids >= {c.id for c in unreachable}
        await eventually(all_tried, timeout=30)

    events = await recorded(bus)
    failed = {e.channel_kind: e.error for _, e in events
              if isinstance(e, deliveries.DeliveryFailed) and e.notification_id.startswith("n-")}
    # The providers did quote the requests: the masks are where the secrets would have been.
    assert "********" in failed["email"]
    assert "********" in failed["sms"] and "********" in failed["voice"]
    assert "********" in failed["pushover"]
    assert twilio.requests and pushover.requests and smtp.authenticated == [SMTP_USER]
    for data, _ in events:
        for secret in SECRETS:
            assert secret not in data.decode(), f"{secret} recorded in {data[:200]!r}"
    ledger = await bus.kv(DELIVERY_LEDGER_BUCKET)
    for c in commands:
        value = (await ledger.get(c.id)).value.decode()
        assert '"state":"failed"' in value
        assert not any(secret in value for secret in SECRETS), value
    for c in unreachable:
        value = (await ledger.get(c.id)).value.decode()
        assert not any(secret in value for secret in SECRETS), value
    ours = [r for r in caplog.records if not r.name.startswith("mail.log")]  # not the fake SMTP server's own
    assert ours
    for record in ours:
        text = record.getMessage() + (record.exc_text or "")
        assert not any(secret in text for secret in SECRETS), text
