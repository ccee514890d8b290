"""Incident endpoints: list, detail with timeline and deliveries, manual incidents, and what people do to
an incident."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from aiohttp import web

from tocsin.api import audit
from tocsin.api.context import Context
from tocsin.events import alerts, incidents, timers
from tocsin.events.base import new_id, stable_id, utcnow
from tocsin.events.incidents import IncidentState, InvalidTransition
from tocsin.events.openapi import Endpoint, Param, Time, decode_body, respond
from tocsin.events.web import ApiError, limit_param, read_json_body

LIST_FIELDS = ("id", "number", "status", "title", "severity", "team", "route", "source", "created_at",
               "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "alert_count")
MAX_NOTE = 10_000
STATUSES = ("triggered", "acknowledged", "resolved")
SEVERITIES = ("critical", "error", "warning", "info")
Status = Literal["triggered", "acknowledged", "resolved"]
Severity = Literal["critical", "error", "warning", "info"]


class IncidentSummary(msgspec.Struct, kw_only=True):
    id: str
    number: int
    status: Status
    title: str
    severity: str
    team: str
    route: str
    source: str
    created_at: Time
    acknowledged_at: Time | None
    acknowledged_by: str | None
    resolved_at: Time | None
    resolved_by: str | None
    alert_count: int


class IncidentPage(msgspec.Struct, kw_only=True):
    items: list[IncidentSummary]
    next_cursor: str | None


class DeliveryView(msgspec.Struct, kw_only=True):
    notification_id: str
    target: str
    channel: str
    channel_kind: str
    status: Literal["retrying", "delivered", "failed"]
    attempts: int
    provider_id: str
    error: str
    updated_at: Time


class IncidentDetail(IncidentSummary, kw_only=True):
    details: str
    timeline: list[dict[str, Any]]     # every incident event: `type`, `at`, `version` and its own fields
    deliveries: list[DeliveryView]


class NoteBody(msgspec.Struct, kw_only=True):
    note: Annotated[str, msgspec.Meta(max_length=MAX_NOTE)] = ""


class NoteRequired(msgspec.Struct, kw_only=True):
    note: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NOTE)]


class ManualIncident(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A person opens an incident: it is routed and pages like an alert of the team."""

    team: str
    title: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    severity: Severity = "critical"
    details: Annotated[str, msgspec.Meta(max_length=MAX_NOTE)] = ""


class ManualAccepted(msgspec.Struct, kw_only=True):
    """The alert is on the bus but the router has not opened the incident yet."""

    alert_id: str
    incident_id: str


def view(row: Any) -> IncidentSummary:
    return IncidentSummary(**{k: row[k] for k in LIST_FIELDS})


def view_state(state: IncidentState) -> IncidentSummary:
    return IncidentSummary(**{k: getattr(state, k) for k in LIST_FIELDS})


def _cursor(created_at: datetime, incident_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at.isoformat(), incident_id]).encode()).decode()


def _parse_cursor(text: str) -> tuple[datetime, str]:
    try:
        created, incident_id = json.loads(base64.urlsafe_b64decode(text.encode()))
        value = datetime.fromisoformat(created)
        if value.tzinfo is None:
            raise ValueError("naive")
        return value, str(incident_id)
    except (ValueError, TypeError):
        raise ApiError(422, "invalid cursor", details={"path": "cursor"}) from None


def _time(q: Any, name: str) -> datetime | None:
    text = q.get(name)
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, f"{name} must be an ISO 8601 time such as 2026-11-27T09:00:00Z",
                       details={"path": name}) from None
    if value.tzinfo is None:
        raise ApiError(422, f"{name} needs a UTC offset (Z or +01:00)", details={"path": name})
    return value


async def list_incidents(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    caller.require("incidents:read")
    q = request.query
    status = q.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError(422, "status must be triggered, acknowledged or resolved", details={"path": "status"})
    severity = q.get("severity")
    if severity is not None and severity not in SEVERITIES:
        raise ApiError(422, f"severity must be one of {', '.join(SEVERITIES)}", details={"path": "severity"})
    limit = limit_param(q)
    where: list[str] = []
    args: list[Any] = []

    def condition(sql: str, value: Any) -> None:
        args.append(value)
        where.append(sql.replace("$?", f"${len(args)}"))

    for name, value in (("status", status), ("severity", severity), ("team", q.get("team")),
                        ("route", q.get("route"))):
        if value:
            condition(f"{name} = $?", value)
    since, until = _time(q, "since"), _time(q, "until")
    if since is not None:
        condition("created_at >= $?", since)
    if until is not None:
        condition("created_at < $?", until)
    visible = caller.visible_teams()
    if visible is not None:   # only the teams the caller has a role in (access.py)
        condition("team = ANY($?::text[])", sorted(visible))
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
    return respond(IncidentPage(items=items, next_cursor=next_cursor))


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
    summary = msgspec.structs.asdict(view(row))
    return respond(IncidentDetail(
        **summary, details=json.loads(row["state"]).get("details", ""),
        timeline=[{"type": e["type"], "at": e["at"], **_timeline_fields(e["body"])} for e in events],
        deliveries=[DeliveryView(
            notification_id=d["notification_id"], target=d["user_name"] or d["channel"], channel=d["channel"],
            channel_kind=d["channel_kind"], status=d["status"], attempts=d["attempts"],
            provider_id=d["provider_id"], error=d["error"], updated_at=d["updated_at"]) for d in deliveries]))


async def open_incident(request: web.Request) -> web.Response:
    """A manual incident goes in as an alert of the team's own manual route, so the router opens it and
    pages exactly as it would for a monitoring tool's alert (escalation, silences, channels)."""
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    caller.require("incidents:write")
    body: ManualIncident = decode_body(await read_json_body(request, 64 * 1024), ManualIncident)
    if body.team not in ctx.config.directory.config.teams or caller.team_role(body.team) is None:
        raise ApiError(422, f'unknown team "{body.team}"', details={"path": "team"})
    if not caller.can(body.team, "responder"):
        raise ApiError(403, f"this needs the responder role in team {body.team!r}")
    route = alerts.manual_route(body.team)
    alert_id = new_id()
    alert = alerts.AlertReceived(
        id=alert_id, aggregate_id=alert_id, at=utcnow(), source="manual", route=route, dedup_key=new_id(),
        status="firing", severity=body.severity, title=body.title, details=body.details,
        labels={"opened_by": caller.user},
        raw=msgspec.Raw(msgspec.json.encode(body)))
    await ctx.bus.publish(alerts.subject(route), alert)
    incident_id = stable_id("incident", alert.id)   # the id the router gives the incident this alert opens
    await audit.record(ctx.bus, caller, "incident.opened", target=incident_id, team=body.team,
                       details={"title": body.title, "severity": body.severity})
    for _ in range(100):
        state, _ = await ctx.repo.load(incident_id, fresh=True)
        if state is not None:
            return respond(view_state(state), status=201, headers={"Location": f"/api/v1/incidents/{state.id}"})
        await asyncio.sleep(0.05)
    return respond(ManualAccepted(alert_id=alert.id, incident_id=incident_id), status=202)


def _timeline_fields(body: str) -> dict[str, Any]:
    data = json.loads(body)
    for key in ("type", "id", "aggregate_id", "traceparent", "at"):
        data.pop(key, None)
    return data  # type: ignore[no-any-return]


async def _read_note(request: web.Request, required: bool) -> str:
    raw = await read_json_body(request, 64 * 1024, any_type=True)
    if not raw.strip():
        if required:
            raise ApiError(422, "a note is required", details={"path": "note"})
        return ""
    note = decode_body(raw, NoteBody).note
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


AUDITED = {"acknowledge": "incident.acknowledged", "resolve": "incident.resolved", "notes": "incident.noted",
           "escalate": "incident.escalated"}


async def act(request: web.Request, action: str) -> web.Response:
    """Act on an incident as the caller (never as anyone the body names): a responder of its team."""
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    caller.require("incidents:write")
    current, _ = await ctx.repo.load(request.match_info["id"], fresh=True)
    if current is None:
        raise ApiError(404, "no such incident")
    caller.require_team(current.team, "responder", "incidents:write", what="incident")
    note = await _read_note(request, required=action == "notes")
    state = await _act(request, caller.user, action, note)
    await audit.record(ctx.bus, caller, AUDITED[action], target=state.id, team=state.team,
                       details={"number": state.number, "with_note": bool(note)})
    return respond(view_state(state))


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


async def acknowledge(request: web.Request) -> web.Response:
    return await act(request, "acknowledge")


async def resolve(request: web.Request) -> web.Response:
    return await act(request, "resolve")


async def escalate(request: web.Request) -> web.Response:
    return await act(request, "escalate")


async def add_note(request: web.Request) -> web.Response:
    return await act(request, "notes")


_ID = Param("id", "path", description="the incident id")
_FILTERS = (
    Param("status", schema={"enum": list(STATUSES)}), Param("team"), Param("route"),
    Param("severity", schema={"enum": list(SEVERITIES)}),
    Param("since", schema={"type": "string", "format": "date-time"}, description="created at or after"),
    Param("until", schema={"type": "string", "format": "date-time"}, description="created before"),
    Param("limit", schema={"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
    Param("cursor", description="`next_cursor` of the previous page"))
_ACTIONS = (("acknowledge", acknowledge, "Acknowledge: stop the escalation"),
            ("resolve", resolve, "Resolve (a note becomes the reason)"),
            ("escalate", escalate, "Page the next step now"),
            ("notes", add_note, "Add a note (required)"))

ENDPOINTS = [
    Endpoint("GET", "/api/v1/incidents", list_incidents, "List incidents, newest first", scope="incidents:read",
             team="query:team (filtered to the caller's teams)", responses={200: IncidentPage}, params=_FILTERS,
             tag="incidents"),
    Endpoint("POST", "/api/v1/incidents", open_incident, "Open a manual incident; it pages like an alert",
             scope="incidents:write", team="body:team", request=ManualIncident,
             responses={201: IncidentSummary, 202: ManualAccepted}, tag="incidents"),
    Endpoint("GET", "/api/v1/incidents/{id}", get_incident, "An incident with its timeline and deliveries",
             scope="incidents:read", team="incident", responses={200: IncidentDetail}, errors=(404,),
             params=(_ID,), tag="incidents"),
    *(Endpoint("POST", f"/api/v1/incidents/{{id}}/{name}", handler, summary, scope="incidents:write",
               team="incident", request=NoteRequired if name == "notes" else NoteBody,
               request_required=name == "notes", responses={200: IncidentSummary},
               errors=(404, 409, 413, 422), params=(_ID,), tag="incidents")
      for name, handler, summary in _ACTIONS),
]
