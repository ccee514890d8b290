"""Slack answer path: the Slack app's interactivity Request URL, `POST /api/v1/callbacks/slack`.

Slack signs every request: `X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, "v0:<timestamp>:<body>")>`
with `X-Slack-Request-Timestamp`; a request older (or newer) than five minutes is refused as a replay.
The form field `payload` is then a `block_actions` payload: the pressed button's `value` is our signed button
token, `user` is who pressed it. After acting, the message is replaced through the payload's
`response_url` with the state and the buttons that still apply.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

from tocsin.api.answers import AnswerRefused, act_as
from tocsin.api.chat_answers import MAX_CALLBACK_BODY, STATUS_WORDS, as_dict, call_out, who_pressed
from tocsin.api.context import Context
from tocsin.events.chatbuttons import read_button_token
from tocsin.events.incidents import IncidentState
from tocsin.events.openapi import Endpoint
from tocsin.events.signing import BadSignature
from tocsin.events.web import ApiError, read_json_body

REPLAY_WINDOW = 300
ACTIONS = {"tocsin_acknowledge": "acknowledge", "tocsin_resolve": "resolve"}


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    return "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()


def verified_body(request: web.Request, secret: str, body: bytes, now: float) -> None:
    timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
    if not timestamp.isdigit() or abs(now - int(timestamp)) > REPLAY_WINDOW:
        raise ApiError(401, "missing or stale X-Slack-Request-Timestamp", code="bad_signature")
    given = request.headers.get("X-Slack-Signature", "")
    if not hmac.compare_digest(given.encode(), slack_signature(secret, timestamp, body).encode()):
        raise ApiError(401, "bad X-Slack-Signature", code="bad_signature")


async def interaction(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    config = ctx.config.directory.config
    secret = str(ctx.provider("slack").get("signing_secret", ""))
    if not secret:
        raise ApiError(404, "Slack answers are not set up (providers.slack.signing_secret)")
    body = await read_json_body(request, MAX_CALLBACK_BODY, any_type=True)
    verified_body(request, secret, body, time.time())
    try:
        payload = as_dict(json.loads(parse_qs(body.decode()).get("payload", [""])[0]))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "no payload form field with JSON") from None
    actions = payload.get("actions")
    pressed = as_dict(actions[0]) if isinstance(actions, list) and actions else {}
    action = ACTIONS.get(str(pressed.get("action_id", "")))
    if payload.get("type") != "block_actions" or action is None:
        return web.Response(status=200)   # the Open incident button, or another kind of interaction
    try:
        incident_id, _channel = read_button_token(ctx.settings.secret_key, str(pressed.get("value", "")), "slack")
    except BadSignature as exc:
        raise ApiError(403, f"this button is not valid ({exc})", code="bad_link") from None
    user = as_dict(payload.get("user"))
    who = who_pressed(config, "slack", str(user.get("id", "")), str(user.get("username", "")))
    try:
        state = await act_as(ctx, incident_id=incident_id, user=who, action=action, via="slack")
    except AnswerRefused as exc:
        # Slack ignores the body of this answer: only a response_url message reaches the presser.
        await reply(payload, {"response_type": "ephemeral", "replace_original": False, "text": f"Not changed: {exc}"})
        return web.Response(status=200)
    message = as_dict(payload.get("message"))
    await reply(payload, {"replace_original": True, "text": str(message.get("text", "")),
                          "blocks": updated_blocks(message.get("blocks") or [], state)})
    return web.Response(status=200)


async def reply(payload: dict[str, Any], body: dict[str, Any]) -> None:
    response_url = str(payload.get("response_url", ""))
    if response_url.startswith(("https://", "http://")):
        await call_out(response_url, body, "Slack response_url")


def updated_blocks(blocks: list[Any], state: IncidentState) -> list[Any]:
    """The message's blocks as Slack sent them back, with a line for the state and only the buttons that
    still apply (Resolve while acknowledged; none once resolved, but the link)."""
    by = state.resolved_by if state.status == "resolved" else state.acknowledged_by
    line = f"*{STATUS_WORDS.get(state.status, state.status)}* by {_escape(by or '?')}"
    kept = [b for b in blocks if isinstance(b, dict) and b.get("block_id") not in ("tocsin_actions", "tocsin_state")]
    out = [*kept, {"type": "context", "block_id": "tocsin_state", "elements": [{"type": "mrkdwn", "text": line}]}]
    wanted = {"tocsin_open"} | ({"tocsin_resolve"} if state.status == "acknowledged" else set())
    for block in blocks:
        if isinstance(block, dict) and block.get("block_id") == "tocsin_actions":
            elements = [e for e in block.get("elements", []) if as_dict(e).get("action_id") in wanted]
            if elements:
                out.append({**block, "elements": elements})
    return out


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


ENDPOINTS = [
    Endpoint("POST", "/api/v1/callbacks/slack", interaction, "Slack: an interactivity payload (button presses)",
             request_content="application/x-www-form-urlencoded", request_required=False,
             responses={200: None}, errors=(400, 401, 404, 413), tag="callbacks"),
]
