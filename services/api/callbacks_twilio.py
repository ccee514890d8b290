"""Answers by phone: an SMS reply (`ACK 42`, `RES 42`) and a key press during a voice call (4 or 6).

Both doors take only requests that carry a valid `X-Twilio-Signature` for the account's auth token and the
URL Twilio was told to call (`TOCSIN_PUBLIC_URL` + the path), and whose `AccountSid` is ours.

- SMS: the sender is the `From` number, which Twilio vouches for; it must be the phone (or an sms/voice
  contact number) of exactly one person, who is the one acting. The body only chooses the incident and the
  action, so nobody can answer as someone else through it.
- Voice: the Gather's action URL holds a signed action token naming the person called; the key press acts
  as that person. Any key other than 4 or 6 repeats the prompt.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from aiohttp import web
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from tocsin.api.answers import AnswerRefused, act_as, incident_by_number
from tocsin.api.context import Context
from tocsin.events.config import Config
from tocsin.events.openapi import Endpoint, Param
from tocsin.events.signing import BadSignature, read_action_token
from tocsin.events.voice import KEYS, prompt_twiml
from tocsin.events.web import ApiError, read_json_body

MAX_FORM = 16 * 1024
# ACK 42, ack #42, Acknowledge 42, RES 42, resolve 42 (case does not matter).
REPLY = re.compile(r"^\s*(ack|acknowledge|res|resolve)\s*#?\s*(\d{1,9})\s*[.!]?\s*$", re.IGNORECASE)
HELP = "Reply ACK 42 to acknowledge or RES 42 to resolve incident #42."


def _twiml(xml: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=xml, content_type="text/xml", charset="utf-8")


def _reply(text: str) -> web.Response:
    response = MessagingResponse()
    response.message(text)
    return _twiml(str(response))


async def verified_form(request: web.Request) -> dict[str, str]:
    """The form Twilio posted, after checking its signature and account; 403 for anything else."""
    ctx = Context.of(request)
    twilio = ctx.provider("twilio")
    if not twilio.get("auth_token") or not twilio.get("account_sid"):
        raise ApiError(404, "Twilio answers are not set up (providers.twilio)", code="not_configured")
    if request.content_type != "application/x-www-form-urlencoded":
        raise ApiError(415, "Twilio posts application/x-www-form-urlencoded")
    body = await read_json_body(request, MAX_FORM, any_type=True)
    try:
        form = dict(parse_qsl(body.decode(), keep_blank_values=True))
    except UnicodeDecodeError:
        raise ApiError(400, "unreadable form") from None
    url = ctx.settings.public_url + request.path_qs
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not RequestValidator(str(twilio["auth_token"])).validate(url, form, signature):
        raise ApiError(403, "missing or wrong X-Twilio-Signature", code="bad_signature")
    if form.get("AccountSid") != twilio["account_sid"]:
        raise ApiError(403, "not this installation's Twilio account", code="bad_signature")
    return form


def people_with_number(config: Config, number: str) -> list[str]:
    """Who a phone number belongs to: a user's own phone, or the number of one of their sms/voice contacts."""
    found = []
    for name, user in config.users.items():
        numbers = {user.phone}
        for contact in user.contacts.values():
            if contact.get("type") in ("sms", "voice") and contact.get("to"):
                to = contact["to"]
                numbers.update(map(str, to) if isinstance(to, list) else [str(to)])
        if number and number in numbers:
            found.append(name)
    return found


async def sms_reply(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    form = await verified_form(request)
    people = people_with_number(ctx.config.directory.config, form.get("From", ""))
    if not people:
        return _reply("This number is not known to Tocsin, so nothing was changed.")
    if len(people) > 1:
        return _reply("This number belongs to more than one person in Tocsin, so nothing was changed. "
                      "Use the link in the page instead.")
    m = REPLY.match(form.get("Body", ""))
    if not m:
        return _reply(f"Not understood. {HELP}")
    action = "acknowledge" if m.group(1).lower().startswith("ack") else "resolve"
    number = int(m.group(2))
    incident_id = await incident_by_number(ctx, number)
    if incident_id is None:
        return _reply(f"There is no incident #{number}; nothing was changed.")
    try:
        state = await act_as(ctx, incident_id=incident_id, user=people[0], action=action, via="sms")
    except AnswerRefused as exc:
        return _reply(f"#{number} was not changed: {exc}.")
    by = (state.resolved_by if state.status == "resolved" else state.acknowledged_by) or people[0]
    return _reply(f"#{number} {state.status} by {by}: {state.title}"[:1600])


async def voice_key(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    form = await verified_form(request)
    try:
        incident_id, user, _ = read_action_token(ctx.settings.secret_key, request.match_info["token"])
    except BadSignature as exc:
        raise ApiError(403, f"this call's answer link is not valid ({exc})", code="bad_link") from None
    action = KEYS.get(form.get("Digits", ""))
    if action is None:
        state, _ = await ctx.repo.load(incident_id, fresh=True)
        spoken = ("That key does nothing." if state is None
                  else f"That key does nothing. Incident {state.number}: {state.title}.")
        return _twiml(prompt_twiml(spoken, ctx.settings.public_url + request.path_qs))
    response = VoiceResponse()
    try:
        state = await act_as(ctx, incident_id=incident_id, user=user, action=action, via="voice")
    except AnswerRefused as exc:
        response.say(f"Nothing was changed: {exc}. Goodbye.")
    else:
        response.say(f"Incident {state.number} is now {state.status}. Goodbye.")
    return _twiml(str(response))


ENDPOINTS = [
    Endpoint("POST", "/api/v1/callbacks/twilio/sms", sms_reply, "Twilio: an SMS reply (ACK 42, RES 42)",
             request_content="application/x-www-form-urlencoded", request_required=False, content="text/xml",
             responses={200: None}, errors=(403, 413, 415), tag="callbacks"),
    Endpoint("POST", "/api/v1/callbacks/twilio/voice/{token}", voice_key, "Twilio: a key pressed during a page call",
             request_content="application/x-www-form-urlencoded", request_required=False, content="text/xml",
             responses={200: None}, errors=(403, 413, 415), tag="callbacks",
             params=(Param("token", "path", required=True, description="the signed token of the call"),)),
]
