"""The client side of a durable pull consumer: one pull request open at a time, each with its own reply subject.

Why not nats-py's `PullSubscription.fetch`: it reads every answer from one inbox and asks the server to expire
a request 0.1 ms before its own timeout. After an idle period the server's `408 Request Timeout` for the old
request can arrive after the client gave up on it; the next fetch then reads that 408 as "no messages" for its
own request, opens a second one, and the next real message can sit until the older request expires (~1 s).

Here every pull request `n` is sent with the reply subject `<inbox>.<n>`, on one wildcard subscription
`<inbox>.*` per puller (no SUB/UNSUB per request). So:

- A status (404/408/409) goes to the reply subject of the request it ends, so it ends exactly that request;
  a status for an older request is counted (`stats.stale_statuses`) and ignored.
- The puller waits for the server to end request `n` (its batch filled, or a status for `n`) before it sends
  `n + 1`, so at most one request is open at the server. Its own timer (the request's expiry plus a grace) is
  only a safety net for an answer lost with the connection; a request given up on is counted as `abandoned`.
- A delivered message carries the stream's subject, not the reply subject, so it cannot say which request it
  answers. One that arrives while no request is open (for a request given up on, or one a reconnect carried
  over) is still a message JetStream delivered to this consumer, with its ack-wait clock running: it is handed
  to the handler in the next batch, not dropped and not NAKed (a NAK would only make it come back later, and
  use up one of the consumer's `max_deliver` attempts). `stats.stale_messages` counts them.

Requests are `no_wait` with an `expires`: the server holds the request while nothing is pending, hands over
what is there as soon as anything is (up to the batch), then ends it with a 408 at once. So an idle consumer
costs one request per `expires`, and a message that arrives is answered without waiting for the expiry.

See NATS ADR-13 (pull requests) for the `$JS.API.CONSUMER.MSG.NEXT` request and its statuses.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from dataclasses import dataclass

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import ConnectionClosedError
from nats.js.api import Header

log = logging.getLogger("tocsin.bus")

# Status codes of the pull protocol (ADR-13).
HEARTBEAT = "100"
NO_MESSAGES = "404"
REQUEST_TIMEOUT = "408"
CONFLICT = "409"
# How long past a request's expiry the puller waits for the server's answer before it gives the request up.
GRACE = 1.0


class PullRefused(Exception):
    """The server ended a pull request before its expiry without any message (409 Consumer Deleted,
    Exceeded MaxWaiting, a 408 Requests Pending while other requests claim every pending message, ...)."""

    def __init__(self, status: str, description: str) -> None:
        super().__init__(f"{status} {description}".strip())
        self.status = status
        self.description = description

    @property
    def transient(self) -> bool:
        # Other pullers (replicas) hold the pending messages for now: try again shortly, quietly.
        return self.status == REQUEST_TIMEOUT


@dataclass
class PullStats:
    """What the puller did, for tests and benches (counters only; nothing reads them in production)."""

    requests: int = 0          # pull requests sent
    filled: int = 0            # requests that got their whole batch (the server sends no status then)
    ended: int = 0             # requests the server ended with a status for that request
    abandoned: int = 0         # requests given up on without an answer (answers for them count as stale)
    messages: int = 0          # messages received for the open request
    stale_messages: int = 0    # messages received for a request no longer open: handled all the same
    stale_statuses: int = 0    # statuses for a request no longer open: ignored
    heartbeats: int = 0


class Puller:
    """Pulls batches from one durable consumer. Create with `await Puller.start(...)`; `fetch` from one task."""

    def __init__(self, nc: NATS, stream: str, durable: str, api_prefix: str = "$JS.API") -> None:
        self.nc = nc
        self.stream = stream
        self.durable = durable
        self.next_subject = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.inbox = nc.new_inbox()
        self.stats = PullStats()
        self._sub: Subscription | None = None
        self._number = 0                      # the last request number sent
        self._open: int | None = None         # the request the server may still answer, if any
        self._open_until = 0.0                # monotonic time after which the open request is given up on
        self._wanted = 0                      # the open request's batch
        self._got = 0                         # messages received for it so far
        self._refusal: PullRefused | None = None
        self._changed = asyncio.Event()       # set when the open request ends
        self._buffer: collections.deque[Msg] = collections.deque()
        self._closing = False

    @classmethod
    async def start(cls, nc: NATS, stream: str, durable: str, api_prefix: str = "$JS.API") -> Puller:
        puller = cls(nc, stream, durable, api_prefix)
        puller._sub = await nc.subscribe(f"{puller.inbox}.*", cb=puller._on_msg)
        return puller

    @property
    def open_request(self) -> int | None:
        return self._open

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    async def fetch(self, batch: int, expires: float) -> list[Msg]:
        """Up to `batch` messages; [] when none came within `expires` seconds. Raises PullRefused when the
        server refused the request, ConnectionClosedError once the connection is closed for good."""
        if self._sub is None or self._closing:
            raise RuntimeError("puller not started, or closed")
        if self._open is None and not self._buffer:
            if not self.nc.is_connected:
                if self.nc.is_closed:
                    raise ConnectionClosedError
                # Reconnecting: a request now would wait in the client's buffer and reach the server late,
                # beside the next one. Wait for the connection instead.
                await asyncio.sleep(min(expires, 0.5))
                return []
            await self._request(batch, expires)
        if self._open is not None:
            await self._wait()
        if self._refusal is not None:
            refusal, self._refusal = self._refusal, None
            if not self._buffer:
                raise refusal
        return [self._buffer.popleft() for _ in range(min(batch, len(self._buffer)))]

    async def close(self) -> None:
        """Stop pulling. Messages that reach this puller from now on, or that it holds and never handed out,
        are NAKed so they go to another puller at once instead of waiting out the ack wait."""
        if self._closing:
            return
        self._closing = True
        self._open = None
        for msg in list(self._buffer):
            await _nak(msg)
        self._buffer.clear()
        if self._sub is None or self.nc.is_closed:
            return
        with contextlib.suppress(Exception):
            if self.nc.is_connected:
                # drain: unsubscribe, then a round trip, so every message the server sent before it saw the
                # unsubscribe still reaches `_on_msg` (which NAKs it now) instead of being dropped.
                async with asyncio.timeout(2):
                    await self._sub.drain()
            else:   # reconnecting: nothing more can arrive; just do not subscribe again on reconnect
                await self._sub.unsubscribe()

    async def _request(self, batch: int, expires: float) -> None:
        self._number += 1
        n = self._number
        self._open, self._wanted, self._got, self._refusal = n, batch, 0, None
        self._open_until = time.monotonic() + expires + GRACE
        self._changed.clear()
        self.stats.requests += 1
        payload = {"batch": batch, "expires": int(expires * 1e9), "no_wait": True}
        await self.nc.publish(self.next_subject, json.dumps(payload).encode(), reply=f"{self.inbox}.{n}")

    async def _wait(self) -> None:
        """Until the open request ends: its batch filled, a status for it, or the safety timer."""
        n = self._open
        try:
            while self._open == n:
                self._changed.clear()
                async with asyncio.timeout(max(0.0, self._open_until - time.monotonic())):
                    await self._changed.wait()
        except TimeoutError:
            if self._open == n:
                # No answer at all: the connection lost it. Anything that still comes for it is stale.
                self._open = None
                self.stats.abandoned += 1
                log.info("%s: pull request %d got no answer; giving it up", self.durable, n)
        except asyncio.CancelledError:
            # Cancelled mid-request: the request is left to the server (close() NAKs what it still sends).
            if self._open == n:
                self._open = None
            raise

    async def _on_msg(self, msg: Msg) -> None:
        status = msg.headers.get(Header.STATUS) if msg.headers else None
        if not status:
            await self._on_delivered(msg)
            return
        if status == HEARTBEAT:
            self.stats.heartbeats += 1
            return
        # A status goes to the reply subject of the request it ends: `<inbox>.<n>`.
        if msg.subject != f"{self.inbox}.{self._open}":
            self.stats.stale_statuses += 1
            return
        self._open = None
        self.stats.ended += 1
        description = (msg.headers or {}).get(Header.DESCRIPTION, "")
        # 408 "Request Timeout" is the expiry, or the end of a no_wait request that got messages (so is 404
        # after messages); anything else ending a request that got nothing is a refusal.
        if self._got == 0 and not (status == REQUEST_TIMEOUT and description == "Request Timeout"):
            self._refusal = PullRefused(status, description)
        self._changed.set()

    async def _on_delivered(self, msg: Msg) -> None:
        # A delivered message carries the stream's subject, not the reply subject, so it cannot say which
        # request it answers: one that comes while a request is open is counted for that request.
        if self._closing:
            await _nak(msg)
            return
        self._buffer.append(msg)
        if self._open is None:
            self.stats.stale_messages += 1
            return
        self.stats.messages += 1
        self._got += 1
        if self._got >= self._wanted:
            self._open = None   # the whole batch came: the server has ended the request, silently
            self.stats.filled += 1
            self._changed.set()


async def _nak(msg: Msg) -> None:
    with contextlib.suppress(Exception):
        await msg.nak()
