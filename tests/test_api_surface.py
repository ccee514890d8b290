"""The API endpoints beyond incidents' actions: manual incidents, list filters, test pages, host notices,
rotation shifts, and config objects one at a time (each write a whole, validated revision)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from multidict import CIMultiDict

from harness import FakeProvider, StackHandle, eventually
from tocsin.api import config_store

TOKEN = "surface-route-token-0123456789"


def config(ntfy: FakeProvider, hook: FakeProvider) -> str:
    return f"""
timezone: UTC
security: {{allow_private_networks: true}}
providers:
  ntfy: {{server: "{ntfy.url}", token: "ntfy-provider-secret"}}
users:
  alice:
    role: admin     # these tests are about the endpoints; who may call them is tests/test_rbac.py
    contacts: {{push: {{type: ntfy, topic: alice-pages, token: "alice-ntfy-secret"}}}}
  bob:
    contacts: {{push: {{type: ntfy, topic: bob-pages}}, mail: {{type: email, to: bob@example.com}}}}
    rules: [{{contact: push}}, {{contact: mail, after: 5m}}]
channels:
  ops-hook: {{type: webhook, url: "{hook.url}/hook", secret: "hook-secret-value"}}
  broken-hook: {{type: webhook, url: "{hook.url}/broken"}}
  ops-mail: {{type: email, to: [ops@example.com]}}
default_channels: [ops-hook]
teams:
  infra:
    members: [alice, bob]
    rotations:
      primary: {{members: [alice, bob], shift: 1d, start: "2026-01-05T09:00"}}
    overrides:
      - {{rotation: primary, user: bob, start: "2030-01-10T00:00", end: "2030-01-11T00:00"}}
    escalation:
      steps:
        - {{notify: ["rotation:primary"], wait: 5m}}
  web:
    members: [bob]
    escalation: {{steps: [{{notify: ["user:bob"]}}]}}
routes:
  prod: {{source: alertmanager, team: infra, token: {TOKEN}}}
hosts:
  db-01: {{team: infra, channels: [ops-hook, broken-hook, ops-mail]}}
  web-01: {{team: web}}
"""


async def call(stack: StackHandle, method: str, path: str, json: Any = None,
               headers: dict[str, str] | None = None) -> tuple[int, Any, CIMultiDict[str]]:
    assert stack.session
    token = await stack.token("alice")
    async with stack.session.request(method, f"{stack.url}{path}", json=json,
                                     headers={"Authorization": f"Bearer {token}", **(headers or {})}) as resp:
        body = await resp.json(content_type=None) if resp.status != 204 else None
        return resp.status, body, CIMultiDict(resp.headers)


async def stored(stack: StackHandle) -> tuple[int, Any]:
    async with stack.pool.acquire() as conn:
        return await config_store.current(conn)


# ------------------------------------------------------------------ incidents


async def test_a_manual_incident_pages_like_an_alert(stack, ntfy, webhook):
    await stack.start(config(ntfy, webhook))
    status, body, headers = await call(stack, "POST", "/api/v1/incidents",
                                       {"team": "infra", "title": "Payments are down", "severity": "error",
                                        "details": "since 09:00"})
    assert status == 201, body
    assert body["team"] == "infra" and body["status"] == "triggered" and body["source"] == "manual"
    assert headers["Location"] == f"/api/v1/incidents/{body['id']}"
    # The router paged the on-call person through the team's policy, as for any alert.
    await ntfy.wait_for(1)
    assert ntfy.requests[0].json()["topic"] in ("alice-pages", "bob-pages")
    detail = await eventually(lambda: _with_page(stack, body["id"]))
    assert detail["severity"] == "error" and detail["details"] == "since 09:00"

    for bad, path in (({"team": "nope", "title": "x"}, "team"), ({"team": "infra", "title": ""}, "title"),
                      ({"team": "infra", "title": "x", "severity": "sev1"}, "severity"),
                      ({"team": "infra", "title": "x", "owner": "me"}, "")):
        status, err, _ = await call(stack, "POST", "/api/v1/incidents", bad)
        assert status == 422, (bad, err)
        assert err["error"]["details"]["path"] == path or path == ""


async def _with_page(stack: StackHandle, incident_id: str) -> Any:
    detail = await stack.incident(incident_id)
    return detail if any(e["type"] == "incident.paged" for e in detail["timeline"]) else None


async def test_incident_list_filters_and_pages_with_a_cursor(stack, ntfy, webhook):
    await stack.start(config(ntfy, webhook))
    ids = []
    for i, (team, severity) in enumerate([("infra", "critical"), ("web", "warning"), ("infra", "warning"),
                                          ("infra", "critical"), ("web", "info")]):
        status, body, _ = await call(stack, "POST", "/api/v1/incidents",
                                     {"team": team, "title": f"incident {i}", "severity": severity})
        assert status == 201
        ids.append(body["id"])
    await eventually(lambda: _count(stack, 5))

    async def listed(query: str) -> list[str]:
        status, body, _ = await call(stack, "GET", f"/api/v1/incidents?{query}")
        assert status == 200, body
        return [i["id"] for i in body["items"]]

    assert await listed("team=infra&severity=critical") == [ids[3], ids[0]]
    assert await listed("severity=warning") == [ids[2], ids[1]]
    assert await listed("route=manual/web") == [ids[4], ids[1]]
    assert await listed("team=nobody") == []
    status, body, _ = await call(stack, "GET", "/api/v1/incidents?limit=1")
    created = [datetime.fromisoformat(i["created_at"]) for i in (await stack.incidents())]
    middle = sorted(created)[2]
    assert len(await listed(f"since={middle.isoformat().replace('+00:00', 'Z')}")) == 3
    assert len(await listed(f"until={middle.isoformat().replace('+00:00', 'Z')}")) == 2
    # Two at a time: every incident once, newest first, then no cursor.
    seen, cursor = [], ""
    for _ in range(5):
        status, body, _ = await call(stack, "GET", f"/api/v1/incidents?limit=2{cursor}")
        seen += [i["id"] for i in body["items"]]
        if body["next_cursor"] is None:
            break
        cursor = f"&cursor={body['next_cursor']}"
    assert seen == list(reversed(ids))
    for query, path in (("severity=sev1", "severity"), ("since=yesterday", "since"),
                        ("until=2026-01-01T00:00", "until"), ("cursor=bm9wZQ==", "cursor"), ("limit=0", "limit")):
        status, body, _ = await call(stack, "GET", f"/api/v1/incidents?{query}")
        assert status == 422 and body["error"]["details"]["path"] == path, (query, body)


async def _count(stack: StackHandle, n: int) -> bool:
    return len(await stack.incidents(limit="50")) == n


# ------------------------------------------------------------------ test pages and notices


async def test_a_test_page_reaches_whoever_is_on_call_and_says_how_it_went(stack, ntfy, webhook):
    await stack.start(config(ntfy, webhook))
    status, body, _ = await call(stack, "POST", "/api/v1/teams/infra/test-alert?wait=10s")
    assert status == 200, body
    [user] = body["users"]
    # Only the contacts a page uses at once (bob's mail comes after 5m, so not in a test page).
    assert body["results"] == {f"{user}/push": "delivered"}
    assert ntfy.requests[-1].json()["topic"] == f"{user}-pages"
    assert "Test" in ntfy.requests[-1].json()["title"]
    # No incident is opened by a test.
    assert await stack.incidents() == []
    status, body, _ = await call(stack, "POST", "/api/v1/teams/infra/test-alert")
    assert status == 200 and body["results"] == {f"{user}/push": "pending"}
    assert (await call(stack, "POST", "/api/v1/teams/nope/test-alert"))[0] == 404
    status, body, _ = await call(stack, "POST", "/api/v1/teams/infra/test-alert?wait=2m")
    assert status == 422 and body["error"]["details"]["path"] == "wait"


async def test_a_host_notice_goes_to_its_channels_with_an_outcome_for_each(stack, ntfy, webhook):
    webhook.default = 200
    webhook.answers = []

    def answer(received):  # the broken hook refuses for good; the other takes it
        from aiohttp import web
        return web.json_response({}, status=400 if received.path == "/broken" else 200)
    webhook.default = answer
    await stack.start(config(ntfy, webhook))
    status, body, _ = await call(stack, "POST", "/api/v1/hosts/db-01/notify?wait=10s",
                                 {"message": "disk replaced, rebooting at 22:00"})
    assert status == 200, body
    assert body["results"]["ops-hook"] == "delivered"
    assert body["results"]["broken-hook"] == "failed: HTTP 400: {}"
    # No providers.smtp in this config: the mail cannot go, and the answer says why.
    assert body["results"]["ops-mail"] == "failed: providers.smtp needs host and from"
    sent = next(r for r in webhook.requests if r.path == "/hook").json()
    assert "disk replaced" in str(sent)
    # A host without channels of its own uses default_channels.
    status, body, _ = await call(stack, "POST", "/api/v1/hosts/web-01/notify?wait=10s", {"message": "hello"})
    assert status == 200 and body["results"] == {"ops-hook": "delivered"}
    assert (await call(stack, "POST", "/api/v1/hosts/nope/notify", {"message": "x"}))[0] == 404
    for bad in ({}, {"message": ""}, {"message": "x", "extra": 1}, ["x"]):
        assert (await call(stack, "POST", "/api/v1/hosts/db-01/notify", bad))[0] == 422


# ------------------------------------------------------------------ shifts


async def test_rotation_shifts_apply_overrides_and_check_their_window(stack, ntfy, webhook):
    await stack.start(config(ntfy, webhook))
    status, body, _ = await call(stack, "GET", "/api/v1/rotations/infra.primary/shifts?from=2030-01-08&days=5")
    assert status == 200, body
    assert body["rotation"] == "infra.primary" and body["team"] == "infra" and body["timezone"] == "UTC"
    shifts = body["shifts"]
    assert datetime.fromisoformat(shifts[0]["start"]) == datetime(2030, 1, 8, tzinfo=UTC)
    assert datetime.fromisoformat(shifts[-1]["end"]) == datetime(2030, 1, 13, tzinfo=UTC)
    for a, b in itertools.pairwise(shifts):
        assert a["end"] == b["start"]
    overridden = [s for s in shifts if s["override"]]
    assert [(s["user"], s["start"][:10], s["end"][:10]) for s in overridden] == [("bob", "2030-01-10", "2030-01-11")]
    # Without from: from now, 90 days of daily shifts (91 pieces at most, clipped at both ends).
    status, body, _ = await call(stack, "GET", "/api/v1/rotations/infra.primary/shifts")
    assert status == 200 and 90 <= len(body["shifts"]) <= 91
    start = datetime.fromisoformat(body["start"])
    assert abs(start - datetime.now(UTC)) < timedelta(minutes=5)
    for path, code in (("nope.primary", 404), ("infra.nope", 404), ("infra", 404)):
        assert (await call(stack, "GET", f"/api/v1/rotations/{path}/shifts"))[0] == code
    for query in ("days=0", "days=367", "days=x", "from=soon"):
        assert (await call(stack, "GET", f"/api/v1/rotations/infra.primary/shifts?{query}"))[0] == 422


# ------------------------------------------------------------------ config objects


async def test_users_and_contacts_are_written_as_whole_revisions_with_secrets_write_only(stack, ntfy, webhook):
    await stack.start(config(ntfy, webhook))
    revision, _ = await stored(stack)
    carol = {"name": "Carol", "email": "carol@example.com",
             "contacts": {"push": {"type": "ntfy", "topic": "carol", "token": "tk-carol-1"}}}
    status, body, headers = await call(stack, "PUT", "/api/v1/users/carol", carol)
    assert status == 201, body
    assert headers["ETag"] == f'"{revision + 1}"'
    assert body["contacts"]["push"]["token"] == "********"
    status, body, _ = await call(stack, "GET", "/api/v1/users/carol")
    assert status == 200 and body["contacts"]["push"] == {"type": "ntfy", "topic": "carol", "token": "********"}
    # Sending the mask back keeps the stored secret; a new value replaces it.
    body["name"] = "Carol C."
    status, _, _ = await call(stack, "PUT", "/api/v1/users/carol", body)
    assert status == 200
    _, now = await stored(stack)
    assert now.users["carol"].name == "Carol C." and now.users["carol"].contacts["push"]["token"] == "tk-carol-1"
    status, _, _ = await call(stack, "PUT", "/api/v1/users/carol/contacts/push",
                              {"type": "ntfy", "topic": "carol", "token": "tk-carol-2"})
    assert status == 200
    assert (await stored(stack))[1].users["carol"].contacts["push"]["token"] == "tk-carol-2"
    # A mask where nothing is stored cannot be kept: 422 at its path.
    status, body, _ = await call(stack, "PUT", "/api/v1/users/carol/contacts/pager",
                                 {"type": "ntfy", "topic": "carol2", "token": "********"})
    assert status == 422 and body["error"]["details"][0]["path"] == "users.carol.contacts.pager.token"

    # An invalid change changes nothing, and says where.
    before, _ = await stored(stack)
    status, body, _ = await call(stack, "PUT", "/api/v1/users/carol",
                                 {"phone": "555", "rules": [{"contact": "nope"}]})
    assert status == 422
    assert {d["path"] for d in body["error"]["details"]} == {"users.carol.phone", "users.carol.rules[0].contact"}
    status, body, _ = await call(stack, "PUT", "/api/v1/users/carol", {"role": 3})
    assert status == 422 and body["error"]["details"]["path"] == "role"
    status, body, _ = await call(stack, "PUT", "/api/v1/users/bad%20name", {})
    assert status == 422
    assert (await stored(stack))[0] == before

    # Deleting a user who is still in a rotation is a conflict that names the references.
    status, body, _ = await call(stack, "DELETE", "/api/v1/users/bob")
    assert status == 409
    paths = {d["path"] for d in body["error"]["details"]}
    assert "teams.infra.rotations.primary.members[1]" in paths and "teams.infra.members[1]" in paths
    assert (await call(stack, "DELETE", "/api/v1/users/nobody"))[0] == 404
    status, _, headers = await call(stack, "DELETE", "/api/v1/users/carol")
    assert status == 204 and "carol" not in (await stored(stack))[1].users
    # A contact a rule names cannot go; one no rule names can.
    assert (await call(stack, "DELETE", "/api/v1/users/bob/contacts/mail"))[0] == 409
    assert (await call(stack, "DELETE", "/api/v1/users/alice/contacts/nope"))[0] == 404

    # If-Match: a write based on an old revision is refused.
    rev, _ = await stored(stack)
    status, body, _ = await call(stack, "PUT", "/api/v1/users/dave", {}, headers={"If-Match": f'"{rev - 1}"'})
    assert status == 409 and "revision" in body["error"]["message"]
    status, _, headers = await call(stack, "PUT", "/api/v1/users/dave", {}, headers={"If-Match": f'"{rev}"'})
    assert status == 201 and headers["ETag"] == f'"{rev + 1}"'
    assert (await call(stack, "PUT", "/api/v1/users/erin", {}, headers={"If-Match": "latest"}))[0] == 422
    status, body, _ = await call(stack, "GET", "/api/v1/users")
    assert set(body["users"]) == {"alice", "bob", "dave"}
    assert body["users"]["alice"]["contacts"]["push"]["token"] == "********"


async def test_teams_members_rotations_overrides_and_policies(stack, ntfy, webhook):
    await stack.start(config(ntfy, webhook))
    assert (await call(stack, "PUT", "/api/v1/users/carol", {}))[0] == 201
    status, body, _ = await call(stack, "PUT", "/api/v1/teams/infra/members/carol", {"admin": True})
    assert status == 200
    team = (await stored(stack))[1].teams["infra"]
    assert "carol" in team.members and team.admins == ["carol"]
    assert (await call(stack, "PUT", "/api/v1/teams/infra/members/zed", {}))[0] == 404
    assert (await call(stack, "PUT", "/api/v1/teams/nope/members/carol", {}))[0] == 404

    status, body, _ = await call(stack, "PUT", "/api/v1/teams/infra/rotations/secondary",
                                 {"members": ["carol", "alice"], "shift": "1w"})
    assert status == 201, body
    status, body, _ = await call(stack, "PUT", "/api/v1/teams/infra/rotations/third",
                                 {"members": ["zed"], "shift": "10s"})
    assert status == 422
    assert {d["path"] for d in body["error"]["details"]} == {"teams.infra.rotations.third.members[0]",
                                                             "teams.infra.rotations.third.shift"}
    # Carol is in a rotation of the team: she cannot leave it yet.
    status, body, _ = await call(stack, "DELETE", "/api/v1/teams/infra/members/carol")
    assert status == 409 and body["error"]["details"][0]["path"] == "teams.infra.rotations.secondary"

    status, body, _ = await call(stack, "PUT", "/api/v1/teams/infra/escalation",
                                 {"steps": [{"notify": ["rotation:primary"], "wait": "5m"},
                                            {"notify": ["rotation:secondary"]}], "repeat": 1})
    assert status == 200
    status, body, _ = await call(stack, "PUT", "/api/v1/teams/infra/escalation",
                                 {"steps": [{"notify": ["rotation:tertiary"]}]})
    assert status == 422 and body["error"]["details"][0]["path"] == "teams.infra.escalation.steps[0].notify[0]"
    # The policy names the rotation, so it cannot be deleted.
    assert (await call(stack, "DELETE", "/api/v1/teams/infra/rotations/secondary"))[0] == 409

    status, body, _ = await call(stack, "POST", "/api/v1/teams/infra/overrides",
                                 {"rotation": "secondary", "user": "alice", "start": "2031-01-01T00:00",
                                  "end": "2031-01-02T00:00"})
    assert status == 201
    status, body, headers = await call(stack, "GET", "/api/v1/teams/infra/overrides")
    assert [o["rotation"] for o in body["overrides"]] == ["primary", "secondary"]
    status, _, _ = await call(stack, "DELETE", "/api/v1/teams/infra/overrides/0",
                              headers={"If-Match": headers["ETag"]})
    assert status == 204
    assert [o.rotation for o in (await stored(stack))[1].teams["infra"].overrides] == ["secondary"]
    assert (await call(stack, "DELETE", "/api/v1/teams/infra/overrides/5"))[0] == 404
    assert (await call(stack, "POST", "/api/v1/teams/infra/overrides",
                       {"rotation": "secondary", "user": "alice", "start": "2031-01-02T00:00",
                        "end": "2031-01-01T00:00"}))[0] == 422

    # A team that a route names cannot be deleted; a new team must be valid whole.
    status, body, _ = await call(stack, "DELETE", "/api/v1/teams/infra")
    assert status == 409 and any(d["path"] == "routes.prod.team" for d in body["error"]["details"])
    status, body, _ = await call(stack, "PUT", "/api/v1/teams/ops", {"members": ["carol"]})
    assert status == 422 and body["error"]["details"][0]["path"] == "teams.ops.escalation.steps"
    status, body, _ = await call(stack, "PUT", "/api/v1/teams/ops",
                                 {"members": ["carol"], "escalation": {"steps": [{"notify": ["user:carol"]}]}})
    assert status == 201
    status, body, _ = await call(stack, "GET", "/api/v1/teams")
    assert set(body["teams"]) == {"infra", "web", "ops"}
    assert (await call(stack, "GET", "/api/v1/teams/nope/escalation"))[0] == 404


async def test_routes_and_channels(stack, ntfy, webhook):
    await stack.start(config(ntfy, webhook))
    status, body, _ = await call(stack, "PUT", "/api/v1/routes/deploys", {"source": "webhook", "team": "infra"})
    assert status == 201, body
    token = body["token"]
    assert len(token) >= 16
    # The token works at the intake at once, and is never shown again.
    status, _ = await eventually(lambda: _post_webhook(stack, token))
    assert status == 202
    status, body, _ = await call(stack, "GET", "/api/v1/routes/deploys")
    assert status == 200 and "token" not in body and "token_sha256" not in body
    # Replacing a route keeps its token.
    status, body, _ = await call(stack, "PUT", "/api/v1/routes/deploys",
                                 {"source": "webhook", "team": "web", "secret": "deploys-signing-secret"})
    assert status == 200 and "token" not in body and body["secret"] == "********"
    assert (await stored(stack))[1].routes["deploys"].token_sha256
    status, body, _ = await call(stack, "PUT", "/api/v1/routes/bad", {"source": "nagios", "team": "nope"})
    assert status == 422
    assert {d["path"] for d in body["error"]["details"]} == {"routes.bad.source", "routes.bad.team"}
    assert (await call(stack, "PUT", "/api/v1/routes/bad", {"team": "infra"}))[0] == 422

    status, body, _ = await call(stack, "GET", "/api/v1/channels/ops-hook")
    assert status == 200 and body["secret"] == "********" and body["url"].endswith("/hook")
    status, body, _ = await call(stack, "PUT", "/api/v1/channels/ops-hook", {**body, "url": f"{webhook.url}/v2"})
    assert status == 200
    assert (await stored(stack))[1].channels["ops-hook"]["secret"] == "hook-secret-value"
    status, body, _ = await call(stack, "PUT", "/api/v1/channels/pager", {"type": "ntfy"})
    assert status == 422 and body["error"]["details"][0]["path"] == "channels.pager.topic"
    # default_channels and a host name ops-hook: it stays.
    status, body, _ = await call(stack, "DELETE", "/api/v1/channels/ops-hook")
    assert status == 409 and {d["path"] for d in body["error"]["details"]} >= {"default_channels[0]",
                                                                               "hosts.db-01.channels[0]"}
    assert (await call(stack, "DELETE", "/api/v1/routes/deploys"))[0] == 204
    assert (await call(stack, "DELETE", "/api/v1/routes/deploys"))[0] == 404
    status, body, _ = await call(stack, "GET", "/api/v1/routes")
    assert list(body["routes"]) == ["prod"]


async def _post_webhook(stack: StackHandle, token: str) -> tuple[int, Any] | None:
    status, body = await stack.post_alert("webhook", {"title": "from a new route"}, token)
    return (status, body) if status != 401 else None


async def test_config_objects_need_config_scopes(stack, ntfy, webhook):
    await stack.start(config(ntfy, webhook))
    assert stack.session
    async with stack.pool.acquire() as conn:
        from tocsin.api.auth import create_token
        reader = await create_token(conn, "bob", scopes=("config:read",))
    for method, path, code in (("GET", "/api/v1/users", 200), ("PUT", "/api/v1/users/x", 403),
                               ("DELETE", "/api/v1/teams/web", 403), ("POST", "/api/v1/hosts/db-01/notify", 403)):
        async with stack.session.request(method, f"{stack.url}{path}", json={},
                                         headers={"Authorization": f"Bearer {reader}"}) as resp:
            assert resp.status == code, (method, path)
