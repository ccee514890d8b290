"""Fakes of the chat and push providers' wire formats, shared by the channel and answer-path tests.

Each `*_answer(status)` builds the response that provider really gives for that status; `Browser` is the
receiving side of Web Push: a real P-256 key pair and auth secret, as a browser makes them, which decrypts
what the push service would deliver, and `verify_vapid` checks the VAPID JWT as a push service does.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import http_ece
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from harness import Received

# Distinctive values, so that finding one anywhere can only mean a leak.
BOT_TOKEN = "987654321:AAF-bot-token-secret-Qw3rTy9uIoPasdfgh"
SLACK_SIGNING_SECRET = "slack-signing-secret-8e7f6a5b4c3d2e1f"
SLACK_HOOK_PATH = "/services/T0SECRET/B0SECRET/slackhooksecretXYZ123"
DISCORD_HOOK_PATH = "/api/webhooks/1234567890/discord-hook-secret-AbCdEf987"
TEAMS_HOOK_PATH = "/workflows/teams-flow-secret-00aa11bb/triggers/manual/paths/invoke"
TEAMS_QUERY = "api-version=2016-06-01&sig=teams-sig-secret-ZZ99yy88"
MM_HOOK_PATH = "/hooks/mattermost-hook-secret-k3y9x8w7"
MM_BOT_TOKEN = "mm-bot-token-secret-p0o9i8u7y6"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_vapid_key() -> tuple[str, str]:
    """(private key as base64url raw, public key as base64url uncompressed point), as web-push prints them."""
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    public = key.public_key().public_bytes(serialization.Encoding.X962,
                                           serialization.PublicFormat.UncompressedPoint)
    return b64(raw), b64(public)


# ------------------------------------------------------------------ status → the provider's own answer


def telegram_answer(status: int, retry_after: int = 3) -> web.Response:
    if status == 200:
        return web.json_response({"ok": True, "result": {"message_id": 77, "chat": {"id": -100123},
                                                         "date": int(time.time()), "text": "..."}})
    body: dict[str, Any] = {"ok": False, "error_code": status,
                            "description": {400: "Bad Request: chat not found",
                                            403: "Forbidden: bot was blocked by the user",
                                            429: f"Too Many Requests: retry after {retry_after}"}.get(
                                status, "Internal Server Error")}
    if status == 429:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)


def slack_answer(status: int) -> web.Response:
    text = {200: "ok", 400: "invalid_payload", 403: "action_prohibited", 404: "no_service",
            410: "channel_is_archived", 429: "rate_limited"}.get(status, "rollup_error")
    headers = {"Retry-After": "4"} if status == 429 else {}
    return web.Response(status=status, text=text, headers=headers)


def discord_answer(status: int) -> web.Response:
    if status == 200:
        return web.json_response({"id": "1122334455", "type": 0, "channel_id": "99"})
    if status == 204:
        return web.Response(status=204)
    if status == 429:
        return web.json_response({"message": "You are being rate limited.", "retry_after": 0.75, "global": False},
                                 status=429)
    return web.json_response({"message": "Unknown Webhook", "code": 10015}, status=status)


def teams_answer(status: int) -> web.Response:
    if status in (200, 202):
        return web.Response(status=status)
    return web.json_response({"error": {"code": "TriggerInputSchemaMismatch", "message": "bad input"}},
                             status=status)


def mattermost_answer(status: int) -> web.Response:
    if status == 200:
        return web.Response(status=200, text="ok", content_type="text/plain")
    if status == 201:
        return web.json_response({"id": "post9x8y7z", "channel_id": "chan1", "message": ""}, status=201)
    return web.json_response({"id": "api.context.permissions.app_error", "message": "no permission",
                              "status_code": status}, status=status)


def push_answer(status: int) -> web.Response:
    if status == 201:
        return web.Response(status=201, headers={"Location": "https://push.example/m/msg-1"})
    return web.Response(status=status, text={404: "subscription not found", 410: "gone"}.get(status, "error"))


# ------------------------------------------------------------------ Web Push: the browser's side


@dataclass
class Browser:
    """A subscribed browser: the key pair and auth secret `pushManager.subscribe()` would make."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def subscription(self) -> str:
        public = self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                            serialization.PublicFormat.UncompressedPoint)
        return json.dumps({"endpoint": self.endpoint, "expirationTime": None,
                           "keys": {"p256dh": b64(public), "auth": b64(self.auth)}})

    def decrypt(self, received: Received) -> dict[str, Any]:
        assert received.headers["Content-Encoding"] == "aes128gcm"
        plain = http_ece.decrypt(received.body, private_key=self.private_key, auth_secret=self.auth,
                                 version="aes128gcm")
        return json.loads(plain)  # type: ignore[no-any-return]


def verify_vapid(authorization: str, endpoint: str, public_key: str) -> dict[str, Any]:
    """The JWT claims of a genuine `Authorization: vapid t=<jwt>,k=<key>` for this endpoint's origin."""
    scheme, _, params = authorization.partition(" ")
    assert scheme == "vapid", authorization
    parts = dict(p.strip().split("=", 1) for p in params.split(","))
    assert parts["k"] == public_key, "signed with the configured VAPID key"
    header, payload, signature = parts["t"].split(".")
    assert json.loads(unb64(header)) == {"typ": "JWT", "alg": "ES256"}
    raw = unb64(signature)
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(parts["k"]))
    key.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
               f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))   # raises InvalidSignature
    claims: dict[str, Any] = json.loads(unb64(payload))
    origin = urlsplit(endpoint)
    assert claims["aud"] == f"{origin.scheme}://{origin.netloc}"
    assert time.time() < claims["exp"] <= time.time() + 24 * 3600
    return claims
