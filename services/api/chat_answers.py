"""Chat buttons: who pressed one, and calling the provider back (Telegram, Slack and Mattermost answer paths).

The rule, for every chat button:
- what the button is about (which incident, and which channel or chat it was posted to) comes only from
  what Tocsin signed: a button token (`tocsin.events.chatbuttons`) or Telegram's compact signed callback data;
- who pressed it comes only from the provider's verified request: Telegram's `callback_query.from` under the
  webhook's secret header, Slack's `user` under its request signature, Mattermost's `user_id`/`user_name`,
  which only the Mattermost server can send alongside a genuine integration context (servers keep a post's
  integration contexts from clients);
- the presser acts as the Tocsin user whose `chat.<kind>` names that account (a Telegram user is also
  recognised by a telegram contact whose `chat_id` is their own private chat with the bot), and otherwise
  as `<kind>:<their username>` (or their account id when they have no username).
Nothing else in a request body ever names the acting user.
"""

from __future__ import annotations

import logging
from typing import Any

import aiohttp

from tocsin.events.config import Config

log = logging.getLogger("tocsin.api.chat")
MAX_CALLBACK_BODY = 64 * 1024
STATUS_WORDS = {"acknowledged": "Acknowledged", "resolved": "Resolved", "triggered": "Triggered"}


def as_dict(value: Any) -> dict[str, Any]:
    """A JSON object from a provider, or an empty one in its place (bodies are read defensively)."""
    return value if isinstance(value, dict) else {}


def _normal(account: str) -> str:
    return account.strip().lstrip("@").lower()


def who_pressed(config: Config, kind: str, account_id: str, username: str = "") -> str:
    """The Tocsin user a verified chat account stands for, else `<kind>:<username or id>`."""
    known = {_normal(a) for a in (account_id, username) if a}
    for name, user in config.users.items():
        account = user.chat.get(kind)
        if account and _normal(account) in known:
            return name
    if kind == "telegram" and account_id:
        for name, user in config.users.items():
            if any(c.get("type") == "telegram" and str(c.get("chat_id", "")) == account_id
                   for c in user.contacts.values()):
                return name
    return f"{kind}:{username or account_id}"


async def call_out(url: str, body: dict[str, Any], what: str) -> int:
    """POST JSON to a provider after an answer; the answer stands whether or not this works, so a failure
    is logged (without the URL, which may carry a token) and not raised."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session, \
                session.post(url, json=body, allow_redirects=False) as resp:
            if resp.status >= 300:
                log.warning("%s answered HTTP %s", what, resp.status)
            return resp.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        log.warning("%s failed: %s", what, type(exc).__name__)
        return 0
