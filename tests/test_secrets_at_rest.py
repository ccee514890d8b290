"""Channel, contact and provider secrets are sealed at rest: not in the Postgres rows, not in the CONFIG
stream's bytes, masked in every answer and export, yet the notifier still sends with them, and an
exported config applied on a fresh instance (secrets from the environment) comes out the same."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
import yaml

from harness import FakeProvider, StackHandle
from tocsin.api import config_store
from tocsin.embedded import EmbeddedNats
from tocsin.events.bus import Bus
from tocsin.events.config import CONFIG_SUBJECT, read_config, redacted
from tocsin.events.sealing import MASK, Sealer, SealError, is_sealed
from tocsin.events.streams import CONFIG

SECRETS = {"NTFY_TOKEN": "ntfy-provider-secret-1", "ALICE_TOKEN": "alice-contact-secret-2",
           "HOOK_SECRET": "hook-channel-secret-3", "PO_USER": "pushover-user-key-4"}

FILE = """
security: {allow_private_networks: true}
providers:
  ntfy: {server: "NTFY_URL", token: "${NTFY_TOKEN}"}
users:
  alice:
    role: admin     # reads and writes the whole config; who may is tests/test_rbac.py
    contacts: {push: {type: ntfy, topic: alice-pages, token: "${ALICE_TOKEN}"}}
channels:
  hook: {type: webhook, url: "HOOK_URL/hook", secret: "${HOOK_SECRET}"}
  po: {type: pushover, user_key: "${PO_USER}"}
teams:
  infra:
    members: [alice]
    channels: [hook]
    rotations: {primary: {members: [alice], shift: 1d, start: "2026-01-01T09:00"}}
    escalation: {steps: [{notify: ["rotation:primary", "channel:hook"]}]}
routes:
  prod: {source: webhook, team: infra, token: "secrets-route-token-0123456789"}
"""


def config_text(ntfy: FakeProvider, hook: FakeProvider) -> str:
    return FILE.replace("NTFY_URL", ntfy.url).replace("HOOK_URL", hook.url)


def test_a_sealed_value_opens_only_with_its_key() -> None:
    sealer = Sealer(b"k" * 32)
    sealed = sealer.seal("s3cret")
    assert is_sealed(sealed) and "s3cret" not in sealed
    assert sealer.seal(sealed) == sealed             # sealing twice does not wrap it again
    assert sealer.unseal(sealed) == "s3cret"
    assert sealer.unseal("plain, from before sealing") == "plain, from before sealing"
    with pytest.raises(SealError, match="TOCSIN_SECRET_KEY"):
        Sealer(b"x" * 32).unseal(sealed)


async def test_secrets_are_sealed_in_postgres_and_on_the_stream_and_the_notifier_still_uses_them(
        stack: StackHandle, ntfy: FakeProvider, webhook: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    await stack.start(config_text(ntfy, webhook))

    rows = await stack.pool.fetch("SELECT document::text AS doc FROM api_config_revisions")
    assert rows
    for row in rows:
        for value in SECRETS.values():
            assert value not in row["doc"]
    raw = await stack.bus.last_on_subject(CONFIG.name, CONFIG_SUBJECT)
    assert raw is not None
    for value in SECRETS.values():
        assert value.encode() not in raw[1]
    doc = msgspec.json.decode(raw[1])
    assert is_sealed(doc["config"]["providers"]["ntfy"]["token"])
    assert is_sealed(doc["config"]["channels"]["hook"]["secret"])
    # The intake checks route signatures itself and holds no key: route tokens are hashes, as before.
    assert "token" not in doc["config"]["routes"]["prod"] or not doc["config"]["routes"]["prod"]["token"]

    # Every answer masks them.
    status, body = await stack.api("GET", "/api/v1/config")
    assert status == 200
    text = msgspec.json.encode(body).decode()
    assert not any(value in text for value in SECRETS.values())
    assert body["config"]["providers"]["ntfy"]["token"] == MASK
    assert body["config"]["users"]["alice"]["contacts"]["push"]["token"] == MASK

    # The notifier opens them to send: the contact's token authorizes the ntfy post, the channel's
    # secret signs the webhook.
    status, opened = await stack.post_alert("webhook", {"title": "disk full"}, "secrets-route-token-0123456789")
    assert status == 202, opened
    [push] = await ntfy.wait_for(1)
    assert push.headers["Authorization"] == f"Bearer {SECRETS['ALICE_TOKEN']}"
    [hook] = await webhook.wait_for(1)
    stamp = hook.headers["X-Tocsin-Timestamp"]
    expected = hmac.new(SECRETS["HOOK_SECRET"].encode(), stamp.encode() + b"." + hook.body,
                        hashlib.sha256).hexdigest()
    assert hook.headers["X-Tocsin-Signature"] == f"sha256={expected}"


async def test_a_masked_secret_sent_back_keeps_the_stored_value(stack: StackHandle, ntfy: FakeProvider,
                                                                webhook: FakeProvider,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    await stack.start(config_text(ntfy, webhook))
    assert stack.session
    token = await stack.token("alice")
    async with stack.session.get(f"{stack.url}/api/v1/config", headers={
            "Authorization": f"Bearer {token}", "Accept": "application/yaml"}) as resp:
        exported = await resp.text()
    assert MASK in exported and not any(v in exported for v in SECRETS.values())
    # The export, changed in one place and put back: the secrets it masks stay as they were.
    changed = exported.replace("topic: alice-pages", "topic: alice-urgent")
    async with stack.session.put(f"{stack.url}/api/v1/config", data=changed, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "application/yaml"}) as resp:
        assert resp.status == 200, await resp.text()
    async with stack.pool.acquire() as conn:
        _, config = await config_store.current(conn)
    assert config.users["alice"].contacts["push"] == {"type": "ntfy", "topic": "alice-urgent",
                                                      "token": SECRETS["ALICE_TOKEN"]}
    assert config.providers["ntfy"]["token"] == SECRETS["NTFY_TOKEN"]


def _secret_paths(doc: Any, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    """Where a document holds the mask."""
    if isinstance(doc, dict):
        return {p: v for k, v in doc.items() for p, v in _secret_paths(v, (*path, k)).items()}
    if isinstance(doc, list):
        return {p: v for i, v in enumerate(doc) for p, v in _secret_paths(v, (*path, i)).items()}
    return {path: doc} if doc == MASK else {}


def _put(doc: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        doc = doc[key]
    doc[path[-1]] = value


async def test_export_then_apply_on_a_fresh_instance_round_trips(
        stack: StackHandle, ntfy: FakeProvider, webhook: FakeProvider, pg_admin_url: str, pg_template: str,
        tmp_path: Path) -> None:
    await stack.start("users: {}")
    text = config_text(ntfy, webhook)
    await config_store.apply(stack.pool, stack.bus, read_config(text, env=SECRETS), by="test")
    async with stack.pool.acquire() as conn:
        _, first = await config_store.current(conn)
    exported = yaml.safe_dump(redacted(first), sort_keys=False)
    doc = yaml.safe_load(exported)
    masked = _secret_paths(doc)
    # Each masked secret is given as a reference to the environment, as one keeps them in git.
    original = yaml.safe_load(text)
    for path in masked:
        if path[0] == "routes":   # route tokens are not exported; a fresh instance makes new ones
            continue
        reference = original
        for key in path:
            reference = reference[key]
        assert isinstance(reference, str) and reference.startswith("${")
        _put(doc, path, reference)
    assert len([p for p in masked if p[0] != "routes"]) == 4

    name = f"tocsin_fresh_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    nats = EmbeddedNats(tmp_path / "fresh-nats").start()
    try:
        pool = await asyncpg.create_pool(pg_admin_url.rpartition("/")[0] + f"/{name}", min_size=1, max_size=2)
        bus = await Bus.connect(nats.url, "fresh")
        try:
            await bus.ensure_streams()
            result = await config_store.apply(pool, bus, read_config(yaml.safe_dump(doc), env=SECRETS), by="test")
            assert result.changed
            async with pool.acquire() as conn:
                _, second = await config_store.current(conn)
        finally:
            await bus.close()
            await pool.close()
    finally:
        nats.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    def comparable(config: Any) -> Any:
        out = msgspec.to_builtins(config)
        for route in out["routes"].values():
            route.pop("token_sha256")
        return out
    assert comparable(second) == comparable(first)
    assert second.channels["hook"]["secret"] == SECRETS["HOOK_SECRET"]
    assert yaml.safe_dump(redacted(second), sort_keys=False) == exported
