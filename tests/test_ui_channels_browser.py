"""The Channels page, "send me a test" and "Enable push on this device" in a real browser (Debian's Chromium,
headless, through Playwright) against a running stack. Helpers and screenshots as in test_ui.py.

What headless Chromium cannot show: a push subscription needs the browser vendor's push service (and
Chromium refuses the Push API in Playwright's incognito-like contexts), so `pushManager.subscribe` fails;
these tests prove the flow up to that call (the key is fetched, the service worker is registered with scope
`/`, notification permission is asked), that the browser's refusal is shown, and that the worker shows a
push handed to it through the DevTools protocol. A click on a notification cannot be made here, so the
worker's `notificationclick` handler is not exercised. Storing a subscription and a push reaching it are
proven over HTTP in test_ui_channels.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from chatfakes import new_vapid_key, push_answer
from playwright.async_api import expect
from test_ui import PASSWORD, WAIT, browser, open_ui, shots  # noqa: F401 (fixtures)

from harness import FakeProvider, eventually
from tocsin.api import users

pytestmark = pytest.mark.e2e
VAPID_PRIVATE, VAPID_PUBLIC = new_vapid_key()


def config(hook: FakeProvider, webpush: bool = False) -> str:
    providers = (f'providers: {{webpush: {{vapid_private_key: "{VAPID_PRIVATE}", subject: "mailto:ops@example.com"}}}}'
                 if webpush else "")
    return f"""
timezone: UTC
security: {{allow_private_networks: true}}
{providers}
channels:
  infra-hook: {{type: webhook, url: "{hook.url}/hook", secret: "infra-hook-secret"}}
  broken-hook: {{type: webhook, url: "{hook.url}/broken"}}
users:
  olga: {{}}
  rita: {{email: rita@example.com, contacts: {{out: {{type: log}}, mail: {{type: email}}}}}}
teams:
  infra:
    admins: [olga]
    members: [rita]
    channels: [infra-hook, broken-hook]
    escalation: {{steps: [{{notify: ["user:rita"]}}]}}
"""


async def sign_in(page, stack, user: str) -> None:
    await users.set_password(stack.pool, user, PASSWORD)
    await page.goto(stack.url + "/signin")
    await page.get_by_label("Username", exact=True).fill(user)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="On call now")).to_be_visible(timeout=WAIT)


async def test_an_owner_tests_a_channel_and_sees_the_outcome(stack, browser, shots, webhook):  # noqa: F811
    webhook.default = lambda r: push_answer(400 if r.path == "/broken" else 201)
    await stack.start(config(webhook))
    page, problems = await open_ui(browser, stack)
    await sign_in(page, stack, "olga")
    await page.get_by_role("link", name="Channels").click()
    await expect(page.get_by_role("heading", name="Channels", level=1)).to_be_visible(timeout=WAIT)
    row = page.locator('tr[data-channel="infra-hook"]')
    await expect(row.locator(".settings")).to_contain_text("secret: ********")
    await expect(row).not_to_contain_text("infra-hook-secret")
    await row.get_by_role("button", name="Test channel infra-hook").click()
    await expect(row.locator("[data-result]")).to_have_text("delivered", timeout=WAIT)
    assert [r.path for r in webhook.requests] == ["/hook"]
    broken = page.locator('tr[data-channel="broken-hook"]')
    await broken.get_by_role("button", name="Test channel broken-hook").click()
    await expect(broken.get_by_role("alert")).to_contain_text("failed: HTTP 400", timeout=WAIT)
    await shots.take(page, "channels")
    assert problems == []


async def test_a_responder_is_told_why_they_may_not_test_a_channel(stack, browser, webhook):  # noqa: F811
    await stack.start(config(webhook))
    page, problems = await open_ui(browser, stack)
    await sign_in(page, stack, "rita")
    await expect(page.get_by_role("link", name="Channels")).to_be_hidden()
    await page.goto(stack.url + "/channels")
    row = page.locator('tr[data-channel="infra-hook"]')
    await row.get_by_role("button", name="Test channel infra-hook").click()
    await expect(row.get_by_role("alert")).to_have_text(
        "Test failed: only an administrator or an owner of a team that uses channel 'infra-hook' may test it",
        timeout=WAIT)
    assert webhook.requests == []
    assert problems == []


async def test_send_me_a_test_from_the_profile(stack, browser, shots, webhook):  # noqa: F811
    await stack.start(config(webhook))
    page, problems = await open_ui(browser, stack)
    await sign_in(page, stack, "rita")
    await page.get_by_role("link", name="Profile").click()
    mine = page.locator("section[aria-labelledby=contacts-title]")
    await mine.get_by_role("button", name="Send me a test through out").click()
    await expect(mine.locator('li[data-contact="out"] [data-result]')).to_have_text("delivered", timeout=WAIT)
    await mine.get_by_role("button", name="Send me a test through mail").click()
    await expect(mine.locator('li[data-contact="mail"]').get_by_role("alert")).to_have_text(
        "failed: providers.smtp needs host and from", timeout=WAIT)
    # No Web Push on this server: the button says so with the API's message.
    push = page.locator("section[aria-labelledby=push-title]")
    await push.get_by_role("button", name="Enable push on this device").click()
    await expect(push.get_by_role("alert")).to_have_text(
        "Push not enabled: Web Push is not configured on this server (providers.webpush.vapid_private_key)",
        timeout=WAIT)
    await shots.take(page, "profile-contacts")
    assert problems == []


async def test_enable_push_registers_the_worker_and_asks_the_browser_to_subscribe(stack, browser, webhook):  # noqa: F811
    await stack.start(config(webhook, webpush=True))
    page, problems = await open_ui(browser, stack)
    await page.context.grant_permissions(["notifications"], origin=stack.url)
    await sign_in(page, stack, "rita")
    await page.goto(stack.url + "/profile")
    push = page.locator("section[aria-labelledby=push-title]")
    await push.get_by_role("button", name="Enable push on this device").click()
    msg = push.locator("#push-msg")
    # The flow ends in success (class ok) or in an error (class error), never in one of its steps.
    await expect(msg.locator(".ok, .error")).to_be_visible(timeout=2 * WAIT)
    # The worker is installed for the whole UI, from /sw.js.
    scope = await page.evaluate("navigator.serviceWorker.getRegistration('/').then((r) => r && r.scope)")
    assert scope == stack.url + "/"
    assert await page.evaluate("Notification.permission") == "granted"
    if "Push is on for this device" in await msg.inner_text():   # a browser with a push service
        status, body = await stack.api("GET", "/api/v1/users/rita", user="rita")
        assert status == 200 and body["contacts"]["browser"] == {"type": "webpush", "subscription": "********"}
    else:   # headless Chromium: the subscribe call itself is refused, and the page says so
        await expect(msg.get_by_role("alert")).to_contain_text("Push not enabled: the browser could not subscribe (")
        status, body = await stack.api("GET", "/api/v1/users/rita", user="rita")
        assert status == 200 and "browser" not in body["contacts"]
    # Chromium says why on the console itself: Playwright's contexts are like incognito windows.
    problems[:] = [p for p in problems if "does not support the Push API in incognito mode" not in p]
    assert problems == []

    # A push as the notifier sends it (docs/channels/webpush.md), handed to the worker by the browser's
    # DevTools protocol (what "Push" in DevTools does): the worker shows it with its two actions.
    cdp = await page.context.new_cdp_session(page)
    registrations: list[dict[str, Any]] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    await cdp.send("ServiceWorker.enable")
    await eventually(lambda: _true(any(r["scopeURL"] == stack.url + "/" for r in registrations)))
    [registration] = [r for r in registrations if r["scopeURL"] == stack.url + "/"][:1]
    payload = {"title": "#7 [CRITICAL] Disk /var is 97% full", "body": "on db-1", "kind": "page",
               "link": stack.url + "/incidents/inc-7", "tag": "inc-7", "severity": "critical",
               "actions": [{"action": "acknowledge", "title": "Acknowledge", "url": stack.url + "/api/v1/answer/x"},
                           {"action": "resolve", "title": "Resolve", "url": stack.url + "/api/v1/answer/y"}]}
    await cdp.send("ServiceWorker.deliverPushMessage", {"origin": stack.url, "registrationId":
                                                        registration["registrationId"], "data": json.dumps(payload)})
    shown = await eventually(lambda: page.evaluate(
        "navigator.serviceWorker.ready.then((r) => r.getNotifications()).then((ns) => ns.map((n) => "
        "({title: n.title, body: n.body, tag: n.tag, actions: n.actions.map((a) => a.title), "
        "link: n.data.link, sticky: n.requireInteraction})))"))
    assert shown == [{"title": payload["title"], "body": "on db-1", "tag": "inc-7",
                      "actions": ["Acknowledge", "Resolve"], "link": payload["link"], "sticky": True}]
    assert problems == []


async def _true(value: bool) -> bool:
    return value
