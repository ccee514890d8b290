"""The notifier delivers: one durable consumer per channel kind, shared by any number of replicas."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
from nats.aio.msg import Msg
from opentelemetry import context as otel_context
from tenacity import AsyncRetrying, retry_if_result, stop_after_delay, wait_random_exponential

from tocsin.events import deadletters, deliveries, notify
from tocsin.events.base import Event, stable_id, utcnow
from tocsin.events.bus import Bus, extract_context
from tocsin.events.config import secret_fields
from tocsin.events.configbus import ConfigWatcher
from tocsin.events.directory import Directory
from tocsin.events.metrics import DELIVERIES
from tocsin.events.notify import NotificationRequested
from tocsin.events.observability import tracer
from tocsin.events.providers import PROVIDER_OF_KIND
from tocsin.events.sealing import Sealer
from tocsin.events.streams import DELIVERY_LEDGER_BUCKET, notifier_consumer
from tocsin.notifier.bundling import BUNDLED_MESSAGES, Sent, Throttle
from tocsin.notifier.channels import REGISTRY
from tocsin.notifier.channels.base import ActionLinks, Channel, DeliveryResult, Target
from tocsin.notifier.ledger import Entry, Ledger
from tocsin.notifier.netguard import GuardedResolver, PrivateAddressRefused, check_url
from tocsin.notifier.pacing import Pacer, SlotTooFar
from tocsin.notifier.policies import Bundling
from tocsin.notifier.posts import PostIndex
from tocsin.notifier.pump import Flow, LoopLag, pump
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
    def __init__(self, settings: Settings, bus: Bus, config: ConfigWatcher,
                 registry: dict[str, type[Channel]] | None = None) -> None:
        self.settings = settings
        self.bus = bus
        self.config = config
        self.registry = registry or REGISTRY
        self.kinds = settings.kinds or tuple(self.registry)
        self.links = ActionLinks(settings.public_url, settings.secret_key)
        self.pacer = Pacer(max_hold=settings.max_hold)
        self.throttle = Throttle(lambda m: self._send_with_retries(m, None))
        self.flows: dict[str, Flow] = {}
        self.sealer = Sealer(settings.secret_key) if settings.secret_key else None
        self.posts: PostIndex | None = None     # set by run(): messages a resolution edits
        unknown = [k for k in self.kinds if k not in self.registry]
        if unknown:
            raise ValueError(f"unknown channel kinds: {', '.join(unknown)} (known: {', '.join(self.registry)})")

    async def run(self) -> None:
        self.ledger = Ledger(await self.bus.kv(DELIVERY_LEDGER_BUCKET))
        self.posts = PostIndex(self.ledger.kv)
        lag = LoopLag()
        self.flows = {kind: Flow(self.settings.concurrency, self.settings.sends, lag=lag) for kind in self.kinds}
        async with self.sessions(), contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self.throttle.close)
            subs = [await self.bus.pull(notifier_consumer(kind)) for kind in self.kinds]
            await asyncio.gather(lag.run(), *(
                pump(sub, self._handle_alone, self.flows[kind], name=f"notifier-{kind}")
                for sub, kind in zip(subs, self.kinds, strict=True)))

    @contextlib.asynccontextmanager
    async def sessions(self) -> AsyncIterator[None]:
        """The outbound HTTP sessions, open for as long as the block runs."""
        async with contextlib.AsyncExitStack() as stack:
            # One session per setting of security.allow_private_networks, so a config change applies at once.
            sessions = {}
            for allow in (False, True):
                connector = aiohttp.TCPConnector(resolver=GuardedResolver(allow), limit=256)
                sessions[allow] = await stack.enter_async_context(aiohttp.ClientSession(
                    connector=connector, timeout=aiohttp.ClientTimeout(total=self.settings.http_timeout)))
            self._sessions = sessions
            yield

    @property
    def allow_private(self) -> bool:
        return (self.config.directory.config.security.allow_private_networks
                or os.environ.get("TOCSIN_ALLOW_PRIVATE_NETWORKS", "") in ("1", "true", "yes"))

    def channel(self, kind: str) -> Channel:
        return self.registry[kind](self._sessions[self.allow_private], self.links)

    def bundling(self, channel: Channel) -> Bundling | None:
        """The channel class's bundling, with the installation's window and threshold where set."""
        policy = channel.bundle
        if policy is None or self.settings.bundle_window == 0:
            return None
        return Bundling(
            threshold=policy.threshold if self.settings.bundle_threshold is None else self.settings.bundle_threshold,
            window=policy.window if self.settings.bundle_window is None else self.settings.bundle_window)

    async def _handle_alone(self, msg: Msg) -> None:
        # Each message stands alone: one that fails is handed back alone.
        try:
            await self._handle(msg)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            delivered = msg.metadata.num_delivered or 1
            if delivered >= self.settings.max_deliveries:
                # JetStream would stop delivering it without a word: keep it where an operator sees it.
                log.exception("notification on %s failed %d times; dead-lettered", msg.subject, delivered)
                with contextlib.suppress(Exception):
                    await self._dead_letter(msg, None, "max_deliveries", f"{type(exc).__name__}: {exc}"[:300])
                    await msg.term()
                return
            log.exception("notification on %s failed; it will be redelivered", msg.subject)
            with contextlib.suppress(Exception):
                await msg.nak(delay=5)

    async def _handle(self, msg: Msg) -> None:
        try:
            message = notify.decoder.decode(msg.data)
        except msgspec.DecodeError as exc:
            # No retry makes it readable: keep it for a person, then stop it coming back.
            log.error("notifier: undecodable command on %s dead-lettered: %s", msg.subject, exc)
            await self._dead_letter(msg, None, "undecodable", str(exc)[:300])
            await msg.term()
            return
        token = otel_context.attach(extract_context(msg))
        try:
            with _tracer.start_as_current_span("notifier.deliver", attributes={
                    "tocsin.notification_id": message.id, "tocsin.channel_kind": message.channel_kind}):
                await self.deliver(message, msg)
        finally:
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
        try:
            sent = await self._send(message, msg)
        except SlotTooFar as exc:
            # The destination's queue is long: come back when its slot is near, holding nothing meanwhile.
            if msg is None:
                raise
            await msg.nak(delay=exc.delay)
            return
        result = sent.result
        attempts += sent.tries
        if result.outcome == "ok":
            done = Entry(state="delivered", attempts=attempts, provider_id=result.provider_id,
                         bundle_id=sent.bundle_id)
            if self.posts and self.registry[message.channel_kind].supports_status_updates:
                await self.posts.remember(message, result.provider_id)
        elif result.outcome == "retry" and delivery_count < self.settings.max_deliveries and msg is not None:
            # Not within this deadline: hand it back to JetStream, to try again later (any replica).
            await asyncio.gather(
                self.ledger.put(message.id, Entry(state="sending", attempts=attempts, error=result.error)),
                self._publish([(deliveries.subject(message.channel_kind), deliveries.DeliveryAttempted(
                    id=stable_id("attempt", message.id, str(attempts)), aggregate_id=message.aggregate_id,
                    at=utcnow(), notification_id=message.id, channel_kind=message.channel_kind,
                    channel=message.channel, user=message.user, attempt=attempts, outcome="retry",
                    error=result.error))]))
            await msg.nak(delay=min(300.0, max(result.retry_after or 0.0, 2.0 ** min(delivery_count, 8))))
            DELIVERIES.inc(channel_kind=message.channel_kind, outcome="retry")
            return
        else:
            done = Entry(state="failed", attempts=attempts, error=result.error)
        # The ledger, the record and a dead letter are all written before the ack; none needs another first.
        writes = [self.ledger.put(message.id, done), self._record(message, done)]
        if done.state == "failed" and msg is not None:
            reason: deadletters.Reason = "permanent" if result.outcome == "permanent" else "max_deliveries"
            writes.append(self._dead_letter(msg, message, reason, done.error, attempts))
        await asyncio.gather(*writes)
        DELIVERIES.inc(channel_kind=message.channel_kind, outcome=done.state)
        if msg is not None:
            await msg.ack()

    async def _send(self, message: NotificationRequested, msg: Msg | None) -> Sent:
        """Send now, or, for a page to a contact that is getting a burst, inside a bundle."""
        channel = self.channel(message.channel_kind)
        policy = self.bundling(channel)
        if policy is not None and msg is not None and message.message_kind in BUNDLED_MESSAGES:
            target = target_for(self.config.directory, message, self.sealer)
            key = f"{message.channel_kind}:{channel.destination_key(message, target)}"
            joined = self.throttle.offer(key, policy, message)
            if joined is not None:
                with self._holding(message.channel_kind):
                    # Shielded: one page's task being cancelled must not cancel the bundle for the others.
                    return await asyncio.shield(joined)
        # On its last delivery a page waits for its slot however far it is: a NAK would be its end.
        patient = msg is None or msg.metadata.num_delivered >= self.settings.max_deliveries - 1
        result, tries = await self._send_with_retries(message, msg, patient=patient)
        return Sent(result, tries)

    async def send_now(self, message: NotificationRequested) -> tuple[DeliveryResult, int]:
        """Send one message outside the bus (no ledger, no bundling), retried within the send deadline."""
        return await self._send_with_retries(message, None)

    async def _send_with_retries(self, message: NotificationRequested, msg: Msg | None, *,
                                 patient: bool = False) -> tuple[DeliveryResult, int]:
        channel = self.channel(message.channel_kind)
        target = target_for(self.config.directory, message, self.sealer)
        if self.posts and channel.supports_status_updates:
            target = await self.posts.complete(message, target)
        tries = 0

        async def once() -> DeliveryResult:
            nonlocal tries
            if channel.rate_limit or channel.provider_rate_limit:
                with self._holding(message.channel_kind):
                    await self.pacer.wait(channel.destination_key(message, target), channel.rate_limit,
                                          channel.provider_key(target), channel.provider_rate_limit,
                                          patient=patient)
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

        started = time.monotonic()
        result = await once()
        if result.outcome == "retry":
            # Only a send that needs it pays for the retry machinery (a sixth of a delivery's CPU otherwise).
            retrying = AsyncRetrying(
                stop=stop_after_delay(max(0.0, self.settings.send_deadline - (time.monotonic() - started))),
                wait=wait_random_exponential(multiplier=0.2, max=5),
                retry=retry_if_result(lambda r: r.outcome == "retry"),
                retry_error_callback=lambda state: state.outcome.result())  # type: ignore[union-attr]
            first: DeliveryResult | None = result

            async def again() -> DeliveryResult:
                nonlocal first
                if first is not None:   # the answer already in hand counts as tenacity's first attempt
                    known, first = first, None
                    return known
                return await once()
            result = await retrying(again)
        if result.error:
            result = DeliveryResult(result.outcome, result.provider_id, target.scrub(result.error),
                                    result.retry_after)
        return result, tries

    def _holding(self, kind: str) -> contextlib.AbstractContextManager[None]:
        """While a message waits its turn, it leaves its place to one that can be worked on."""
        flow = self.flows.get(kind)
        return flow.hold() if flow is not None else contextlib.nullcontext()

    async def _record(self, message: NotificationRequested, entry: Entry) -> None:
        common: dict[str, Any] = {"aggregate_id": message.aggregate_id, "at": utcnow(), "notification_id": message.id,
                  "channel_kind": message.channel_kind, "channel": message.channel, "user": message.user}
        event: Event
        if entry.state == "delivered":
            event = deliveries.Delivered(id=stable_id("delivered", message.id), attempts=entry.attempts,
                                         provider_id=entry.provider_id, bundle_id=entry.bundle_id, **common)
        else:
            event = deliveries.DeliveryFailed(id=stable_id("failed", message.id), attempts=entry.attempts,
                                              error=entry.error, **common)
        await self._publish([(deliveries.subject(message.channel_kind), event)])

    async def _dead_letter(self, msg: Msg, message: NotificationRequested | None, reason: deadletters.Reason,
                           error: str, attempts: int = 0) -> None:
        kind = message.channel_kind if message else msg.subject.rpartition(".")[2]
        # One dead letter per notification (or per stored message, when it cannot be read), however often
        # this runs: the id is the Nats-Msg-Id.
        key = message.id if message else f"seq-{msg.metadata.sequence.stream}"
        await self._publish([(deadletters.subject(kind), deadletters.DeadLettered(
            id=stable_id("dead", key), aggregate_id=message.aggregate_id if message else "", at=utcnow(),
            notification_id=message.id if message else "", channel_kind=kind,
            channel=message.channel if message else "", user=message.user if message else "",
            reason=reason, error=error, attempts=attempts, subject=msg.subject,
            payload=base64.b64encode(msg.data).decode()))])

    async def _publish(self, items: list[tuple[str, Event]]) -> None:
        await self.bus.publish_many(items)


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
