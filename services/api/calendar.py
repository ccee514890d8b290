"""`GET /api/v1/calendar/{feed-token}.ics`: a person's or a team's shifts as an iCalendar feed.

The feed token is the only credential (calendar apps cannot sign in); it is made by `POST /api/v1/me/feeds`,
stored as a hash, and revocable. The feed covers the past 7 days and the next 90, from the same rotation
math the router pages by, overrides applied. Each shift is written in its rotation's time zone with the
VTIMEZONE it needs, so a calendar shows hand-offs at the local time the team agreed on, across clock changes.
A person's feed follows them: shifts in teams they have since left are not in it; a team feed stops (404)
when its maker no longer has a role in the team.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
from aiohttp import web

from tocsin.api import access, users
from tocsin.api.context import Context
from tocsin.events.base import utcnow
from tocsin.events.config import hash_token
from tocsin.events.directory import Directory
from tocsin.events.openapi import Endpoint
from tocsin.events.schedule import Shift
from tocsin.events.web import ApiError

PAST = timedelta(days=7)
AHEAD = timedelta(days=90)


def _merged(shifts: list[Shift]) -> list[Shift]:
    """Join pieces that are one stretch for the person (an override by whoever was on call anyway)."""
    out: list[Shift] = []
    for s in shifts:
        if out and out[-1].user == s.user and out[-1].end == s.start:
            out[-1] = Shift(s.user, out[-1].start, s.end, out[-1].override or s.override)
        else:
            out.append(s)
    return out


def build(directory: Directory, *, user: str = "", team: str = "", now: datetime | None = None) -> bytes:
    """The feed for one person (`user`) or one team (`team`)."""
    now = now or utcnow()
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Tocsin//on-call shifts//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", f"On call: {team or user}")
    for (tname, rname), rotation in sorted(directory.rotations().items()):
        if team and tname != team:
            continue
        zone = ZoneInfo(rotation.timezone)
        # Whole shifts: from the hand-off before the window to the one after it, so none is cut short.
        start = rotation.handoff(rotation.index_at(now - PAST))
        for shift in _merged(rotation.shifts(start, rotation.next_handoff(now + AHEAD))):
            if user and shift.user != user:
                continue
            event = icalendar.Event()
            uid = hashlib.sha256(f"{tname}/{rname}/{shift.user}/{shift.start.isoformat()}".encode()).hexdigest()
            event.add("uid", f"{uid[:32]}@tocsin")
            event.add("dtstamp", now)
            event.add("dtstart", shift.start.astimezone(zone))
            event.add("dtend", shift.end.astimezone(zone))
            who = shift.user if team else "You"
            event.add("summary", f"{who} on call: {tname}/{rname}" + (" (override)" if shift.override else ""))
            event.add("categories", ["on-call"])
            cal.add_component(event)
    cal.add_missing_timezones()
    return cal.to_ical()


async def feed(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    token = request.match_info["token"]
    row = await ctx.pool.fetchrow(
        "SELECT user_name, team FROM api_feeds WHERE token_sha256 = $1 AND revoked_at IS NULL", hash_token(token))
    directory = ctx.config.directory
    if row is None or await users.find(ctx.pool, directory.config, row["user_name"]) is None:
        raise ApiError(404, "no such feed")
    if row["team"]:
        person = await access.caller_for(ctx.pool, directory.config, row["user_name"])
        if person is None or person.team_role(row["team"]) is None or row["team"] not in directory.config.teams:
            raise ApiError(404, "no such feed")
        body = build(directory, team=row["team"])
    else:
        body = build(directory, user=row["user_name"])
    return web.Response(body=body, content_type="text/calendar", charset="utf-8",
                        headers={"Cache-Control": "private, max-age=300", "Referrer-Policy": "no-referrer"})


ENDPOINTS = [
    Endpoint("GET", "/api/v1/calendar/{token}.ics", feed, "An iCalendar feed of shifts (the URL is the secret)",
             content="text/calendar", errors=(404,), tag="on call"),
]
