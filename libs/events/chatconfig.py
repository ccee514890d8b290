"""Config checks for the chat and push channels (Telegram, Mattermost, Slack, Discord, Teams, Web Push).

Kept apart from `config.py` so that module stays readable; `config.validate` calls in here. Every error
carries its path, and never the secret it is about: Slack, Discord, Teams and Mattermost webhook URLs are
credentials themselves, so an error names only their scheme and host.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import urlsplit

# Kinds whose `url` is an incoming-webhook URL with the credential inside it.
SECRET_URL_KINDS = frozenset({"slack", "discord", "teams", "mattermost"})
# Chat accounts a user can be known by, so a button they press acts as them (`users.<name>.chat`).
CHAT_IDENTITY_KINDS = ("telegram", "slack", "mattermost")
TELEGRAM_CHAT = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31})$")
TELEGRAM_BOT_TOKEN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,100}$")
MATTERMOST_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")
IDENTITY = {
    "telegram": re.compile(r"^(\d{1,20}|@?[A-Za-z][A-Za-z0-9_]{3,31})$"),   # numeric id or username
    "slack": re.compile(r"^[UW][A-Z0-9]{2,20}$"),                            # member id, e.g. U024BE7LH
    "mattermost": re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$"),                # username (or 26-char id)
}
Errors = list[tuple[str, str]]


def masked_url(url: Any) -> str:
    """What an error may say about a secret URL: its scheme and host, never its path or query."""
    if not isinstance(url, str):
        return "(not text)"
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/…" if parts.scheme and parts.hostname else "(not a URL)"


def http_url(url: Any) -> bool:
    return isinstance(url, str) and urlsplit(url).scheme in ("http", "https") and bool(urlsplit(url).hostname)


def parse_subscription(text: str) -> dict[str, Any]:
    """A browser's PushSubscription (`JSON.stringify(subscription)`) with an endpoint and its two keys."""
    try:
        sub = json.loads(text)
    except (TypeError, ValueError):
        raise ValueError("not JSON (paste the browser's JSON.stringify(subscription))") from None
    if not isinstance(sub, dict) or not http_url(sub.get("endpoint")):
        raise ValueError("needs an http(s) endpoint")
    keys = sub.get("keys")
    if not isinstance(keys, dict):
        raise ValueError("needs keys.p256dh and keys.auth")
    for name, size in (("p256dh", 65), ("auth", 16)):
        try:
            raw = base64.urlsafe_b64decode(str(keys.get(name, "")) + "===")
        except ValueError:
            raw = b""
        if len(raw) != size:
            raise ValueError(f"keys.{name} is not a base64url {size}-byte key")
    return sub


def check_chat_destination(kind: Any, fields: dict[str, Any], path: str, errors: Errors) -> None:
    """The checks beyond field names and the required ones that `config._check_destination` makes."""
    if kind == "telegram" and "chat_id" in fields and not TELEGRAM_CHAT.match(str(fields["chat_id"])):
        errors.append((f"{path}.chat_id", "a Telegram chat id is a number (groups are negative) or @channelname"))
    if kind == "mattermost":
        _check_mattermost(fields, path, errors)
    if kind == "webpush" and "subscription" in fields:
        try:
            parse_subscription(fields["subscription"])
        except ValueError as exc:
            errors.append((f"{path}.subscription", f"not a push subscription: {exc}"))


def _check_mattermost(fields: dict[str, Any], path: str, errors: Errors) -> None:
    mode = fields.get("mode", "webhook")
    if mode not in ("webhook", "bot"):
        errors.append((f"{path}.mode", "must be webhook (an incoming webhook URL) or bot"))
        return
    needed, foreign = (("server", "token", "channel_id"), ("url", "channel")) if mode == "bot" else (
        ("url",), ("server", "token", "channel_id"))
    for key in needed:
        if key not in fields:
            errors.append((f"{path}.{key}", f"required for a mattermost channel in {mode} mode"))
    for key in foreign:
        if key in fields:
            errors.append((f"{path}.{key}", f"not used by a mattermost channel in {mode} mode"))
    if mode == "bot" and "server" in fields and not http_url(fields["server"]):
        errors.append((f"{path}.server", f"not an http(s) URL: {fields['server']!r}"))
    if "icon_url" in fields and not http_url(fields["icon_url"]):
        errors.append((f"{path}.icon_url", f"not an http(s) URL: {fields['icon_url']!r}"))
    if mode == "bot" and "channel_id" in fields and not MATTERMOST_ID.match(str(fields["channel_id"])):
        errors.append((f"{path}.channel_id", "a Mattermost channel id is letters and digits"))


def check_chat_providers(providers: dict[str, dict[str, Any]], errors: Errors) -> None:
    telegram = providers.get("telegram")
    if telegram is not None:
        _known(telegram, ("bot_token", "base_url"), "providers.telegram", errors)
        if not TELEGRAM_BOT_TOKEN.match(str(telegram.get("bot_token", ""))):
            errors.append(("providers.telegram.bot_token",
                           "required: the token @BotFather gave, <digits>:<35 letters, digits, _ or ->"))
    slack = providers.get("slack")
    if slack is not None:
        _known(slack, ("signing_secret",), "providers.slack", errors)
        if not isinstance(slack.get("signing_secret"), str) or len(slack.get("signing_secret", "")) < 16:
            errors.append(("providers.slack.signing_secret", "required: the Slack app's signing secret"))
    webpush = providers.get("webpush")
    if webpush is not None:
        _known(webpush, ("vapid_private_key", "subject"), "providers.webpush", errors)
        _check_vapid(webpush, errors)


def _check_vapid(webpush: dict[str, Any], errors: Errors) -> None:
    from tocsin.events.vapid import VapidKeyError, load_vapid_key  # cryptography is only needed here

    try:
        load_vapid_key(str(webpush.get("vapid_private_key", "")))
    except VapidKeyError as exc:
        errors.append(("providers.webpush.vapid_private_key", str(exc)))
    subject = str(webpush.get("subject", ""))
    if not (subject.startswith("mailto:") and "@" in subject) and not subject.startswith("https://"):
        errors.append(("providers.webpush.subject",
                       "required: a mailto: address or https: URL push services can reach you at"))


def _known(fields: dict[str, Any], allowed: tuple[str, ...], path: str, errors: Errors) -> None:
    for key in fields:
        if key not in allowed:
            errors.append((f"{path}.{key}", f"unknown field (one of {', '.join(allowed)})"))


def check_chat_identities(users: dict[str, Any], errors: Errors) -> None:
    """`users.<name>.chat`: each account well formed, and no account claimed by two people."""
    claimed: dict[tuple[str, str], str] = {}
    for name, user in users.items():
        for kind, account in user.chat.items():
            path = f"users.{name}.chat.{kind}"
            if kind not in IDENTITY:
                errors.append((path, f"unknown chat kind (one of {', '.join(CHAT_IDENTITY_KINDS)})"))
                continue
            if not isinstance(account, str) or not IDENTITY[kind].match(account):
                errors.append((path, {"telegram": "a Telegram user id (digits) or username",
                                      "slack": "a Slack member id such as U024BE7LH",
                                      "mattermost": "a Mattermost username"}[kind]))
                continue
            normal = account.lstrip("@").lower()
            if (kind, normal) in claimed:
                errors.append((path, f"{account!r} is already users.{claimed[(kind, normal)]}.chat.{kind}"))
            claimed[(kind, normal)] = name
