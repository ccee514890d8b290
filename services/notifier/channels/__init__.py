"""The explicit registry of channel kinds (no folder scanning)."""

from __future__ import annotations

from tocsin.notifier.channels.base import Channel
from tocsin.notifier.channels.log import LogChannel
from tocsin.notifier.channels.ntfy import NtfyChannel
from tocsin.notifier.channels.webhook import WebhookChannel

REGISTRY: dict[str, type[Channel]] = {
    "ntfy": NtfyChannel,
    "webhook": WebhookChannel,
    "log": LogChannel,
}
