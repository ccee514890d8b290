"""What a chat button carries, signed by the notifier that posts it and checked by the API that is called.

A button in a shared chat channel is pressed by whoever sees it, so its token names only the incident and the
channel it was posted to; who pressed it comes from the provider's own verified payload (see
`tocsin.api.chat_answers`). Button tokens have their own purpose key, so one can never be used on the signed
answer door (`/api/v1/answer/{token}`), which acts as the person named inside.

Telegram allows 64 bytes of `callback_data`, too few for a general token: its button carries a compact form,
`<a|r>.<incident uuid, base64url>.<expiry, base36>.<96-bit MAC>` (48 bytes), whose MAC also covers the chat
it was sent to, so a button copied into another chat does nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid

from tocsin.events.keys import derive
from tocsin.events.signing import ACTION_TTL, ACTIONS, BadSignature, sign, verify

BUTTON_PURPOSE = "chat-button"
TELEGRAM_PURPOSE = "telegram-button"
TELEGRAM_WEBHOOK_PURPOSE = "telegram-webhook"
TELEGRAM_MAX_CALLBACK = 64


def button_token(key: bytes, *, kind: str, channel: str, incident_id: str, ttl: float = ACTION_TTL) -> str:
    """The token of a chat button: incident `incident_id`, posted by channel `channel` of kind `kind`."""
    return sign(key, BUTTON_PURPOSE, {"k": kind, "c": channel, "i": incident_id}, ttl)


def read_button_token(key: bytes, token: str, kind: str) -> tuple[str, str]:
    """(incident_id, channel) of a genuine, unexpired button token of this kind; BadSignature otherwise."""
    payload = verify(key, BUTTON_PURPOSE, token)
    incident_id, channel = payload.get("i"), payload.get("c")
    if payload.get("k") != kind:
        raise BadSignature(f"not a {kind} button")
    if not isinstance(incident_id, str) or not incident_id or not isinstance(channel, str):
        raise BadSignature("malformed token")
    return incident_id, channel


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _telegram_mac(key: bytes, body: str, chat_id: str) -> str:
    mac = hmac.new(derive(key, TELEGRAM_PURPOSE), f"{body}|{chat_id}".encode(), hashlib.sha256).digest()
    return _b64(mac[:12])


def telegram_callback_data(key: bytes, *, action: str, incident_id: str, chat_id: str,
                           ttl: float = ACTION_TTL, now: float | None = None) -> str:
    """The `callback_data` of an Acknowledge/Resolve button sent to `chat_id` (at most 64 bytes)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    expires = int((time.time() if now is None else now) + ttl)
    body = f"{action[0]}.{_b64(uuid.UUID(incident_id).bytes)}.{_base36(expires)}"
    data = f"{body}.{_telegram_mac(key, body, chat_id)}"
    assert len(data.encode()) <= TELEGRAM_MAX_CALLBACK
    return data


def read_telegram_callback_data(key: bytes, data: str, chat_id: str,
                                now: float | None = None) -> tuple[str, str]:
    """(action, incident_id) of genuine callback data pressed in `chat_id`; BadSignature otherwise."""
    parts = data.split(".") if isinstance(data, str) and len(data) <= TELEGRAM_MAX_CALLBACK else []
    if len(parts) != 4:
        raise BadSignature("malformed button")
    letter, packed, expires, mac = parts
    if not hmac.compare_digest(_telegram_mac(key, f"{letter}.{packed}.{expires}", chat_id), mac):
        raise BadSignature("bad signature")
    action = {a[0]: a for a in ACTIONS}.get(letter)
    try:
        incident_id = str(uuid.UUID(bytes=base64.urlsafe_b64decode(packed + "==")))
        expiry = int(expires, 36)
    except ValueError:
        raise BadSignature("malformed button") from None
    if action is None:
        raise BadSignature("malformed button")
    if expiry < (time.time() if now is None else now):
        raise BadSignature("expired")
    return action, incident_id


def telegram_webhook_secret(key: bytes) -> str:
    """The `secret_token` given to Telegram's setWebhook; Telegram sends it back in
    `X-Telegram-Bot-Api-Secret-Token` (1-256 of A-Z a-z 0-9 _ -)."""
    return _b64(derive(key, TELEGRAM_WEBHOOK_PURPOSE))


def _base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while value:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
    return out or "0"
