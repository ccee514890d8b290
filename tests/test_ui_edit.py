"""Changing the config from the web UI, in a real browser: teams and rotations, people with their contact
methods and rules, and the incident filters. Each change is checked through the API afterwards (the config
really changed), and each page shows a refused change with the API's paths.

Screenshots as in test_ui.py (tmp dir `screenshots/`, and `$TOCSIN_SCREENSHOTS` when set).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect
from test_ui import TOKEN, VIEWER_ZONE, WAIT, browser, config, open_ui, shots, sign_in_with_password, sign_in_with_token

from harness import eventually

pytestmark = pytest.mark.e2e
__all__ = ["browser", "shots"]   # fixtures, used by name


async def test_an_administrator_edits_members_rotations_and_overrides(stack, browser, shots):
    later = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=20)
    await stack.start(config((later, later + timedelta(days=2))))
    page, problems = await open_ui(browser, stack)
    await sign_in_with_token(page, stack, user="olga")
    await page.get_by_role("link", name="Teams").click()
    team = page.get_by_role("region", name="infra", exact=True)
    rotation = team.get_by_role("region", name="Rotation primary")
    preview = rotation.locator("ol.shifts > li strong")
    await expect(rotation.locator("ol.shifts")).to_be_visible(timeout=WAIT)
    before = await preview.all_inner_texts()
    assert set(before[:3]) <= {"alice", "bob"}, before

    # A member nobody knows: refused with the path of the mistake, and nothing changed.
    await rotation.get_by_text("Edit rotation primary").click()
    await rotation.get_by_label("Members, in order").fill("alice, nobody")
    await rotation.get_by_role("button", name="Save rotation primary").click()
    await expect(rotation.get_by_role("alert")).to_contain_text(
        'teams.infra.rotations.primary.members[1]: unknown user "nobody"', timeout=WAIT)
    status, body = await stack.api("GET", "/api/v1/teams/infra", user="olga")
    assert status == 200 and body["rotations"]["primary"]["members"] == ["alice", "bob"]

    # Three people, a day each: saved, and the preview shows the new order.
    await rotation.get_by_label("Members, in order").fill("bob, carol, alice")
    await rotation.get_by_label("Shift length").fill("1d")
    await rotation.get_by_label("Time zone", exact=True).fill("Europe/Berlin")
    await rotation.get_by_role("button", name="Save rotation primary").click()
    saved = page.get_by_role("status").filter(has_text="Saved rotation infra.primary.")
    await expect(saved).to_be_focused(timeout=WAIT)   # said where a keyboard or screen reader is
    status, body = await stack.api("GET", "/api/v1/teams/infra", user="olga")
    assert body["rotations"]["primary"]["members"] == ["bob", "carol", "alice"]
    assert body["rotations"]["primary"]["shift"] == "1d"
    assert body["rotations"]["primary"]["timezone"] == "Europe/Berlin"
    await expect(rotation).to_contain_text("bob → carol → alice, every 1d")

    async def three_people() -> bool:
        names = await preview.all_inner_texts()
        return set(names[:3]) == {"alice", "bob", "carol"}
    await eventually(three_people, timeout=20, interval=0.5)

    # Members: add olga as a team admin, then take her out again.
    await team.get_by_label("Add a member", exact=True).select_option("olga")
    await team.get_by_label("team admin (owner)").check()
    await team.get_by_role("button", name="Add member").click()
    await expect(page.get_by_role("status").filter(has_text="Added olga to infra.")).to_be_visible(timeout=WAIT)
    status, body = await stack.api("GET", "/api/v1/teams/infra", user="olga")
    assert "olga" in body["members"] and body["admins"] == ["olga"]
    # carol is in the rotation: removing her is refused, and the page says where she is named.
    await team.get_by_role("button", name="Remove carol from infra").click()
    await expect(team.get_by_role("alert")).to_contain_text("teams.infra.rotations.primary", timeout=WAIT)
    await team.get_by_role("button", name="Remove olga from infra").click()
    await expect(page.get_by_role("status").filter(has_text="Removed olga from infra.")).to_be_visible(timeout=WAIT)
    status, body = await stack.api("GET", "/api/v1/teams/infra", user="olga")
    assert "olga" not in body["members"] and body["admins"] == []

    # The override the config has is listed, and removed with one press.
    overrides = team.locator("ul.overrides > li")
    await expect(overrides).to_have_count(1)
    await expect(overrides).to_contain_text(f"carol on primary, {later:%Y-%m-%d %H:%M}")
    await shots.take(page, "teams-edit")
    await team.get_by_role("button", name="Remove the override of carol", exact=False).click()
    await expect(team.get_by_text("No overrides.")).to_be_visible(timeout=WAIT)
    status, body = await stack.api("GET", "/api/v1/teams/infra/overrides", user="olga")
    assert status == 200 and body["overrides"] == []
    assert problems == []


async def test_an_administrator_adds_a_person_with_contacts_and_rules(stack, browser, shots):
    await stack.start(config())
    page, problems = await open_ui(browser, stack)
    await sign_in_with_token(page, stack, user="olga")
    await page.get_by_role("link", name="People").click()
    await expect(page.get_by_role("heading", name="People", exact=True)).to_be_visible(timeout=WAIT)

    # A new person.
    await page.get_by_text("Add a person").click()
    add = page.get_by_role("form", name="Add a person")
    await add.get_by_label("Username").fill("dave")
    await add.get_by_label("Name", exact=True).fill("Dave Example")
    await add.get_by_label("Email").fill("dave@example.com")
    await add.get_by_label("Phone (E.164)").fill("+15550003333")
    await add.get_by_label("Time zone").fill("Europe/Berlin")
    await add.get_by_role("button", name="Add person").click()
    await expect(page.get_by_role("status").filter(has_text="Added dave.")).to_be_visible(timeout=WAIT)
    status, dave = await stack.api("GET", "/api/v1/users/dave", user="olga")
    assert status == 200
    assert (dave["name"], dave["email"], dave["phone"], dave["timezone"], dave["role"]) == (
        "Dave Example", "dave@example.com", "+15550003333", "Europe/Berlin", "user")
    card = page.get_by_role("region", name="Dave Example (dave)")

    # A contact method with a bad field: the API's path is shown, nothing is stored.
    async def add_contact(name: str, kind: str, fields: dict[str, str]) -> None:
        await card.get_by_text("Add a contact method").click()
        form = card.get_by_role("form", name="New contact method for dave")
        await form.get_by_label("Name of the contact method").fill(name)
        await form.get_by_label("Type").select_option(kind)
        for label, value in fields.items():
            await form.get_by_label(label, exact=True).fill(value)
        await form.get_by_role("button", name="Add contact method").click()

    await add_contact("push", "ntfy", {"topic": "not a topic!"})
    await expect(card.get_by_role("alert")).to_contain_text("users.dave.contacts.push", timeout=WAIT)
    status, dave = await stack.api("GET", "/api/v1/users/dave", user="olga")
    assert dave["contacts"] == {}
    await card.get_by_label("topic", exact=True).fill("dave-pages")
    await card.get_by_role("button", name="Add contact method").click()
    await expect(page.get_by_role("status").filter(has_text="Saved the contact method push of dave.")).to_be_visible(
        timeout=WAIT)
    await add_contact("hook", "webhook", {"url": "https://hooks.example.com/dave", "secret": "s3cret-value"})
    await expect(page.get_by_role("status").filter(has_text="Saved the contact method hook of dave.")).to_be_visible(
        timeout=WAIT)
    status, dave = await stack.api("GET", "/api/v1/users/dave", user="olga")
    assert dave["contacts"] == {
        "push": {"type": "ntfy", "topic": "dave-pages"},
        "hook": {"type": "webhook", "url": "https://hooks.example.com/dave", "secret": "********"}}

    # Rules: push at once, hook after 3 minutes; written in the other order, then moved with the keyboard.
    await card.get_by_text("Edit details and rules of dave").click()
    rules = card.get_by_role("form", name="Details and rules of dave")
    await rules.get_by_role("button", name="Add a rule").click()
    await rules.get_by_label("Rule 1: contact method").select_option("hook")
    await rules.get_by_label("Rule 1: after").fill("3m")
    await rules.get_by_role("button", name="Add a rule").click()
    await rules.get_by_label("Rule 2: contact method").select_option("push")
    await rules.get_by_role("button", name="Move rule 2 up").focus()
    await page.keyboard.press("Enter")
    await expect(rules.get_by_role("button", name="Move rule 1 up")).to_be_focused()
    await rules.get_by_label("Name", exact=True).fill("Dave Q. Example")
    await rules.get_by_role("button", name="Save dave").click()
    await expect(page.get_by_role("status").filter(has_text="Saved dave.")).to_be_visible(timeout=WAIT)
    status, dave = await stack.api("GET", "/api/v1/users/dave", user="olga")
    assert dave["name"] == "Dave Q. Example"
    assert dave["rules"] == [{"contact": "push", "after": "0s"}, {"contact": "hook", "after": "3m"}]
    assert dave["contacts"]["hook"]["secret"] == "********"   # still set: the mask kept the stored secret
    await shots.take(page, "people-edit")

    # A rule naming a contact that is then removed: refused, with where it is still named.
    card = page.get_by_role("region", name="Dave Q. Example (dave)")
    await card.get_by_role("button", name="Remove the contact method hook of dave").click()
    await expect(card.get_by_role("alert")).to_contain_text("users.dave.rules[1]", timeout=WAIT)
    status, dave = await stack.api("GET", "/api/v1/users/dave", user="olga")
    assert "hook" in dave["contacts"]
    assert problems == []


async def test_a_person_keeps_their_own_contact_methods(stack, browser, shots):
    await stack.start(config())
    page, problems = await open_ui(browser, stack)
    await sign_in_with_password(page, stack, user="bob")
    await page.get_by_role("link", name="People").click()
    await expect(page.get_by_role("heading", name="Your contact methods")).to_be_visible(timeout=WAIT)
    await expect(page.locator("main section.card")).to_have_count(1)   # only bob himself
    card = page.get_by_role("region", name="bob")
    await expect(card).to_contain_text("changed by an administrator")
    await card.get_by_text("Add a contact method").click()
    form = card.get_by_role("form", name="New contact method for bob")
    await form.get_by_label("Name of the contact method").fill("mail")
    await form.get_by_label("Type").select_option("email")
    await form.get_by_label("to", exact=True).fill("bob@example.com")
    await form.get_by_role("button", name="Add contact method").click()
    await expect(page.get_by_role("status").filter(has_text="Saved the contact method mail of bob.")).to_be_visible(
        timeout=WAIT)
    status, bob = await stack.api("GET", "/api/v1/users/bob", user="olga")
    assert bob["contacts"]["mail"] == {"type": "email", "to": "bob@example.com"}
    await shots.take(page, "people-self")
    await page.get_by_role("button", name="Remove the contact method mail of bob").click()
    await expect(page.get_by_role("status").filter(has_text="Removed the contact method mail of bob.")).to_be_visible(
        timeout=WAIT)
    status, bob = await stack.api("GET", "/api/v1/users/bob", user="olga")
    assert status == 200 and set(bob["contacts"]) == {"out"}
    assert problems == []


async def test_incidents_filter_by_severity_route_and_time(stack, browser, shots):
    await stack.start(config())
    for title, severity in (("Disk almost full", "warning"), ("Database down", "critical")):
        status, _ = await stack.post_alert("webhook", {"title": title, "id": title, "severity": severity}, TOKEN)
        assert status == 202

    async def both_open() -> bool:
        return len(await stack.incidents()) == 2
    await eventually(both_open, timeout=20, interval=0.5)
    page, problems = await open_ui(browser, stack)
    await sign_in_with_token(page, stack, user="olga")
    await page.get_by_role("link", name="Incidents", exact=True).first.click()
    items = page.locator("ul.incidents li.incident")
    await expect(items).to_have_count(2, timeout=WAIT)

    severity = page.get_by_label("Severity")
    await severity.focus()
    await severity.select_option("warning")
    await expect(page).to_have_url(stack.url + "/incidents?severity=warning", timeout=WAIT)
    await expect(items).to_have_count(1, timeout=WAIT)
    await expect(items).to_contain_text("Disk almost full")
    await expect(severity).to_be_focused()   # the list reloads in place; the control keeps the focus
    await page.get_by_label("Route").select_option("hooks")
    await expect(page).to_have_url(stack.url + "/incidents?severity=warning&route=hooks", timeout=WAIT)
    await expect(items).to_have_count(1)

    # Since an hour from now: nothing. The time goes in the address as UTC.
    soon = datetime.now(UTC) + timedelta(hours=1)

    def typed(when: datetime) -> str:   # as a person in the browser's zone types it
        return when.astimezone(ZoneInfo(VIEWER_ZONE)).strftime("%Y-%m-%dT%H:%M")
    await page.get_by_label("Opened since").fill(typed(soon))
    await page.get_by_role("button", name="Filter", exact=True).click()
    await expect(page.get_by_text("No incidents match these filters.")).to_be_visible(timeout=WAIT)
    assert "since=" in page.url
    # Before "since": said at once, nothing sent.
    await page.get_by_label("Opened before").fill(typed(soon - timedelta(hours=2)))
    await page.get_by_role("button", name="Filter", exact=True).click()
    await expect(page.get_by_role("alert")).to_have_text("“Opened before” must be later than “Opened since”.")
    await shots.take(page, "incidents-filtered")

    # An address with a filter opens with it; the back button steps back through the filters.
    await page.reload()
    await expect(page.get_by_label("Severity")).to_have_value("warning", timeout=WAIT)
    await expect(page.get_by_text("No incidents match these filters.")).to_be_visible(timeout=WAIT)
    await page.go_back()
    await expect(page).to_have_url(stack.url + "/incidents?severity=warning&route=hooks", timeout=WAIT)
    await expect(items).to_have_count(1, timeout=WAIT)
    # Only incidents of the route asked for (both of these came in through "hooks").
    await page.goto(stack.url + "/incidents?route=elsewhere")
    await expect(page.get_by_text("No incidents match these filters.")).to_be_visible(timeout=WAIT)
    await expect(page.get_by_label("Route")).to_have_value("elsewhere")
    # A time the API cannot read: its message, not a blank page.
    await page.goto(stack.url + "/incidents?since=yesterday")
    await expect(page.get_by_role("alert")).to_contain_text("since must be an ISO 8601 time", timeout=WAIT)
    assert problems == []
