"""Per-contact throttle: a burst of pages to one destination becomes one message that lists them.

The first `threshold` pages to a destination within `window` seconds go out on their own, at once. A page
past that opens a bundle: it and every page for the same destination that follows are held (their
JetStream messages kept in progress, unacked) until the window has room again, then go out as ONE
message, "5 more incidents: #43, #44, ...", and every page of the bundle is recorded as delivered with
the bundle's provider id. Nothing is dropped: a bundle that fails fails (or is retried) for each of its
pages, and a notifier that dies while holding a bundle leaves its pages unacked, to be redelivered.

Kept per process, like the rate limits: with two replicas a storm to one phone can become two bundles.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tocsin.events.base import stable_id
from tocsin.events.notify import NotificationRequested
from tocsin.notifier.channels.base import DeliveryResult
from tocsin.notifier.policies import Bundling

log = logging.getLogger("tocsin.notifier")

# What may be folded into a bundle: pages about incidents. A resolve, a test or a shift reminder goes alone.
BUNDLED_MESSAGES = frozenset({"page", "escalation", "reminder"})
SEVERITY_ORDER = ("critical", "error", "warning", "info")


@dataclass(frozen=True)
class Sent:
    """What became of one page: the provider's answer, the tries it took, and the bundle it went in."""

    result: DeliveryResult
    tries: int
    bundle_id: str = ""


SendFn = Callable[[NotificationRequested], Awaitable[tuple[DeliveryResult, int]]]


@dataclass
class _Bundle:
    members: list[NotificationRequested]
    done: asyncio.Future[Sent]


@dataclass
class _Destination:
    sent: deque[float] = field(default_factory=deque)
    open: _Bundle | None = None


class Throttle:
    def __init__(self, send: SendFn, clock: Callable[[], float] = time.monotonic) -> None:
        self._send = send
        self.clock = clock
        self._destinations: dict[str, _Destination] = {}
        self._flushes: set[asyncio.Task[None]] = set()
        self._offers = 0

    def offer(self, key: str, policy: Bundling, message: NotificationRequested) -> asyncio.Future[Sent] | None:
        """None: send this page now, on its own. A future: the page joined a bundle; it resolves when the
        bundle went out (or failed)."""
        now = self.clock()
        self._forget_quiet(now, policy.window)
        dest = self._destinations.setdefault(key, _Destination())
        while dest.sent and dest.sent[0] <= now - policy.window:
            dest.sent.popleft()
        if dest.open is not None:
            dest.open.members.append(message)
            return dest.open.done
        if len(dest.sent) < policy.threshold:
            dest.sent.append(now)
            return None
        bundle = _Bundle(members=[message], done=asyncio.get_running_loop().create_future())
        dest.open = bundle
        delay = dest.sent[0] + policy.window - now   # when the oldest send leaves the window
        task = asyncio.create_task(self._flush(key, dest, bundle, delay))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)
        return bundle.done

    async def _flush(self, key: str, dest: _Destination, bundle: _Bundle, delay: float) -> None:
        await asyncio.sleep(max(0.0, delay))
        dest.open = None
        dest.sent.append(self.clock())
        members = bundle.members
        try:
            if len(members) == 1:
                result, tries = await self._send(members[0])
                sent = Sent(result, tries)
            else:
                message = bundle_message(members)
                log.info("bundling %d pages to %s into one message", len(members), key)
                result, tries = await self._send(message)
                sent = Sent(result, tries, bundle_id=message.id)
        except BaseException as exc:
            if not bundle.done.done():
                bundle.done.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        if not bundle.done.done():
            bundle.done.set_result(sent)

    def _forget_quiet(self, now: float, window: float) -> None:
        self._offers += 1
        if self._offers % 1000 == 0:
            for key in [k for k, d in self._destinations.items()
                        if d.open is None and (not d.sent or d.sent[-1] <= now - window)]:
                del self._destinations[key]

    async def close(self) -> None:
        for task in list(self._flushes):
            task.cancel()
        for task in list(self._flushes):
            with contextlib.suppress(BaseException):
                await task


def bundle_message(members: list[NotificationRequested]) -> NotificationRequested:
    """One message for several pages to one destination. It names no single incident (so it carries no
    answer buttons) and links to the incident list."""
    first = members[0]
    severity = min((m.severity for m in members),
                   key=lambda s: SEVERITY_ORDER.index(s) if s in SEVERITY_ORDER else len(SEVERITY_ORDER))
    numbers = ", ".join(f"#{m.incident_number}" for m in members if m.incident_number)
    lines = [f"#{m.incident_number} [{m.severity.upper()}] {m.title}" if m.incident_number
             else f"[{m.severity.upper()}] {m.title}" for m in members]
    link = first.link.rsplit("/", 1)[0] if first.link else ""
    return NotificationRequested(
        id=stable_id("bundle", *sorted(m.id for m in members)), at=first.at, channel_kind=first.channel_kind,
        channel=first.channel, user=first.user, destination=first.destination, message_kind="page",
        title=f"{len(members)} more incidents: {numbers}" if numbers else f"{len(members)} more pages",
        body="\n".join(lines), severity=severity, link=link, status="triggered")
