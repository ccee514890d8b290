"""The notifier delivers: one durable consumer per channel kind, shared by any number of replicas."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

import aiohttp
from nats.aio.msg import Msg
from opentelemetry import context as otel_context
from tenacity import AsyncRetrying, retry_if_result, stop_after_delay, wait_random_exponential

from tocsin.events import deliveries, notify
from tocsin.events.base import Event, stable_id, utcnow
from tocsin.events.bus import Bus, consume, decode_or_drop, extract_context
from tocsin.events.config import secret_fields
from tocsin.events.configbus import ConfigWatcher
from tocsin.events.directory import Directory
from tocsin.events.metrics import DELIVERIES
from tocsin.events.notify import NotificationRequested
from tocsin.events.observability import tracer
from tocsin.events.providers import PROVIDER_OF_KIND
from tocsin.events.sealing import Sealer
from tocsin.events.streams import DELIVERY_LEDGER_BUCKET, notifier_consumer
from tocsin.notifier.channels import REGISTRY
from tocsin.notifier.channels.base import ActionLinks, Channel, DeliveryResult, Target
from tocsin.notifier.ledger import Entry, Ledger
from tocsin.notifier.netguard import GuardedResolver, PrivateAddressRefused, check_url
from tocsin.notifier.posts import PostIndex
from tocsin.notifier.settings import Settings

log = logging.getLogger("tocsin.notifier")
_tracer = tracer("notifier")


def target_for(directory: Directory, message: NotificationRequested, sealer: Sealer | None = None) -> Target:
    """The command's public fields, completed with the secrets held in this notifier's config view (sealed
    at rest and on the stream: opened here, the one service that uses them)."""
    open_ = sealer.unseal if sealer is not None else str
    config = directory.config
    secrets: dict[str, Any] = {}
    user, _, contact = message.channel.partition("/")
    if message.user and contact and user in config.users:
        secrets = config.users[user].contacts.get(contact, {})
    elif message.channel in config.channels:
        secrets = config.channels[message.channel]
    fields = dict(message.destination)
    fields.update({k: open_(str(v)) for k, v in secrets.items() if k in secret_fields(message.channel_kind) and v})
    provider_name = PROVIDER_OF_KIND.get(message.channel_kind, message.channel_kind)
    provider = {k: open_(str(v)) if k in secret_fields(provider_name) else str(v)
                for k, v in config.providers.get(provider_name, {}).items()}
    return Target(fields=fields, provider=provider, kind=message.channel_kind)


class Notifier:
    def __init__(self, settings: Settings, bus: Bus, config: ConfigWatcher) -> None:
        self.settings = settings
        self.bus = bus
        self.config = config
        self.kinds = settings.kinds or tuple(REGISTRY)
        self.links = ActionLinks(settings.public_url, settings.secret_key)
        self.sealer = Sealer(settings.secret_key) if settings.secret_key else None
        self.posts: PostIndex | None = None     # set by run(): messages a resolution edits
        unknown = [k for k in self.kinds if k not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown channel kinds: {', '.join(unknown)} (known: {', '.join(REGISTRY)})")

    async def run(self) -> None:
        self.ledger = Ledger(await self.bus.kv(DELIVERY_LEDGER_BUCKET))
        self.posts = PostIndex(self.ledger.kv)
        async with contextlib.AsyncExitStack() as stack:
            # One session per setting of security.allow_private_networks, so a config change applies at once.
            sessions = {}
            for allow in (False, True):
                connector = aiohttp.TCPConnector(resolver=GuardedResolver(allow), limit=256)
                sessions[allow] = await stack.enter_async_context(aiohttp.ClientSession(
                    connector=connector, timeout=aiohttp.ClientTimeout(total=self.settings.http_timeout)))
            self._sessions = sessions
            subs = [await self.bus.pull(notifier_consumer(kind)) for kind in self.kinds]
            await asyncio.gather(*(
                consume(sub, self._handle_batch, batch=self.settings.concurrency, name=f"notifier-{kind}")
                for sub, kind in zip(subs, self.kinds, strict=True)))

    @property
    def allow_private(self) -> bool:
        return (self.config.directory.config.security.allow_private_networks
                or os.environ.get("TOCSIN_ALLOW_PRIVATE_NETWORKS", "") in ("1", "true", "yes"))

    def channel(self, kind: str) -> Channel:
        return REGISTRY[kind](self._sessions[self.allow_private], self.links)

    async def _handle_batch(self, msgs: list[Msg]) -> None:
        # Each message stands alone: one that fails is handed back alone, never its whole batch.
        await asyncio.gather(*(self._handle_alone(msg) for msg in msgs))

    async def _handle_alone(self, msg: Msg) -> None:
        try:
            await self._handle(msg)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("notification on %s failed; it will be redelivered", msg.subject)
            with contextlib.suppress(Exception):
                await msg.nak(delay=5)

    async def _handle(self, msg: Msg) -> None:
        message = await decode_or_drop(msg, notify.decoder, "notifier")
        if message is None:
            return
        token = otel_context.attach(extract_context(msg))
        heartbeat = asyncio.create_task(_keep_in_progress(msg))
        try:
            with _tracer.start_as_current_span("notifier.deliver", attributes={
                    "tocsin.notification_id": message.id, "tocsin.channel_kind": message.channel_kind}):
                await self.deliver(message, msg)
        finally:
            heartbeat.cancel()
            otel_context.detach(token)

    async def deliver(self, message: NotificationRequested, msg: Msg | None = None) -> None:
        entry = await self.ledger.claim(message.id)
        if entry is not None and entry.state in ("delivered", "failed"):
            # Sent before (the command came again after a crash or a redelivery): record, do not send.
            await self._record(message, entry)
            if msg is not None:
                await msg.ack()
            return
        delivery_count = msg.metadata.num_delivered if msg is not None else 1
        attempts = (entry.attempts if entry else 0)
        result, tries = await self._send_with_retries(message, msg)
        attempts += tries
        if result.outcome == "ok":
            done = Entry(state="delivered", attempts=attempts, provider_id=result.provider_id)
            if self.posts and REGISTRY[message.channel_kind].supports_status_updates:
                await self.posts.remember(message, result.provider_id)
        elif result.outcome == "retry" and delivery_count < self.settings.max_deliveries and msg is not None:
            # Not within this deadline: hand it back to JetStream, to try again later (any replica).
            await self.ledger.put(message.id, Entry(state="sending", attempts=attempts, error=result.error))
            await self._publish([(deliveries.subject(message.channel_kind), deliveries.DeliveryAttempted(
                id=stable_id("attempt", message.id, str(attempts)), aggregate_id=message.aggregate_id,
                at=utcnow(), notification_id=message.id, channel_kind=message.channel_kind,
                channel=message.channel, user=message.user, attempt=attempts, outcome="retry",
                error=result.error))])
            await msg.nak(delay=min(300.0, 2.0 ** min(delivery_count, 8)))
            DELIVERIES.inc(channel_kind=message.channel_kind, outcome="retry")
            return
        else:
            done = Entry(state="failed", attempts=attempts, error=result.error)
        await self.ledger.put(message.id, done)
        await self._record(message, done)
        DELIVERIES.inc(channel_kind=message.channel_kind, outcome=done.state)
        if msg is not None:
            await msg.ack()

    async def _send_with_retries(self, message: NotificationRequested,
                                 msg: Msg | None) -> tuple[DeliveryResult, int]:
        channel = self.channel(message.channel_kind)
        target = target_for(self.config.directory, message, self.sealer)
        if self.posts and channel.supports_status_updates:
            target = await self.posts.complete(message, target)
        tries = 0

        async def once() -> DeliveryResult:
            nonlocal tries
            tries += 1
            try:
                # An address written literally in a URL never meets the guarded resolver.
                for url in {channel.endpoint(target), target.get("base_url"), target.get("rest_url")}:
                    if url:
                        check_url(url, self.allow_private)
                return await channel.send(message, target)
            except PrivateAddressRefused as exc:
                return DeliveryResult("permanent", error=str(exc))
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                cause = exc.__cause__ or exc
                if isinstance(cause, PrivateAddressRefused):
                    return DeliveryResult("permanent", error=str(cause))
                return DeliveryResult("retry", error=f"{type(exc).__name__}: {exc}"[:300])
            except Exception as exc:
                # A channel bug or a value the provider cannot take: record it, never loop on it.
                log.exception("channel %s failed on notification %s", message.channel_kind, message.id)
                return DeliveryResult("permanent", error=f"{type(exc).__name__}: {exc}"[:300])

        retrying = AsyncRetrying(
            stop=stop_after_delay(self.settings.send_deadline),
            wait=wait_random_exponential(multiplier=0.2, max=5),
            retry=retry_if_result(lambda r: r.outcome == "retry"),
            retry_error_callback=lambda state: state.outcome.result())  # type: ignore[union-attr]
        result: DeliveryResult = await retrying(once)
        if result.error:
            result = DeliveryResult(result.outcome, result.provider_id, target.scrub(result.error),
                                    result.retry_after)
        return result, tries

    async def _record(self, message: NotificationRequested, entry: Entry) -> None:
        common: dict[str, Any] = {"aggregate_id": message.aggregate_id, "at": utcnow(), "notification_id": message.id,
                  "channel_kind": message.channel_kind, "channel": message.channel, "user": message.user}
        event: Event
        if entry.state == "delivered":
            event = deliveries.Delivered(id=stable_id("delivered", message.id), attempts=entry.attempts,
                                         provider_id=entry.provider_id, **common)
        else:
            event = deliveries.DeliveryFailed(id=stable_id("failed", message.id), attempts=entry.attempts,
                                              error=entry.error, **common)
        await self._publish([(deliveries.subject(message.channel_kind), event)])

    async def _publish(self, items: list[tuple[str, Event]]) -> None:
        await self.bus.publish_many(items)


async def _keep_in_progress(msg: Msg, every: float = 5.0) -> None:
    """Tell JetStream this worker is still on the message, for as long as the send takes."""
    while True:
        await asyncio.sleep(every)
        with contextlib.suppress(Exception):
            await msg.in_progress()


async def run(settings: Settings, bus: Bus | None = None) -> None:
    own_bus = bus is None
    bus = bus or await Bus.connect(settings.nats_url, "tocsin-notifier")
    watcher = ConfigWatcher(bus)
    try:
        await bus.ensure_streams()
        await watcher.start()
        await Notifier(settings, bus, watcher).run()
    finally:
        await watcher.stop()
        if own_bus:
            with contextlib.suppress(Exception):
                await bus.close()
