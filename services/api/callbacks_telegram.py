"""Telegram answer path: the bot's webhook, `POST /api/v1/callbacks/telegram`.

Telegram sends every update with the `secret_token` given to `setWebhook` in
`X-Telegram-Bot-Api-Secret-Token`; ours is derived from the installation key
(`tocsin.events.chatbuttons.telegram_webhook_secret`) and never shown: an admin calls
`POST /api/v1/callbacks/telegram/setup`, and the API makes the `setWebhook` call itself.

A `callback_query` from an Acknowledge/Resolve button is checked (its data is signed for the chat it was
pressed in), acted on as the presser (`chat_answers`), then answered (`answerCallbackQuery`, which stops the
button's spinner) and the message edited to show the new state, keeping a Resolve button while the incident
is only acknowledged. Other updates are ignored.
"""

from __future__ import annotations

import hmac
import html
import json
from typing import Any

from aiohttp import web

from tocsin.api.answers import AnswerRefused, act_as
from tocsin.api.chat_answers import MAX_CALLBACK_BODY, STATUS_WORDS, as_dict, call_out, who_pressed
from tocsin.api.context import Context
from tocsin.events.chatbuttons import read_telegram_callback_data, telegram_callback_data, telegram_webhook_secret
from tocsin.events.incidents import IncidentState
from tocsin.events.openapi import Endpoint
from tocsin.events.signing import BadSignature
from tocsin.events.web import ApiError, read_json_body

API = "https://api.telegram.org"
STATUS_MARK = "\n\n— "   # the line the edit appends; a later edit replaces it
MAX_TEXT = 4096


async def update(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not hmac.compare_digest(given.encode(), telegram_webhook_secret(ctx.settings.secret_key).encode()):
        raise ApiError(401, "missing or wrong X-Telegram-Bot-Api-Secret-Token", code="bad_signature")
    try:
        body = json.loads(await read_json_body(request, MAX_CALLBACK_BODY))
    except ValueError:
        raise ApiError(400, "not JSON") from None
    query = body.get("callback_query") if isinstance(body, dict) else None
    if not isinstance(query, dict):
        return web.json_response({})   # messages, joins, ...: nothing to do
    config = ctx.config.directory.config
    bot = Bot(ctx.provider("telegram"))
    if not bot.token:
        raise ApiError(409, "providers.telegram.bot_token is not set")
    message = as_dict(query.get("message"))
    chat_id = str((message.get("chat") or {}).get("id", ""))
    try:
        action, incident_id = read_telegram_callback_data(ctx.settings.secret_key, str(query.get("data", "")),
                                                          chat_id)
    except BadSignature as exc:
        await bot.call("answerCallbackQuery", {"callback_query_id": query.get("id"),
                                               "text": f"This button is not valid ({exc})."})
        return web.json_response({})
    sender = as_dict(query.get("from"))
    who = who_pressed(config, "telegram", str(sender.get("id", "")), str(sender.get("username", "")))
    try:
        state = await act_as(ctx, incident_id=incident_id, user=who, action=action, via="telegram")
    except AnswerRefused as exc:
        await bot.call("answerCallbackQuery", {"callback_query_id": query.get("id"), "text": f"Not changed: {exc}"})
        return web.json_response({})
    await bot.call("answerCallbackQuery", {"callback_query_id": query.get("id"),
                                           "text": f"#{state.number} {state.status}"})
    edit: dict[str, Any] = {"chat_id": chat_id, "message_id": message.get("message_id"), "parse_mode": "HTML",
                            "text": edited_text(str(message.get("text", "")), state),
                            "link_preview_options": {"is_disabled": True}}
    if state.status == "acknowledged":
        edit["reply_markup"] = {"inline_keyboard": [[{"text": "Resolve", "callback_data": telegram_callback_data(
            ctx.settings.secret_key, action="resolve", incident_id=state.id, chat_id=chat_id)}]]}
    await bot.call("editMessageText", edit)
    return web.json_response({})


async def setup(request: web.Request) -> web.Response:
    """Point the bot's webhook here (admins): `setWebhook` with our URL and secret, button presses only."""
    ctx = Context.of(request)
    (await ctx.caller(request)).require("config:write")
    bot = Bot(ctx.provider("telegram"))
    if not bot.token:
        raise ApiError(409, "providers.telegram.bot_token is not set")
    url = f"{ctx.settings.public_url}/api/v1/callbacks/telegram"
    status = await bot.call("setWebhook", {"url": url, "secret_token": telegram_webhook_secret(
        ctx.settings.secret_key), "allowed_updates": ["callback_query"]})
    if status != 200:
        raise ApiError(502, f"Telegram refused setWebhook (HTTP {status or 'unreachable'})")
    return web.json_response({"url": url, "allowed_updates": ["callback_query"]})


ENDPOINTS = [
    Endpoint("POST", "/api/v1/callbacks/telegram", update, "Telegram: a bot update (inline button presses)",
             request_required=False, responses={200: None}, errors=(400, 401, 409, 413, 415), tag="callbacks"),
    Endpoint("POST", "/api/v1/callbacks/telegram/setup", setup, "Point the Telegram bot's webhook at Tocsin",
             scope="config:write", request_required=False, responses={200: None}, errors=(401, 403, 409, 502),
             tag="callbacks"),
]


def edited_text(original: str, state: IncidentState) -> str:
    """The message as sent (Telegram gives it back as plain text), with one line for the current state."""
    by = state.resolved_by if state.status == "resolved" else state.acknowledged_by
    line = f"{STATUS_WORDS.get(state.status, state.status)} by {by}" if by else state.status
    room = MAX_TEXT - len(STATUS_MARK) - len(line.encode("utf-16-le")) // 2
    # Telegram counts UTF-16 units; cutting the encoded text at a unit boundary and dropping a half pair
    # keeps the edit within its limit.
    kept = original.split(STATUS_MARK)[0].encode("utf-16-le")[: 2 * max(0, room)].decode("utf-16-le", "ignore")
    return f"{html.escape(kept)}{STATUS_MARK}<b>{html.escape(line)}</b>"


class Bot:
    def __init__(self, provider: dict[str, Any]) -> None:
        self.token = str(provider.get("bot_token", ""))
        self.base_url = str(provider.get("base_url", API)).rstrip("/")

    async def call(self, method: str, body: dict[str, Any]) -> int:
        return await call_out(f"{self.base_url}/bot{self.token}/{method}", body, f"Telegram {method}")
