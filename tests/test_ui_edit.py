"""Changing the config from the web UI, in a real browser: teams and rotations, people with their contact
methods and rules, and the incident filters. Each change is checked through the API afterwards (the config
really changed), and each page shows a refused change with the API's paths.

Screenshots as in test_ui.py (tmp dir `screenshots/`, and `$TOCSIN_SCREENSHOTS` when set).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import expect
from test_ui import WAIT, browser, config, open_ui, shots, sign_in_with_token

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
    await rotation.get_by_label("Time zone").fill("Europe/Berlin")
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
    await eventually(three_people, timeout=20)

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
