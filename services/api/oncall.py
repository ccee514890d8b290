"""Who is on call now, since when, until when, and who is next, for every team and rotation."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from tocsin.api.context import Context
from tocsin.events.base import utcnow


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
            rotations.append({
                "rotation": rname, "user": current.user, "since": began.start.isoformat(),
                "until": nxt_at.isoformat(), "override": current.override,
                "next": {"user": nxt_user, "at": nxt_at.isoformat()},
                "timezone": rotation.timezone,
            })
        teams.append({"team": tname, "rotations": rotations})
    return web.json_response({"at": now.isoformat(), "teams": teams})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/oncall", oncall)
