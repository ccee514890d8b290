"""Incident endpoints: list, detail with timeline and deliveries, and what people do to an incident."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime
from typing import Any

import msgspec
from aiohttp import web

from tocsin.api import audit
from tocsin.api.context import Context
from tocsin.events import incidents, timers
from tocsin.events.base import new_id, utcnow
from tocsin.events.incidents import IncidentState, InvalidTransition
from tocsin.events.web import ApiError, read_json_body

LIST_FIELDS = ("id", "number", "status", "title", "severity", "team", "route", "source", "created_at",
               "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "alert_count")
MAX_NOTE = 10_000


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def view(row: Any) -> dict[str, Any]:
    return {k: _iso(row[k]) for k in LIST_FIELDS}


def view_state(state: IncidentState) -> dict[str, Any]:
    return {k: _iso(getattr(state, k)) for k in LIST_FIELDS}


def _cursor(created_at: datetime, incident_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at.isoformat(), incident_id]).encode()).decode()


def _parse_cursor(text: str) -> tuple[datetime, str]:
    try:
        created, incident_id = json.loads(base64.urlsafe_b64decode(text.encode()))
        return datetime.fromisoformat(created), str(incident_id)
    except (ValueError, TypeError):
        raise ApiError(422, "invalid cursor", details={"path": "cursor"}) from None


async def list_incidents(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    caller.require("incidents:read")
    q = request.query
    status = q.get("status")
    if status is not None and status not in ("triggered", "acknowledged", "resolved"):
        raise ApiError(422, "status must be triggered, acknowledged or resolved", details={"path": "status"})
    try:
        limit = int(q.get("limit", "50"))
    except ValueError:
        raise ApiError(422, "limit must be a number", details={"path": "limit"}) from None
    if not 1 <= limit <= 500:
        raise ApiError(422, "limit must be between 1 and 500", details={"path": "limit"})
    where: list[str] = []
    args: list[Any] = []
    if status:
        args.append(status)
        where.append(f"status = ${len(args)}")
    if q.get("team"):
        args.append(q["team"])
        where.append(f"team = ${len(args)}")
    visible = caller.visible_teams()
    if visible is not None:   # only the teams the caller has a role in (access.py)
        args.append(sorted(visible))
        where.append(f"team = ANY(${len(args)}::text[])")
    if q.get("cursor"):
        created, cid = _parse_cursor(q["cursor"])
        args += [created, cid]
        where.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    sql = (f"SELECT * FROM api_incidents {'WHERE ' + ' AND '.join(where) if where else ''} "
           f"ORDER BY created_at DESC, id DESC LIMIT ${len(args)}")
    rows = await ctx.pool.fetch(sql, *args)
    items = [view(r) for r in rows[:limit]]
    next_cursor = _cursor(rows[limit - 1]["created_at"], rows[limit - 1]["id"]) if len(rows) > limit else None
    return web.json_response({"items": items, "next_cursor": next_cursor})


async def get_incident(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    caller.require("incidents:read")
    incident_id = request.match_info["id"]
    row = await ctx.pool.fetchrow("SELECT * FROM api_incidents WHERE id = $1", incident_id)
    if row is None or caller.team_role(row["team"]) is None:
        raise ApiError(404, "no such incident")
    events = await ctx.pool.fetch(
        "SELECT type, at, body FROM api_incident_events WHERE incident_id = $1 ORDER BY seq", incident_id)
    deliveries = await ctx.pool.fetch(
        "SELECT * FROM api_deliveries WHERE incident_id = $1 ORDER BY updated_at", incident_id)
    body = view(row)
    body["details"] = json.loads(row["state"]).get("details", "")
    body["timeline"] = [{"type": e["type"], "at": _iso(e["at"]), **_timeline_fields(e["body"])} for e in events]
    body["deliveries"] = [{
        "notification_id": d["notification_id"], "target": d["user_name"] or d["channel"],
        "channel": d["channel"], "channel_kind": d["channel_kind"], "status": d["status"],
        "attempts": d["attempts"], "provider_id": d["provider_id"], "error": d["error"],
        "updated_at": _iso(d["updated_at"])} for d in deliveries]
    return web.json_response(body)


def _timeline_fields(body: str) -> dict[str, Any]:
    data = json.loads(body)
    for key in ("type", "id", "aggregate_id", "traceparent", "at"):
        data.pop(key, None)
    return data


async def _read_note(request: web.Request, required: bool) -> str:
    raw = await read_json_body(request, 64 * 1024, any_type=True)
    if not raw.strip():
        if required:
            raise ApiError(422, "a note is required", details={"path": "note"})
        return ""
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise ApiError(422, "body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(422, "body must be a JSON object")
    note = body.get("note", "")
    if not isinstance(note, str):
        raise ApiError(422, "note must be a string", details={"path": "note"})
    if len(note) > MAX_NOTE:
        raise ApiError(422, f"note is longer than {MAX_NOTE} characters", details={"path": "note"})
    if required and not note.strip():
        raise ApiError(422, "a note is required", details={"path": "note"})
    return note


async def _execute(request: web.Request, command: incidents.Command) -> IncidentState:
    ctx = Context.of(request)
    incident_id = request.match_info["id"]
    try:
        state, _ = await ctx.repo.execute(incident_id, command, at=utcnow)
    except InvalidTransition as exc:
        if str(exc) == "no such incident":
            raise ApiError(404, "no such incident") from None
        raise ApiError(409, str(exc)) from None
    assert state is not None
    return state


ACTIONS = {"acknowledge": "incident.acknowledged", "resolve": "incident.resolved", "notes": "incident.noted",
           "escalate": "incident.escalated"}


async def act(request: web.Request) -> web.Response:
    """Act on an incident as the caller (never as anyone the body names): a responder of its team."""
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    caller.require("incidents:write")
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise ApiError(404, f"unknown action {action!r}")
    current, _ = await ctx.repo.load(request.match_info["id"], fresh=True)
    if current is None:
        raise ApiError(404, "no such incident")
    caller.require_team(current.team, "responder", "incidents:write", what="incident")
    note = await _read_note(request, required=action == "notes")
    state = await _act(request, caller.user, action, note)
    await audit.record(ctx.bus, caller, ACTIONS[action], target=state.id, team=state.team,
                       details={"number": state.number, "with_note": bool(note)})
    return web.json_response(view_state(state))


async def _act(request: web.Request, user: str, action: str, note: str) -> IncidentState:
    command: incidents.Command
    if action == "acknowledge":
        command = incidents.Acknowledge(by=user, via="api")
    elif action == "resolve":
        command = incidents.Resolve(by=user, via="api", reason=note)
    elif action == "notes":
        command = incidents.AddNote(by=user, note=note)
    else:
        state = await _escalate(request, user)
        if note:
            state = await _execute(request, incidents.AddNote(by=user, note=note))
        return state
    state = await _execute(request, command)
    if note and action != "notes":
        state = await _execute(request, incidents.AddNote(by=user, note=note))
    return state


async def _escalate(request: web.Request, user: str) -> IncidentState:
    """Ask the router to page the next step now, as if the step's wait had passed."""
    ctx = Context.of(request)
    incident_id = request.match_info["id"]
    state, _ = await ctx.repo.load(incident_id, fresh=True)
    if state is None:
        raise ApiError(404, "no such incident")
    if state.status == "resolved":
        raise ApiError(409, "incident is resolved")
    now = utcnow()
    fired = timers.TimerFired(id=new_id(), aggregate_id=incident_id, at=now, timer_id=new_id(), kind="escalate",
                              due_at=now, incident_id=incident_id, step=state.step, repeat=state.repeat, by=user)
    await ctx.bus.publish(timers.fired_subject(incident_id), fired)
    for _ in range(50):  # the router usually answers within milliseconds; show the escalated state
        await asyncio.sleep(0.05)
        new_state, _ = await ctx.repo.load(incident_id, fresh=True)
        if new_state is not None and new_state.version != state.version:
            return new_state
    return state


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/incidents", list_incidents)
    app.router.add_get("/api/v1/incidents/{id}", get_incident)
    app.router.add_post("/api/v1/incidents/{id}/{action}", act)
