"""Email: a real SMTP server (aiosmtpd) on loopback; reply codes → outcome; TLS; and the signed answer links.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from provider_fakes import SMTP_PASSWORD, SMTP_USER, SmtpSink, open_one_incident, parts, self_signed_cert, team_config

from harness import eventually, free_port
from tocsin.events.base import utcnow
from tocsin.events.notify import NotificationRequested
from tocsin.notifier.channels.base import ActionLinks, Target
from tocsin.notifier.channels.email import EmailChannel

LINK = "https://tocsin.example/incidents/01J0000000000000000000INC1"
KEY = b"k" * 32


def page(**changes: Any) -> NotificationRequested:
    fields: dict[str, Any] = {
        "id": "notif-0001", "aggregate_id": "inc-0001", "at": utcnow(), "channel_kind": "email",
        "channel": "alice/mail", "user": "alice", "destination": {"to": "alice@example.com"},
        "incident_number": 42, "title": "Disk /var is 97% full", "body": "on db-1, <mounted> at /var",
        "severity": "critical", "link": LINK}
    fields.update(changes)
    return NotificationRequested(**fields)


def target(sink: SmtpSink, **provider: str) -> Target:
    return Target(fields={"to": "alice@example.com"},
                  provider={"host": "127.0.0.1", "port": str(sink.port), "starttls": "False",
                            "from": "tocsin@example.com", **provider})


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path)


def server_context(cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert)
    return context


def channel() -> EmailChannel:
    # The email channel does not use the HTTP session.
    return EmailChannel(None, ActionLinks("https://tocsin.example", KEY))  # type: ignore[arg-type]


# ------------------------------------------------------------------ reply code → outcome

SMTP_OUTCOMES = [
    ("DATA", None, "ok"),
    ("MAIL", "421 4.7.0 Try again later", "retry"),
    ("MAIL", "451 4.3.0 Temporary local problem", "retry"),
    ("MAIL", "550 5.7.1 Sender rejected", "permanent"),
    ("RCPT", "450 4.2.1 Mailbox busy", "retry"),
    ("RCPT", "452 4.2.2 Mailbox full", "retry"),
    ("RCPT", "550 5.1.1 No such user", "permanent"),
    ("RCPT", "553 5.1.3 Bad address syntax", "permanent"),
    ("DATA", "451 4.3.0 Queue full", "retry"),
    ("DATA", "552 5.3.4 Message too big", "permanent"),
    ("DATA", "554 5.7.1 Rejected as spam", "permanent"),
]


@pytest.mark.parametrize(("stage", "reply", "expected"), SMTP_OUTCOMES)
async def test_smtp_reply_classifies_the_delivery(stage, reply, expected, sink):
    if reply:
        sink.replies[stage] = [reply]

    result = await channel().send(page(), target(sink))

    assert result.outcome == expected, result
    if expected == "ok":
        assert result.provider_id.startswith("<") and len(sink.messages) == 1
    else:
        assert reply.split()[0] in result.error and sink.messages == []


async def test_connection_refused_is_retried():
    closed = Target(fields={"to": "alice@example.com"},
                    provider={"host": "127.0.0.1", "port": str(free_port()), "starttls": "False",
                              "from": "tocsin@example.com"})
    result = await channel().send(page(), closed)
    assert result.outcome == "retry"
    assert result.error.startswith("SMTP connection")


@pytest.mark.parametrize(("provider", "fields", "error"), [
    ({"host": ""}, {"to": "a@example.com"}, "providers.smtp needs host and from"),
    ({}, {"to": ""}, "no recipient address"),
])
async def test_missing_settings_are_permanent(provider, fields, error, sink):
    t = target(sink, **provider)
    result = await channel().send(page(), Target(fields=fields, provider=t.provider))
    assert (result.outcome, result.error) == ("permanent", error)


# ------------------------------------------------------------------ what the mail looks like


async def test_mail_has_text_and_html_parts_the_link_and_signed_answer_links(sink):
    result = await channel().send(page(), target(sink))

    assert result.outcome == "ok"
    [mail] = sink.messages
    assert mail["Subject"] == "#42 [CRITICAL] Disk /var is 97% full"
    assert mail["From"] == "tocsin@example.com" and mail["To"] == "alice@example.com"
    assert mail["Message-ID"] == result.provider_id
    assert mail["References"] == "<incident-inc-0001@example.com>"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert sink.envelopes[0].mail_from == "tocsin@example.com"
    assert sink.envelopes[0].rcpt_tos == ["alice@example.com"]
    text, html = parts(mail)
    links = ActionLinks("https://tocsin.example", KEY)
    ack, res = links.url(page(), "acknowledge"), links.url(page(), "resolve")
    assert f"Open the incident: {LINK}" in text
    assert f"Acknowledge: {ack}" in text and f"Resolve: {res}" in text
    assert "on db-1, <mounted> at /var" in text
    assert "on db-1, &lt;mounted&gt; at /var" in html, "the HTML part escapes the details"
    for url in (LINK, ack, res):
        assert f'href="{url}"' in html


@pytest.mark.parametrize("kind", ["resolved", "acknowledged", "notice"])
async def test_answer_links_only_where_an_answer_makes_sense(kind, sink):
    await channel().send(page(message_kind=kind), target(sink))
    text, html = parts(sink.messages[0])
    assert LINK in text and LINK in html, "the incident link is always there"
    assert "/api/v1/answer/" not in text + html


async def test_a_shared_channel_mails_every_address(sink):
    t = target(sink)
    await channel().send(page(user="", channel="ops-mail"),
                         Target(fields={"to": "ops@example.com, oncall@example.com"}, provider=t.provider))
    assert sink.envelopes[0].rcpt_tos == ["ops@example.com", "oncall@example.com"]
    assert sink.messages[0]["To"] == "ops@example.com, oncall@example.com"


async def test_long_details_still_carry_the_link(sink):
    await channel().send(page(body="x" * 300_000), target(sink))
    text, html = parts(sink.messages[0])
    assert LINK in text and LINK in html


# ------------------------------------------------------------------ TLS and login


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_tls_with_login(mode, cert):
    sink = SmtpSink(tls=server_context(cert), mode=mode, login=(SMTP_USER, SMTP_PASSWORD)).start()
    try:
        flags = {"starttls": "True"} if mode == "starttls" else {"tls": "True", "starttls": ""}
        provider = {"username": SMTP_USER, "password": SMTP_PASSWORD, "ca_file": str(cert[0]), **flags}
        result = await channel().send(page(), target(sink, **provider))
        assert result.outcome == "ok", result
        assert sink.authenticated == [SMTP_USER]
        assert len(sink.messages) == 1
    finally:
        sink.stop()


async def test_wrong_password_is_permanent_and_never_echoed(cert):
    sink = SmtpSink(tls=server_context(cert), mode="starttls", login=(SMTP_USER, "the-right-one")).start()
    try:
        provider = {"username": SMTP_USER, "password": SMTP_PASSWORD, "ca_file": str(cert[0]),
                    "starttls": "True"}
        result = await channel().send(page(), target(sink, **provider))
        assert result.outcome == "permanent"
        assert result.error.startswith("SMTP 535")
        assert SMTP_PASSWORD not in result.error
        assert sink.messages == []
    finally:
        sink.stop()


@pytest.mark.parametrize("mode", ["starttls", "tls"])
async def test_an_untrusted_certificate_is_refused_for_good(mode, cert, tmp_path):
    (tmp_path / "other").mkdir()
    other_ca, _ = self_signed_cert(tmp_path / "other")
    sink = SmtpSink(tls=server_context(cert), mode=mode).start()
    try:
        flags = {"starttls": "True"} if mode == "starttls" else {"tls": "True"}
        result = await channel().send(page(), target(sink, ca_file=str(other_ca), **flags))
        assert result.outcome == "permanent"
        assert "CERTIFICATE_VERIFY_FAILED" in result.error
        assert sink.messages == []
    finally:
        sink.stop()


async def test_an_unreadable_ca_file_is_permanent(sink, tmp_path):
    result = await channel().send(page(), target(sink, starttls="True", ca_file=str(tmp_path / "missing.pem")))
    assert result.outcome == "permanent"
    assert result.error.startswith("providers.smtp.ca_file cannot be used")


async def test_starttls_required_but_not_offered_is_permanent(sink):
    result = await channel().send(page(), target(sink, starttls="True"))
    assert result.outcome == "permanent"
    assert "STARTTLS" in result.error or "starttls" in result.error.lower()
    assert sink.messages == []


# ------------------------------------------------------------------ end to end: page → mail → link → acknowledged


@pytest_asyncio.fixture
async def stack_sink() -> AsyncIterator[SmtpSink]:
    server = SmtpSink().start()
    yield server
    server.stop()


async def test_mail_link_acknowledges_as_the_recipient_after_confirming(stack, stack_sink, fixtures_dir):
    await stack.start(team_config(
        f'  smtp: {{host: 127.0.0.1, port: {stack_sink.port}, starttls: false, from: tocsin@example.com}}',
        "{mail: {type: email}}"))
    incident = await open_one_incident(stack, fixtures_dir)

    async def mailed() -> Any:
        return stack_sink.messages[0] if stack_sink.messages else None
    mail = await eventually(mailed)
    assert stack_sink.envelopes[0].rcpt_tos == ["alice@example.com"], "the user's own address by default"
    text, _ = parts(mail)
    ack = re.search(r"^Acknowledge: (\S+)", text, re.M).group(1)
    assert ack.startswith(f"{stack.url}/api/v1/answer/")

    # Following the link (as a mail scanner does) only shows a confirm page.
    async with stack.session.get(ack) as resp:
        assert resp.status == 200
        assert "answering as <b>alice</b>" in await resp.text()
    await asyncio.sleep(0.2)
    assert (await stack.incident(incident["id"]))["status"] == "triggered"

    async with stack.session.post(ack) as resp:
        assert resp.status == 200, await resp.text()

    async def acknowledged() -> Any:
        detail = await stack.incident(incident["id"])
        return detail if detail["status"] == "acknowledged" else None
    detail = await eventually(acknowledged)
    assert detail["acknowledged_by"] == "alice"
    assert [d["channel"] for d in detail["deliveries"] if d["status"] == "delivered"] == ["alice/mail"]


async def test_tampered_mail_link_is_refused(stack, stack_sink, fixtures_dir):
    await stack.start(team_config(
        f'  smtp: {{host: 127.0.0.1, port: {stack_sink.port}, starttls: false, from: tocsin@example.com}}',
        "{mail: {type: email}}"))
    incident = await open_one_incident(stack, fixtures_dir)
    await eventually(lambda: asyncio.sleep(0, stack_sink.messages))
    text, _ = parts(stack_sink.messages[0])
    ack = re.search(r"^Acknowledge: (\S+)", text, re.M).group(1)
    token = ack.split("/answer/")[1].split("?")[0]
    forged = ack.replace(token, token[:-2] + ("AA" if not token.endswith("AA") else "BB"))
    async with aiohttp.ClientSession() as s, s.post(forged) as resp:
        assert resp.status == 403
    assert (await stack.incident(incident["id"]))["status"] == "triggered"
