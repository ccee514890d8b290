"""Slack: Block Kit through an incoming webhook, with Acknowledge/Resolve buttons when a Slack app answers.

The `text` fallback is always present (notifications and screen readers use it); a section block holds at
most 3,000 characters, and the incident link is kept whole. Buttons need a Slack app with interactivity
pointed at the API's `/api/v1/callbacks/slack` and its signing secret in `providers.slack.signing_secret`:
without one, pressing a button would only show an error in Slack, so none are sent. A button's `value` is a
signed button token naming the incident and the channel; who pressed it comes from Slack's signed payload.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tocsin.events.chatbuttons import button_token
from tocsin.events.notify import NotificationRequested
from tocsin.notifier.channels.base import Channel, DeliveryResult, Target, result_of, subject_line, text_body
from tocsin.notifier.channels.chat import answerable, clip, status_text
from tocsin.notifier.policies import SLACK_PER_CHANNEL, RateLimit

MAX_SECTION = 3000
ACTION_IDS = {"acknowledge": "tocsin_acknowledge", "resolve": "tocsin_resolve"}


def escape(text: str) -> str:
    """Slack mrkdwn needs only &, < and > escaped (https://api.slack.com/reference/surfaces/formatting)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def section_text(message: NotificationRequested) -> str:
    link = f"\n<{message.link}|Open incident>" if message.link else ""
    head = f"*{escape(subject_line(message))}*"
    details = f"\n{escape(message.body)}" if message.body else ""
    return clip(head + details, MAX_SECTION - len(link)) + link


def blocks(message: NotificationRequested, token: str = "") -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": section_text(message)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(
            f"severity {message.severity} · {status_text(message)}")}]},
    ]
    buttons: list[dict[str, Any]] = []
    if token:
        buttons += [{"type": "button", "action_id": ACTION_IDS[action], "value": token, "style": style,
                     "text": {"type": "plain_text", "text": label}}
                    for action, label, style in (("acknowledge", "Acknowledge", "primary"),
                                                 ("resolve", "Resolve", "danger"))]
    if message.link:
        buttons.append({"type": "button", "action_id": "tocsin_open", "url": message.link,
                        "text": {"type": "plain_text", "text": "Open incident"}})
    if buttons:
        out.append({"type": "actions", "block_id": "tocsin_actions", "elements": buttons})
    return out


class SlackChannel(Channel):
    kind: ClassVar[str] = "slack"
    supports_ack_buttons: ClassVar[bool] = True      # with a Slack app's signing secret
    supports_status_updates: ClassVar[bool] = True   # the message is replaced after a button press
    rate_limit: ClassVar[RateLimit | None] = SLACK_PER_CHANNEL

    async def send(self, message: NotificationRequested, target: Target) -> DeliveryResult:
        token = ""
        if answerable(message) and target.get("signing_secret") and self.links.key:
            token = button_token(self.links.key, kind=self.kind, channel=message.channel,
                                 incident_id=message.aggregate_id)
        body = {"text": escape(text_body(message, 3000)), "blocks": blocks(message, token)}
        async with self.session.post(target.get("url"), json=body, allow_redirects=False) as resp:
            return await result_of(resp)
