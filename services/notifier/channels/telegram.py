"""Telegram: Bot API `sendMessage` in HTML parse mode, with inline Acknowledge/Resolve buttons.

A button's `callback_data` (64 bytes at most) is the compact signed form from `tocsin.events.chatbuttons`;
pressing it reaches the API's Telegram webhook (`tocsin.api.callbacks_telegram`), which acts and edits the
message. The incident's resolution edits the message it was paged with (`editMessageText`), if it can.
Telegram counts its 4,096-character limit after entity parsing, in UTF-16 code units, so the text is cut
before it is escaped.
"""

from __future__ import annotations

import hashlib
import html
import json
from typing import Any, ClassVar

import aiohttp

from tocsin.events.chatbuttons import telegram_callback_data
from tocsin.events.notify import NotificationRequested
from tocsin.notifier.channels.base import Channel, DeliveryResult, Target, classify_status, subject_line
from tocsin.notifier.channels.chat import answerable, clip_utf16
from tocsin.notifier.policies import TELEGRAM_PER_BOT, TELEGRAM_PER_CHAT, RateLimit

API = "https://api.telegram.org"
MAX_TEXT = 4096


def message_html(message: NotificationRequested) -> str:
    """Bold subject, the details, the incident link (never cut), and who resolved it, on a resolution."""
    subject = clip_utf16(subject_line(message), 512)
    link = message.link
    by = clip_utf16(f"{message.status.capitalize()} by {message.by}", 200) if message.by else ""
    room = MAX_TEXT - _units(subject) - _units(link) - _units(by) - 3
    details = clip_utf16(message.body, max(0, room)) if message.body else ""
    parts = [f"<b>{_escape(subject)}</b>", _escape(details), _escape(link), _escape(by)]
    return "\n".join(p for p in parts if p)


def _escape(text: str) -> str:
    # Telegram's HTML mode knows &lt; &gt; &amp; &quot;; nothing else needs escaping.
    return html.escape(text, quote=True)


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class TelegramChannel(Channel):
    kind: ClassVar[str] = "telegram"
    supports_ack_buttons: ClassVar[bool] = True
    supports_status_updates: ClassVar[bool] = True   # edited on a button press and on the resolution
    rate_limit: ClassVar[RateLimit | None] = TELEGRAM_PER_CHAT
    provider_rate_limit: ClassVar[RateLimit | None] = TELEGRAM_PER_BOT

    def provider_key(self, target: Target) -> str:
        # Per bot; the token names the bot, and a digest keeps it out of memory dumps and logs.
        return "telegram:" + hashlib.sha256(target.get("bot_token").encode()).hexdigest()[:16]

    def endpoint(self, target: Target) -> str:
        return target.get("base_url", API)

    async def send(self, message: NotificationRequested, target: Target) -> DeliveryResult:
        token, chat_id = target.get("bot_token"), target.get("chat_id")
        if not token:
            return DeliveryResult("permanent", error="providers.telegram.bot_token is not set")
        if target.get("update_id"):
            edited = await self._edit(message, target)
            if edited is not None:
                return edited
        body: dict[str, Any] = {"chat_id": chat_id, "text": message_html(message), "parse_mode": "HTML",
                                "link_preview_options": {"is_disabled": True}}
        keyboard = self.keyboard(message, chat_id)
        if keyboard:
            body["reply_markup"] = {"inline_keyboard": keyboard}
        url = f"{self.endpoint(target).rstrip('/')}/bot{token}/sendMessage"
        async with self.session.post(url, json=body, allow_redirects=False) as resp:
            return await telegram_result(resp, chat_id)

    async def _edit(self, message: NotificationRequested, target: Target) -> DeliveryResult | None:
        """Edit the incident's earlier message (a resolution: new text, no buttons). None when Telegram
        cannot (deleted, too old), so a new message is sent instead."""
        chat_id, _, message_id = target.get("update_id").rpartition(":")
        body: dict[str, Any] = {"chat_id": chat_id, "message_id": int(message_id) if message_id.isdigit() else 0,
                                "text": message_html(message), "parse_mode": "HTML",
                                "link_preview_options": {"is_disabled": True}}
        keyboard = self.keyboard(message, chat_id)
        if keyboard:
            body["reply_markup"] = {"inline_keyboard": keyboard}
        url = f"{self.endpoint(target).rstrip('/')}/bot{target.get('bot_token')}/editMessageText"
        async with self.session.post(url, json=body, allow_redirects=False) as resp:
            result = await telegram_result(resp, chat_id)
        if result.outcome == "ok":
            return DeliveryResult.ok(target.get("update_id"))
        if "message is not modified" in result.error:
            return DeliveryResult.ok(target.get("update_id"))   # it already shows this (a Resolve press)
        return None if result.outcome == "permanent" else result

    def keyboard(self, message: NotificationRequested, chat_id: str) -> list[list[dict[str, str]]]:
        rows: list[list[dict[str, str]]] = []
        if answerable(message) and self.links.key:
            try:
                rows.append([{"text": label, "callback_data": telegram_callback_data(
                    self.links.key, action=action, incident_id=message.aggregate_id, chat_id=chat_id)}
                    for action, label in (("acknowledge", "Acknowledge"), ("resolve", "Resolve"))])
            except ValueError:
                rows = []   # an incident id that is not a UUID cannot be packed into 64 bytes: link only
        if message.link.startswith("https://"):
            rows.append([{"text": "Open incident", "url": message.link}])   # Telegram takes only public URLs
        return rows


async def telegram_result(resp: aiohttp.ClientResponse, chat_id: str) -> DeliveryResult:
    """Telegram answers `{"ok": true, "result": {...}}` or `{"ok": false, "error_code", "description",
    "parameters": {"retry_after"}}`; the HTTP status is the error code."""
    text = await resp.text(errors="replace")
    try:
        decoded = json.loads(text)
    except ValueError:
        decoded = None
    answer: dict[str, Any] = decoded if isinstance(decoded, dict) else {}
    outcome = classify_status(resp.status)
    if outcome == "ok" and answer.get("ok") is True:
        result: dict[str, Any] = answer["result"] if isinstance(answer.get("result"), dict) else {}
        return DeliveryResult.ok(f"{chat_id}:{result.get('message_id', '')}")
    if outcome == "ok":
        outcome = "permanent"   # 2xx without ok: true is not a sent message
    parameters: dict[str, Any] = answer["parameters"] if isinstance(answer.get("parameters"), dict) else {}
    retry_after = parameters.get("retry_after")
    error = f"HTTP {resp.status}: {str(answer.get('description') or text)[:300]}"
    if parameters.get("migrate_to_chat_id"):
        error += f" (the group is now chat {parameters['migrate_to_chat_id']}: update chat_id)"
    return DeliveryResult(outcome, error=error,
                          retry_after=float(retry_after) if isinstance(retry_after, int | float) else None)
