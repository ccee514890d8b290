"""Config as code, applied: merge by name, prune, all or nothing, idempotent, tokens shown once."""

from __future__ import annotations

import aiohttp

from tocsin.api import config_store
from tocsin.events.config import hash_token, read_config

BASE = """
security: {allow_private_networks: true}
users:
  alice: {contacts: {out: {type: log}}}
teams:
  infra:
    members: [alice]
    rotations: {primary: {members: [alice], shift: 1d, start: "2026-01-01T09:00"}}
    escalation: {steps: [{notify: ["rotation:primary"]}]}
routes:
  prom: {source: alertmanager, team: infra, token: prom-token-0000000001}
"""


async def apply(stack, text: str):
    return await config_store.apply(stack.pool, stack.bus, read_config(text, env={}), by="test")


async def current(stack):
    async with stack.pool.acquire() as conn:
        return await config_store.current(conn)


async def test_a_partial_file_merges_by_name_and_keeps_what_it_leaves_out(stack):
    await stack.start(BASE)
    result = await apply(stack, """
users:
  bob: {contacts: {out: {type: log}}}
routes:
  graf: {source: grafana, team: infra}
""")
    revision, config = await current(stack)
    assert result.revision == revision == 2
    assert set(config.users) == {"alice", "bob"} and set(config.routes) == {"prom", "graf"}
    assert config.security.allow_private_networks is True      # not in the file: kept
    # a route without a token gets one, printed once and stored only as a hash
    token = result.new_tokens["graf"]
    assert config.routes["graf"].token_sha256 == hash_token(token) and config.routes["graf"].token == ""
    assert config.routes["prom"].token_sha256 == hash_token("prom-token-0000000001")
    # applying the same file again changes nothing, and keeps the generated token
    again = await apply(stack, "routes:\n  graf: {source: grafana, team: infra}\n")
    assert again.changed is False and again.new_tokens == {} and again.revision == 2


async def test_an_error_anywhere_changes_nothing(stack):
    await stack.start(BASE)
    before = await current(stack)
    try:
        await apply(stack, """
users:
  bob: {contacts: {out: {type: log}}}
teams:
  infra: {members: [alice, carl], escalation: {steps: [{notify: ["user:alice"]}]}}
""")
    except Exception as exc:
        assert ('teams.infra.members[1]', 'unknown user "carl"') in exc.errors  # type: ignore[attr-defined]
    else:
        raise AssertionError("applied a config with an unknown user")
    assert await current(stack) == before


async def test_prune_removes_what_the_file_does_not_name(stack):
    await stack.start(BASE)
    await apply(stack, "users:\n  bob: {}\n")
    await apply(stack, BASE.replace("users:", "prune: true\nusers:"))
    _, config = await current(stack)
    assert set(config.users) == {"alice"}


async def test_put_and_get_config_over_http(stack):
    await stack.start(BASE.replace("alice: {", "alice: {role: admin, "))   # the whole config: admins only
    token = await stack.token("alice")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/yaml"}
    assert stack.session
    async with stack.session.put(f"{stack.url}/api/v1/config", data="users:\n  bob: {}\n",
                                 headers=headers) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        assert body["revision"] == 2 and body["changed"] is True
    async with stack.session.put(f"{stack.url}/api/v1/config", data="routes:\n  x: {source: nagios, team: nope}\n",
                                 headers=headers) as resp:
        body = await resp.json()
        assert resp.status == 422
        paths = {d["path"] for d in body["error"]["details"]}
        assert {"routes.x.source", "routes.x.team"} <= paths
    async with stack.session.get(f"{stack.url}/api/v1/config", headers=headers) as resp:
        body = await resp.json()
        assert body["revision"] == 2 and set(body["config"]["users"]) == {"alice", "bob"}
        assert "token" not in body["config"]["routes"]["prom"]
        assert "prom-token-0000000001" not in str(body)
    async with aiohttp.ClientSession() as anon, anon.get(f"{stack.url}/api/v1/config") as resp:
        assert resp.status == 401
