"""Every authenticated endpoint by every kind of caller, with the answer each must get.

Callers: an administrator (global role, in no team), the infra team's owner, a responder and a viewer of
infra, a member of another team (db), nobody (no credentials), and the infra owner's token that lacks the
scope. Every incident, alert and route in the table belongs to infra. Other teams' objects answer 404, as
if they did not exist; a caller who can see an object but may not do the thing gets 403 (access.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from harness import StackHandle, eventually
from tocsin.api import users
from tocsin.api.auth import create_token

HOOK_TOKEN, DB_HOOK_TOKEN = "infra-hook-token-0001", "db-hook-token-000001"
PASSWORD = "the same long passphrase"
CONFIG = f"""
channels:
  infra-ch: {{type: log}}
  db-ch: {{type: log}}
hosts:
  infra-host: {{team: infra, channels: [infra-ch]}}
users:
  root: {{role: admin}}
  olga: {{contacts: {{out: {{type: log}}}}}}
  rita: {{contacts: {{out: {{type: log}}}}}}
  vic: {{}}
  otto: {{contacts: {{out: {{type: log}}}}}}
teams:
  infra:
    admins: [olga]
    members: [rita]
    viewers: [vic]
    channels: [infra-ch]
    rotations: {{primary: {{members: [rita], shift: 1d, start: "2026-01-01T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"], wait: 1h}}, {{notify: ["user:olga"]}}]}}
  db:
    members: [otto]
    rotations: {{primary: {{members: [otto], shift: 1d, start: "2026-01-01T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"]}}]}}
routes:
  hook: {{source: webhook, team: infra, token: {HOOK_TOKEN}}}
  db-hook: {{source: webhook, team: db, token: {DB_HOOK_TOKEN}, channels: [db-ch]}}
"""
ROTATION = {"members": ["rita"], "shift": "1d", "start": "2026-01-01T09:00"}
ESCALATION = {"steps": [{"notify": ["rotation:primary"], "wait": "1h"}, {"notify": ["user:olga"]}]}
INFRA = {"admins": ["olga"], "members": ["rita"], "viewers": ["vic"], "channels": ["infra-ch"],
         "rotations": {"primary": ROTATION}, "escalation": ESCALATION}
SILENCE_ENDS = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
OVERRIDE = {"rotation": "primary", "user": "rita", "start": "2030-01-01T00:00", "end": "2030-01-02T00:00"}

CALLERS = ("admin", "owner", "responder", "viewer", "other", "noauth", "noscope")
PEOPLE = {"admin": "root", "owner": "olga", "responder": "rita", "viewer": "vic", "other": "otto",
          "noscope": "olga"}

# (method, path, body) -> the status for each caller, in the order of CALLERS. {incident} is an infra
# incident of the caller's own (so one caller's acknowledge does not change what the next one meets),
# {alert} the infra alert that opened it.
TABLE: list[tuple[str, str, Any, tuple[int, ...]]] = [
    ("GET", "/api/v1/incidents", None, (200, 200, 200, 200, 200, 401, 403)),
    ("GET", "/api/v1/incidents/{incident}", None, (200, 200, 200, 200, 404, 401, 403)),
    ("POST", "/api/v1/incidents/{incident}/notes", {"note": "looking"}, (200, 200, 200, 403, 404, 401, 403)),
    ("POST", "/api/v1/incidents/{incident}/acknowledge", {"by": "root", "user": "root"},
     (200, 200, 200, 403, 404, 401, 403)),
    ("POST", "/api/v1/incidents/{incident}/escalate", None, (200, 200, 200, 403, 404, 401, 403)),
    ("POST", "/api/v1/incidents/{incident}/resolve", {"note": "fixed"}, (200, 200, 200, 403, 404, 401, 403)),
    ("POST", "/api/v1/incidents/{incident}/reopen", None, (404,) * 7),
    ("GET", "/api/v1/alerts/{alert}", None, (200, 200, 200, 200, 404, 401, 403)),
    ("GET", "/api/v1/oncall", None, (200, 200, 200, 200, 200, 401, 403)),
    ("GET", "/api/v1/config", None, (200, 403, 403, 403, 403, 401, 403)),
    ("PUT", "/api/v1/config", "{}", (200, 403, 403, 403, 403, 401, 403)),
    ("POST", "/api/v1/routes/hook/token", None, (200, 200, 403, 403, 404, 401, 403)),
    ("POST", "/api/v1/routes/no-such-route/token", None, (404, 404, 404, 404, 404, 401, 403)),
    ("GET", "/api/v1/audit", None, (200, 403, 403, 403, 403, 401, 403)),
    ("GET", "/api/v1/me", None, (200, 200, 200, 200, 200, 401, 200)),
    ("GET", "/api/v1/me/tokens", None, (200, 200, 200, 200, 200, 401, 200)),
    ("POST", "/api/v1/me/tokens", {"name": "ci", "scopes": ["incidents:read"]}, (201, 201, 201, 201, 201, 401, 403)),
    ("POST", "/api/v1/me/tokens", {"scopes": ["admin"]}, (201, 403, 403, 403, 403, 401, 403)),
    ("DELETE", "/api/v1/me/tokens/no-such-token", None, (404, 404, 404, 404, 404, 401, 404)),
    ("POST", "/api/v1/me/feeds", {"team": "infra"}, (201, 201, 201, 201, 404, 401, 403)),
    ("POST", "/api/v1/me/feeds", {}, (201, 201, 201, 201, 201, 401, 403)),
    ("GET", "/api/v1/me/feeds", None, (200, 200, 200, 200, 200, 401, 200)),
    ("DELETE", "/api/v1/me/feeds/no-such-feed", None, (404, 404, 404, 404, 404, 401, 404)),
    ("POST", "/api/v1/me/password", {"current_password": PASSWORD, "new_password": PASSWORD},
     (204, 204, 204, 204, 204, 401, 204)),
    ("POST", "/api/v1/auth/logout", None, (400, 400, 400, 400, 400, 401, 400)),
    # Incidents by hand, test pages, host notices, schedules.
    ("POST", "/api/v1/incidents", {"team": "infra", "title": "by hand"}, (201, 201, 201, 403, 422, 401, 403)),
    ("POST", "/api/v1/teams/infra/test-alert", None, (200, 200, 200, 403, 404, 401, 403)),
    ("POST", "/api/v1/hosts/infra-host/notify", {"message": "rebooting"}, (200, 200, 200, 404, 404, 401, 200)),
    ("GET", "/api/v1/rotations/infra.primary/shifts", None, (200, 200, 200, 200, 200, 401, 403)),
    # Config objects. Writes below send what is already there (so the roles stay as they are), except
    # where noted; an unchanged write still answers 200.
    ("GET", "/api/v1/users", None, (200, 200, 200, 200, 200, 401, 403)),
    ("GET", "/api/v1/users/rita", None, (200, 200, 200, 200, 200, 401, 403)),
    ("PUT", "/api/v1/users/vic", {}, (200, 403, 403, 403, 403, 401, 403)),
    ("PUT", "/api/v1/users/vic/contacts/out", {"type": "log"}, (201, 403, 403, 200, 403, 401, 403)),  # adds one
    ("DELETE", "/api/v1/users/nobody", None, (404, 403, 403, 403, 403, 401, 403)),
    ("DELETE", "/api/v1/users/vic/contacts/none", None, (404, 403, 403, 404, 403, 401, 403)),
    ("GET", "/api/v1/channels", None, (200, 200, 200, 200, 200, 401, 403)),
    ("GET", "/api/v1/channels/infra-ch", None, (200, 200, 200, 200, 404, 401, 403)),
    ("GET", "/api/v1/channels/db-ch", None, (200, 404, 404, 404, 200, 401, 403)),
    ("PUT", "/api/v1/channels/infra-ch", {"type": "log"}, (200, 403, 403, 403, 403, 401, 403)),
    ("DELETE", "/api/v1/channels/nope", None, (404, 403, 403, 403, 403, 401, 403)),
    ("GET", "/api/v1/routes", None, (200, 200, 200, 200, 200, 401, 403)),
    ("GET", "/api/v1/routes/hook", None, (200, 200, 200, 200, 404, 401, 403)),
    ("PUT", "/api/v1/routes/hook", {"source": "webhook", "team": "infra"}, (200, 200, 403, 403, 404, 401, 403)),
    ("PUT", "/api/v1/routes/hook", {"source": "webhook", "team": "nope"}, (422, 403, 403, 403, 404, 401, 403)),
    ("DELETE", "/api/v1/routes/no-such-route", None, (404, 404, 404, 404, 404, 401, 403)),
    ("GET", "/api/v1/teams", None, (200, 200, 200, 200, 200, 401, 403)),
    ("GET", "/api/v1/teams/infra", None, (200, 200, 200, 200, 200, 401, 403)),
    ("PUT", "/api/v1/teams/infra", INFRA, (200, 200, 403, 403, 403, 401, 403)),
    ("PUT", "/api/v1/teams/new-team", {"escalation": {"steps": [{"notify": ["user:root"]}]}},
     (201, 403, 403, 403, 403, 401, 403)),
    ("DELETE", "/api/v1/teams/no-such-team", None, (404, 403, 403, 403, 403, 401, 403)),
    ("PUT", "/api/v1/teams/infra/members/rita", {"admin": False}, (200, 200, 403, 403, 403, 401, 403)),
    ("DELETE", "/api/v1/teams/infra/members/root", None, (404, 404, 403, 403, 403, 401, 403)),
    ("PUT", "/api/v1/teams/infra/rotations/primary", ROTATION, (200, 200, 403, 403, 403, 401, 403)),
    ("DELETE", "/api/v1/teams/infra/rotations/nope", None, (404, 404, 403, 403, 403, 401, 403)),
    ("GET", "/api/v1/teams/infra/overrides", None, (200, 200, 200, 200, 200, 401, 403)),
    ("POST", "/api/v1/teams/infra/overrides", OVERRIDE, (201, 201, 403, 403, 403, 401, 403)),   # adds one
    ("DELETE", "/api/v1/teams/infra/overrides/99", None, (404, 404, 403, 403, 403, 401, 403)),
    ("GET", "/api/v1/teams/infra/escalation", None, (200, 200, 200, 200, 200, 401, 403)),
    ("PUT", "/api/v1/teams/infra/escalation", ESCALATION, (200, 200, 403, 403, 403, 401, 403)),
    # Silences match labels across every team: administrators make and end them.
    ("GET", "/api/v1/silences", None, (200, 200, 200, 200, 200, 401, 403)),
    ("POST", "/api/v1/silences", {"matchers": {"service": "nothing"}, "ends": SILENCE_ENDS},
     (201, 403, 403, 403, 403, 401, 403)),
    ("DELETE", "/api/v1/silences/no-such-silence", None, (404, 403, 403, 403, 403, 401, 403)),
    # Doors with credentials of their own: the caller's token neither helps nor hurts.
    ("GET", "/api/openapi.json", None, (200,) * 7),
    ("GET", "/metrics", None, (200,) * 7),
    ("GET", "/healthz", None, (200,) * 7),
    ("POST", "/api/v1/auth/login", {"username": "olga-{caller}", "password": "wrong"}, (401,) * 7),
    ("GET", "/api/v1/auth/oidc/login", None, (404,) * 7),
    ("GET", "/api/v1/calendar/tcf_not-a-feed.ics", None, (404,) * 7),
    ("POST", "/api/v1/answer/not.signed?action=acknowledge", None, (403,) * 7),
    ("POST", "/api/v1/intake/webhook", {"title": "personal tokens are not route tokens"}, (401,) * 7),
]


async def open_incident(stack: StackHandle, token: str, key: str) -> tuple[str, str]:
    status, body = await stack.post_alert("webhook", {"title": f"Queue {key} backlog", "severity": "critical",
                                                      "id": key}, token)
    assert status == 202, body
    alert_id = body["alerts"][0]["alert_id"]

    async def projected() -> Any:
        return await stack.pool.fetchrow(
            "SELECT i.id FROM api_incidents i JOIN api_incident_events e ON e.incident_id = i.id "
            "JOIN api_alerts a ON a.id = $1 WHERE e.body->>'alert_id' = $1", alert_id)
    row = await eventually(projected)
    return row["id"], alert_id


async def test_every_endpoint_answers_every_caller_as_the_table_says(stack):
    await stack.start(CONFIG, services=("router",))
    tokens: dict[str, str | None] = {"noauth": None}
    async with stack.pool.acquire() as conn:
        for caller, person in PEOPLE.items():
            scopes = ("alerts:write",) if caller == "noscope" else ("admin",)
            tokens[caller] = await create_token(conn, person, scopes=scopes)
            await users.set_password(conn, person, PASSWORD)
    own: dict[str, tuple[str, str]] = {}
    for caller in CALLERS:
        own[caller] = await open_incident(stack, HOOK_TOKEN, f"q-{caller}")
    db_incident, _ = await open_incident(stack, DB_HOOK_TOKEN, "db-1")

    wrong: list[str] = []
    assert stack.session
    for method, path, body, expected in TABLE:
        for caller, want in zip(CALLERS, expected, strict=True):
            url = stack.url + path.format(incident=own[caller][0], alert=own[caller][1])
            headers = {"Authorization": f"Bearer {tokens[caller]}"} if tokens[caller] else {}
            sent = body
            if isinstance(body, dict):   # (each caller signs in as a name of its own: 5 failures lock a name)
                sent = {k: v.format(caller=caller) if isinstance(v, str) else v for k, v in body.items()}
            kwargs: dict[str, Any] = {"json": sent} if isinstance(sent, dict) else {"data": sent}
            if isinstance(body, str):
                headers["Content-Type"] = "application/yaml"
            async with stack.session.request(method, url, headers=headers, allow_redirects=False,
                                             **kwargs) as resp:
                got = resp.status
                answer = await resp.json(content_type=None) if resp.status >= 400 else None
            if got != want:
                wrong.append(f"{method} {path} as {caller}: {got} (expected {want}) {answer}")
            elif got >= 400:
                assert set(answer) == {"error"} and {"code", "message"} <= set(answer["error"]), answer
    assert not wrong, "\n".join(wrong)

    # Lists leave out what the caller may not see.
    async def listed(caller: str) -> set[str]:
        async with stack.session.get(f"{stack.url}/api/v1/incidents?limit=500",
                                     headers={"Authorization": f"Bearer {tokens[caller]}"}) as resp:
            return {item["id"] for item in (await resp.json())["items"]}
    # (the table opened three more infra incidents by hand; wait until the read model has them)
    async def infra_ids() -> set[str] | None:
        ids = {r["id"] for r in await stack.pool.fetch("SELECT id FROM api_incidents WHERE team = 'infra'")}
        return ids if len(ids) == len(own) + 3 else None
    infra = await eventually(infra_ids)
    assert {incident for incident, _ in own.values()} <= infra
    assert await listed("admin") == infra | {db_incident}
    for caller in ("owner", "responder", "viewer"):
        assert await listed(caller) == infra, caller
    assert await listed("other") == {db_incident}
    async with stack.session.get(f"{stack.url}/api/v1/incidents?team=db",
                                 headers={"Authorization": f"Bearer {tokens['responder']}"}) as resp:
        assert (await resp.json())["items"] == []

    # Deleting a route: its team's owner only (run last: it changes what the rows above rely on).
    for caller, route, want in (("owner", "db-hook", 404), ("responder", "hook", 403), ("other", "db-hook", 403),
                                ("owner", "hook", 204)):
        async with stack.session.delete(f"{stack.url}/api/v1/routes/{route}",
                                        headers={"Authorization": f"Bearer {tokens[caller]}"}) as resp:
            assert resp.status == want, (caller, route, resp.status)

    # Acknowledging acts as the caller, whatever the body names.
    for caller in ("admin", "owner", "responder"):
        async def resolved(incident_id: str = own[caller][0]) -> Any:
            return await stack.pool.fetchrow("SELECT acknowledged_by, resolved_by FROM api_incidents "
                                             "WHERE id = $1 AND status = 'resolved'", incident_id)
        row = await eventually(resolved)
        assert (row["acknowledged_by"], row["resolved_by"]) == (PEOPLE[caller], PEOPLE[caller])
    # and what nobody may do left the others' incidents as they were
    for caller in ("viewer", "other", "noauth", "noscope"):
        assert await stack.pool.fetchval("SELECT status FROM api_incidents WHERE id = $1",
                                         own[caller][0]) == "triggered"


async def test_a_session_caller_gets_the_same_answers_as_a_token(stack):
    """The cookie path runs through the same checks (spot check: a viewer reads but cannot act)."""
    await stack.start(CONFIG, services=("router",))
    await users.set_password(stack.pool, "vic", PASSWORD)
    incident, _ = await open_incident(stack, HOOK_TOKEN, "q-session")
    db_incident, _ = await open_incident(stack, DB_HOOK_TOKEN, "db-session")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.post(f"{stack.url}/api/v1/auth/login",
                                json={"username": "vic", "password": PASSWORD}) as resp:
            csrf = (await resp.json())["csrf_token"]
        headers = {"X-CSRF-Token": csrf}
        async with browser.get(f"{stack.url}/api/v1/incidents/{incident}") as resp:
            assert resp.status == 200
        async with browser.get(f"{stack.url}/api/v1/incidents/{db_incident}") as resp:
            assert resp.status == 404
        async with browser.post(f"{stack.url}/api/v1/incidents/{incident}/acknowledge", headers=headers) as resp:
            assert resp.status == 403
        async with browser.get(f"{stack.url}/api/v1/audit") as resp:
            assert resp.status == 403


def test_channels_belong_to_the_teams_that_use_them():
    from tocsin.api.access import Caller, can_see_channel, channel_teams, route_team
    from tocsin.events.config import parse_config
    config = parse_config("""
users: {a: {}, b: {}}
channels:
  infra-hook: {type: webhook, url: "https://example.com/a"}
  db-hook: {type: webhook, url: "https://example.com/b"}
  escalation-only: {type: log}
  unused: {type: log}
teams:
  infra: {members: [a], channels: [infra-hook], escalation: {steps: [{notify: ["channel:escalation-only"]}]}}
  db: {members: [b], escalation: {steps: [{notify: ["user:b"]}]}}
routes:
  db-route: {source: webhook, team: db, channels: [db-hook]}
""")
    assert channel_teams(config, "infra-hook") == {"infra"}
    assert channel_teams(config, "escalation-only") == {"infra"}
    assert channel_teams(config, "db-hook") == {"db"}
    assert channel_teams(config, "unused") == set()
    assert route_team(config, "db-route") == "db" and route_team(config, "nope") is None
    a = Caller(user="a", role="user", teams={"infra": "viewer"})
    assert can_see_channel(a, config, "infra-hook") and not can_see_channel(a, config, "db-hook")
    assert not can_see_channel(a, config, "unused")
    assert can_see_channel(Caller(user="r", role="admin"), config, "unused")
