"""Mattermost: an incoming webhook, or a bot account posting through the REST API with answer buttons.

Webhook mode (`url`, optional `channel`) posts one message attachment coloured by severity. Bot mode
(`mode: bot`, `server`, `token`, `channel_id`) posts the same attachment through `POST /api/v4/posts` with
Acknowledge/Resolve buttons; a button's `integration.context` carries a signed button token, and the server
calls `integration.url` (the API's `/api/v1/callbacks/mattermost`), which acts and answers with the post's
new look. Mattermost keeps integration contexts from clients, so only the server can present the token.
The post id is the provider id; the incident's resolution patches that post (`PUT /api/v4/posts/{id}/patch`)
instead of adding one.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tocsin.events.chatbuttons import button_token
from tocsin.events.notify import NotificationRequested
from tocsin.notifier.channels.base import Channel, DeliveryResult, Target, result_of, subject_line, text_body
from tocsin.notifier.channels.chat import answerable, clip, colour, status_text

CALLBACK_PATH = "/api/v1/callbacks/mattermost"
MAX_TEXT = 7000   # well inside Mattermost's 16,383-character post limit, with room for the rest


def attachment(message: NotificationRequested) -> dict[str, Any]:
    """The message attachment both modes post (Slack-compatible attachment format)."""
    item: dict[str, Any] = {
        "fallback": text_body(message, 1000),
        "color": colour(message),
        "title": clip(subject_line(message), 250),
        "text": clip(message.body, MAX_TEXT),
        "fields": [{"short": True, "title": "Severity", "value": message.severity},
                   {"short": True, "title": "Status", "value": status_text(message)}],
    }
    if message.link:
        item["title_link"] = message.link
    return item


class MattermostChannel(Channel):
    kind: ClassVar[str] = "mattermost"
    supports_ack_buttons: ClassVar[bool] = True      # in bot mode
    supports_status_updates: ClassVar[bool] = True   # bot mode: redrawn on a button press and on the resolution

    def endpoint(self, target: Target) -> str:
        return target.get("server") if target.get("mode") == "bot" else target.get("url")

    async def send(self, message: NotificationRequested, target: Target) -> DeliveryResult:
        if target.get("mode") == "bot":
            return await self._post_as_bot(message, target)
        body: dict[str, Any] = {"username": "Tocsin", "attachments": [attachment(message)]}
        if target.get("channel"):
            body["channel"] = target.get("channel")
        if target.get("icon_url"):
            body["icon_url"] = target.get("icon_url")
        async with self.session.post(target.get("url"), json=body, allow_redirects=False) as resp:
            return await result_of(resp)

    async def _post_as_bot(self, message: NotificationRequested, target: Target) -> DeliveryResult:
        if target.get("update_id"):
            updated = await self._update_post(message, target)
            if updated is not None:
                return updated
        item = attachment(message)
        if answerable(message) and self.links.key and self.links.public_url:
            token = button_token(self.links.key, kind=self.kind, channel=message.channel,
                                 incident_id=message.aggregate_id)
            url = f"{self.links.public_url}{CALLBACK_PATH}"
            item["actions"] = [
                {"id": action, "name": label, "type": "button", "style": style,
                 "integration": {"url": url, "context": {"action": action, "token": token}}}
                for action, label, style in (("acknowledge", "Acknowledge", "primary"),
                                             ("resolve", "Resolve", "danger"))]
        body = {"channel_id": target.get("channel_id"), "message": "", "props": {"attachments": [item]}}
        headers = {"Authorization": f"Bearer {target.get('token')}"}
        url = f"{target.get('server').rstrip('/')}/api/v4/posts"
        async with self.session.post(url, json=body, headers=headers, allow_redirects=False) as resp:
            post_id = ""
            if resp.status == 201:
                try:
                    post_id = str((await resp.json(content_type=None)).get("id", ""))
                except (ValueError, AttributeError):
                    post_id = ""
            return await result_of(resp, post_id)

    async def _update_post(self, message: NotificationRequested, target: Target) -> DeliveryResult | None:
        """Redraw the incident's earlier post (a resolution: green, no buttons); None if that post is gone
        or may not be edited by this bot any more, so a new one is posted instead."""
        post_id = target.get("update_id")
        url = f"{target.get('server').rstrip('/')}/api/v4/posts/{post_id}/patch"
        headers = {"Authorization": f"Bearer {target.get('token')}"}
        body = {"props": {"attachments": [attachment(message)]}}
        async with self.session.put(url, json=body, headers=headers, allow_redirects=False) as resp:
            if resp.status in (403, 404):
                return None
            return await result_of(resp, post_id)
