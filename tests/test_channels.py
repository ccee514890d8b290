"""Notification channels: status → outcome, wire formats, safe outbound, and the notifier end to end.

Channels are called directly against a FakeProvider on loopback with a real aiohttp session; the end-to-end
tests run `tocsin.notifier.app.run` on real NATS and read what it recorded on the DELIVERIES stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import aiohttp
import msgspec
import pytest
import pytest_asyncio
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from harness import FakeProvider, Received, eventually, free_port
from tocsin.events import deliveries, notify
from tocsin.events.base import new_id, utcnow
from tocsin.events.bus import Bus
from tocsin.events.config import CONFIG_SUBJECT, Config, ConfigApplied, Security, parse_config
from tocsin.events.configbus import ConfigWatcher
from tocsin.events.directory import Directory
from tocsin.events.notify import NotificationRequested
from tocsin.events.streams import DELIVERIES, DELIVERY_LEDGER_BUCKET, NOTIFY
from tocsin.notifier import app as notifier_app
from tocsin.notifier.app import Notifier
from tocsin.notifier.channels.base import Channel, Target, subject_line, text_body
from tocsin.notifier.channels.ntfy import NtfyChannel
from tocsin.notifier.channels.webhook import WebhookChannel
from tocsin.notifier.netguard import GuardedResolver, PrivateAddressRefused, check_url
from tocsin.notifier.settings import Settings

LINK = "https://tocsin.example/incidents/01J0000000000000000000INC1"
# Distinctive, so that finding it anywhere can only mean a leak.
HOOK_SECRET = "hook-secret-ZQ8v3kWm5nP2"
NTFY_TOKEN = "tk_provider-token-9f8e7d6c"
CONTACT_TOKEN = "tk_contact-token-1a2b3c4d"


def page(**changes: Any) -> NotificationRequested:
    fields: dict[str, Any] = {
        "id": "notif-0001", "aggregate_id": "inc-0001", "at": utcnow(), "channel_kind": "ntfy",
        "channel": "alice/push", "user": "alice", "destination": {"topic": "alice-pages"},
        "incident_number": 42, "title": "Disk /var is 97% full", "body": "on db-1, mounted at /var",
        "severity": "critical", "link": LINK}
    fields.update(changes)
    return NotificationRequested(**fields)


# ------------------------------------------------------------------ status → outcome, per channel

OUTCOMES = [
    *[(status, "ok") for status in (200, 201, 204)],
    *[(status, "retry") for status in (408, 429, 500, 502, 503)],
    *[(status, "permanent") for status in (400, 401, 403, 404, 410, 413)],
]
REDIRECTS = [301, 302, 307, 308]


def ntfy_target(provider: FakeProvider) -> Target:
    return Target(fields={"topic": "alice-pages"}, provider={"server": provider.url})


def webhook_target(provider: FakeProvider) -> Target:
    return Target(fields={"url": f"{provider.url}/hook"}, provider={})


CHANNELS: dict[str, tuple[type[Channel], Callable[[FakeProvider], Target]]] = {
    "ntfy": (NtfyChannel, ntfy_target),
    "webhook": (WebhookChannel, webhook_target),
}


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        yield s


@pytest_asyncio.fixture
async def elsewhere() -> AsyncIterator[FakeProvider]:
    """Where a provider's redirect points: nothing may ever arrive here."""
    async with FakeProvider("elsewhere") as provider:
        yield provider


@pytest.mark.parametrize("kind", sorted(CHANNELS))
@pytest.mark.parametrize(("status", "expected"), OUTCOMES)
async def test_provider_status_classifies_the_delivery(kind, status, expected, session, ntfy, webhook):
    provider = {"ntfy": ntfy, "webhook": webhook}[kind]
    channel_class, target = CHANNELS[kind]
    provider.answers = [status]

    result = await channel_class(session).send(page(channel_kind=kind), target(provider))

    assert result.outcome == expected
    assert len(provider.requests) == 1, "a channel classifies; it never retries by itself"
    if expected == "ok":
        assert result.error == ""
    else:
        assert result.error.startswith(f"HTTP {status}")


@pytest.mark.parametrize("kind", sorted(CHANNELS))
@pytest.mark.parametrize("status", REDIRECTS)
async def test_redirect_is_permanent_and_never_followed(kind, status, session, ntfy, webhook, elsewhere):
    provider = {"ntfy": ntfy, "webhook": webhook}[kind]
    channel_class, target = CHANNELS[kind]
    provider.answers = [lambda _: web.Response(status=status, headers={"Location": f"{elsewhere.url}/moved"})]

    result = await channel_class(session).send(page(channel_kind=kind), target(provider))

    assert result.outcome == "permanent"
    assert result.error.startswith(f"HTTP {status}")
    assert len(provider.requests) == 1
    assert elsewhere.requests == []


@pytest.mark.parametrize("kind", sorted(CHANNELS))
async def test_retry_after_is_reported(kind, session, ntfy, webhook):
    provider = {"ntfy": ntfy, "webhook": webhook}[kind]
    channel_class, target = CHANNELS[kind]
    provider.answers = [lambda _: web.Response(status=429, text="slow down", headers={"Retry-After": "7"})]

    result = await channel_class(session).send(page(channel_kind=kind), target(provider))

    assert (result.outcome, result.retry_after, result.error) == ("retry", 7.0, "HTTP 429: slow down")


def closed_port_target(kind: str) -> Target:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    if kind == "ntfy":
        return Target(fields={"topic": "t"}, provider={"server": url})
    return Target(fields={"url": f"{url}/hook"}, provider={})


@pytest.mark.parametrize("kind", sorted(CHANNELS))
async def test_connection_refused_raises_from_the_channel(kind, session):
    # The channel does not classify transport errors; the Notifier's wrapper does (next section).
    channel_class, _ = CHANNELS[kind]
    with pytest.raises(aiohttp.ClientConnectorError):
        await channel_class(session).send(page(channel_kind=kind), closed_port_target(kind))


# ------------------------------------------------------------------ the shared wrapper, without the bus


@contextlib.asynccontextmanager
async def wrapper(config: Config, send_deadline: float = 0.6) -> AsyncIterator[Notifier]:
    """A Notifier whose `_send_with_retries` can be called directly: guarded sessions as `run()` builds
    them, and the given config in place of the one a running ConfigWatcher would follow."""
    watcher = ConfigWatcher(bus=None)  # type: ignore[arg-type]  # not started: no bus needed
    watcher.directory = Directory.build(config)
    notifier = Notifier(Settings(send_deadline=send_deadline), bus=None, config=watcher)  # type: ignore[arg-type]
    async with contextlib.AsyncExitStack() as stack:
        notifier._sessions = {
            allow: await stack.enter_async_context(aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(resolver=GuardedResolver(allow)),
                timeout=aiohttp.ClientTimeout(total=2)))
            for allow in (False, True)}
        yield notifier


def private_allowed(allow: bool) -> Config:
    return Config(security=Security(allow_private_networks=allow))


@pytest.mark.parametrize("kind", sorted(CHANNELS))
async def test_wrapper_turns_connection_refused_into_retry(kind):
    target = closed_port_target(kind)
    # The command carries the public fields; a provider-level server comes from the config.
    message = page(channel_kind=kind, channel="c", user="", destination=target.fields)
    config = Config(security=Security(allow_private_networks=True), providers={kind: target.provider})
    async with wrapper(config) as notifier:
        result, tries = await notifier._send_with_retries(message, None)
    assert result.outcome == "retry"
    assert result.error.startswith("ClientConnectorError")
    assert tries > 1, "retried within the send deadline"


@pytest.mark.parametrize(("status", "outcome", "tries"), [(200, "ok", 1), (400, "permanent", 1)])
async def test_wrapper_stops_on_a_final_answer(status, outcome, tries, webhook):
    webhook.answers = [status]
    message = page(channel_kind="webhook", channel="c", user="", destination={"url": webhook.url})
    async with wrapper(private_allowed(True)) as notifier:
        result, attempts = await notifier._send_with_retries(message, None)
    assert (result.outcome, attempts, len(webhook.requests)) == (outcome, tries, tries)


async def test_wrapper_refuses_a_name_that_resolves_to_a_private_address(webhook):
    # check_url sees only a name; the GuardedResolver on the connector sees the address it resolves to.
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, webhook.port, proto=socket.IPPROTO_TCP)}
    except socket.gaierror:
        pytest.skip(f"the host name {name!r} does not resolve here")
    if not addresses <= {"127.0.0.1", "::1"} or name == "localhost":
        pytest.skip(f"{name!r} resolves to {addresses}, not only to loopback where the fake listens")
    message = page(channel_kind="webhook", channel="c", user="",
                   destination={"url": f"http://{name}:{webhook.port}/hook"})
    check_url(message.destination["url"], allow_private=False)  # a name passes the literal check

    async with wrapper(private_allowed(False)) as notifier:
        result, tries = await notifier._send_with_retries(message, None)
    assert (result.outcome, tries) == ("permanent", 1)
    assert "resolves to a private address" in result.error
    assert webhook.requests == []

    async with wrapper(private_allowed(True)) as notifier:
        result, _ = await notifier._send_with_retries(message, None)
    assert result.outcome == "ok"


# ------------------------------------------------------------------ wire format: ntfy

NTFY_CASES = [
    # (id, message changes, target fields, provider fields, expected body subset, expected Authorization)
    ("critical page", {}, {"topic": "alice-pages"}, {}, {
        "topic": "alice-pages", "title": "#42 [CRITICAL] Disk /var is 97% full",
        "message": "on db-1, mounted at /var", "priority": 5, "tags": ["rotating_light"]}, None),
    ("resolved", {"message_kind": "resolved"}, {"topic": "alice-pages"}, {}, {
        "title": "Resolved: #42 [CRITICAL] Disk /var is 97% full", "priority": 2}, None),
    ("warning with contact tags", {"severity": "warning"}, {"topic": "t", "tags": "db,prod"}, {}, {
        "title": "#42 [WARNING] Disk /var is 97% full", "priority": 3, "tags": ["warning", "db", "prod"]},
     None),
    ("contact priority", {}, {"topic": "t", "priority": "4"}, {}, {"priority": 4}, None),
    ("no body: the title is the message", {"body": ""}, {"topic": "t"}, {},
     {"message": "Disk /var is 97% full"}, None),
    ("provider token", {}, {"topic": "t"}, {"token": NTFY_TOKEN}, {}, f"Bearer {NTFY_TOKEN}"),
    ("contact token wins", {}, {"topic": "t", "token": CONTACT_TOKEN}, {"token": NTFY_TOKEN}, {},
     f"Bearer {CONTACT_TOKEN}"),
]


@pytest.mark.parametrize(("case", "changes", "fields", "provider_fields", "expected", "authorization"),
                         NTFY_CASES, ids=[c[0] for c in NTFY_CASES])
async def test_ntfy_wire_format(case, changes, fields, provider_fields, expected, authorization,
                                session, ntfy):
    result = await NtfyChannel(session).send(
        page(**changes), Target(fields=fields, provider={"server": ntfy.url, **provider_fields}))

    assert result.outcome == "ok"
    assert result.provider_id == "ntfy-1"
    [request] = ntfy.requests
    assert (request.method, request.path) == ("POST", "/")
    body = request.json()
    assert body | expected == body, f"{case}: {body}"
    assert body["click"] == LINK
    assert body["actions"] == [{"action": "view", "label": "Open incident", "url": LINK}]
    assert request.headers.get("Authorization") == authorization


async def test_ntfy_without_a_link_has_no_click_or_actions(session, ntfy):
    await NtfyChannel(session).send(page(link=""), ntfy_target(ntfy))
    body = ntfy.requests[0].json()
    assert "click" not in body and "actions" not in body


# ------------------------------------------------------------------ wire format: webhook


def expected_signature(secret: str, received: Received) -> str:
    # Computed here from the documented rule, not with the channel's own helper.
    signed = received.headers["X-Tocsin-Timestamp"].encode() + b"." + received.body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


async def test_webhook_body_and_signature(session, webhook):
    message = page(channel_kind="webhook", channel="ops-hook", user="", destination={})
    before = int(time.time())
    result = await WebhookChannel(session).send(
        message, Target(fields={"url": f"{webhook.url}/hook", "secret": HOOK_SECRET}, provider={}))

    assert result.outcome == "ok"
    [request] = webhook.requests
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Tocsin-Notification-Id"] == "notif-0001"
    assert before <= int(request.headers["X-Tocsin-Timestamp"]) <= int(time.time())
    assert request.headers["X-Tocsin-Signature"] == expected_signature(HOOK_SECRET, request)
    assert request.headers["X-Tocsin-Signature"] != expected_signature("another-secret", request)
    body = request.json()
    assert body == {
        "notification_id": "notif-0001", "kind": "page", "incident_id": "inc-0001", "incident_number": 42,
        "status": "triggered", "title": "Disk /var is 97% full", "details": "on db-1, mounted at /var",
        "severity": "critical", "link": LINK, "user": "", "channel": "ops-hook",
        "at": body["at"]}
    assert datetime.fromisoformat(body["at"]) == message.at
    assert HOOK_SECRET not in request.body.decode()


async def test_webhook_without_a_secret_is_not_signed(session, webhook):
    webhook.default = lambda _: web.Response(status=202, headers={"X-Request-Id": "req-77"})
    result = await WebhookChannel(session).send(page(channel_kind="webhook"), webhook_target(webhook))
    assert (result.outcome, result.provider_id) == ("ok", "req-77")
    assert "X-Tocsin-Signature" not in webhook.requests[0].headers
    assert "X-Tocsin-Timestamp" in webhook.requests[0].headers


# ------------------------------------------------------------------ text_body / subject_line

SUBJECTS = [
    ({}, "#42 [CRITICAL] Disk /var is 97% full"),
    ({"message_kind": "escalation"}, "Escalated: #42 [CRITICAL] Disk /var is 97% full"),
    ({"message_kind": "reminder", "severity": "warning"}, "Reminder: #42 [WARNING] Disk /var is 97% full"),
    ({"message_kind": "resolved"}, "Resolved: #42 [CRITICAL] Disk /var is 97% full"),
    ({"message_kind": "acknowledged"}, "Acknowledged: #42 [CRITICAL] Disk /var is 97% full"),
    ({"message_kind": "test"}, "Test: #42 [CRITICAL] Disk /var is 97% full"),
    ({"message_kind": "notice", "incident_number": 0}, "[CRITICAL] Disk /var is 97% full"),
]


@pytest.mark.parametrize(("changes", "expected"), SUBJECTS)
def test_subject_line(changes, expected):
    assert subject_line(page(**changes)) == expected


def test_text_body_uncut():
    assert text_body(page()) == f"#42 [CRITICAL] Disk /var is 97% full\non db-1, mounted at /var\n{LINK}"
    assert text_body(page(link="", body="")) == "#42 [CRITICAL] Disk /var is 97% full"


@settings(max_examples=300, deadline=None)
@given(data=st.data(), title=st.text(min_size=1, max_size=400), body=st.text(max_size=6000),
       link_tail=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-/", min_size=1, max_size=200))
def test_text_body_keeps_the_link_whole(data, title, body, link_tail):
    link = f"https://tocsin.example/incidents/{link_tail}"
    limit = data.draw(st.integers(min_value=len(link) + 20, max_value=len(link) + 7000), label="limit")
    message = page(title=title, body=body, link=link)

    text = text_body(message, limit)

    assert len(text) <= limit
    assert text.endswith("\n" + link)
    whole = f"{subject_line(message)}\n{body}".rstrip()
    kept = text[: -len(link) - 1]
    if len(whole) + len(link) + 1 <= limit:
        assert kept == whole
    else:
        assert kept.endswith("…") and whole.startswith(kept[:-1])
        assert len(text) == limit


# ------------------------------------------------------------------ safe outbound

REFUSED = ["http://127.0.0.1/", "http://10.1.2.3:8080/hook", "http://[::1]/", "http://169.254.169.254/latest",
           "http://localhost:9000/", "http://[::ffff:127.0.0.1]/", "http://192.168.1.10/", "http://0.0.0.0/",
           "https://api.localhost/", "http://[fe80::1%25eth0]/"]


@pytest.mark.parametrize("url", REFUSED)
def test_check_url_refuses_private_addresses(url):
    with pytest.raises(PrivateAddressRefused, match="private address"):
        check_url(url, allow_private=False)
    check_url(url, allow_private=True)


@pytest.mark.parametrize("url", ["http://93.184.215.14/hook", "https://[2606:4700:4700::1111]/",
                                 "https://ntfy.sh", "https://hooks.example.com/x"])
def test_check_url_allows_public_addresses_and_names(url):
    check_url(url, allow_private=False)  # literal check only: no request is made


async def test_guarded_resolver_refuses_a_name_resolving_to_loopback():
    with pytest.raises(PrivateAddressRefused, match="resolves to a private address"):
        await GuardedResolver(allow_private=False).resolve("localhost", 80)
    allowed = await GuardedResolver(allow_private=True).resolve("localhost", 80)
    assert allowed and all(r["host"] in ("127.0.0.1", "::1") for r in allowed)


async def test_guarded_session_refuses_before_connecting(ntfy):
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=GuardedResolver(False))) as s:
        with pytest.raises(PrivateAddressRefused):
            await NtfyChannel(s).send(page(), Target(fields={"topic": "t"},
                                                     provider={"server": f"http://localhost:{ntfy.port}"}))
    assert ntfy.requests == []


# ------------------------------------------------------------------ end to end: a running notifier on NATS


def hook_config(url: str, *, allow_private: bool = True) -> Config:
    return Config(security=Security(allow_private_networks=allow_private),
                  channels={"hook": {"type": "webhook", "url": url, "secret": HOOK_SECRET}})


def hook_page(nid: str, url: str) -> NotificationRequested:
    # As the router sends it: the public fields only; the notifier adds the secret from its config.
    return page(id=nid, channel_kind="webhook", channel="hook", user="", destination={"url": url})


async def apply_config(bus: Bus, config: Config, revision: int = 1) -> None:
    applied = ConfigApplied(id=new_id(), at=utcnow(), revision=revision, config=config)
    await bus.publish(CONFIG_SUBJECT, applied)


@contextlib.asynccontextmanager
async def running_notifier(bus: Bus, nats_url: str) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(notifier_app.run(
        Settings(nats_url=nats_url, kinds=("webhook",), send_deadline=2.0), bus=bus))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def delivery_events(bus: Bus) -> list[deliveries.DeliveryEvent]:
    return [deliveries.decoder.decode(data)
            for _, data in await bus.read_subject(DELIVERIES.name, deliveries.subject("webhook"))]


async def outcome(bus: Bus, task: asyncio.Task[None], nid: str,
                  kinds: tuple[type, ...] = (deliveries.Delivered, deliveries.DeliveryFailed)) -> Any:
    async def check() -> Any:
        if task.done():
            task.result()  # the notifier died: show why
            raise AssertionError("the notifier stopped")
        found = [e for e in await delivery_events(bus) if isinstance(e, kinds) and e.notification_id == nid]
        return found[0] if found else None
    return await eventually(check, timeout=10)


async def test_e2e_delivered_once_and_recorded(bus, nats_url, webhook):
    await apply_config(bus, hook_config(webhook.url))
    await bus.publish(notify.subject("webhook"), hook_page("n-1", f"{webhook.url}/hook"))
    async with running_notifier(bus, nats_url) as task:
        event = await outcome(bus, task, "n-1")

    assert isinstance(event, deliveries.Delivered)
    assert (event.attempts, event.channel, event.aggregate_id) == (1, "hook", "inc-0001")
    [request] = webhook.requests
    assert request.path == "/hook"
    assert request.headers["X-Tocsin-Signature"] == expected_signature(HOOK_SECRET, request)


async def test_e2e_ledger_stops_a_resent_command(bus, nats_url, webhook):
    await apply_config(bus, hook_config(webhook.url))
    command = hook_page("n-1", f"{webhook.url}/hook")
    await bus.publish(notify.subject("webhook"), command)
    recorded: list[deliveries.DeliveryEvent] = []

    async def on_delivery(msg: Any) -> None:
        recorded.append(deliveries.decoder.decode(msg.data))

    async with running_notifier(bus, nats_url) as task:
        first = await outcome(bus, task, "n-1")
        # Core subscribers see every publish, also one JetStream drops as a duplicate of the same event id.
        sub = await bus.nc.subscribe(deliveries.subject("webhook"), cb=on_delivery)
        # The same command again, past JetStream's own dedup (another Nats-Msg-Id): only the ledger stops it.
        ack = await bus.js.publish(notify.subject("webhook"), msgspec.json.encode(command),
                                   headers={"Nats-Msg-Id": "other-id"})
        assert not ack.duplicate

        async def handled() -> bool:
            info = await bus.js.consumer_info(NOTIFY.name, "notifier-webhook")
            return info.ack_floor.stream_seq >= ack.seq and bool(recorded)
        await eventually(handled, timeout=10)
        await sub.unsubscribe()

    assert len(webhook.requests) == 1, "the re-sent command did not reach the provider again"
    assert [(type(e), e.id) for e in recorded] == [(deliveries.Delivered, first.id)]
    stored = [e for e in await delivery_events(bus) if isinstance(e, deliveries.Delivered)]
    assert [e.id for e in stored] == [first.id], "the same event id: stored once"
    ledger = await bus.kv(DELIVERY_LEDGER_BUCKET)
    assert json.loads((await ledger.get("n-1")).value)["state"] == "delivered"


async def test_e2e_retries_within_the_deadline(bus, nats_url, webhook):
    webhook.answers = [503, 503]
    await apply_config(bus, hook_config(webhook.url))
    await bus.publish(notify.subject("webhook"), hook_page("n-1", f"{webhook.url}/hook"))
    async with running_notifier(bus, nats_url) as task:
        event = await outcome(bus, task, "n-1")

    assert isinstance(event, deliveries.Delivered)
    assert event.attempts == 3
    assert len(webhook.requests) == 3
    assert not [e for e in await delivery_events(bus) if isinstance(e, deliveries.DeliveryFailed)]


async def test_e2e_permanent_answer_fails_without_retry(bus, nats_url, webhook):
    webhook.answers = [lambda _: web.Response(status=400, text="unknown field 'details'")]
    await apply_config(bus, hook_config(webhook.url))
    await bus.publish(notify.subject("webhook"), hook_page("n-1", f"{webhook.url}/hook"))
    async with running_notifier(bus, nats_url) as task:
        event = await outcome(bus, task, "n-1")
        await asyncio.sleep(0.3)  # room for a retry that must not come

    assert isinstance(event, deliveries.DeliveryFailed)
    assert (event.error, event.attempts) == ("HTTP 400: unknown field 'details'", 1)
    assert len(webhook.requests) == 1


async def test_e2e_private_address_refused(bus, nats_url, webhook):
    await apply_config(bus, hook_config(webhook.url, allow_private=False))
    await bus.publish(notify.subject("webhook"), hook_page("n-1", f"{webhook.url}/hook"))
    async with running_notifier(bus, nats_url) as task:
        event = await outcome(bus, task, "n-1")

    assert isinstance(event, deliveries.DeliveryFailed)
    assert "private address 127.0.0.1" in event.error
    assert event.attempts == 1
    assert webhook.requests == []


def echo_everything(received: Received) -> web.Response:
    """A provider that quotes the whole request back in its error: anything we sent lands in the error."""
    quoted = json.dumps({"headers": received.headers, "body": received.body.decode()})
    return web.Response(status=401, text=quoted)


async def test_e2e_no_secret_leaks(bus, nats_url, webhook, caplog):
    caplog.set_level(logging.DEBUG)
    closed = f"http://127.0.0.1:{free_port()}/hook"
    webhook.answers = [echo_everything]
    await apply_config(bus, hook_config(webhook.url))
    await bus.publish(notify.subject("webhook"), hook_page("n-echo", f"{webhook.url}/hook"))
    await bus.publish(notify.subject("webhook"), hook_page("n-refused", closed))
    async with running_notifier(bus, nats_url) as task:
        echoed = await outcome(bus, task, "n-echo")
        refused = await outcome(bus, task, "n-refused", kinds=(deliveries.DeliveryAttempted,))
        await apply_config(bus, hook_config(webhook.url, allow_private=False), revision=2)
        await eventually(lambda: _revision_loaded(caplog, 2))
        await bus.publish(notify.subject("webhook"), hook_page("n-private", f"{webhook.url}/hook"))
        private = await outcome(bus, task, "n-private")

    assert isinstance(echoed, deliveries.DeliveryFailed) and echoed.error.startswith("HTTP 401")
    assert "X-Tocsin-Signature" in echoed.error, "the echo did carry the request"
    assert refused.outcome == "retry" and "ClientConnectorError" in refused.error
    assert isinstance(private, deliveries.DeliveryFailed) and "private address" in private.error

    for _, data in await bus.read_subject(DELIVERIES.name, deliveries.subject("webhook")):
        assert HOOK_SECRET not in data.decode()
    ledger = await bus.kv(DELIVERY_LEDGER_BUCKET)
    for nid in ("n-echo", "n-refused", "n-private"):
        assert HOOK_SECRET not in (await ledger.get(nid)).value.decode()
    assert caplog.records, "logs were captured"
    for record in caplog.records:
        assert HOOK_SECRET not in record.getMessage()
        assert HOOK_SECRET not in (record.exc_text or "")
    assert HOOK_SECRET not in caplog.text


async def _revision_loaded(caplog: pytest.LogCaptureFixture, revision: int) -> bool:
    return any(r.getMessage() == f"config revision {revision} loaded" for r in caplog.records)


# ------------------------------------------------------------------ fixed defects, kept as tests


async def test_ntfy_priority_by_name(session, ntfy):
    """ntfy takes priority names (high, urgent, ...) and the config accepts them."""
    config = parse_config("""
users:
  alice:
    contacts: {push: {type: ntfy, topic: alice-pages, priority: high}}
""")
    fields = {k: str(v) for k, v in config.users["alice"].contacts["push"].items()}
    result = await NtfyChannel(session).send(page(), Target(fields=fields, provider={"server": ntfy.url}))
    assert result.outcome == "ok"
    assert ntfy.requests[-1].json()["priority"] == 4


@pytest.mark.parametrize("thing", [
    Target(fields={"url": "https://hooks.example.com", "secret": HOOK_SECRET}, provider={}),
    Config(channels={"hook": {"type": "webhook", "url": "https://hooks.example.com", "secret": HOOK_SECRET}}),
], ids=["Target", "Config"])
def test_reprs_redact_secrets(thing):
    assert HOOK_SECRET not in repr(thing)
    assert HOOK_SECRET not in str(thing)
