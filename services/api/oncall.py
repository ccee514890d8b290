"""Who is on call now, since when, until when, and who is next; and a rotation's shifts ahead.

A rotation belongs to a team, so its id is `<team>.<rotation>` (`infra.primary`). Names may contain dots
themselves; the id is split at the one dot where both halves name a team and one of its rotations.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
from aiohttp import web

from tocsin.api.context import Context
from tocsin.events.base import utcnow
from tocsin.events.directory import Directory
from tocsin.events.openapi import Endpoint, Param, Time, respond
from tocsin.events.web import ApiError

MAX_DAYS = 366
MAX_SHIFTS = 5000


class NextOnCall(msgspec.Struct, kw_only=True):
    user: str
    at: Time


class RotationNow(msgspec.Struct, kw_only=True):
    rotation: str
    user: str
    since: Time
    until: Time
    override: bool
    next: NextOnCall
    timezone: str


class TeamOnCall(msgspec.Struct, kw_only=True):
    team: str
    rotations: list[RotationNow]


class OnCall(msgspec.Struct, kw_only=True):
    at: Time
    teams: list[TeamOnCall]


class ShiftView(msgspec.Struct, kw_only=True):
    user: str
    start: Time
    end: Time
    override: bool


class Shifts(msgspec.Struct, kw_only=True):
    rotation: str            # the id: <team>.<rotation>
    team: str
    name: str
    timezone: str
    start: Time
    end: Time
    shifts: list[ShiftView]


async def oncall(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    # Every signed-in person sees every team's schedule: knowing whom to call in another team is the point
    # of a shared instance. Incidents, routes and channels stay per team (access.py).
    (await ctx.caller(request)).require("incidents:read")
    now = utcnow()
    directory = ctx.config.directory
    teams = []
    for tname, team in sorted(directory.config.teams.items()):
        rotations = []
        for rname in team.rotations:
            rotation = directory.rotation(tname, rname)
            current = rotation.shifts(now, now + timedelta(seconds=1))[0]
            # `shifts` clips to the window; ask again from a long way back to learn when this shift began.
            began = rotation.shifts(now - 2 * rotation.shift - timedelta(days=1), now + timedelta(seconds=1))[-1]
            nxt_user, nxt_at = rotation.next_on_call(now)
            rotations.append(RotationNow(
                rotation=rname, user=current.user, since=began.start, until=nxt_at, override=current.override,
                next=NextOnCall(user=nxt_user, at=nxt_at), timezone=rotation.timezone))
        teams.append(TeamOnCall(team=tname, rotations=rotations))
    return respond(OnCall(at=now, teams=teams))


def find_rotation(directory: Directory, rotation_id: str) -> tuple[str, str]:
    """(team, rotation) for an id `<team>.<rotation>`; 404 when no split names one."""
    teams = directory.config.teams
    parts = rotation_id.split(".")
    for i in range(1, len(parts)):
        team, name = ".".join(parts[:i]), ".".join(parts[i:])
        if team in teams and name in teams[team].rotations:
            return team, name
    raise ApiError(404, f"no rotation {rotation_id!r} (the id is <team>.<rotation>, e.g. infra.primary)")


def _window(request: web.Request) -> tuple[datetime, int]:
    q = request.query
    start = utcnow()
    if q.get("from"):
        try:
            start = datetime.fromisoformat(q["from"].replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(422, "from must be a date or an ISO 8601 time", details={"path": "from"}) from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)   # a bare date or time is UTC
    try:
        days = int(q.get("days", "90"))
    except ValueError:
        raise ApiError(422, "days must be a whole number", details={"path": "days"}) from None
    if not 1 <= days <= MAX_DAYS:
        raise ApiError(422, f"days must be between 1 and {MAX_DAYS}", details={"path": "days"})
    return start, days


async def shifts(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    (await ctx.caller(request)).require("incidents:read")
    directory = ctx.config.directory
    team, name = find_rotation(directory, request.match_info["rotation"])
    start, days = _window(request)
    rotation = directory.rotation(team, name)
    if timedelta(days=days) / rotation.shift > MAX_SHIFTS:
        raise ApiError(422, f"that window holds more than {MAX_SHIFTS} shifts of {rotation.shift}; ask fewer days",
                       details={"path": "days"})
    end = start + timedelta(days=days)
    return respond(Shifts(
        rotation=f"{team}.{name}", team=team, name=name, timezone=rotation.timezone, start=start, end=end,
        shifts=[ShiftView(user=s.user, start=s.start, end=s.end, override=s.override)
                for s in rotation.shifts(start, end)]))


ENDPOINTS = [
    Endpoint("GET", "/api/v1/oncall", oncall, "Who is on call now in every team and rotation",
             scope="incidents:read", team="every team (schedules are visible to every signed-in person)",
             responses={200: OnCall},
             tag="on call"),
    Endpoint("GET", "/api/v1/rotations/{rotation}/shifts", shifts, "A rotation's shifts, overrides applied",
             scope="incidents:read", team="path:rotation (<team>.<rotation>)", responses={200: Shifts},
             errors=(404, 422), tag="on call", params=(
                 Param("rotation", "path", description="<team>.<rotation>, e.g. infra.primary"),
                 Param("from", schema={"type": "string"}, description="a date or time (UTC); default now"),
                 Param("days", schema={"type": "integer", "minimum": 1, "maximum": MAX_DAYS, "default": 90}))),
]
