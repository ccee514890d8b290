"""Personal tokens (list without secrets, revoke, last used), route token regeneration, calendar feeds
(per person and per team, time zones right across a clock change) and the audit trail that records them."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import icalendar

from harness import StackHandle, eventually
from tocsin.api import calendar
from tocsin.api.auth import create_token
from tocsin.events.config import parse_config
from tocsin.events.directory import Directory

ROUTE_TOKEN = "infra-hook-token-0001"
CONFIG = f"""
timezone: Europe/Berlin
users:
  root: {{role: admin}}
  olga: {{contacts: {{out: {{type: log}}}}}}
  rita: {{contacts: {{out: {{type: log}}}}}}
teams:
  infra:
    admins: [olga]
    members: [rita]
    rotations: {{primary: {{members: [rita, olga], shift: 1d, start: "2026-01-01T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"]}}]}}
routes:
  hook: {{source: webhook, team: infra, token: {ROUTE_TOKEN}}}
"""


async def call(stack: StackHandle, token: str, method: str, path: str, **kwargs) -> tuple[int, dict]:
    assert stack.session
    async with stack.session.request(method, stack.url + path, headers={"Authorization": f"Bearer {token}"},
                                     **kwargs) as resp:
        return resp.status, (await resp.json(content_type=None) if resp.status != 204 else {})


async def test_tokens_are_shown_once_listed_without_secret_revocable_and_track_last_use(stack):
    await stack.start(CONFIG, services=())
    async with stack.pool.acquire() as conn:
        rita = await create_token(conn, "rita", scopes=("incidents:read", "incidents:write"))
    status, made = await call(stack, rita, "POST", "/api/v1/me/tokens",
                              json={"name": "grafana", "scopes": ["incidents:read"]})
    assert status == 201 and made["token"].startswith("tcs_") and made["scopes"] == ["incidents:read"]
    status, listed = await call(stack, rita, "GET", "/api/v1/me/tokens")
    assert status == 200 and [t["name"] for t in listed["items"]] == ["", "grafana"]
    assert made["token"] not in str(listed) and "sha256" not in str(listed)
    # More scopes than the caller has are refused; so are unknown ones.
    status, body = await call(stack, made["token"], "POST", "/api/v1/me/tokens", json={"scopes": ["incidents:write"]})
    assert status == 403 and body["error"]["details"] == {"path": "scopes[0]"}
    status, body = await call(stack, rita, "POST", "/api/v1/me/tokens", json={"scopes": ["root"]})
    assert status == 422

    # Last used: written on use, then at most once a minute.
    assert await stack.pool.fetchval("SELECT last_used_at FROM api_tokens WHERE id = $1", made["id"]) is not None
    await stack.pool.execute("UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = $1",
                             made["id"])
    before = await stack.pool.fetchval("SELECT last_used_at FROM api_tokens WHERE id = $1", made["id"])
    assert (await call(stack, made["token"], "GET", "/api/v1/me"))[0] == 200
    touched = await stack.pool.fetchval("SELECT last_used_at FROM api_tokens WHERE id = $1", made["id"])
    assert touched > before
    assert (await call(stack, made["token"], "GET", "/api/v1/me"))[0] == 200
    assert await stack.pool.fetchval("SELECT last_used_at FROM api_tokens WHERE id = $1", made["id"]) == touched

    # Someone else cannot revoke it; its owner can, and it stops working at once.
    async with stack.pool.acquire() as conn:
        olga = await create_token(conn, "olga", scopes=("admin",))
    assert (await call(stack, olga, "DELETE", f"/api/v1/me/tokens/{made['id']}"))[0] == 404
    assert (await call(stack, rita, "DELETE", f"/api/v1/me/tokens/{made['id']}"))[0] == 204
    assert (await call(stack, made["token"], "GET", "/api/v1/me"))[0] == 401
    assert (await call(stack, rita, "DELETE", f"/api/v1/me/tokens/{made['id']}"))[0] == 404


async def test_a_regenerated_route_token_replaces_the_old_one(stack):
    await stack.start(CONFIG, services=())
    async with stack.pool.acquire() as conn:
        olga = await create_token(conn, "olga", scopes=("config:write",))
    alert = {"title": "Queue backlog", "severity": "warning", "id": "q-1"}
    assert (await stack.post_alert("webhook", alert, ROUTE_TOKEN))[0] == 202
    status, body = await call(stack, olga, "POST", "/api/v1/routes/hook/token")
    assert status == 200 and body["route"] == "hook" and len(body["token"]) >= 24
    new = body["token"]

    async def old_refused() -> bool:
        return (await stack.post_alert("webhook", alert, ROUTE_TOKEN))[0] == 401
    await eventually(old_refused)
    assert (await stack.post_alert("webhook", alert, new))[0] == 202
    # Not kept anywhere in clear, and recorded.
    assert new not in await stack.pool.fetchval("SELECT document::text FROM api_config_revisions "
                                                "ORDER BY revision DESC LIMIT 1")

    async def audited():
        return await stack.pool.fetchrow("SELECT actor, target, team FROM api_audit "
                                         "WHERE action = 'route.token_regenerated'")
    row = await eventually(audited)
    assert (row["actor"], row["target"], row["team"]) == ("olga", "hook", "infra")


async def test_calendar_feeds_for_a_person_and_a_team(stack):
    await stack.start(CONFIG, services=())
    async with stack.pool.acquire() as conn:
        rita = await create_token(conn, "rita", scopes=("incidents:read",))
    status, mine = await call(stack, rita, "POST", "/api/v1/me/feeds", json={})
    assert status == 201 and mine["url"].startswith(f"{stack.url}/api/v1/calendar/tcf_")
    status, team = await call(stack, rita, "POST", "/api/v1/me/feeds", json={"team": "infra"})
    assert status == 201 and team["team"] == "infra"
    assert (await call(stack, rita, "POST", "/api/v1/me/feeds", json={"team": "nope"}))[0] == 404

    async with aiohttp.ClientSession() as calendar_app:   # no credentials but the URL
        async with calendar_app.get(mine["url"]) as resp:
            assert resp.status == 200 and resp.content_type == "text/calendar"
            cal = icalendar.Calendar.from_ical(await resp.read())
        events = list(cal.walk("VEVENT"))
        assert 45 <= len(events) <= 50   # every other day of 97
        assert all(str(e["summary"]) == "You on call: infra/primary" for e in events)
        async with calendar_app.get(team["url"]) as resp:
            team_events = list(icalendar.Calendar.from_ical(await resp.read()).walk("VEVENT"))
        assert {str(e["summary"]).split()[0] for e in team_events} == {"rita", "olga"}
        assert (await call(stack, rita, "DELETE", f"/api/v1/me/feeds/{mine['id']}"))[0] == 204
        async with calendar_app.get(mine["url"]) as resp:
            assert resp.status == 404
        async with calendar_app.get(mine["url"].replace("tcf_", "tcf_x")) as resp:
            assert resp.status == 404
    status, listed = await call(stack, rita, "GET", "/api/v1/me/feeds")
    assert [f["team"] for f in listed["items"]] == ["infra"] and "url" not in listed["items"][0]


def test_feed_shifts_keep_their_local_hand_off_time_across_a_clock_change():
    config = parse_config(CONFIG.replace("{members: [rita, olga], shift: 1d",
                                         "{members: [rita, olga], timezone: America/New_York, shift: 1d"))
    feed = calendar.build(Directory.build(config), user="rita", now=datetime(2027, 3, 1, tzinfo=UTC))
    cal = icalendar.Calendar.from_ical(feed)
    assert [tz["tzid"] for tz in cal.walk("VTIMEZONE")] == ["America/New_York"]
    starts = [e.decoded("dtstart") for e in cal.walk("VEVENT")]
    assert all(s.hour == 9 and str(s.tzinfo) == "America/New_York" for s in starts), starts
    # New York moves its clocks on 2027-03-14: the hand-off stays at 09:00 local, so it moves an hour in UTC.
    utc_hours = {s.astimezone(UTC).hour for s in starts}
    assert utc_hours == {14, 13}
    assert b"TZID=America/New_York" in feed


async def test_the_audit_trail_is_for_admins_and_filters_and_pages(stack):
    await stack.start(CONFIG, services=())
    async with stack.pool.acquire() as conn:
        root = await create_token(conn, "root", scopes=("admin",))
        rita = await create_token(conn, "rita", scopes=("incidents:read",))
    for name in ("a", "b", "c"):
        assert (await call(stack, rita, "POST", "/api/v1/me/tokens",
                           json={"name": name, "scopes": ["incidents:read"]}))[0] == 201

    async def three() -> list | None:
        status, body = await call(stack, root, "GET", "/api/v1/audit?action=token.&actor=rita")
        return body["items"] if status == 200 and len(body["items"]) == 3 else None
    items = await eventually(three)
    assert [i["details"]["name"] for i in items] == ["c", "b", "a"]   # newest first
    assert all(i["via"] == "token" and i["action"] == "token.created" for i in items)
    status, page = await call(stack, root, "GET", "/api/v1/audit?actor=rita&limit=2")
    assert status == 200 and len(page["items"]) == 2 and page["next_cursor"]
    status, rest = await call(stack, root, "GET", f"/api/v1/audit?actor=rita&limit=2&cursor={page['next_cursor']}")
    assert [i["details"]["name"] for i in rest["items"]] == ["a"] and rest["next_cursor"] is None
    status, body = await call(stack, root, "GET", "/api/v1/audit?action=config.applied")
    assert status == 200 and body["items"][0]["via"] == "file"
    assert (await call(stack, root, "GET", "/api/v1/audit?since=yesterday"))[0] == 422
    assert (await call(stack, root, "GET", "/api/v1/audit?cursor=abc"))[0] == 422
    assert (await call(stack, rita, "GET", "/api/v1/audit"))[0] == 403
