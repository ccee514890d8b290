"""Config of the chat and push channels: what is accepted, what is refused (with its path), and that no error
or export shows a secret webhook URL, token or subscription."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from chatfakes import Browser, new_vapid_key

from tocsin.events.config import ConfigError, parse_config, redacted, warnings

VAPID_PRIVATE, _ = new_vapid_key()
SUBSCRIPTION = Browser("https://fcm.googleapis.com/fcm/send/sub-secret-endpoint-abc").subscription()
SLACK_URL = "https://hooks.slack.com/services/T000/B000/slack-url-secret-123"

GOOD = f"""
providers:
  telegram: {{bot_token: "123456789:AAH-example-token-abcdefghijklmnopqr", base_url: https://api.telegram.org}}
  slack: {{signing_secret: 8f742231b10e8888abcd99yyyzzz85a5}}
  webpush: {{vapid_private_key: "{VAPID_PRIVATE}", subject: "mailto:ops@example.com"}}
users:
  alice:
    chat: {{slack: U024BE7LH, mattermost: alice, telegram: "@alice_tg"}}
    contacts:
      tg: {{type: telegram, chat_id: "123456789"}}
      browser: {{type: webpush, subscription: '{SUBSCRIPTION}'}}
  bob:
    chat: {{telegram: "987654"}}
channels:
  mm-devops: {{type: mattermost, url: "https://chat.example.com/hooks/mm-hook-secret", channel: devops}}
  mm-bot: {{type: mattermost, mode: bot, server: https://chat.example.com, token: mm-bot-secret,
           channel_id: abc123}}
  slack-ops: {{type: slack, url: "{SLACK_URL}"}}
  discord-ops: {{type: discord, url: "https://discord.com/api/webhooks/1/discord-secret"}}
  teams-ops: {{type: teams, url: "https://prod-1.westeurope.logic.azure.com/workflows/x?sig=teams-secret"}}
  tg-ops: {{type: telegram, chat_id: "-100123"}}
"""


def errors_of(text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, env={})
    return info.value.errors


def test_every_chat_kind_is_accepted_and_deliverable():
    config = parse_config(GOOD, env={})
    assert config.users["alice"].chat == {"slack": "U024BE7LH", "mattermost": "alice", "telegram": "@alice_tg"}
    assert warnings(config) == [], "every kind here is delivered by this version"


@pytest.mark.parametrize(("old", "new", "path", "message"), [
    ('chat_id: "-100123"', "chat_id: general", "channels.tg-ops.chat_id", "a Telegram chat id"),
    ("mode: bot, server: https://chat.example.com,", "mode: bot,", "channels.mm-bot.server", "required"),
    ("mode: bot,", "mode: robot,", "channels.mm-bot.mode", "must be webhook"),
    ("channel_id: abc123", "channel_id: abc123, url: https://x.example/hooks/y", "channels.mm-bot.url",
     "not used by a mattermost channel in bot mode"),
    ("channel_id: abc123", "channel_id: 'abc 123'", "channels.mm-bot.channel_id", "letters and digits"),
    ("{type: mattermost, url:", "{type: mattermost, server: https://a.example, url:", "channels.mm-devops.server",
     "not used by a mattermost channel in webhook mode"),
    ("bot_token: \"123456789:AAH-example-token-abcdefghijklmnopqr\"", "bot_token: nope",
     "providers.telegram.bot_token", "BotFather"),
    ("signing_secret: 8f742231b10e8888abcd99yyyzzz85a5", "signing_secret: short", "providers.slack.signing_secret",
     "signing secret"),
    ("slack: {signing_secret", "slack: {token: x, signing_secret", "providers.slack.token", "unknown field"),
    (f'vapid_private_key: "{VAPID_PRIVATE}"', 'vapid_private_key: "secret-but-not-a-key"',
     "providers.webpush.vapid_private_key", "not a P-256 private key"),
    ('subject: "mailto:ops@example.com"', "subject: ops", "providers.webpush.subject", "mailto:"),
    (f"subscription: '{SUBSCRIPTION}'", "subscription: '{\"endpoint\": \"https://p.example/x\"}'",
     "users.alice.contacts.browser.subscription", "keys.p256dh"),
    (f"subscription: '{SUBSCRIPTION}'", "subscription: not-json", "users.alice.contacts.browser.subscription",
     "not JSON"),
    ("slack: U024BE7LH", "slack: alice", "users.alice.chat.slack", "member id"),
    ("mattermost: alice,", "irc: alice,", "users.alice.chat.irc", "unknown chat kind"),
    ('telegram: "987654"', 'telegram: "@Alice_TG"', "users.bob.chat.telegram", "already users.alice"),
])
def test_bad_chat_config_is_refused_with_its_path(old, new, path, message):
    assert old in GOOD
    errors = errors_of(GOOD.replace(old, new, 1))
    assert any(p == path and message in m for p, m in errors), errors


@pytest.mark.parametrize(("old", "secret"), [
    (SLACK_URL, "slack-url-secret-123"),
    ("https://discord.com/api/webhooks/1/discord-secret", "discord-secret"),
])
def test_an_error_about_a_secret_webhook_url_does_not_show_it(old, secret):
    broken = old.replace("https://", "htps://")
    errors = errors_of(GOOD.replace(old, broken))
    [(_, message)] = [e for e in errors if e[0].endswith(".url")]
    assert "not an http(s) URL" in message
    assert secret not in str(errors)


def test_bad_vapid_key_error_does_not_quote_it():
    errors = errors_of(GOOD.replace(VAPID_PRIVATE, "my-secret-vapid-thing-0123456789"))
    assert "my-secret-vapid-thing" not in str(errors)


def test_export_masks_webhook_urls_tokens_and_subscriptions():
    doc = json.dumps(redacted(parse_config(GOOD, env={})))
    for secret in ("slack-url-secret-123", "mm-hook-secret", "mm-bot-secret", "discord-secret", "teams-secret",
                   "sub-secret-endpoint-abc", json.loads(SUBSCRIPTION)["keys"]["auth"], VAPID_PRIVATE,
                   "8f742231b10e8888abcd99yyyzzz85a5", "AAH-example-token"):
        assert secret not in doc
    assert '"chat_id": "-100123"' in doc, "addresses that are not secrets stay readable"


DOCS = Path(__file__).resolve().parents[1] / "docs" / "channels"
DOC_ENV = {"TELEGRAM_BOT": "123456789:AAH-example-token-abcdefghijklmnopqr", "VAPID_KEY": VAPID_PRIVATE,
           "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5", "MM_HOOK": "hookkey",
           "MM_BOT": "bot-token", "SLACK_HOOK": "https://hooks.slack.com/services/T0/B0/x",
           "DISCORD_HOOK": "https://discord.com/api/webhooks/1/x",
           "TEAMS_WORKFLOW_URL": "https://prod-1.westeurope.logic.azure.com/workflows/x?sig=y"}


@pytest.mark.parametrize("kind", ["telegram", "mattermost", "slack", "discord", "teams", "webpush"])
def test_the_config_example_of_each_channel_page_is_valid(kind):
    text = (DOCS / f"{kind}.md").read_text()
    example = re.search(r"## Config\n.*?```yaml\n(.*?)```", text, re.S).group(1)
    config = parse_config(example, env=DOC_ENV)
    kinds = {c["type"] for c in config.channels.values()} | {
        c["type"] for u in config.users.values() for c in u.contacts.values()}
    assert kind in kinds
