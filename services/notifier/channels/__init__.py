"""The explicit registry of channel kinds (no folder scanning)."""

from __future__ import annotations

from tocsin.notifier.channels.base import Channel
from tocsin.notifier.channels.discord import DiscordChannel
from tocsin.notifier.channels.email import EmailChannel
from tocsin.notifier.channels.log import LogChannel
from tocsin.notifier.channels.mattermost import MattermostChannel
from tocsin.notifier.channels.ntfy import NtfyChannel
from tocsin.notifier.channels.pushover import PushoverChannel
from tocsin.notifier.channels.signal import SignalChannel
from tocsin.notifier.channels.slack import SlackChannel
from tocsin.notifier.channels.sms import SmsChannel
from tocsin.notifier.channels.teams import TeamsChannel
from tocsin.notifier.channels.telegram import TelegramChannel
from tocsin.notifier.channels.voice import VoiceChannel
from tocsin.notifier.channels.webhook import WebhookChannel
from tocsin.notifier.channels.webpush import WebPushChannel

REGISTRY: dict[str, type[Channel]] = {
    "ntfy": NtfyChannel,
    "webhook": WebhookChannel,
    "log": LogChannel,
    "email": EmailChannel,
    "sms": SmsChannel,
    "voice": VoiceChannel,
    "pushover": PushoverChannel,
    "signal": SignalChannel,
    "telegram": TelegramChannel,
    "mattermost": MattermostChannel,
    "slack": SlackChannel,
    "discord": DiscordChannel,
    "teams": TeamsChannel,
    "webpush": WebPushChannel,
}
