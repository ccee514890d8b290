"""The API behind the UI's Channels page and Profile sections, against a real stack: a test message through a
shared channel (who may send one), "send me a test" through one of my own contacts, the Web Push key, storing
a browser's push subscription as my own contact (and refusing a bad one), and the service worker's file."""

from __future__ import annotations

from typing import Any

import pytest_asyncio
from chatfakes import Browser, new_vapid_key, push_answer

from harness import FakeProvider, StackHandle
from tocsin.api import config_store
from tocsin.api.auth import create_token
from tocsin.api.ui import CSP

VAPID_PRIVATE, VAPID_PUBLIC = new_vapid_key()


def config(hook: FakeProvider, push: FakeProvider | None = None) -> str:
    providers = (f'providers: {{webpush: {{vapid_private_key: "{VAPID_PRIVATE}", subject: "mailto:ops@example.com"}}}}'
                 if push else "")
    return f"""
timezone: UTC
security: {{allow_private_networks: true}}
{providers}
channels:
  infra-hook: {{type: webhook, url: "{hook.url}/hook", secret: "infra-hook-secret"}}
  broken-hook: {{type: webhook, url: "{hook.url}/broken"}}
  db-ch: {{type: log}}
  lonely: {{type: log}}
users:
  root: {{role: admin}}
  olga: {{}}
  rita: {{email: rita@example.com, contacts: {{out: {{type: log}}, mail: {{type: email}}}}}}
  vic: {{}}
  otto: {{contacts: {{pager: {{type: log}}}}}}
teams:
  infra:
    admins: [olga]
    members: [rita]
    viewers: [vic]
    channels: [infra-hook]
    escalation: {{steps: [{{notify: ["user:rita"], wait: 5m}}, {{notify: ["channel:broken-hook"]}}]}}
  db:
    members: [otto]
    escalation: {{steps: [{{notify: ["user:otto"]}}]}}
routes:
  db-hook: {{source: webhook, team: db, token: db-hook-token-0000001, channels: [db-ch]}}
"""


@pytest_asyncio.fixture
async def push() -> Any:
    async with FakeProvider("push") as provider:
        provider.default = lambda _: push_answer(201)
        yield provider


async def call(stack: StackHandle, user: str, method: str, path: str, json: Any = None,
               scopes: tuple[str, ...] = ("admin",)) -> tuple[int, Any, Any]:
    assert stack.session
    async with stack.pool.acquire() as conn:
        token = await create_token(conn, user, scopes=scopes)
    async with stack.session.request(method, stack.url + path, json=json,
                                     headers={"Authorization": f"Bearer {token}"}) as resp:
        body = await resp.json(content_type=None) if resp.status != 204 else None
        return resp.status, body, resp.headers


async def revision(stack: StackHandle) -> int:
    async with stack.pool.acquire() as conn:
        return (await config_store.current(conn))[0]


async def test_a_channel_test_says_how_it_went_and_only_admins_and_owners_may_send_one(stack, webhook):
    webhook.default = lambda r: push_answer(400 if r.path == "/broken" else 201)
    await stack.start(config(webhook))
    status, body, _ = await call(stack, "root", "POST", "/api/v1/channels/infra-hook/test")
    assert (status, body) == (200, {"result": "delivered"})
    sent = webhook.requests[-1]
    assert sent.path == "/hook" and "Channel infra-hook, tested by root" in sent.body.decode()
    status, body, _ = await call(stack, "root", "POST", "/api/v1/channels/broken-hook/test")
    assert status == 200 and body["result"].startswith("failed: HTTP 400"), body
    # No incident comes of a test.
    status, body, _ = await call(stack, "root", "GET", "/api/v1/incidents")
    assert (status, body["items"]) == (200, [])

    # Who may: an owner of a team that uses the channel (teams.channels, an escalation target).
    for user, channel, expected in (
            ("olga", "infra-hook", 200), ("olga", "broken-hook", 200),
            ("olga", "lonely", 404),          # no team uses it: an administrator's only
            ("olga", "db-ch", 404),           # another team's: invisible
            ("rita", "infra-hook", 403), ("vic", "infra-hook", 403),   # seen, but not an owner
            ("otto", "db-ch", 403), ("otto", "infra-hook", 404),
            ("root", "lonely", 200), ("root", "no-such-channel", 404)):
        status, body, _ = await call(stack, user, "POST", f"/api/v1/channels/{channel}/test")
        assert status == expected, (user, channel, body)
    before = len(webhook.requests)
    status, body, _ = await call(stack, "olga", "POST", "/api/v1/channels/infra-hook/test", scopes=("config:read",))
    assert status == 403 and body["error"]["code"] == "insufficient_scope"
    assert len(webhook.requests) == before, "a refused test sends nothing"


async def test_send_me_a_test_reaches_only_my_own_contacts(stack, webhook):
    await stack.start(config(webhook))
    status, body, _ = await call(stack, "rita", "POST", "/api/v1/me/contacts/out/test")
    assert (status, body) == (200, {"result": "delivered"})
    # rita's mail contact uses her address, but this config has no mail server: the outcome says so.
    status, body, _ = await call(stack, "rita", "POST", "/api/v1/me/contacts/mail/test")
    assert status == 200 and body["result"] == "failed: providers.smtp needs host and from", body
    status, body, _ = await call(stack, "rita", "POST", "/api/v1/me/contacts/pager/test")   # otto's, not hers
    assert status == 404 and body["error"]["message"] == "you have no contact 'pager'"
    assert (await call(stack, "root", "POST", "/api/v1/me/contacts/out/test"))[0] == 404
    rows = await stack.pool.fetch("SELECT channel, status FROM api_deliveries ORDER BY channel")
    assert [(r["channel"], r["status"]) for r in rows] == [("rita/mail", "failed"), ("rita/out", "delivered")]


async def test_a_browser_subscription_is_stored_as_my_contact_and_reaches_the_push_service(stack, webhook, push):
    await stack.start(config(webhook, push))
    status, body, _ = await call(stack, "rita", "GET", "/api/v1/webpush/key")
    assert (status, body) == (200, {"public_key": VAPID_PUBLIC})

    browser = Browser(f"{push.url}/push/v2/sub-rita-laptop")
    first = await revision(stack)
    # Bad subscriptions are refused whole, with the path, and nothing is stored.
    for bad, says in (({"type": "webpush", "subscription": "{}"}, "not a push subscription"),
                      ({"type": "webpush", "subscription": "not json"}, "not a push subscription"),
                      ({"type": "carrier-pigeon", "subscription": browser.subscription()}, "pigeon"),
                      ({"type": "webpush", "subscription": browser.subscription().replace('"auth": "', '"auth": "x')},
                       "not a push subscription")):
        status, body, _ = await call(stack, "rita", "PUT", "/api/v1/users/rita/contacts/browser", bad)
        assert status == 422, body
        assert any(says in d["message"] for d in body["error"]["details"]), body
    # Nobody else's contacts (an administrator may).
    status, body, _ = await call(stack, "rita", "PUT", "/api/v1/users/otto/contacts/browser",
                                 {"type": "webpush", "subscription": browser.subscription()})
    assert status == 403, body
    assert await revision(stack) == first

    status, body, _ = await call(stack, "rita", "PUT", "/api/v1/users/rita/contacts/browser",
                                 {"type": "webpush", "subscription": browser.subscription()})
    assert status == 201, body
    assert body == {"type": "webpush", "subscription": "********"}
    assert await revision(stack) == first + 1
    status, body, _ = await call(stack, "rita", "POST", "/api/v1/me/contacts/browser/test")
    assert (status, body) == (200, {"result": "delivered"})
    message = browser.decrypt(push.requests[-1])
    assert message["kind"] == "test" and message["title"] == "Test: [INFO] Contact rita/browser", message


async def test_the_push_key_is_404_when_web_push_is_not_configured_and_the_worker_is_served(stack, webhook):
    await stack.start(config(webhook))
    status, body, _ = await call(stack, "rita", "GET", "/api/v1/webpush/key")
    assert status == 404
    assert body["error"]["message"] == ("Web Push is not configured on this server "
                                        "(providers.webpush.vapid_private_key)")
    assert stack.session
    async with stack.session.get(stack.url + "/api/v1/webpush/key") as resp:
        assert resp.status == 401
    async with stack.session.get(stack.url + "/sw.js") as resp:
        text = await resp.text()
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert resp.headers["Service-Worker-Allowed"] == "/"
        assert resp.headers["Cache-Control"] == "no-cache"
        assert resp.headers["Content-Security-Policy"] == CSP
        assert 'addEventListener("push"' in text and 'addEventListener("notificationclick"' in text
        etag = resp.headers["ETag"]
    async with stack.session.get(stack.url + "/sw.js", headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304
