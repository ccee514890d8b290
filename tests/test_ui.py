"""The web UI in a real browser (Debian's Chromium, headless, driven by Playwright) against a running stack.

Screenshots at desktop and phone width go to the test's tmp dir (`screenshots/`), and also to
`$TOCSIN_SCREENSHOTS` when it is set.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

from harness import StackHandle, eventually
from tocsin.api import users

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}
VIEWER_ZONE = "Europe/Berlin"
TOKEN = "ui-browser-route-0001"
PASSWORD = "correct horse battery staple"
WAIT = 20_000   # ms: generous, the machine is shared

# The rotation hands off at 21:00 UTC every week from Monday 2026-01-05, so who is on call is simple
# arithmetic here, independent of the server's schedule code.
ROTATION_START = datetime(2026, 1, 5, 21, 0, tzinfo=UTC)


def scheduled(when: datetime) -> str:
    return ("alice", "bob")[((when - ROTATION_START) // timedelta(weeks=1)) % 2]


def config(override: tuple[datetime, datetime] | None = None) -> str:
    overrides = ""
    if override:
        start, end = (t.strftime("%Y-%m-%dT%H:%M") for t in override)
        overrides = f'    overrides: [{{rotation: primary, user: carol, start: "{start}", end: "{end}"}}]\n'
    return f"""
timezone: UTC
users:
  alice: {{name: Alice Example, contacts: {{out: {{type: log}}}}}}
  bob: {{contacts: {{out: {{type: log}}}}}}
  carol: {{contacts: {{out: {{type: log}}}}}}
  olga: {{role: admin}}
teams:
  infra:
    members: [alice, bob, carol]
    rotations:
      primary: {{members: [alice, bob], shift: 1w, start: "{ROTATION_START:%Y-%m-%dT%H:%M}"}}
{overrides}    escalation: {{steps: [{{notify: ["rotation:primary"]}}]}}
routes:
  hooks: {{source: webhook, team: infra, token: {TOKEN}}}
"""


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (make system-deps)")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            await b.close()


class Shots:
    def __init__(self, tmp: Path, test: str) -> None:
        self.dir = tmp / "screenshots"
        self.dir.mkdir(exist_ok=True)
        self.test = test
        self.extra = Path(os.environ["TOCSIN_SCREENSHOTS"]) if os.environ.get("TOCSIN_SCREENSHOTS") else None

    async def take(self, page: Page, name: str) -> None:
        """The page as it is, at desktop and at phone width."""
        await page.evaluate("window.scrollTo(0, 0)")   # else the sticky header lands mid-page
        for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
            await page.set_viewport_size(size)
            path = self.dir / f"{name}-{label}.png"
            await page.screenshot(path=str(path), full_page=True)
            if self.extra:
                self.extra.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, self.extra / path.name)
        await page.set_viewport_size(DESKTOP)


@pytest.fixture
def shots(tmp_path: Path, request: pytest.FixtureRequest) -> Shots:
    return Shots(tmp_path, request.node.name)


async def open_ui(browser: Browser, stack: StackHandle) -> tuple[Page, list[str]]:
    context = await browser.new_context(viewport=DESKTOP, timezone_id=VIEWER_ZONE, locale="en-GB")
    page = await context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: print(f"browser {msg.type}: {msg.text}"))   # shown when a test fails
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    # A failed API request logs "Failed to load resource"; anything else (a CSP violation, an exception) is ours.
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error" and "Failed to load resource" not in msg.text else None)
    return page, problems


async def sign_in_with_token(page: Page, stack: StackHandle, user: str = "alice") -> None:
    token = await stack.token(user)
    await page.goto(stack.url + "/")
    await expect(page).to_have_url(stack.url + "/signin?next=%2F")
    await page.get_by_label("API token", exact=True).fill(token)
    await page.get_by_role("button", name="Use token").click()
    await expect(page.get_by_role("heading", name="On call now")).to_be_visible(timeout=WAIT)


async def sign_in_with_password(page: Page, stack: StackHandle, user: str = "alice") -> None:
    await users.set_password(stack.pool, user, PASSWORD)
    await page.goto(stack.url + "/")
    await page.get_by_label("Username", exact=True).fill(user)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="On call now")).to_be_visible(timeout=WAIT)


async def test_sign_in_and_the_banner_names_who_is_on_call_and_next(stack, browser, shots):
    await stack.start(config())
    await users.set_password(stack.pool, "alice", PASSWORD)
    page, problems = await open_ui(browser, stack)
    await page.goto(stack.url + "/")
    await expect(page.get_by_role("heading", name="Sign in to Tocsin")).to_be_visible(timeout=WAIT)
    await expect(page.get_by_label("Username", exact=True)).to_be_focused()
    await shots.take(page, "signin")
    # A wrong password, then a wrong token: each refused with a message, not a blank page.
    await page.get_by_label("Username", exact=True).fill("alice")
    await page.get_by_label("Password", exact=True).fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("Wrong username or password.", timeout=WAIT)
    await page.get_by_label("API token", exact=True).fill("tcs_not-a-real-token")
    await page.get_by_role("button", name="Use token").click()
    await expect(page.get_by_role("alert")).to_contain_text("That token was refused", timeout=WAIT)

    # Keyboard only: type the password and press Enter.
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_label("Password", exact=True).press("Enter")
    await expect(page.get_by_role("heading", name="On call now")).to_be_visible(timeout=WAIT)
    now = datetime.now(UTC)
    banner = page.locator('section.banner[data-team="infra"]')
    rotation = banner.locator('li.rotation[data-rotation="primary"]')
    await expect(rotation.locator(".who")).to_have_text(scheduled(now), timeout=WAIT)
    next_handoff = ROTATION_START + ((now - ROTATION_START) // timedelta(weeks=1) + 1) * timedelta(weeks=1)
    await expect(rotation.locator(".next strong")).to_have_text(scheduled(next_handoff))
    # Times are in the viewer's zone, and the zone is named.
    local = next_handoff.astimezone(ZoneInfo(VIEWER_ZONE))
    await expect(rotation.locator(".next time")).to_contain_text(f"{local:%H}:{local:%M}")
    await expect(rotation.locator(".next time")).to_contain_text(local.tzname() or "")
    await expect(page.locator("#zone")).to_have_text(f"Times are shown in {VIEWER_ZONE}.")
    await expect(page.get_by_text("Nothing open. All quiet.")).to_be_visible()
    await shots.take(page, "home-quiet")
    assert problems == []


async def test_an_alert_appears_live_and_can_be_acknowledged(stack, browser, shots):
    """Signed in with a password: the session cookie, and the CSRF header on every write."""
    await stack.start(config())
    page, problems = await open_ui(browser, stack)
    await sign_in_with_password(page, stack)
    await expect(page.locator("#live")).to_have_text("Live", timeout=WAIT)
    await page.evaluate("window.__notReloaded = true")

    banner = page.locator('section.banner[data-team="infra"]')
    await banner.get_by_role("button", name="Send test alert").click()
    message = banner.locator(".inline-msg")
    await expect(message).not_to_have_text("Sending…", timeout=WAIT)
    if "cannot send test alerts yet" not in (await message.inner_text()):
        # The server's test page goes straight to whoever is on call, through their first contacts.
        await expect(message).to_contain_text(f"Test page sent to {scheduled(datetime.now(UTC))}")
        await expect(message).to_contain_text("/out: delivered")
    else:   # a server without the endpoint: the button says so, as an error
        await expect(message.get_by_role("alert")).to_contain_text("POST /api/v1/teams/infra/test-alert")
    # An alert, as a monitoring tool sends it, opens an incident that the page shows without a reload.
    title = "Disk /var is 97% full on db-01"
    status, answer = await stack.post_alert("webhook", {"title": title, "severity": "critical", "id": "db-01"}, TOKEN)
    assert status == 202, answer
    item = page.locator("ul.incidents li.incident").filter(has_text=title)
    await expect(item).to_be_visible(timeout=WAIT)
    await expect(item.locator(".badge.status-triggered")).to_have_text("triggered")
    assert await page.evaluate("window.__notReloaded") is True, "the incident came without a reload"
    await shots.take(page, "home-incident")

    await item.get_by_role("link").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text(title, timeout=WAIT)
    await expect(page.locator("#incident-status .badge").first).to_have_text("triggered")
    # The page went out to the person on call, through their log contact.
    deliveries = page.locator("section[aria-labelledby=dl-title]")
    await expect(deliveries.locator("td[data-label=To]").first).to_have_text(scheduled(datetime.now(UTC)),
                                                                             timeout=WAIT)
    await page.get_by_role("button", name="Acknowledge").click()
    await expect(page.locator("#incident-status .badge").first).to_have_text("acknowledged", timeout=WAIT)
    await expect(page.locator("#incident-status")).to_contain_text("acknowledged by alice")
    await expect(page.get_by_role("button", name="Acknowledge")).to_be_disabled()
    await expect(page.locator("ol.timeline")).to_contain_text("Acknowledged by alice")
    items = await stack.incidents()
    assert [i["status"] for i in items] == ["acknowledged"]

    # A note, typed while somebody else adds one: the live update keeps what is being typed.
    note = page.get_by_label("Note (also the resolution note when you resolve)")
    await note.fill("looking at it")
    status, _ = await stack.api("POST", f"/api/v1/incidents/{items[0]['id']}/notes", user="bob",
                                json={"note": "I can help"})
    assert status == 200
    await expect(page.locator("ol.timeline")).to_contain_text("bob: I can help", timeout=WAIT)
    await expect(note).to_have_value("looking at it")
    await expect(note).to_be_focused()
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Add note")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("ol.timeline")).to_contain_text("alice: looking at it", timeout=WAIT)
    raw = page.locator("details.raw").first
    await raw.locator("summary").click()
    await expect(raw.locator("pre")).to_contain_text('"title"', timeout=WAIT)
    await shots.take(page, "incident")

    # Escalating asks first: dismissed, nothing happens; confirmed, the next step is paged at once.
    page.once("dialog", lambda dialog: dialog.dismiss())
    await page.get_by_role("button", name="Escalate now").click()
    await expect(page.locator("#incident-status .badge").first).to_have_text("acknowledged")
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Escalate now").click()
    await expect(page.locator("#incident-status .badge").first).to_have_text("triggered", timeout=WAIT)
    # One step only: escalating starts the policy's second round.
    await expect(page.locator("ol.timeline")).to_contain_text("Escalated to step 1 (round 2) by alice")

    # A change made elsewhere (here: through the API) shows up on the open page.
    status, _ = await stack.api("POST", f"/api/v1/incidents/{items[0]['id']}/resolve", user="bob",
                                json={"note": "freed 40 GiB"})
    assert status == 200
    await expect(page.locator("#incident-status .badge").first).to_have_text("resolved", timeout=WAIT)
    await expect(page.locator("ol.timeline")).to_contain_text("Resolved by bob: freed 40 GiB")

    # From the home page, a new incident is acknowledged with one press, keyboard only.
    await page.get_by_role("link", name="On call", exact=True).click()
    await expect(page.get_by_text("Nothing open. All quiet.")).to_be_visible(timeout=WAIT)
    status, _ = await stack.post_alert("webhook", {"title": "Backup failed", "id": "backup"}, TOKEN)
    assert status == 202
    quick = page.get_by_role("button", name="Acknowledge #2 Backup failed")
    await quick.focus()
    await page.keyboard.press("Enter")
    second = page.locator("ul.incidents li.incident").filter(has_text="Backup failed")
    await expect(second.locator(".badge.status-acknowledged")).to_be_visible(timeout=WAIT)
    await expect(second).to_contain_text("acknowledged by alice")

    await page.get_by_role("link", name="Incidents", exact=True).first.click()
    await page.get_by_label("Status").select_option("resolved")
    await expect(page).to_have_url(stack.url + "/incidents?status=resolved", timeout=WAIT)
    await expect(page.locator("ul.incidents li.incident")).to_have_count(1, timeout=WAIT)
    await shots.take(page, "incidents")
    assert problems == []


async def test_the_calendar_names_the_override_and_the_rotation(stack, browser, shots):
    now = datetime.now(UTC)
    today = now.replace(hour=12, minute=0, second=0, microsecond=0)
    override = (today - timedelta(days=1), today + timedelta(days=3))
    await stack.start(config(override))
    page, problems = await open_ui(browser, stack)
    await sign_in_with_token(page, stack, user="olga")   # an administrator: may add overrides
    banner = page.locator('li.rotation[data-rotation="primary"]')
    await expect(banner.locator(".who")).to_have_text("carol", timeout=WAIT)
    await expect(banner.locator(".badge.override")).to_be_visible()

    await page.get_by_role("link", name="Calendar").click()
    grid = page.locator('.cal-rotation[data-team="infra"][data-rotation="primary"]')
    await expect(grid.locator(".cal-grid")).to_be_visible(timeout=WAIT)
    berlin = ZoneInfo(VIEWER_ZONE)

    def cell(when: datetime):  # type: ignore[no-untyped-def]
        return grid.locator(f'.cal-day[data-date="{when.astimezone(berlin):%Y-%m-%d}"]')

    # Today and tomorrow: carol stands in, marked as an override.
    for day in (today, today + timedelta(days=1)):
        await expect(cell(day).locator("li.override .who")).to_have_text("carol")
        await expect(cell(day)).to_have_class("cal-day has-override")
    # The day the override ends (13:00 in Berlin), the rotation's own person takes over.
    end_day = cell(override[1])
    await expect(end_day.locator("li.override .who")).to_have_text("carol")
    # (On a hand-off day more people follow, each with the time they take over.)
    await expect(end_day.locator("li:not(.override)").first).to_contain_text(
        f"{scheduled(override[1])} from {override[1].astimezone(berlin):%H:%M}")
    partial = await grid.get_by_text("no shifts endpoint").count()
    if not partial:
        # With the server's shifts, every day of the 90 is known: ten days on, the plain rotation.
        later = today + timedelta(days=10)
        await expect(cell(later).locator(".who").first).to_have_text(scheduled(later))
        assert await grid.locator(".cal-day.unknown").count() == 0
    await shots.take(page, "calendar")

    # Picking two days puts somebody on call for them (where the server can add overrides).
    first, last = today + timedelta(days=20), today + timedelta(days=22)
    await cell(first).click()
    await cell(last).click()
    form = grid.locator("form.override-form")
    await expect(form.get_by_label("From (first day)")).to_have_value(f"{first.astimezone(berlin):%Y-%m-%d}")
    await expect(form.get_by_label("To (last day)")).to_have_value(f"{last.astimezone(berlin):%Y-%m-%d}")
    await expect(form.get_by_label("Who")).to_be_focused()
    await page.keyboard.type("bob")
    await page.keyboard.press("Enter")
    answer = grid.locator('[role="status"], [role="alert"]').filter(has_text=re.compile("override|is on call in"))
    await expect(answer.first).to_be_visible(timeout=WAIT)
    if "cannot add overrides yet" in await answer.first.inner_text():
        await expect(grid.get_by_role("alert")).to_contain_text("POST /api/v1/teams/{team}/overrides")
    else:
        await expect(grid.get_by_role("status").filter(has_text="bob is on call in primary")).to_be_visible()
        for d in (first, first + timedelta(days=1), last):
            await expect(cell(d).locator("li.override .who")).to_have_text("bob")
        await expect(cell(last + timedelta(days=1)).locator(".who").first).to_have_text(
            scheduled(last + timedelta(days=1)))
        await shots.take(page, "calendar-override-added")
    assert problems == []


async def test_an_api_error_is_shown_to_the_user(stack, browser, shots):
    await stack.start(config())
    page, problems = await open_ui(browser, stack)
    await sign_in_with_token(page, stack)
    # A link to an incident that does not exist: the API's message, not a blank page.
    await page.goto(stack.url + "/incidents/00000000-0000-4000-8000-000000000000")
    await expect(page.get_by_role("alert")).to_have_text("no such incident", timeout=WAIT)
    await expect(page.get_by_role("link", name="All incidents")).to_be_visible()
    await shots.take(page, "error-not-found")

    # A token without the scope a page needs: the API's refusal, word for word.
    async with stack.pool.acquire() as conn:
        from tocsin.api.auth import create_token
        narrow = await create_token(conn, "bob", scopes=("incidents:read",))
    stack.tokens["bob"] = narrow
    page2, problems2 = await open_ui(browser, stack)
    await sign_in_with_token(page2, stack, user="bob")
    await page2.goto(stack.url + "/teams")
    await expect(page2.get_by_role("alert")).to_have_text(
        "Cannot read the config: this token lacks the 'config:read' scope", timeout=WAIT)
    # And the same token cannot acknowledge: the button says why.
    status, _ = await stack.post_alert("webhook", {"title": "Needs write", "id": "w1"}, TOKEN)
    assert status == 202
    items = await eventually(stack.incidents)
    await page2.goto(f"{stack.url}/incidents/{items[0]['id']}")
    await page2.get_by_role("button", name="Acknowledge").click()
    await expect(page2.locator(".action-msg")).to_have_text(
        "Could not acknowledge: this token lacks the 'incidents:write' scope", timeout=WAIT)
    await shots.take(page2, "error-forbidden")
    assert problems == [] and problems2 == []


async def test_profile_tokens_feeds_and_sign_out(stack, browser, shots):
    await stack.start(config())
    page, problems = await open_ui(browser, stack)
    await sign_in_with_password(page, stack)
    await page.get_by_role("link", name="Profile").click()
    await expect(page.locator("#me-username")).to_have_text("alice", timeout=WAIT)
    await page.get_by_label("Name for a new token").fill("grafana")
    await page.get_by_role("button", name="Create token").click()
    secret = page.locator("section[aria-labelledby=tok-title] pre.secret")
    await expect(secret).to_contain_text("tcs_", timeout=WAIT)
    # The token shown works against the API.
    token = (await secret.inner_text()).strip()
    assert stack.session
    async with stack.session.get(f"{stack.url}/api/v1/oncall", headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200
    await expect(page.get_by_role("cell", name="grafana", exact=True)).to_be_visible()
    await page.get_by_label("New feed of").select_option("infra")
    await page.get_by_role("button", name="Create feed link").click()
    feed = page.locator("section[aria-labelledby=ical-title] pre.secret")
    await expect(feed).to_contain_text("/api/v1/calendar/", timeout=WAIT)
    async with stack.session.get((await feed.inner_text()).strip()) as r:
        assert r.status == 200 and "BEGIN:VCALENDAR" in await r.text()
    await shots.take(page, "profile")

    page.on("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Revoke token grafana").click()
    await expect(page.get_by_role("cell", name="grafana", exact=True)).to_have_count(0, timeout=WAIT)
    async with stack.session.get(f"{stack.url}/api/v1/oncall", headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 401

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", name="Sign in to Tocsin")).to_be_visible(timeout=WAIT)
    # The session is over on the server too: a reload lands on the sign-in page again.
    await page.goto(stack.url + "/incidents")
    await expect(page.get_by_role("heading", name="Sign in to Tocsin")).to_be_visible(timeout=WAIT)
    assert problems == []


async def test_an_administrator_sees_teams_and_route_snippets(stack, browser, shots):
    await stack.start(config())
    page, problems = await open_ui(browser, stack)
    await sign_in_with_token(page, stack, user="olga")
    await page.get_by_role("link", name="Teams").click()
    team = page.get_by_role("region", name="infra")
    await expect(team).to_contain_text("alice → bob, every 1w", timeout=WAIT)
    await expect(team.get_by_role("listitem").filter(has_text="rotation:primary")).to_be_visible()
    # The escalation policy: a wrong target is refused with the path of the mistake; a right one is saved.
    await team.get_by_text("Edit the escalation policy").click()
    await team.get_by_role("button", name="Add a step").click()
    await team.get_by_label("Step 2: notify").fill("user:nobody")
    await team.get_by_role("button", name="Save escalation policy").click()
    outcome = team.locator(".escalation-form [role=alert], .escalation-form [role=status]")
    await expect(outcome).to_be_visible(timeout=WAIT)
    if "cannot change escalation policies yet" in await outcome.inner_text():
        await expect(outcome).to_contain_text("PUT /api/v1/teams/{team}/escalation")
    else:
        await expect(outcome).to_contain_text("teams.infra.escalation.steps[1].notify[0]")
        await team.get_by_label("Step 2: notify").fill("user:bob")
        await team.get_by_label("Step 1: wait before the next step").fill("10m")
        await team.get_by_role("button", name="Save escalation policy").click()
        await expect(outcome).to_contain_text("Saved", timeout=WAIT)
        status, body = await stack.api("GET", "/api/v1/config", user="olga")
        assert status == 200
        assert body["config"]["teams"]["infra"]["escalation"]["steps"] == [
            {"notify": ["rotation:primary"], "wait": "10m"}, {"notify": ["user:bob"], "wait": "5m"}]
    await shots.take(page, "teams")
    await page.get_by_role("link", name="Routes").click()
    route = page.get_by_role("region", name="hooks")
    await expect(route).to_contain_text("webhook → team infra", timeout=WAIT)
    await expect(route.locator("pre")).to_contain_text(f"{stack.url}/api/v1/intake/webhook")
    await shots.take(page, "routes")
    await page.get_by_role("link", name="People").click()
    alice = page.get_by_role("region", name="Alice Example (alice)")
    await expect(alice.locator("ul.contacts")).to_contain_text("out: log", timeout=WAIT)
    await expect(page.get_by_role("region", name="olga")).to_contain_text("No contact methods")
    await shots.take(page, "people")
    assert problems == []


async def test_people_who_are_not_administrators_do_not_get_the_config_pages(stack, browser):
    await stack.start(config())
    page, problems = await open_ui(browser, stack)
    await sign_in_with_password(page, stack, user="bob")
    await expect(page.get_by_role("link", name="Incidents")).to_be_visible()
    await expect(page.get_by_role("link", name="Teams")).to_be_hidden()
    # Typed in by hand, the page says why.
    await page.goto(stack.url + "/teams")
    await expect(page.get_by_role("alert")).to_have_text("Cannot read the config: only an administrator may do this",
                                                         timeout=WAIT)
    assert problems == []


async def test_an_administrator_silences_alerts_and_ends_the_silence(stack, browser, shots):
    await stack.start(config())
    page, problems = await open_ui(browser, stack)
    await sign_in_with_token(page, stack, user="olga")
    await page.get_by_role("link", name="Silences").click()
    await expect(page.get_by_text("No active or coming silences.")).to_be_visible(timeout=WAIT)
    # A line that is not a matcher is refused before anything is sent.
    await page.get_by_label("Labels to match", exact=False).fill("just words")
    await page.get_by_role("button", name="Silence", exact=True).click()
    await expect(page.get_by_role("alert")).to_have_text('Not a matcher: "just words" (write name=value)')
    await page.get_by_label("Labels to match", exact=False).fill("env=staging\nalertname=~Disk.*")
    await page.get_by_label("Why", exact=False).fill("maintenance")
    await page.get_by_role("button", name="Silence", exact=True).click()
    item = page.locator("ul.silences li")
    await expect(item).to_contain_text("env=staging, alertname=~Disk.*", timeout=WAIT)
    await expect(item.locator(".badge")).to_have_text("active")
    status, body = await stack.api("GET", "/api/v1/silences", user="olga")
    assert status == 200 and body["items"][0]["matchers"] == {"env": "staging", "alertname": "=~Disk.*"}
    assert body["items"][0]["comment"] == "maintenance"
    await shots.take(page, "silences")
    await item.get_by_role("button", name="End the silence", exact=False).click()
    await expect(page.get_by_text("No active or coming silences.")).to_be_visible(timeout=WAIT)
    status, body = await stack.api("GET", "/api/v1/silences", user="olga")
    assert [s["state"] for s in body["items"]] == ["expired"]
    assert problems == []
