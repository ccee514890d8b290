"""Silences through the API: create, list, expire. They behave exactly like the config's `silences:`.

Each is published on the SILENCES stream (`silences.<id>`); the router merges them with the config's,
and the scheduler brings an incident's page forward when its silence is expired early. Times are ISO
8601: with an offset (`Z`, `+01:00`) that instant, without one the local wall-clock time in the config's
`timezone`, as in tocsin.yaml.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec
from aiohttp import web

from tocsin.api.auth import Caller
from tocsin.api.context import Context
from tocsin.events import silences
from tocsin.events.base import new_id, utcnow
from tocsin.events.bus import ConcurrencyConflict
from tocsin.events.config import _check_matchers
from tocsin.events.openapi import Endpoint, Param
from tocsin.events.silences import Silence, SilenceCreated, SilenceExpired
from tocsin.events.web import ApiError, read_json_body

MAX_BODY = 64 * 1024
MAX_COMMENT = 1000
MAX_MATCHERS = 32
MAX_LENGTH = timedelta(days=366)
FIELDS = ("matchers", "starts", "ends", "comment")

# Who may do what, in one place (team-scoped rules can tighten it here).
SCOPE = {"create": "incidents:write", "expire": "incidents:write", "list": "incidents:read"}


async def _allowed(request: web.Request, action: str) -> Caller:
    caller = await Context.of(request).caller(request)
    if action == "list":
        caller.require(SCOPE[action])
    else:
        # A silence matches labels across every route, so it can quiet any team's pages: administrators
        # only, until silences are scoped to a team (access.py).
        caller.require_admin(SCOPE[action])
    return caller


def view(silence: Silence, now: datetime) -> dict[str, Any]:
    state = "expired" if silence.ends <= now else "active" if silence.starts <= now else "pending"
    return {"id": silence.id, "matchers": silence.matchers, "starts": silence.starts.isoformat(),
            "ends": silence.ends.isoformat(), "comment": silence.comment, "created_by": silence.created_by,
            "expired_by": silence.expired_by or None, "state": state}


def _invalid(path: str, message: str) -> ApiError:
    return ApiError(422, f"{path}: {message}" if path else message, details={"path": path})


def parse_request(body: Any, zone: str, now: datetime) -> tuple[dict[str, str], datetime, datetime, str]:
    """Check a create request as the config checks a silence; raise 422 with the path of the first problem."""
    if not isinstance(body, dict):
        raise _invalid("", "body must be a JSON object")
    for key in body:
        if key not in FIELDS:
            raise _invalid(str(key), f"unknown field (one of {', '.join(FIELDS)})")
    matchers = body.get("matchers")
    if not isinstance(matchers, dict) or not matchers:
        raise _invalid("matchers", "a silence needs at least one matcher, as {\"label\": \"value\"}")
    if len(matchers) > MAX_MATCHERS:
        raise _invalid("matchers", f"at most {MAX_MATCHERS} matchers")
    for label, value in matchers.items():
        if not isinstance(value, str) or not label:
            raise _invalid(f"matchers.{label}", "a matcher is text such as \"prod\", \"!=dev\" or \"=~web-.*\"")
    errors: list[tuple[str, str]] = []
    _check_matchers(matchers, "matchers", errors)
    if errors:
        raise _invalid(*errors[0])
    times: dict[str, datetime] = {}
    for key in ("starts", "ends"):
        value = body.get(key)
        if value is None and key == "starts":
            times[key] = now
            continue
        if not isinstance(value, str):
            raise _invalid(key, "an ISO 8601 time such as 2026-12-01T22:00 (config zone) or ...T22:00+01:00")
        try:
            times[key] = silences.parse_time(value, zone)
        except ValueError:
            raise _invalid(key, f"not a date-time: {value!r}") from None
    starts, ends = times["starts"], times["ends"]
    if ends <= starts:
        raise _invalid("ends", "must be after starts")
    if ends <= now:
        raise _invalid("ends", "is already past")
    if ends - starts > MAX_LENGTH:
        raise _invalid("ends", "a silence lasts at most 366 days")
    comment = body.get("comment", "")
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise _invalid("comment", f"text of at most {MAX_COMMENT} characters")
    return {str(k): v for k, v in matchers.items()}, starts, ends, comment


async def create_silence(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    caller = await _allowed(request, "create")
    raw = await read_json_body(request, MAX_BODY)
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise ApiError(422, "body is not valid JSON") from None
    now = utcnow()
    matchers, starts, ends, comment = parse_request(body, ctx.config.directory.config.timezone, now)
    silence = Silence(id=new_id(), matchers=matchers, starts=starts, ends=ends, comment=comment,
                      created_by=caller.user)
    await ctx.bus.publish(silences.subject(silence.id), SilenceCreated(
        id=silence.id, aggregate_id=silence.id, version=1, at=now, silence=silence), expected_last_subject_seq=0)
    return web.json_response(view(silence, now), status=201)


async def all_silences(ctx: Context) -> list[Silence]:
    out = []
    for _, data in await ctx.bus.read_subject(silences.STREAM, f"{silences.SUBJECT_PREFIX}.>"):
        try:
            out.append(silences.decoder.decode(data).silence)
        except msgspec.DecodeError:
            continue
    return out


async def list_silences(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    await _allowed(request, "list")
    state = request.query.get("state")
    if state is not None and state not in ("active", "pending", "expired"):
        raise ApiError(422, "state must be active, pending or expired", details={"path": "state"})
    now = utcnow()
    items = [view(s, now) for s in sorted(await all_silences(ctx), key=lambda s: (s.starts, s.id), reverse=True)]
    return web.json_response({"items": [i for i in items if state is None or i["state"] == state]})


async def expire_silence(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    caller = await _allowed(request, "expire")
    silence_id = request.match_info["id"]
    last = await ctx.bus.last_on_subject(silences.STREAM, silences.subject(silence_id)) \
        if _plain(silence_id) else None
    if last is None:
        raise ApiError(404, "no such silence")
    seq, data = last
    current = silences.decoder.decode(data)
    now = utcnow()
    if current.silence.ends <= now:
        raise ApiError(409, "the silence has already ended")
    # A silence that had not started yet ends before it begins: [now, now) covers nothing.
    ended = msgspec.structs.replace(current.silence, starts=min(current.silence.starts, now), ends=now,
                                    expired_by=caller.user)
    try:
        await ctx.bus.publish(silences.subject(silence_id), SilenceExpired(
            id=new_id(), aggregate_id=silence_id, version=current.version + 1, at=now, silence=ended),
            expected_last_subject_seq=seq)
    except ConcurrencyConflict:
        raise ApiError(409, "the silence changed meanwhile; try again") from None
    return web.json_response(view(ended, now))


def _plain(silence_id: str) -> bool:
    """An id is one subject token: never let a path smuggle `*`, `>` or `.` into a subject."""
    return bool(silence_id) and len(silence_id) <= 64 and all(c.isalnum() or c == "-" for c in silence_id)


class SilenceRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Times are ISO 8601: with an offset that instant, without one local time in the config's zone."""

    matchers: dict[str, str]
    starts: str
    ends: str
    comment: str = ""


class SilenceView(msgspec.Struct, kw_only=True):
    id: str
    matchers: dict[str, str]
    starts: str
    ends: str
    comment: str
    created_by: str
    expired_by: str | None
    state: Literal["active", "pending", "expired"]


class SilenceList(msgspec.Struct, kw_only=True):
    items: list[SilenceView]


_ID = Param("id", "path", required=True, description="the silence id")
ENDPOINTS = [
    Endpoint("POST", "/api/v1/silences", create_silence, "Silence alerts that match, for a time window",
             scope=SCOPE["create"], request=SilenceRequest, responses={201: SilenceView}, errors=(413, 415, 422),
             tag="silences"),
    Endpoint("GET", "/api/v1/silences", list_silences, "Silences made through the API", scope=SCOPE["list"],
             responses={200: SilenceList}, errors=(422,), tag="silences",
             params=(Param("state", schema={"enum": ["active", "pending", "expired"]}),)),
    Endpoint("DELETE", "/api/v1/silences/{id}", expire_silence, "End a silence now", scope=SCOPE["expire"],
             responses={200: SilenceView}, errors=(404, 409), params=(_ID,), tag="silences"),
]
