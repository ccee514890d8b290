"""Test messages through one shared channel or one of your own contacts, and the Web Push public key.

A test goes to the notifier as an ordinary notification command (message kind `test`, no incident) and the
answer waits up to TEST_WAIT for the outcome the notifier records, exactly as a team's test page does
(notices.send): `{"result": "delivered" | "failed: <why>" | "pending"}`; `pending` means no outcome within
the wait (the message may still arrive).
"""

from __future__ import annotations

from datetime import timedelta

import msgspec
from aiohttp import web

from tocsin.api.access import can_see_channel, channel_teams
from tocsin.api.context import Context
from tocsin.api.notices import command, send
from tocsin.events.config import DELIVERABLE_KINDS
from tocsin.events.openapi import Endpoint, Param, respond
from tocsin.events.vapid import VapidKeyError, load_vapid_key, vapid_public_key
from tocsin.events.web import ApiError

TEST_WAIT = timedelta(seconds=10)


class Outcome(msgspec.Struct, kw_only=True):
    """`delivered`, `failed: <why>`, or `pending` (no outcome within 10 s)."""

    result: str


class PushKey(msgspec.Struct, kw_only=True):
    """The VAPID public key, base64url, as `pushManager.subscribe({applicationServerKey})` takes it."""

    public_key: str


async def _one(ctx: Context, kind: str, name: str, dest: dict[str, str], *, user: str, title: str) -> Outcome:
    if kind not in DELIVERABLE_KINDS:
        return Outcome(result=f"failed: {kind} delivery is not available in this version")
    results = await send(ctx, [command(kind, name, dest, user=user, kind_of="test", title=title,
                                       body="If you can read this, this way of reaching you works.")],
                         {}, TEST_WAIT)
    return Outcome(result=results[name])


async def test_channel(request: web.Request) -> web.Response:
    """Administrators, and owners of a team that uses the channel (access.channel_teams): a channel only
    other teams use is invisible (404), one the caller's team uses with a lower role is 403."""
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    caller.require("config:write")
    name = request.match_info["channel"]
    config = ctx.config.directory.config
    if name not in config.channels or not can_see_channel(caller, config, name):
        raise ApiError(404, f"no channel {name!r}")
    if not (caller.is_admin or any(caller.can(t, "owner") for t in channel_teams(config, name))):
        raise ApiError(403, f"only an administrator or an owner of a team that uses channel {name!r} may test it")
    found = ctx.config.directory.channel(name)
    assert found is not None   # in config.channels, checked above
    outcome = await _one(ctx, found[0], name, found[1], user="",
                         title=f"Channel {name}, tested by {caller.user}")
    return respond(outcome)


async def test_my_contact(request: web.Request) -> web.Response:
    """One of the caller's own contacts (nobody else's: an unknown name is 404)."""
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    caller.require("config:read")
    name = request.match_info["contact"]
    found = ctx.config.directory.contact(caller.user, name)
    if found is None:
        raise ApiError(404, f"you have no contact {name!r}")
    outcome = await _one(ctx, found[0], f"{caller.user}/{name}", found[1], user=caller.user,
                         title=f"Contact {caller.user}/{name}")
    return respond(outcome)


async def webpush_key(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    caller.require("config:read")
    private = str(ctx.provider("webpush").get("vapid_private_key") or "")
    if not private:
        raise ApiError(404, "Web Push is not configured on this server (providers.webpush.vapid_private_key)")
    try:
        key = load_vapid_key(private)
    except VapidKeyError as exc:   # the config refuses such a key; say so without quoting it
        raise ApiError(500, f"providers.webpush.vapid_private_key: {exc}") from None
    return respond(PushKey(public_key=vapid_public_key(key)))


ENDPOINTS = [
    Endpoint("POST", "/api/v1/channels/{channel}/test", test_channel,
             "A test message through a shared channel, with its outcome (waits up to 10 s)",
             scope="config:write", team="teams that use the channel", responses={200: Outcome},
             errors=(403, 404), params=(Param("channel", "path"),), tag="notices"),
    Endpoint("POST", "/api/v1/me/contacts/{contact}/test", test_my_contact,
             "A test message to one of your own contacts, with its outcome (waits up to 10 s)",
             scope="config:read", responses={200: Outcome}, errors=(404,), params=(Param("contact", "path"),),
             tag="notices"),
    Endpoint("GET", "/api/v1/webpush/key", webpush_key,
             "The Web Push (VAPID) public key browsers subscribe with", scope="config:read",
             responses={200: PushKey}, errors=(404,), tag="notices"),
]
