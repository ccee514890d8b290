"""Discord: an execute-webhook call with one embed coloured by severity.

Limits: content 2,000 characters, embed title 256, description 4,096. Discord webhooks cannot carry buttons
(components need an application-owned webhook), so an answerable page links to the signed answer page,
which asks before it acts. Mentions are switched off (`allowed_mentions`), so alert text cannot ping
@everyone. A 429 carries `retry_after` in seconds in its JSON body.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

from tocsin.events.notify import NotificationRequested
from tocsin.notifier.channels.base import Channel, DeliveryResult, Target, classify_status, subject_line
from tocsin.notifier.channels.chat import answerable, clip, colour, status_text
from tocsin.notifier.policies import DISCORD_PER_WEBHOOK, RateLimit

MAX_CONTENT, MAX_TITLE, MAX_DESCRIPTION = 2000, 256, 4096


def embed(message: NotificationRequested, answer_links: str = "") -> dict[str, Any]:
    tail = "".join(f"\n{line}" for line in (f"[Open incident]({message.link})" if message.link else "",
                                              answer_links) if line)
    item: dict[str, Any] = {
        "title": clip(subject_line(message), MAX_TITLE),
        "description": clip(message.body or message.title, MAX_DESCRIPTION - len(tail)) + tail,
        "color": int(colour(message).lstrip("#"), 16),
        "fields": [{"name": "Severity", "value": message.severity, "inline": True},
                   {"name": "Status", "value": status_text(message), "inline": True}],
    }
    if message.link:
        item["url"] = message.link
    return item


def with_wait(url: str) -> str:
    """The webhook URL with `wait=true`, so Discord answers with the message (and its id)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "wait"] + [("wait", "true")]
    return urlunsplit(parts._replace(query=urlencode(query)))


class DiscordChannel(Channel):
    kind: ClassVar[str] = "discord"
    rate_limit: ClassVar[RateLimit | None] = DISCORD_PER_WEBHOOK

    async def send(self, message: NotificationRequested, target: Target) -> DeliveryResult:
        links = ""
        if answerable(message) and self.links.url(message):
            links = " · ".join(f"[{label}]({self.links.url(message, action)})"
                               for action, label in (("acknowledge", "Acknowledge"), ("resolve", "Resolve")))
        body = {"username": "Tocsin", "content": clip(subject_line(message), MAX_CONTENT),
                "embeds": [embed(message, links)], "allowed_mentions": {"parse": []}}
        async with self.session.post(with_wait(target.get("url")), json=body, allow_redirects=False) as resp:
            return await discord_result(resp)


async def discord_result(resp: aiohttp.ClientResponse) -> DeliveryResult:
    outcome = classify_status(resp.status)
    raw = await resp.text(errors="replace")
    try:
        decoded = json.loads(raw) if raw else None
    except ValueError:
        decoded = None
    answer: dict[str, Any] = decoded if isinstance(decoded, dict) else {}
    if outcome == "ok":
        return DeliveryResult.ok(str(answer.get("id", "")))
    text = str(answer.get("message") or raw)[:300]
    retry_after = answer.get("retry_after")
    if not isinstance(retry_after, int | float):
        header = resp.headers.get("Retry-After", "")
        retry_after = float(header) if header.replace(".", "", 1).isdigit() else None
    return DeliveryResult(outcome, error=f"HTTP {resp.status}: {text}",
                          retry_after=float(retry_after) if retry_after is not None else None)
