"""ntfy: JSON publish to the server root, with priority, tags, a click link and action buttons."""

from __future__ import annotations

from typing import ClassVar

from tocsin.events.notify import NotificationRequested
from tocsin.notifier.channels.base import Channel, DeliveryResult, Target, result_of, subject_line

PRIORITY = {"critical": 5, "error": 4, "warning": 3, "info": 2}
# ntfy accepts 1-5 or these names (https://docs.ntfy.sh/publish/#message-priority).
PRIORITY_NAMES = {"min": 1, "low": 2, "default": 3, "high": 4, "max": 5, "urgent": 5}
ANSWERABLE = ("page", "escalation", "reminder")
TAGS = {"critical": "rotating_light", "error": "warning", "warning": "warning", "info": "information_source"}


def _priority(value: str) -> int:
    value = value.strip().lower()
    if value.isdigit() and 1 <= int(value) <= 5:
        return int(value)
    return PRIORITY_NAMES.get(value, 0)


class NtfyChannel(Channel):
    kind: ClassVar[str] = "ntfy"
    supports_ack_buttons: ClassVar[bool] = True

    async def send(self, message: NotificationRequested, target: Target) -> DeliveryResult:
        server = target.get("server", "https://ntfy.sh").rstrip("/")
        priority = _priority(target.get("priority")) or PRIORITY.get(message.severity, 4)
        if message.message_kind == "resolved":
            priority = 2
        body: dict[str, object] = {
            "topic": target.get("topic"),
            "title": subject_line(message)[:250],
            "message": (message.body or message.title)[:3500],
            "priority": priority,
            "tags": [t for t in [TAGS.get(message.severity, "bell"), *target.get("tags").split(",")] if t],
        }
        actions: list[dict[str, object]] = []
        if message.link:
            body["click"] = message.link
            actions.append({"action": "view", "label": "Open incident", "url": message.link})
        if message.message_kind in ANSWERABLE and self.links.url(message):
            # ntfy's http action POSTs from the phone, straight to the signed answer link.
            actions += [{"action": "http", "label": label, "url": self.links.url(message, action),
                         "method": "POST", "headers": {"Accept": "application/json"}, "clear": True}
                        for action, label in (("acknowledge", "Acknowledge"), ("resolve", "Resolve"))]
        if actions:
            body["actions"] = actions
        headers = {}
        if target.get("token"):
            headers["Authorization"] = f"Bearer {target.get('token')}"
        async with self.session.post(server, json=body, headers=headers, allow_redirects=False) as resp:
            provider_id = ""
            if resp.status == 200:
                try:
                    provider_id = str((await resp.json(content_type=None)).get("id", ""))
                except ValueError:
                    provider_id = ""
            return await result_of(resp, provider_id)
