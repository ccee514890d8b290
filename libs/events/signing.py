"""Signed, expiring tokens: the links and buttons that let a person act on an incident from a channel.

A token is `base64url(json payload) "." base64url(HMAC-SHA256)`, under a key derived for its purpose. The
payload names who it was sent to, so a callback acts as that person whatever the request body says.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any

import msgspec

from tocsin.events.keys import derive

MAX_TOKEN = 4096


class BadSignature(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, purpose: str, payload: dict[str, Any], ttl: float, now: float | None = None) -> str:
    body = dict(payload)
    body["exp"] = int((time.time() if now is None else now) + ttl)
    data = _b64(msgspec.json.encode(body))
    mac = hmac.new(derive(key, purpose), data.encode(), hashlib.sha256).digest()
    return f"{data}.{_b64(mac)}"


def verify(key: bytes, purpose: str, token: str, now: float | None = None) -> dict[str, Any]:
    """The payload of a genuine, unexpired token of this purpose; BadSignature otherwise."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN or token.count(".") != 1:
        raise BadSignature("malformed token")
    data, mac = token.split(".")
    expected = hmac.new(derive(key, purpose), data.encode(), hashlib.sha256).digest()
    try:
        genuine = hmac.compare_digest(expected, _unb64(mac))
    except ValueError as exc:
        raise BadSignature("malformed token") from exc
    if not genuine:
        raise BadSignature("bad signature")
    try:
        payload = msgspec.json.decode(_unb64(data))
    except (ValueError, msgspec.DecodeError) as exc:
        raise BadSignature("malformed token") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("exp"), int):
        raise BadSignature("malformed token")
    if payload["exp"] < (time.time() if now is None else now):
        raise BadSignature("expired")
    return payload


# Action tokens: what a link or button in a page may do, for whom.
ACTION_PURPOSE = "incident-action"
ACTION_TTL = 7 * 24 * 3600.0
ACTIONS = ("acknowledge", "resolve")


def action_token(key: bytes, *, incident_id: str, user: str, notification_id: str = "",
                 ttl: float = ACTION_TTL) -> str:
    """A token that lets `user` acknowledge or resolve `incident_id` (the action is chosen at use)."""
    return sign(key, ACTION_PURPOSE, {"i": incident_id, "u": user, "n": notification_id}, ttl)


def read_action_token(key: bytes, token: str) -> tuple[str, str, str]:
    """(incident_id, user, notification_id) of a genuine action token."""
    payload = verify(key, ACTION_PURPOSE, token)
    incident_id, user = payload.get("i"), payload.get("u")
    if not isinstance(incident_id, str) or not incident_id or not isinstance(user, str):
        raise BadSignature("malformed token")
    return incident_id, user, str(payload.get("n", ""))
