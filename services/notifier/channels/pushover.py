"""Pushover: `POST {base_url}/1/messages.json`, emergency priority 2 (repeated until acknowledged) for pages.

An emergency message returns a `receipt`, recorded as the delivery's provider id. The message names a
`callback` URL on the API carrying a signed action token; when the person acknowledges in the Pushover app,
Pushover POSTs there, and the API confirms the acknowledgement with Pushover's receipt API before it
acknowledges the incident as that person (see docs/channels/pushover.md).
"""

from __future__ import annotations

from typing import ClassVar

from tocsin.events.notify import NotificationRequested
from tocsin.notifier.channels.base import Channel, DeliveryResult, Target, classify_status, subject_line
from tocsin.notifier.policies import PAGES, Bundling

PUSHOVER_CALLBACK = "/api/v1/callbacks/pushover/{token}"
ANSWERABLE = ("page", "escalation", "reminder")
PRIORITY = {"critical": 2, "error": 1, "warning": 0, "info": -1}
MAX_MESSAGE, MAX_TITLE, MAX_URL = 1024, 250, 512
DEFAULT_RETRY, DEFAULT_EXPIRE = 60, 3600   # seconds: ring every minute, for up to an hour


def _int(value: str, default: int) -> int:
    try:
        return int(value)
    except ValueError:
        return default


def priority_of(message: NotificationRequested, target: Target) -> int:
    priority = _int(target.fields.get("priority", ""), PRIORITY.get(message.severity, 0))
    if message.message_kind not in ANSWERABLE:
        # Only a page that someone must answer may ring until acknowledged.
        priority = min(priority, 0)
    return max(-2, min(2, priority))


class PushoverChannel(Channel):
    kind: ClassVar[str] = "pushover"
    supports_ack_buttons: ClassVar[bool] = True    # the app's own Acknowledge, for emergency messages
    bundle: ClassVar[Bundling | None] = PAGES

    def form(self, message: NotificationRequested, target: Target) -> dict[str, str]:
        body = (message.body or message.title)[:MAX_MESSAGE]
        form = {"token": target.provider.get("token", ""), "user": target.fields.get("user_key", ""),
                "title": subject_line(message)[:MAX_TITLE], "message": body,
                "priority": str(priority_of(message, target)), "timestamp": str(int(message.at.timestamp()))}
        if message.link and len(message.link) <= MAX_URL:
            form |= {"url": message.link, "url_title": "Open incident"}
        for key in ("sound", "device"):
            if target.fields.get(key):
                form[key] = target.fields[key]
        if form["priority"] == "2":
            form["retry"] = str(max(30, _int(target.fields.get("retry", ""), DEFAULT_RETRY)))
            form["expire"] = str(min(10800, _int(target.fields.get("expire", ""), DEFAULT_EXPIRE)))
            if self.links.url(message):
                form["callback"] = (self.links.public_url
                                    + PUSHOVER_CALLBACK.format(token=self.links.token(message)))
        return form

    async def send(self, message: NotificationRequested, target: Target) -> DeliveryResult:
        if not target.provider.get("token"):
            return DeliveryResult("permanent", error="providers.pushover needs token")
        base = target.provider.get("base_url", "https://api.pushover.net").rstrip("/")
        async with self.session.post(f"{base}/1/messages.json", data=self.form(message, target),
                                     allow_redirects=False) as resp:
            try:
                answer = await resp.json(content_type=None)
            except ValueError:
                answer = None
            if not isinstance(answer, dict):
                answer = {}
            outcome = classify_status(resp.status)
            if outcome == "ok" and answer.get("status") == 1:
                return DeliveryResult.ok(str(answer.get("receipt") or answer.get("request") or ""))
            if outcome == "ok":
                outcome = "permanent"   # 200 without status 1 is not a delivery
            errors = answer.get("errors")
            detail = "; ".join(map(str, errors)) if isinstance(errors, list) else (await resp.text())[:200]
            retry_after = None
            if outcome == "retry" and resp.headers.get("Retry-After", "").isdigit():
                retry_after = float(resp.headers["Retry-After"])
            return DeliveryResult(outcome, error=f"HTTP {resp.status}: {detail}"[:300], retry_after=retry_after)
