"""Where a channel's message about an incident is, so that the resolution edits it instead of posting anew.

When a channel that `supports_status_updates` delivers a page to a shared channel, the provider's id of the
message (a Mattermost post id, a Telegram `chat:message` id) is kept under `post.<incident>.<channel>` in
the delivery-ledger bucket. The resolution notice for that incident and channel then carries it to the
channel as the `update_id` field, and the channel edits the message (dropping its buttons) rather than
adding another one. A missing id only means a new message, as before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from tocsin.events.notify import NotificationRequested
from tocsin.notifier.channels.base import Target

REMEMBERED = ("page", "escalation", "reminder")
log = logging.getLogger("tocsin.notifier.posts")


class PostIndex:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    @staticmethod
    def key(message: NotificationRequested) -> str:
        # Channel names may hold characters a KV key may not (`alice/tg`): a digest names them.
        return f"post.{message.aggregate_id}.{hashlib.sha256(message.channel.encode()).hexdigest()[:24]}"

    async def remember(self, message: NotificationRequested, provider_id: str) -> None:
        """Best effort: the page is sent whatever happens here, and must not be sent again because the index
        could not be written (the ledger is written after this)."""
        if provider_id and message.aggregate_id and message.message_kind in REMEMBERED:
            try:
                await self.kv.put(self.key(message), provider_id.encode())
            except Exception as exc:   # any failure only costs the later edit
                log.warning("could not remember message %s of notification %s: %s", provider_id, message.id,
                            type(exc).__name__)

    async def complete(self, message: NotificationRequested, target: Target) -> Target:
        """The target of a resolution notice, with the id of the message to edit when there is one."""
        if message.message_kind != "resolved" or not message.aggregate_id:
            return target
        try:
            entry = await self.kv.get(self.key(message))
        except KeyNotFoundError:
            return target
        except Exception as exc:   # without the index, the notice is posted anew
            log.warning("could not look up the message to edit for %s: %s", message.id, type(exc).__name__)
            return target
        if not entry.value:
            return target
        return dataclasses.replace(target, fields={**target.fields, "update_id": entry.value.decode()})
