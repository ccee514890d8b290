"""The Channels page, "send me a test" and "Enable push on this device" in a real browser (Debian's Chromium,
headless, through Playwright) against a running stack. Helpers and screenshots as in test_ui.py.

What headless Chromium cannot show: a push subscription needs the browser vendor's push service, which is
not reachable here, so `pushManager.subscribe` fails; these tests prove the flow up to that call (the key is
fetched, the service worker is registered with scope `/`, notification permission is asked), and that the
browser's refusal is shown. Storing a subscription and a push reaching it are proven over HTTP in
test_ui_channels.py.
"""

from __future__ import annotations

import pytest
from chatfakes import new_vapid_key, push_answer
from playwright.async_api import expect
from test_ui import PASSWORD, WAIT, browser, open_ui, shots  # noqa: F401 (fixtures)

from harness import FakeProvider
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
    assert problems == []
