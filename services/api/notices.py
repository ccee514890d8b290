"""Messages that are not incidents: a test page to whoever is on call, and a notice to a host's channels.

Both go to the notifier as ordinary notification commands; with `?wait=10s` the answer waits (up to
that long) for each delivery's outcome as the notifier records it, so a script learns at once whether the
page or notice arrived: `{"results": {"ops-mail": "delivered", "signal-oncall": "failed: ..."}}`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Annotated

import msgspec
from aiohttp import web

from tocsin.api.context import Context
from tocsin.events import notify
from tocsin.events.base import new_id, utcnow
from tocsin.events.config import DELIVERABLE_KINDS, is_secret
from tocsin.events.directory import Directory
from tocsin.events.durations import parse_duration
from tocsin.events.notify import NotificationRequested
from tocsin.events.openapi import Endpoint, Param, decode_body, respond
from tocsin.events.web import ApiError, read_json_body

MAX_WAIT = timedelta(seconds=30)
PENDING = "pending"


class Notice(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    message: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


class Sent(msgspec.Struct, kw_only=True):
    """Per channel (a shared channel's name, or `user/contact`): `delivered`, `failed: <why>`, or
    `pending` (not known within the wait, or no wait asked)."""

    results: dict[str, str]
    users: list[str] = []


def _wait(request: web.Request) -> timedelta:
    text = request.query.get("wait", "")
    if not text:
        return timedelta()
    try:
        wait = parse_duration(text)
    except ValueError:
        raise ApiError(422, "wait is a duration such as 10s", details={"path": "wait"}) from None
    if wait > MAX_WAIT:
        raise ApiError(422, f"wait is at most {int(MAX_WAIT.total_seconds())}s", details={"path": "wait"})
    return wait


def _public(dest: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in dest.items() if not is_secret(k, dest)}


async def send(ctx: Context, commands: list[NotificationRequested], results: dict[str, str],
                wait: timedelta) -> dict[str, str]:
    """Publish, then (with a wait) follow the deliveries read model until each has an outcome. Also the
    channel and contact tests' way (send_tests.py)."""
    if commands:
        await ctx.bus.publish_many([(notify.subject(c.channel_kind), c) for c in commands])
    ids = {c.id: c.channel for c in commands}
    results.update({channel: PENDING for channel in ids.values()})
    deadline = time.monotonic() + wait.total_seconds()
    while ids and time.monotonic() < deadline:
        rows = await ctx.pool.fetch("SELECT notification_id, status, error FROM api_deliveries "
                                    "WHERE notification_id = ANY($1) AND status IN ('delivered', 'failed')",
                                    list(ids))
        for row in rows:
            channel = ids.pop(row["notification_id"])
            results[channel] = "delivered" if row["status"] == "delivered" else f"failed: {row['error']}"
        if ids:
            await asyncio.sleep(0.1)
    return results


def command(kind: str, channel: str, dest: dict[str, str], *, user: str = "", kind_of: notify.MessageKind,
             title: str, body: str = "") -> NotificationRequested:
    return NotificationRequested(id=new_id(), at=utcnow(), channel_kind=kind, channel=channel, user=user,
                                 destination=_public(dest), message_kind=kind_of, title=title, body=body,
                                 severity="info", status="")


def first_step(directory: Directory, team: str) -> tuple[list[str], list[str]]:
    """Who and which channels the team's first escalation step reaches now: (users, channels)."""
    config = directory.config
    users: list[str] = []
    channels: list[str] = []
    steps = config.teams[team].escalation.steps
    for target in steps[0].notify if steps else []:
        kind, _, ref = target.partition(":")
        if kind == "rotation" and ref in config.teams[team].rotations:
            users.append(directory.on_call(team, ref, utcnow()))
        elif kind == "user":
            users.append(ref)
        elif kind == "team" and ref in config.teams:
            users += config.teams[ref].members
        elif kind == "channel":
            channels.append(ref)
    return list(dict.fromkeys(users)), list(dict.fromkeys(channels))


async def test_alert(request: web.Request) -> web.Response:
    """A test page through the contacts a real page would use first (each person's immediate rules)
    and the first step's channels. No incident is opened."""
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    caller.require("incidents:write")
    directory = ctx.config.directory
    team = request.match_info["team"]
    if team not in directory.config.teams or caller.team_role(team) is None:
        raise ApiError(404, f"no team {team!r}")
    caller.require_team(team, "responder", "incidents:write", what="team")
    wait = _wait(request)
    users, channels = first_step(directory, team)
    title = f"Test page for {team}, sent by {caller.user}"
    commands, results = [], {}
    for user in users:
        for step in directory.contact_plan(user):
            if step.after:
                continue
            name = f"{user}/{step.contact}"
            if step.kind not in DELIVERABLE_KINDS:
                results[name] = f"failed: {step.kind} delivery is not available in this version"
                continue
            commands.append(command(step.kind, name, step.destination, user=user, kind_of="test", title=title))
    for name in channels:
        found = directory.channel(name)
        if found is not None and found[0] in DELIVERABLE_KINDS:
            commands.append(command(found[0], name, found[1], kind_of="test", title=title))
        elif found is not None:
            results[name] = f"failed: {found[0]} delivery is not available in this version"
    if not commands and not results:
        raise ApiError(409, f"team {team!r} has nobody and nothing to page in its first escalation step")
    return respond(Sent(results=await send(ctx, commands, results, wait), users=users))


async def notify_host(request: web.Request) -> web.Response:
    """A notice about a host to the host's channels, else the default channels."""
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    caller.require("alerts:write")
    host = request.match_info["host"]
    notice: Notice = decode_body(await read_json_body(request, 16 * 1024), Notice)
    wait = _wait(request)
    directory = ctx.config.directory
    config = directory.config
    team = config.hosts.get(host, {}).get("team")
    # A host is its team's (a host with no team, an administrator's): others see no such host.
    if host not in config.hosts or not (caller.is_admin or (isinstance(team, str) and caller.can(team, "responder"))):
        raise ApiError(404, f"no host {host!r} (hosts are configured under hosts:)")
    names = config.hosts[host].get("channels") or config.default_channels
    if not names:
        raise ApiError(409, f"host {host!r} has no channels and there are no default_channels")
    commands, results = [], {}
    title = f"{host}: {notice.message.splitlines()[0][:200]}"
    for name in names:
        found = directory.channel(name)
        if found is None:
            results[name] = "failed: unknown channel"
        elif found[0] not in DELIVERABLE_KINDS:
            results[name] = f"failed: {found[0]} delivery is not available in this version"
        else:
            commands.append(command(found[0], name, found[1], kind_of="notice", title=title, body=notice.message))
    return respond(Sent(results=await send(ctx, commands, results, wait)), status=200)


_WAIT = Param("wait", schema={"type": "string", "pattern": "^([0-9]+[smh])+$"},
              description="wait up to this long (at most 30s) for each delivery's outcome, e.g. 10s")

ENDPOINTS = [
    Endpoint("POST", "/api/v1/teams/{team}/test-alert", test_alert, "A test page to whoever is on call now",
             scope="incidents:write", team="path:team", responses={200: Sent}, errors=(404, 409, 422),
             params=(Param("team", "path"), _WAIT), tag="notices"),
    Endpoint("POST", "/api/v1/hosts/{host}/notify", notify_host, "A notice (not an incident) to a host's channels",
             scope="alerts:write", team="host's team", request=Notice, responses={200: Sent},
             errors=(404, 409, 422), params=(Param("host", "path"), _WAIT), tag="notices"),
]
