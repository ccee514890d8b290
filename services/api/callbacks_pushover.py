"""Pushover's emergency-receipt callback: the person acknowledged the page in the Pushover app.

An emergency page (priority 2) names `callback = <public url>/api/v1/callbacks/pushover/<signed token>`.
Pushover's callback is not signed, so this door trusts nothing in the body on its word:

1. the signed action token in the path names the incident and the person paged (who acts);
2. the posted `receipt` must be the one Pushover gave for that very notification (the delivery record);
3. Pushover's receipt API (`GET /1/receipts/<receipt>.json?token=<app token>`) must say it was acknowledged.

Only then is the incident acknowledged, as that person. A callback for a receipt that is not acknowledged,
or for someone else's receipt, changes nothing.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web

from tocsin.api.answers import AnswerRefused, act_as
from tocsin.api.context import Context
from tocsin.events.openapi import Endpoint, Param
from tocsin.events.signing import BadSignature, read_action_token
from tocsin.events.web import ApiError, read_json_body

MAX_FORM = 8 * 1024
RECEIPT = re.compile(r"^[A-Za-z0-9]{1,64}$")


async def receipt_acknowledged(base_url: str, app_token: str, receipt: str) -> bool:
    url = f"{base_url.rstrip('/')}/1/receipts/{receipt}.json"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session, \
                session.get(url, params={"token": app_token}, allow_redirects=False) as resp:
            if resp.status >= 500 or resp.status == 429:
                raise ApiError(502, f"Pushover's receipt API answered {resp.status}; try again")
            answer = await resp.json(content_type=None) if resp.status == 200 else {}
    except (aiohttp.ClientError, TimeoutError, ValueError):
        raise ApiError(502, "Pushover's receipt API could not be asked; try again") from None
    return isinstance(answer, dict) and answer.get("status") == 1 and answer.get("acknowledged") == 1


async def pushover_acknowledged(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    try:
        incident_id, user, notification_id = read_action_token(ctx.settings.secret_key,
                                                               request.match_info["token"])
    except BadSignature as exc:
        raise ApiError(403, f"this callback link is not valid ({exc})", code="bad_link") from None
    pushover = ctx.provider("pushover")
    if not pushover.get("token"):
        raise ApiError(404, "Pushover answers are not set up (providers.pushover)", code="not_configured")
    body = await read_json_body(request, MAX_FORM, any_type=True)
    form = dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
    receipt = form.get("receipt", "")
    if not RECEIPT.match(receipt):
        raise ApiError(422, "a receipt is required", details={"path": "receipt"})
    sent = await ctx.pool.fetchval("SELECT provider_id FROM api_deliveries WHERE notification_id = $1",
                                   notification_id)
    if sent is not None and sent != receipt:
        raise ApiError(403, "this receipt is not the one of this notification", code="wrong_receipt")
    base_url = str(pushover.get("base_url") or "https://api.pushover.net")
    if not await receipt_acknowledged(base_url, str(pushover["token"]), receipt):
        raise ApiError(409, "Pushover does not report this receipt as acknowledged", code="not_acknowledged")
    try:
        state = await act_as(ctx, incident_id=incident_id, user=user, action="acknowledge", via="pushover")
    except AnswerRefused as exc:
        raise ApiError(409, str(exc)) from None
    return web.json_response({"id": state.id, "number": state.number, "status": state.status})


ENDPOINTS = [
    Endpoint("POST", "/api/v1/callbacks/pushover/{token}", pushover_acknowledged,
             "Pushover: an emergency notification was acknowledged",
             request_content="application/x-www-form-urlencoded", request_required=False,
             responses={200: None}, errors=(403, 409, 413), tag="callbacks",
             params=(Param("token", "path", required=True, description="the signed token of the page"),)),
]
