"""`tocsin channel test NAME`, run as the real command (a subprocess) against fake providers.

The config is read from the CONFIG stream, as the services read it; the command finds NATS through
TOCSIN_NATS_URL (as it would through a running `tocsin up`'s data dir).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from aiohttp import web

from harness import FakeProvider, Received
from tocsin.events.base import new_id, utcnow
from tocsin.events.bus import Bus
from tocsin.events.config import CONFIG_SUBJECT, Config, ConfigApplied, parse_config
from tocsin.notifier.channels import REGISTRY

HOOK_SECRET = "hook-secret-channel-test-7Qp2"


async def apply(bus: Bus, ntfy: FakeProvider, webhook: FakeProvider) -> Config:
    config = parse_config(f"""
security: {{allow_private_networks: true}}
providers: {{ntfy: {{server: "{ntfy.url}"}}}}
users:
  alice:
    contacts:
      push: {{type: ntfy, topic: alice-pages}}
      phone: {{type: sms, to: "+15550001111"}}
channels:
  ops-hook: {{type: webhook, url: "{webhook.url}/hook", secret: "{HOOK_SECRET}"}}
""")
    await bus.publish(CONFIG_SUBJECT, ConfigApplied(id=new_id(), at=utcnow(), revision=1, config=config))
    return config


async def tocsin(nats_url: str | None, *args: str, cwd: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TOCSIN_NATS_URL", "TOCSIN_DATABASE_URL")}
    if nats_url:
        env["TOCSIN_NATS_URL"] = nats_url
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "tocsin", *args, env=env, cwd=cwd,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_a_shared_channel_answers_ok_with_the_provider_id(bus, nats_url, ntfy, webhook, tmp_path):
    await apply(bus, ntfy, webhook)
    webhook.default = lambda _: web.Response(status=202, headers={"X-Request-Id": "req-test-1"})

    code, out, err = await tocsin(nats_url, "channel", "test", "ops-hook", cwd=tmp_path)

    assert (code, err) == (0, ""), err
    assert out.strip() == "ok: ops-hook (webhook) accepted the test message, provider id req-test-1"
    [request] = webhook.requests
    body = request.json()
    assert (body["kind"], body["channel"], body["severity"]) == ("test", "ops-hook", "info")
    assert request.headers["X-Tocsin-Signature"].startswith("sha256="), "signed with the channel's secret"


async def test_a_persons_contact_is_named_user_slash_contact(bus, nats_url, ntfy, webhook, tmp_path):
    await apply(bus, ntfy, webhook)

    code, out, _ = await tocsin(nats_url, "channel", "test", "alice/push", cwd=tmp_path)

    assert code == 0
    assert out.strip() == "ok: alice/push (ntfy) accepted the test message, provider id ntfy-1"
    body = ntfy.requests[0].json()
    assert body["topic"] == "alice-pages"
    assert body["title"] == "Test: [INFO] Tocsin test message for alice/push"
    assert "actions" not in body, "a test names no incident: nothing to acknowledge"


async def test_a_refusal_is_shown_classified_with_secrets_masked_and_exits_1(bus, nats_url, ntfy, webhook,
                                                                             tmp_path):
    await apply(bus, ntfy, webhook)

    def echo(received: Received) -> web.Response:   # a provider that echoes what it got, secret and all
        return web.Response(status=401, text=f"bad signature for secret {HOOK_SECRET}")
    webhook.default = echo

    code, out, err = await tocsin(nats_url, "channel", "test", "ops-hook", cwd=tmp_path)

    assert code == 1
    assert out.startswith("failed, permanent (a page would not be retried): ops-hook (webhook): HTTP 401: ")
    assert HOOK_SECRET not in out + err
    assert len(webhook.requests) == 1, "one try, no retries"


async def test_a_provider_error_worth_retrying_is_shown_as_such(bus, nats_url, ntfy, webhook, tmp_path):
    await apply(bus, ntfy, webhook)
    webhook.default = 503

    code, out, _ = await tocsin(nats_url, "channel", "test", "ops-hook", cwd=tmp_path)

    assert code == 1
    assert out.startswith("failed, retry (a page would be retried): ops-hook (webhook): HTTP 503")
    assert len(webhook.requests) == 1


async def test_an_unknown_name_lists_the_names(bus, nats_url, ntfy, webhook, tmp_path):
    await apply(bus, ntfy, webhook)

    code, out, err = await tocsin(nats_url, "channel", "test", "ops-slack", cwd=tmp_path)

    assert (code, out) == (1, "")
    assert err.strip() == "unknown channel 'ops-slack'; the applied config has ops-hook, alice/phone, alice/push"
    assert webhook.requests == [] and ntfy.requests == []


async def test_a_kind_this_version_cannot_send_is_said_so(bus, nats_url, ntfy, webhook, tmp_path):
    if "sms" in REGISTRY:
        pytest.skip("this build sends SMS")
    await apply(bus, ntfy, webhook)
    code, _, err = await tocsin(nats_url, "channel", "test", "alice/phone", cwd=tmp_path)
    assert code == 1
    assert err.startswith("alice/phone is a sms channel, which this version cannot send to")


async def test_without_a_running_tocsin_it_says_where_it_looked(tmp_path):
    code, out, err = await tocsin(None, "--data-dir", str(tmp_path / "nothing"), "channel", "test", "ops-hook",
                                  cwd=tmp_path)
    assert (code, out) == (1, "")
    assert "no running `tocsin up` found" in err
