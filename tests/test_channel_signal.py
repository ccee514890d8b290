"""Signal: signal-cli's JSON-RPC HTTP daemon (a local fake of `POST /api/v1/rpc`) and the signal-cli command
(a small fake executable this test writes), each with its error → outcome table.
"""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from provider_fakes import FakeSignalDaemon, open_one_incident, rpc_error, team_config

from harness import eventually
from tocsin.events.base import utcnow
from tocsin.events.notify import NotificationRequested
from tocsin.notifier.channels.base import Target
from tocsin.notifier.channels.signal import SignalChannel

LINK = "https://tocsin.example/incidents/01J0000000000000000000INC1"
ACCOUNT, RECIPIENT = "+15550002222", "+15550004444"


def page(**changes: Any) -> NotificationRequested:
    fields: dict[str, Any] = {
        "id": "notif-0001", "aggregate_id": "inc-0001", "at": utcnow(), "channel_kind": "signal",
        "channel": "signal-oncall", "user": "", "destination": {"recipient": RECIPIENT}, "incident_number": 42,
        "title": "Disk /var is 97% full", "body": "on db-1, mounted at /var", "severity": "critical", "link": LINK}
    fields.update(changes)
    return NotificationRequested(**fields)


@pytest_asyncio.fixture
async def daemon() -> AsyncIterator[FakeSignalDaemon]:
    async with FakeSignalDaemon() as fake:
        yield fake


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        yield s


def rpc_target(daemon: FakeSignalDaemon, **provider: str) -> Target:
    return Target(fields={"recipient": RECIPIENT}, provider={"rest_url": daemon.url, **provider})


# ------------------------------------------------------------------ the HTTP daemon

RPC_OUTCOMES = [
    (None, "ok"),
    (rpc_error(-1, "Invalid recipient"), "permanent"),             # user error
    (rpc_error(-2, "Unexpected error"), "retry"),
    (rpc_error(-3, "Failed to send message due to IO"), "retry"),   # server or network
    (rpc_error(-4, "Untrusted identity key"), "permanent"),
    (rpc_error(-5, "Rate limit exceeded"), "retry"),
    (rpc_error(-32601, "Method not implemented"), "permanent"),
    (rpc_error(-32602, "Invalid params"), "permanent"),
    (lambda _: web.Response(status=500, text="boom"), "retry"),
    (lambda _: web.Response(status=503, text="starting"), "retry"),
    (lambda _: web.Response(status=404, text="no such path"), "permanent"),
    (lambda _: web.Response(status=200, text="not json"), "retry"),
]


@pytest.mark.parametrize(("reply", "expected"), RPC_OUTCOMES)
async def test_daemon_answer_classifies_the_delivery(reply, expected, daemon, session):
    if reply is not None:
        daemon.answers = [reply]
    result = await SignalChannel(session).send(page(), rpc_target(daemon))
    assert result.outcome == expected, result
    assert len(daemon.requests) == 1
    if expected == "ok":
        assert result.provider_id.isdigit()


async def test_daemon_wire_format(daemon, session):
    await SignalChannel(session).send(page(), rpc_target(daemon, account=ACCOUNT))
    [request] = daemon.requests
    assert (request.method, request.path) == ("POST", "/api/v1/rpc")
    call = request.json()
    assert call["jsonrpc"] == "2.0" and call["method"] == "send" and call["id"] == "notif-0001"
    assert call["params"] == {"recipient": [RECIPIENT], "account": ACCOUNT, "message":
                              f"#42 [CRITICAL] Disk /var is 97% full\non db-1, mounted at /var\n{LINK}"}


async def test_long_messages_keep_the_link(daemon, session):
    await SignalChannel(session).send(page(body="x" * 10_000), rpc_target(daemon))
    message = daemon.requests[0].json()["params"]["message"]
    assert len(message) <= 2000 and message.endswith(LINK)


@pytest.mark.parametrize("recipient", ["", "-x", "--help"])
async def test_bad_recipient_is_permanent(recipient, daemon, session):
    result = await SignalChannel(session).send(page(), Target(fields={"recipient": recipient},
                                                              provider={"rest_url": daemon.url}))
    assert result.outcome == "permanent"
    assert daemon.requests == []


# ------------------------------------------------------------------ the command

FAKE_CLI = """#!{python}
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "calls.jsonl"), "a") as out:
    out.write(json.dumps(sys.argv[1:]) + "\\n")
code = int(open(os.path.join(here, "exit_code")).read())
if code == 0:
    print("1767225600123")
else:
    print("Failed to send message", file=sys.stderr)
sys.exit(code)
"""


@pytest.fixture
def cli(tmp_path: Path) -> Path:
    script = tmp_path / "signal-cli"
    script.write_text(FAKE_CLI.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "exit_code").write_text("0")
    return script


def calls(cli: Path) -> list[list[str]]:
    path = cli.parent / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize(("code", "expected"), [(0, "ok"), (1, "permanent"), (2, "retry"), (3, "retry"),
                                                (4, "permanent"), (5, "retry")])
async def test_command_exit_status_classifies_the_delivery(code, expected, cli, session):
    (cli.parent / "exit_code").write_text(str(code))
    result = await SignalChannel(session).send(
        page(), Target(fields={"recipient": RECIPIENT}, provider={"cli_path": str(cli), "account": ACCOUNT}))
    assert result.outcome == expected, result
    assert len(calls(cli)) == 1
    if expected == "ok":
        assert result.provider_id == "1767225600123"
    else:
        assert result.error == f"signal-cli exited with {code}: Failed to send message"


async def test_command_gets_its_arguments_without_a_shell(cli, session, tmp_path):
    marker = tmp_path / "pwned"
    title = f"Disk full $(touch {marker}); `touch {marker}` && echo hi | cat"
    await SignalChannel(session).send(
        page(title=title), Target(fields={"recipient": RECIPIENT}, provider={"cli_path": str(cli),
                                                                            "account": ACCOUNT}))
    [argv] = calls(cli)
    assert argv[:4] == ["-a", ACCOUNT, "send", "-m"]
    assert argv[4].startswith(f"#42 [CRITICAL] {title}\n") and argv[4].endswith(LINK)
    assert argv[5:] == [RECIPIENT]
    assert not marker.exists()


async def test_neither_daemon_nor_command_is_permanent(session):
    result = await SignalChannel(session).send(page(), Target(fields={"recipient": RECIPIENT}, provider={}))
    assert (result.outcome, result.error) == ("permanent", "providers.signal needs rest_url or cli_path")


async def test_missing_command_is_not_a_delivery(tmp_path, session):
    result = await SignalChannel(session).send(page(), Target(
        fields={"recipient": RECIPIENT}, provider={"cli_path": str(tmp_path / "nope"), "account": ACCOUNT}))
    assert (result.outcome, result.error) == (
        "permanent", "providers.signal.cli_path cannot be run: No such file or directory")


# ------------------------------------------------------------------ end to end


async def test_a_person_is_paged_on_signal_at_their_own_number(stack, daemon, fixtures_dir):
    await stack.start(team_config(f'  signal: {{rest_url: "{daemon.url}", account: "{ACCOUNT}"}}',
                                  "{sig: {type: signal}}", phone="+15550003333"))
    incident = await open_one_incident(stack, fixtures_dir)
    [request] = await daemon.wait_for(1)
    params = request.json()["params"]
    assert params["recipient"] == ["+15550003333"], "a person's signal contact defaults to their phone"
    assert params["message"].startswith(f"#{incident['number']} [")
    assert f"/incidents/{incident['id']}" in params["message"]

    async def delivered() -> Any:
        detail = await stack.incident(incident["id"])
        return [d for d in detail["deliveries"] if d["status"] == "delivered"]
    [delivery] = await eventually(delivered)
    assert delivery["channel"] == "alice/sig"
