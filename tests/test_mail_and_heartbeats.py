"""The intake's other doors: mail to incident over SMTP, and signed UDP heartbeats, on a running stack."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from harness import StackHandle, eventually, free_port
from tocsin.embedded import EmbeddedNats
from tocsin.events import heartbeats
from tocsin.events.config import ConfigError, parse_config
from tocsin.events.streams import ALERTS, HEARTBEATS
from tocsin.intake import heartbeats as listener
from tocsin.intake import mail
from tocsin.intake.app import Intake
from tocsin.intake.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
MAIL_TOKEN = "mail-route-token-0001"
SMALL_TOKEN = "mail-small-token-0001"
AM_TOKEN = "alertmanager-token-0001"
HOST_KEY = "hb-key-prod-web-01-0123456789"

CONFIG = f"""
users:
  alice: {{contacts: {{out: {{type: log}}}}}}
channels:
  ops-log: {{type: log}}
teams:
  infra:
    members: [alice]
    rotations: {{primary: {{members: [alice], shift: 1d, start: "2026-01-01T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"]}}]}}
routes:
  mail: {{source: email, team: infra, token: {MAIL_TOKEN}, mail_alias: Ops-Alerts}}
  small: {{source: email, team: infra, token: {SMALL_TOKEN}, max_body_bytes: 2048}}
  am: {{source: alertmanager, team: infra, token: {AM_TOKEN}}}
thresholds:
  high_sensitivity:
    cpu_monitor.cpu_percent: {{warning: "> 80", critical: "> 90"}}
hosts:
  prod-web-01: {{team: infra, interval: 30s, thresholds: high_sensitivity, channels: [ops-log]}}
  signed-01: {{watch: true, team: infra, interval: 30s, key: {HOST_KEY}}}
"""


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def doors(monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """Free ports for the stack's SMTP and UDP listeners (read from the environment at start)."""
    smtp, udp = free_port(), free_udp_port()
    monkeypatch.setenv("TOCSIN_SMTP", f"127.0.0.1:{smtp}")
    monkeypatch.setenv("TOCSIN_UDP", f"127.0.0.1:{udp}")
    return smtp, udp


def message(to: str, subject: str = "Disk /var is 95% full on db-01", body: str = "Only 2.1 GiB left.",
            **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Zabbix <zabbix@example.net>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = headers.pop("message_id", "<20261127080000.1@zabbix.example.net>")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


async def send_mail(port: int, msg: EmailMessage, **kwargs: Any) -> tuple[dict[str, Any], str]:
    return await aiosmtplib.send(msg, hostname="127.0.0.1", port=port, timeout=10, **kwargs)


async def stored_alerts(stack: StackHandle) -> int:
    return int((await stack.bus.js.stream_info(ALERTS.name)).state.messages)


async def alert(stack: StackHandle, alert_id: str) -> dict[str, Any]:
    async def projected() -> dict[str, Any] | None:
        status, body = await stack.api("GET", f"/api/v1/alerts/{alert_id}")
        return body if status == 200 and body.get("incident_id") else None
    return await eventually(projected)  # type: ignore[no-any-return]


def alert_id_of(answer: str) -> str:
    return answer.rsplit(" ", 1)[-1]


# ------------------------------------------------------------------ mail


async def test_mail_opens_an_incident_with_the_subject_as_title(stack, doors, caplog):
    caplog.set_level(logging.INFO)
    await stack.start(CONFIG)
    smtp, _ = doors
    msg = message(f"{MAIL_TOKEN}@tocsin.example.org", X_Priority="1 (Highest)")
    refused, answer = await send_mail(smtp, msg)
    assert refused == {}
    incidents = await eventually(stack.incidents)
    assert [(i["title"], i["source"], i["route"], i["severity"]) for i in incidents] == [
        ("Disk /var is 95% full on db-01", "email", "mail", "critical")]
    body = await alert(stack, alert_id_of(answer))
    assert body["dedup_key"] == "mail-20261127080000.1@zabbix.example.net"
    assert body["details"] == "Only 2.1 GiB left."
    assert body["labels"] == {"from": "zabbix@example.net"}
    assert body["status"] == "firing"
    assert MAIL_TOKEN not in json.dumps(body)          # the raw mail kept with the alert names no recipient
    assert MAIL_TOKEN not in caplog.text                # nor does any log line

    # the same message again (an MTA retrying) attaches to the open incident instead of paging again
    await send_mail(smtp, msg)
    await eventually(lambda: _alert_count(stack, 2))
    assert len(await stack.incidents()) == 1


async def _alert_count(stack: StackHandle, count: int) -> bool:
    items = await stack.incidents()
    return bool(items) and items[0]["alert_count"] == count


async def test_mail_alias_html_body_and_importance(stack, doors):
    await stack.start(CONFIG)
    smtp, _ = doors
    msg = EmailMessage()
    msg["From"] = "backup@example.net"
    msg["To"] = "ops-alerts@any.domain"        # the alias, in any case, at any domain
    msg["Subject"] = "Nightly backup failed"
    msg["Importance"] = "low"
    msg.set_content("<html><head><style>p {}</style></head><body><p>Job <b>pg-dump</b> failed:</p>"
                    "<ul><li>exit 1</li><li>disk full</li></ul></body></html>", subtype="html")
    _, answer = await send_mail(smtp, msg)
    body = await alert(stack, alert_id_of(answer))
    assert body["route"] == "mail" and body["title"] == "Nightly backup failed"
    assert body["details"] == "Job pg-dump failed:\n\nexit 1\n\ndisk full"
    assert body["severity"] == "info"
    assert body["dedup_key"].startswith("mail-sha256:")     # no Message-ID: named by its content


@pytest.mark.parametrize("to", ["nobody@tocsin.example.org", f"{AM_TOKEN}@tocsin.example.org",
                                f"{MAIL_TOKEN.upper()}@tocsin.example.org"],
                         ids=["unknown", "route of another source", "token in the wrong case"])
async def test_unknown_recipient_is_refused_at_rcpt(stack, doors, to):
    await stack.start(CONFIG)
    smtp, _ = doors
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as info:
        await send_mail(smtp, message(to))
    assert info.value.recipients[0].code == 550
    assert await stored_alerts(stack) == 0


async def test_over_size_mail_is_refused(stack, doors, monkeypatch):
    monkeypatch.setenv("TOCSIN_SMTP_MAX_BYTES", "4096")
    await stack.start(CONFIG)
    smtp, _ = doors
    big = message(f"{MAIL_TOKEN}@x", body="x" * 8000)
    # aiosmtplib declares the size up front (RFC 1870), so the server refuses before the data...
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as declared:
        await send_mail(smtp, big)
    assert declared.value.code == 552
    # ...and a client that does not declare it is refused at the end of the data
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=smtp, timeout=10)
    async with client:
        await client.mail("zabbix@example.net")
        await client.rcpt(f"{MAIL_TOKEN}@x")
        with pytest.raises(aiosmtplib.SMTPDataError) as undeclared:
            await client.data(big.as_bytes())
    assert undeclared.value.code == 552
    # a route's own max_body_bytes holds for mail too
    with pytest.raises(aiosmtplib.SMTPDataError) as route_limit:
        await send_mail(smtp, message(f"{SMALL_TOKEN}@x", body="y" * 3000))
    assert route_limit.value.code == 552
    assert await stored_alerts(stack) == 0


async def test_bus_down_answers_451_then_recovers(stack, doors, nats_server: EmbeddedNats | None):
    if nats_server is None:
        pytest.skip("needs the harness's own NATS server to stop and start it")
    await stack.start(CONFIG)
    smtp, _ = doors
    nats_server.stop()
    with pytest.raises(aiosmtplib.SMTPDataError) as info:
        await send_mail(smtp, message(f"{MAIL_TOKEN}@x"))
    assert info.value.code == 451      # temporary: the sending MTA keeps the message and retries
    nats_server.start()

    async def accepted() -> bool:
        try:
            await send_mail(smtp, message(f"{MAIL_TOKEN}@x"))
        except aiosmtplib.SMTPDataError:
            return False
        return True
    await eventually(accepted, timeout=20, interval=0.3)
    assert await stored_alerts(stack) == 1


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=localhost", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


async def test_starttls_when_a_certificate_is_configured(stack, doors, monkeypatch, certificate):
    cert, key = certificate
    monkeypatch.setenv("TOCSIN_SMTP_TLS_CERT", str(cert))
    monkeypatch.setenv("TOCSIN_SMTP_TLS_KEY", str(key))
    monkeypatch.setenv("TOCSIN_SMTP_REQUIRE_TLS", "1")
    await stack.start(CONFIG)
    smtp, _ = doors
    with pytest.raises(aiosmtplib.SMTPSenderRefused) as info:
        await send_mail(smtp, message(f"{MAIL_TOKEN}@x"), start_tls=False)
    assert info.value.code == 530
    await send_mail(smtp, message(f"{MAIL_TOKEN}@x"), start_tls=True, validate_certs=False)
    assert await stored_alerts(stack) == 1


# ------------------------------------------------------------------ heartbeats


def send_udp(port: int, datagram: dict[str, Any] | bytes) -> None:
    data = datagram if isinstance(datagram, bytes) else json.dumps(datagram, separators=(",", ":")).encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(data, ("127.0.0.1", port))


def signed(datagram: dict[str, Any], key: str = HOST_KEY) -> dict[str, Any]:
    return {**datagram, "sig": heartbeats.signature(datagram, key)}


async def stored_beats(stack: StackHandle, host: str) -> list[heartbeats.HeartbeatReceived]:
    return [heartbeats.decoder.decode(data)
            for _, data in await stack.bus.read_subject(HEARTBEATS.name, heartbeats.subject(host))]


def counters(stack: StackHandle) -> dict[str, int]:
    assert stack.stack and stack.stack.heartbeats
    return stack.stack.heartbeats.counters


async def handled(stack: StackHandle, total: int) -> dict[str, int]:
    """Wait until `total` datagrams have been dealt with; the counters then."""
    async def done() -> dict[str, int] | None:
        return counters(stack) if sum(counters(stack).values()) >= total else None
    return await eventually(done)  # type: ignore[no-any-return]


async def test_fixture_datagrams_are_stored_with_their_metrics(stack, doors, fixtures_dir):
    await stack.start(CONFIG)
    _, udp = doors
    for name in ("boot", "alive-with-metrics", "shutdown"):
        send_udp(udp, json.dumps(json.loads((fixtures_dir / "heartbeat" / f"{name}.json").read_text())).encode())
    assert (await handled(stack, 3))["accepted"] == 3
    beats = await stored_beats(stack, "prod-web-01")
    assert [(b.event, b.seq, b.interval, b.signed) for b in beats] == [
        ("boot", 1, 30, False), ("alive", 42, 30, False), ("shutdown", 43, 30, False)]
    assert beats[1].metrics == {"cpu_monitor.cpu_percent": 95.2, "disk_monitor.free_percent": 12.0}
    assert beats[1].aggregate_id == "prod-web-01" and beats[1].peer == "127.0.0.1"
    # no `ts`: named after the boot, so a copy of a datagram is one message on the stream
    assert beats[1].id == f"prod-web-01-{beats[0].epoch}-42"


async def test_signatures(stack, doors):
    await stack.start(CONFIG)
    _, udp = doors
    now = round(time.time(), 3)
    beat = {"host": "signed-01", "event": "boot", "interval": 30, "seq": 1, "ts": now}
    send_udp(udp, signed(beat))                                                       # right
    send_udp(udp, {**signed(beat), "sig": "0" * 64})                                  # wrong
    send_udp(udp, beat)                                                               # missing
    send_udp(udp, {**signed(beat), "seq": 7})                                         # changed after signing
    send_udp(udp, signed(beat, key="another-key-0123456789"))                         # another host's key
    send_udp(udp, {**signed(beat), "sig": signed(beat)["sig"].upper()})               # not lowercase hex
    no_ts = {k: v for k, v in beat.items() if k != "ts"}
    send_udp(udp, signed({**no_ts, "event": "alive", "seq": 2}))                      # signed but no ts
    send_udp(udp, signed({**beat, "event": "alive", "seq": 3, "ts": now + 0.5,
                          "metrics": {"load.avg1": 0.25}}))                           # right
    seen = await handled(stack, 8)
    assert (seen["accepted"], seen["bad_signature"], seen["malformed"]) == (2, 5, 1)
    beats = await stored_beats(stack, "signed-01")
    assert [(b.event, b.seq, b.signed) for b in beats] == [("boot", 1, True), ("alive", 3, True)]
    assert beats[1].metrics == {"load.avg1": 0.25}
    assert beats[1].id == f"signed-01-{json.dumps(now + 0.5)}-3"


async def test_replays_are_dropped_and_a_boot_starts_over(stack, doors):
    await stack.start(CONFIG)
    _, udp = doors
    t0 = round(time.time(), 3) - 60

    def beat(event: str, seq: int, dt: float) -> dict[str, Any]:
        return {"host": "prod-web-01", "event": event, "interval": 30, "seq": seq, "ts": t0 + dt}

    plan = [
        (beat("boot", 1, 0), "accepted"),
        (beat("alive", 2, 1), "accepted"),
        (beat("alive", 2, 1), "replayed"),       # the same datagram twice
        (beat("alive", 1, 2), "replayed"),       # a lower seq
        (beat("alive", 3, 3), "accepted"),
        (beat("boot", 1, 0), "replayed"),        # the old boot again: would reset the sequence
        (beat("boot", 1, 10), "accepted"),       # a real reboot starts over at 1
        (beat("alive", 2, 11), "accepted"),
        (beat("alive", 9, 5), "replayed"),       # higher seq, but sent before the last boot
        (beat("alive", 3, -300), "stale"),       # ts too far from now
        (beat("alive", 3, 12), "accepted"),
    ]
    for i, (datagram, expected) in enumerate(plan, 1):
        send_udp(udp, datagram)
        seen = await handled(stack, i)
        assert seen[expected] == sum(1 for _, e in plan[:i] if e == expected), (i, datagram, seen)
    beats = await stored_beats(stack, "prod-web-01")
    assert [(b.event, b.seq) for b in beats] == [("boot", 1), ("alive", 2), ("alive", 3), ("boot", 1),
                                                 ("alive", 2), ("alive", 3)]

    # after a restart the intake takes the host's sequence from the stream, so old datagrams stay old
    assert stack.stack and stack.stack.heartbeats
    stack.stack.heartbeats.protocol.hosts.clear()
    send_udp(udp, beat("alive", 3, 12))
    send_udp(udp, beat("alive", 4, 13))
    seen = await handled(stack, len(plan) + 2)
    assert (seen["replayed"], seen["accepted"]) == (5, 7)


async def test_unknown_hosts_and_malformed_datagrams_are_counted(stack, doors):
    await stack.start(CONFIG)
    _, udp = doors
    good = {"host": "prod-web-01", "event": "alive", "interval": 30, "seq": 5}
    send_udp(udp, {**good, "host": "db-99"})
    for bad in (b"{not json", b"[1, 2]", b'{"event": "boot"}', b"x" * 9000,
                json.dumps({**good, "event": "reboot"}).encode(),
                json.dumps({**good, "seq": "5"}).encode(),
                json.dumps({**good, "seq": True}).encode(),
                json.dumps({**good, "interval": 0}).encode(),
                json.dumps({**good, "metrics": {"cpu": "high"}}).encode(),
                json.dumps({**good, "metrics": [1]}).encode(),
                b'{"host": "prod-web-01", "event": "alive", "interval": 30, "seq": 5, "ts": NaN}'):
        send_udp(udp, bad)
    seen = await handled(stack, 12)
    assert (seen["unknown_host"], seen["malformed"], seen["accepted"]) == (1, 11, 0)
    assert await stored_beats(stack, "db-99") == []


@pytest.mark.e2e
async def test_the_sender_command(stack, doors):
    await stack.start(CONFIG)
    _, udp = doors
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
    env["TOCSIN_HEARTBEAT_KEY"] = HOST_KEY
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tocsin", "heartbeat", "--host", "signed-01", "--interval", "1",
        "--server", f"127.0.0.1:{udp}", "--metrics-command", "echo 'load.avg1 0.5'; echo '# none'",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async def two_alive() -> bool:
            return sum(b.event == "alive" for b in await stored_beats(stack, "signed-01")) >= 2
        await eventually(two_alive, timeout=20, interval=0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0 and out == b"" and err == b"", err

    async def shut_down() -> list[heartbeats.HeartbeatReceived] | None:
        beats = await stored_beats(stack, "signed-01")
        return beats if beats and beats[-1].event == "shutdown" else None
    beats = await eventually(shut_down)
    assert beats[0].event == "boot" and beats[0].seq == 1
    assert {b.event for b in beats[1:-1]} == {"alive"}
    assert [b.seq for b in beats] == list(range(1, len(beats) + 1))
    assert all(b.signed for b in beats) and all(b.ts for b in beats)
    assert all(b.metrics == {"load.avg1": 0.5} for b in beats[1:-1])
    assert counters(stack)["bad_signature"] == 0


# ------------------------------------------------------------------ listeners, config, docs


async def test_listeners_off_taken_and_explicit(monkeypatch):
    intake = Intake(Settings())
    async with mail.serve(intake, Settings(smtp_listen="off")) as smtp, \
            listener.serve(intake, Settings(udp_listen="off")) as udp:
        assert smtp is None and udp is None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(OSError, match="TOCSIN_UDP"):        # asked for: must be free
            async with listener.serve(intake, Settings(udp_listen=address)):
                pass
        monkeypatch.setattr(listener, "DEFAULT_UDP", address)    # the default: skipped with a warning
        async with listener.serve(intake, Settings()) as udp:
            assert udp is None
    port = free_port()
    async with mail.serve(intake, Settings(smtp_listen=f"127.0.0.1:{port}")) as smtp:
        assert smtp is not None and smtp.port == port


HOSTS_BASE = """
users: {alice: {}}
channels: {ops: {type: log}}
teams:
  infra:
    members: [alice]
    escalation: {steps: [{notify: ["user:alice"]}]}
thresholds: {high: {cpu.percent: {critical: "> 90"}}}
routes:
  mail: {source: email, team: infra, token: "0123456789abcdef", mail_alias: ops}
hosts:
  web-01: {watch: true, team: infra, interval: 30s, key: "0123456789abcdef", thresholds: high, channels: [ops]}
"""


@pytest.mark.parametrize(("old", "new", "path", "text"), [
    ("interval: 30s", "interval: soon", "hosts.web-01.interval", "not a duration"),
    ("interval: 30s", "interval: 30", "hosts.web-01.interval", "must be a duration such as 30s"),
    ("team: infra, interval", "team: ops, interval", "hosts.web-01.team", 'unknown team "ops"'),
    ("watch: true, team: infra, ", "watch: true, ", "hosts.web-01.team", "needs the team"),
    ("channels: [ops]", "channels: [pager]", "hosts.web-01.channels[0]", 'unknown channel "pager"'),
    ("thresholds: high,", "thresholds: low,", "hosts.web-01.thresholds", 'unknown thresholds "low"'),
    ('key: "0123456789abcdef"', 'key: "short"', "hosts.web-01.key", "at least 16"),
    ("watch: true", "watch: yes please", "hosts.web-01.watch", "must be true or false"),
    ("watch: true", "watch: true, colour: red", "hosts.web-01.colour", "unknown field"),
    ("web-01:", "web 01:", "hosts.web 01", "a name is"),
    ("source: email", "source: webhook", "routes.mail.mail_alias", "source: email"),
    ("mail_alias: ops", "mail_alias: ops@example.com", "routes.mail.mail_alias", "a mail alias is"),
])
def test_host_and_mail_alias_errors_name_their_path(old, new, path, text):
    assert old in HOSTS_BASE
    parse_config(HOSTS_BASE, env={})
    with pytest.raises(ConfigError) as info:
        parse_config(HOSTS_BASE.replace(old, new, 1), env={})
    assert any(p == path and text in m for p, m in info.value.errors), info.value.errors


def test_host_keys_are_masked_in_export():
    from tocsin.events.config import redacted
    doc = redacted(parse_config(HOSTS_BASE, env={}))
    assert doc["hosts"]["web-01"]["key"] == "********"


def test_the_documented_signature_matches_the_fixtures(fixtures_dir):
    doc = (ROOT / "docs" / "integrations" / "heartbeats.md").read_text()
    key = re.search(r"key `([^`]+)`", doc).group(1)
    examples = re.findall(r"canonical:\n+```\n(.+?)\n```\n+signature:\n+```\n([0-9a-f]{64})\n```", doc)
    assert len(examples) == 2
    for (text, sig), name in zip(examples, ("boot", "alive-with-metrics"), strict=True):
        datagram = json.loads(text)
        fixture = json.loads((fixtures_dir / "heartbeat" / f"{name}.json").read_text())
        assert {k: v for k, v in datagram.items() if k != "ts"} == fixture
        assert heartbeats.canonical(datagram).decode() == text
        assert heartbeats.signature(datagram, key) == sig
