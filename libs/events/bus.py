"""The NATS connection helper every service uses.

Publishing always sets `Nats-Msg-Id` (the event id, so a retried publish is stored once) and the W3C
`traceparent` of the current span, so one trace follows an alert from the intake request to the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec
import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, PubAck, StorageType
from nats.js.errors import APIError, BadRequestError, NotFoundError
from nats.js.kv import KeyValue
from opentelemetry import propagate

from tocsin.events.base import Event
from tocsin.events.puller import Puller, PullRefused
from tocsin.events.streams import (
    ALL_STREAMS,
    COUNTERS_BUCKET,
    DEDUP_BUCKET,
    DELIVERY_LEDGER_BUCKET,
    ConsumerDef,
)

log = logging.getLogger("tocsin.bus")

WRONG_LAST_SEQUENCE = 10071
_encoder = msgspec.json.Encoder()


class ConcurrencyConflict(Exception):
    """Somebody appended to the aggregate since we read it: reload and decide again."""


class Bus:
    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=5)

    @classmethod
    async def connect(cls, url: str, name: str) -> Bus:
        async def error_cb(exc: Exception) -> None:
            log.warning("nats connection error: %s", exc)

        nc = await nats.connect(
            servers=[u.strip() for u in url.split(",")], name=name, error_cb=error_cb,
            max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=5,
            allow_reconnect=True, ping_interval=10,
        )
        return cls(nc)

    async def close(self) -> None:
        # Not drain(): every consumer acks explicitly, so whatever is in flight is simply redelivered,
        # and draining waits on pull subscriptions that are parked in a fetch.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(3):
                await self.nc.flush(timeout=2)
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self.nc.close()

    @property
    def connected(self) -> bool:
        return self.nc.is_connected

    async def ensure_streams(self, replicas: int = 1) -> None:
        """Create every stream and bucket, or bring an existing one's settings up to date."""
        for stream in ALL_STREAMS:
            config = stream.config(replicas)
            try:
                await self.js.add_stream(config)
            except BadRequestError:
                await self.js.update_stream(config)
        for bucket, history, ttl in ((DELIVERY_LEDGER_BUCKET, 1, 30 * 86400), (DEDUP_BUCKET, 1, None),
                                     (COUNTERS_BUCKET, 1, None)):
            try:
                await self.js.key_value(bucket)
            except NotFoundError:
                await self.js.create_key_value(KeyValueConfig(
                    bucket=bucket, history=history, ttl=ttl, storage=StorageType.FILE,
                    replicas=replicas))

    async def kv(self, bucket: str) -> KeyValue:
        return await self.js.key_value(bucket)

    def headers(self, msg_id: str, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers: dict[str, str] = {"Nats-Msg-Id": msg_id}
        propagate.inject(headers)
        if extra:
            headers.update(extra)
        return headers

    async def publish(self, subject: str, event: Event, *, expected_last_subject_seq: int | None = None,
                      timeout: float = 5.0) -> PubAck:
        """Publish one event and wait for JetStream to have it. Raises ConcurrencyConflict when
        `expected_last_subject_seq` no longer holds."""
        extra = None
        if expected_last_subject_seq is not None:
            extra = {"Nats-Expected-Last-Subject-Sequence": str(expected_last_subject_seq)}
        try:
            return await self.js.publish(subject, _encoder.encode(event), timeout=timeout,
                                         headers=self.headers(event.id, extra))
        except APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                raise ConcurrencyConflict(subject) from exc
            raise

    async def publish_many(self, items: Sequence[tuple[str, Event]], timeout: float = 5.0, *,
                           own_trace: bool = False) -> list[PubAck]:
        """Publish several events concurrently; every one is stored (or known stored) when this returns.
        With `own_trace`, each event continues the trace it carries (a timer fired long after the request
        that asked for it) instead of the current span's."""
        futures = [await self.js.publish_async(
            subject, _encoder.encode(event),
            headers=self.headers(event.id, {"traceparent": event.traceparent}
                                 if own_trace and event.traceparent else None))
            for subject, event in items]
        async with asyncio.timeout(timeout):
            return list(await asyncio.gather(*futures))

    async def read_subject(self, stream: str, subject: str) -> list[tuple[int, bytes]]:
        """Every message on one subject, oldest first, as (stream sequence, data)."""
        out: list[tuple[int, bytes]] = []
        seq = 1
        while True:
            try:
                msg = await self.js.get_msg(stream, seq=seq, subject=subject, next=True, direct=True)
            except NotFoundError:
                return out
            assert msg.seq is not None
            out.append((msg.seq, msg.data or b""))
            seq = msg.seq + 1

    async def last_on_subject(self, stream: str, subject: str) -> tuple[int, bytes] | None:
        try:
            msg = await self.js.get_msg(stream, subject=subject, direct=True)
        except NotFoundError:
            return None
        assert msg.seq is not None
        return msg.seq, msg.data or b""

    async def pull(self, consumer: ConsumerDef) -> Puller:
        """Create the durable consumer if needed (idempotent) and start a puller on it."""
        try:
            # Creates the consumer, or updates the settings that may change (ack wait, limits) in place.
            await self.js.add_consumer(consumer.stream, consumer.config())
        except BadRequestError as exc:
            # Never delete and recreate: that would lose the consumer's position and replay the stream.
            log.error("consumer %s keeps its existing settings: %s", consumer.durable, exc)
        return await Puller.start(self.nc, consumer.stream, consumer.durable)


BatchHandler = Callable[[list[Msg]], Awaitable[None]]


async def next_batch(sub: Puller, batch: int, idle_timeout: float, name: str) -> list[Msg] | None:
    """Up to `batch` messages ([] after a quiet `idle_timeout`, a refusal or a connection hiccup, which it
    logs and waits out), or None once the connection is closed for good. Never swallows a cancellation."""
    try:
        msgs = await sub.fetch(batch, idle_timeout)
    except nats.errors.ConnectionClosedError:
        return None
    except PullRefused as exc:
        _raise_if_cancelling()
        if not exc.transient:
            log.warning("%s: pull refused: %s", name, exc)
        await asyncio.sleep(0.05 if exc.transient else 0.5)
        return []
    except Exception as exc:  # connection trouble: keep trying, the bus reconnects by itself
        _raise_if_cancelling()
        log.warning("%s: fetch failed: %s", name, exc)
        await asyncio.sleep(0.5)
        return []
    if not msgs:
        _raise_if_cancelling()
    return msgs


async def consume(sub: Puller, handle: BatchHandler, *, batch: int = 100, idle_timeout: float = 1.0,
                  name: str = "consumer") -> None:
    """Fetch batches forever and hand them to `handle`, which acks. A failing batch is not acked, so
    JetStream redelivers it after the consumer's ack wait; the loop itself keeps going. When the loop ends
    (cancelled, or the connection closed) the puller is closed: what it still held is NAKed."""
    try:
        while True:
            msgs = await next_batch(sub, batch, idle_timeout, name)
            if msgs is None:
                return
            if not msgs:
                continue
            try:
                await handle(msgs)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: batch failed; it will be redelivered", name)
                for msg in msgs:
                    with contextlib.suppress(Exception):
                        await msg.nak(delay=1)
    finally:
        await sub.close()


def _raise_if_cancelling() -> None:
    # A cancellation that arrives while the loop is between awaits must not be swallowed.
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def extract_context(msg: Msg) -> Any:
    return propagate.extract(msg.headers or {})


async def decode_or_drop(msg: Msg, decoder: msgspec.json.Decoder[Any], name: str) -> Any | None:
    """Decode a message; one that this version cannot read is terminated (never redelivered in a loop)
    and logged, so one bad message cannot stall a consumer."""
    try:
        return decoder.decode(msg.data)
    except msgspec.DecodeError as exc:
        log.error("%s: undecodable message on %s dropped: %s", name, msg.subject, exc)
        with contextlib.suppress(Exception):
            await msg.term()
        return None
