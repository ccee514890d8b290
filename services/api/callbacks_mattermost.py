"""Mattermost answer path: the bot-mode buttons' integration URL, `POST /api/v1/callbacks/mattermost`.

The server posts `{user_id, user_name, channel_id, post_id, context, ...}`. `context.token` is our signed
button token naming the incident and the Tocsin channel; the post's Mattermost channel must be that
channel's `channel_id`. After acting, the answer `{"update": {"props": ...}}` makes the server redraw the post
with the new state and the buttons that still apply, and `ephemeral_text` tells the presser what happened.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tocsin.api.answers import AnswerRefused, act_as
from tocsin.api.chat_answers import MAX_CALLBACK_BODY, STATUS_WORDS, who_pressed
from tocsin.api.context import Context
from tocsin.events.chatbuttons import read_button_token
from tocsin.events.config import Config
from tocsin.events.incidents import IncidentState
from tocsin.events.openapi import Endpoint
from tocsin.events.signing import ACTIONS, BadSignature
from tocsin.events.web import ApiError, read_json_body

COLOURS = {"critical": "#d32f2f", "error": "#f57c00", "warning": "#fbc02d", "info": "#1976d2"}


async def action(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    try:
        body = json.loads(await read_json_body(request, MAX_CALLBACK_BODY))
    except ValueError:
        raise ApiError(400, "not JSON") from None
    context = body.get("context") if isinstance(body, dict) else None
    if not isinstance(context, dict) or context.get("action") not in ACTIONS:
        raise ApiError(400, "no Tocsin action in context")
    try:
        incident_id, channel = read_button_token(ctx.settings.secret_key, str(context.get("token", "")),
                                                 "mattermost")
    except BadSignature as exc:
        raise ApiError(403, f"this button is not valid ({exc})", code="bad_link") from None
    config = ctx.config.directory.config
    posted_in = str(destination(config, channel).get("channel_id", ""))
    if not posted_in or posted_in != str(body.get("channel_id", "")):
        raise ApiError(403, "this button was not posted in this channel", code="bad_link")
    who = who_pressed(config, "mattermost", str(body.get("user_id", "")), str(body.get("user_name", "")))
    try:
        state = await act_as(ctx, incident_id=incident_id, user=who, action=str(context["action"]),
                             via="mattermost")
    except AnswerRefused as exc:
        return web.json_response({"ephemeral_text": f"Not changed: {exc}"})
    # The public URL, not the one this request came in on (a proxy in front of the API sees another).
    props = {"attachments": [updated_attachment(state, f"{ctx.settings.public_url}/incidents/{state.id}", context,
                                                f"{ctx.settings.public_url}/api/v1/callbacks/mattermost")]}
    return web.json_response({"update": {"message": "", "props": props},
                              "ephemeral_text": f"#{state.number} is now {state.status}"})


def destination(config: Config, name: str) -> dict[str, Any]:
    """The config of a shared channel, or of a person's contact (`<user>/<contact>`), by the name a
    notification carries."""
    user, _, contact = name.partition("/")
    if contact:
        found = config.users.get(user)
        return found.contacts.get(contact, {}) if found else {}
    return config.channels.get(name, {})


def updated_attachment(state: IncidentState, link: str, context: dict[str, Any], url: str) -> dict[str, Any]:
    by = state.resolved_by if state.status == "resolved" else state.acknowledged_by
    status = f"{STATUS_WORDS.get(state.status, state.status)} by {by}" if by else state.status
    item: dict[str, Any] = {
        "fallback": f"#{state.number} {state.title}: {status}",
        "color": "#388e3c" if state.status == "resolved" else COLOURS.get(state.severity, "#757575"),
        "title": f"#{state.number} [{state.severity.upper()}] {state.title}", "title_link": link,
        "text": state.details[:7000],
        "fields": [{"short": True, "title": "Severity", "value": state.severity},
                   {"short": True, "title": "Status", "value": status}],
    }
    if state.status == "acknowledged":
        item["actions"] = [{"id": "resolve", "name": "Resolve", "type": "button", "style": "danger",
                            "integration": {"url": url, "context": {**context, "action": "resolve"}}}]
    return item


ENDPOINTS = [
    Endpoint("POST", "/api/v1/callbacks/mattermost", action, "Mattermost: an interactive button press",
             request_required=False, responses={200: None}, errors=(400, 401, 403, 413), tag="callbacks"),
]
