"""Answers from channels: a person acknowledges or resolves an incident from where the page reached them.

Every answer acts as the person the page was sent to, named inside a signed token (or, for provider
callbacks, by the provider's own verified signature), never by anything else in the request body.

This module holds what every answer path shares (`act_as`, `incident_by_number`) and the signed-link door,
`/api/v1/answer/{token}`: a GET shows a small confirm page whose button POSTs, so a mail scanner or a link
preview that follows the link cannot acknowledge; a POST (`?action=acknowledge|resolve`) acts, which is what
ntfy and Web Push action buttons do. Provider callbacks (chat buttons, SMS replies, voice key presses) live
in their own modules and call `act_as`.
"""

from __future__ import annotations

import html
from typing import Literal

from aiohttp import web

from tocsin.api import audit
from tocsin.api.context import Context
from tocsin.events import incidents
from tocsin.events.base import utcnow
from tocsin.events.incidents import IncidentState, InvalidTransition
from tocsin.events.openapi import Endpoint, Param
from tocsin.events.signing import ACTIONS, BadSignature, read_action_token
from tocsin.events.web import ApiError

Action = Literal["acknowledge", "resolve"]
MAX_FORM = 4096


class AnswerRefused(Exception):
    """The incident cannot take this answer (resolved already, unknown); the message says why, for people."""


async def act_as(ctx: Context, *, incident_id: str, user: str, action: str, via: str) -> IncidentState:
    """Acknowledge or resolve as `user`, through `via` (the channel kind). Acknowledging an incident that
    is already acknowledged is not an error for someone answering a page: it answers with the state."""
    if action not in ACTIONS:
        raise AnswerRefused(f"unknown action {action!r}")
    command: incidents.Command = (incidents.Acknowledge(by=user, via=via) if action == "acknowledge"
                                  else incidents.Resolve(by=user, via=via))
    try:
        state, _ = await ctx.repo.execute(incident_id, command, at=utcnow)
    except InvalidTransition as exc:
        current, _ = await ctx.repo.load(incident_id, fresh=True)
        if current is None:
            raise AnswerRefused("no such incident") from None
        if (action == "acknowledge" and current.status == "acknowledged") or (
                action == "resolve" and current.status == "resolved"):
            return current
        raise AnswerRefused(str(exc)) from None
    assert state is not None
    await audit.record(ctx.bus, user, f"incident.{action}d", target=state.id, team=state.team, via=via,
                       details={"number": state.number})
    return state


async def incident_by_number(ctx: Context, number: int) -> str | None:
    """The id of incident #number (from the read model), or None."""
    value = await ctx.pool.fetchval("SELECT id FROM api_incidents WHERE number = $1", number)
    return str(value) if value is not None else None


def _page(title: str, body: str, status: int = 200) -> web.Response:
    doc = (f"<!doctype html><html lang=en><head><meta charset=utf-8>"
           f"<meta name=viewport content='width=device-width,initial-scale=1'><title>{html.escape(title)}</title>"
           "<style>body{font:17px system-ui,sans-serif;max-width:34em;margin:2em auto;padding:0 1em}"
           "button{font-size:1.1em;padding:.6em 1.2em;margin:.3em .3em 0 0}</style></head>"
           f"<body><h1>{html.escape(title)}</h1>{body}</body></html>")
    return web.Response(status=status, text=doc, content_type="text/html",
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                                 "X-Frame-Options": "DENY"})


def _token(request: web.Request) -> tuple[str, str, str]:
    try:
        return read_action_token(Context.of(request).settings.secret_key, request.match_info["token"])
    except BadSignature as exc:
        raise ApiError(403, f"this link is not valid ({exc})", code="bad_link") from None


async def confirm_page(request: web.Request) -> web.Response:
    """GET: show what the link is for and buttons that POST; following the link changes nothing."""
    ctx = Context.of(request)
    incident_id, user, _ = _token(request)
    state, _ = await ctx.repo.load(incident_id, fresh=True)
    if state is None:
        return _page("Unknown incident", "<p>This incident does not exist (any more).</p>", 404)
    chosen = request.query.get("action", "")
    actions = [chosen] if chosen in ACTIONS else list(ACTIONS)
    if state.status == "acknowledged":
        actions = [a for a in actions if a != "acknowledge"] or ["resolve"]
    buttons = "" if state.status == "resolved" else "".join(
        f"<form method=post action='?action={a}' style='display:inline'>"
        f"<button type=submit>{a.capitalize()}</button></form>" for a in actions)
    number = f"#{state.number} " if state.number else ""
    return _page(f"{number}{state.title}",
                 f"<p>Status: <b>{html.escape(state.status)}</b> · severity {html.escape(state.severity)}</p>"
                 f"<p>You are answering as <b>{html.escape(user)}</b>.</p>{buttons}")


async def answer(request: web.Request) -> web.Response:
    """POST: act. Answers JSON to a client that asks for it (push action buttons), else a page."""
    ctx = Context.of(request)
    incident_id, user, _ = _token(request)
    if request.content_length and request.content_length > MAX_FORM:
        raise ApiError(413, "body too large")
    action = request.query.get("action", "")
    if action not in ACTIONS:
        raise ApiError(422, "action must be acknowledge or resolve", details={"path": "action"})
    try:
        state = await act_as(ctx, incident_id=incident_id, user=user, action=action, via="link")
    except AnswerRefused as exc:
        if "json" in request.headers.get("Accept", ""):
            raise ApiError(409, str(exc)) from None
        return _page("Not changed", f"<p>{html.escape(str(exc))}</p>", 409)
    if "json" in request.headers.get("Accept", ""):
        return web.json_response({"id": state.id, "number": state.number, "status": state.status})
    return _page(f"#{state.number} {state.status}", f"<p>{html.escape(state.title)} is now "
                 f"<b>{html.escape(state.status)}</b> (by {html.escape(user)}).</p>")


_TOKEN = Param("token", "path", description="the signed token of the page's link")
ENDPOINTS = [
    Endpoint("GET", "/api/v1/answer/{token}", confirm_page, "The confirm page of a signed answer link",
             content="text/html", responses={200: None}, errors=(403, 404), params=(_TOKEN,), tag="answers"),
    Endpoint("POST", "/api/v1/answer/{token}", answer, "Acknowledge or resolve as the person paged",
             content="text/html", responses={200: None}, errors=(403, 409, 413, 422), tag="answers",
             params=(_TOKEN, Param("action", schema={"enum": list(ACTIONS)}, required=True))),
]
