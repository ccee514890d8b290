"""The explicit registry of channel kinds (no folder scanning)."""

from __future__ import annotations

from tocsin.notifier.channels.base import Channel
from tocsin.notifier.channels.discord import DiscordChannel
from tocsin.notifier.channels.log import LogChannel
from tocsin.notifier.channels.mattermost import MattermostChannel
from tocsin.notifier.channels.ntfy import NtfyChannel
from tocsin.notifier.channels.slack import SlackChannel
from tocsin.notifier.channels.teams import TeamsChannel
from tocsin.notifier.channels.telegram import TelegramChannel
from tocsin.notifier.channels.webhook import WebhookChannel
from tocsin.notifier.channels.webpush import WebPushChannel

REGISTRY: dict[str, type[Channel]] = {
    "ntfy": NtfyChannel,
    "webhook": WebhookChannel,
    "log": LogChannel,
    "telegram": TelegramChannel,
    "mattermost": MattermostChannel,
    "slack": SlackChannel,
    "discord": DiscordChannel,
    "teams": TeamsChannel,
    "webpush": WebPushChannel,
}
