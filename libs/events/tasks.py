"""Stopping asyncio tasks for sure."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object]], seconds: float = 10.0) -> set[asyncio.Task[object]]:
    """Cancel, and cancel again until they are gone or `seconds` pass; returns those still running.

    Again, because a client library may swallow a cancellation that lands in the middle of one of its own
    requests (asyncio.wait_for on Python 3.11 can), and a single cancel would then wait on it forever."""
    pending = {t for t in tasks if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while pending and loop.time() < deadline:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.25)
    return pending
