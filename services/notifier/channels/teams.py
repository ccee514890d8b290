"""Microsoft Teams: an Adaptive Card (1.4) posted to a Workflows webhook ("When a Teams webhook request is
received"), which answers 202 Accepted.

Workflows cards cannot call back into Tocsin, so the card opens links: the incident, and for a page the
signed answer page, which asks before it acknowledges (a link preview cannot act). Teams takes about 28 KB
per message; the details are cut well below that.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tocsin.events.notify import NotificationRequested
from tocsin.notifier.channels.base import Channel, DeliveryResult, Target, result_of, subject_line
from tocsin.notifier.channels.chat import answerable, clip, status_text

MAX_DETAILS = 12000
TITLE_COLOUR = {"critical": "attention", "error": "attention", "warning": "warning", "info": "accent"}


def card(message: NotificationRequested, answer_url: str = "") -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": subject_line(message), "weight": "bolder", "size": "medium", "wrap": True,
         "color": "good" if message.message_kind == "resolved" else TITLE_COLOUR.get(message.severity, "default")},
    ]
    if message.body:
        body.append({"type": "TextBlock", "text": clip(message.body, MAX_DETAILS), "wrap": True})
    body.append({"type": "FactSet", "facts": [{"title": "Severity", "value": message.severity},
                                              {"title": "Status", "value": status_text(message)}]})
    actions = []
    if message.link:
        actions.append({"type": "Action.OpenUrl", "title": "Open incident", "url": message.link})
    if answer_url:
        actions.append({"type": "Action.OpenUrl", "title": "Acknowledge", "url": answer_url})
    return {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "body": body, "actions": actions}


class TeamsChannel(Channel):
    kind: ClassVar[str] = "teams"

    async def send(self, message: NotificationRequested, target: Target) -> DeliveryResult:
        answer_url = self.links.url(message, "acknowledge") if answerable(message) else ""
        body = {"type": "message", "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
            "content": card(message, answer_url)}]}
        async with self.session.post(target.get("url"), json=body, allow_redirects=False) as resp:
            return await result_of(resp)
