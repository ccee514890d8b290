"""`GET /api/v1/stream`: incident changes as server-sent events, so pages update without a reload.

The projector calls `pg_notify` in the transaction that stores a change, so Postgres delivers the notice
only once the change is committed and readable. Each API replica LISTENs on one dedicated connection of
its own (not a pool connection, which would lose the LISTEN when returned) and fans each notice out to
its open streams. Any replica sees every change, whichever replica projected it.

Events (only of incidents of teams the caller has a role in, all for an administrator):
- `incident`: the incident in the list shape, after any change to it (opened, acknowledged, note, ...);
- `delivery`: `{"incident_id"}` after a delivery of that incident changed (not when the delivery is
  stored before its incident, which the projector may do as it follows each stream on its own: the
  incident's own event follows then);
- `hello` once at the start, and a comment line every `heartbeat` seconds so proxies keep the stream open.
A client that reconnects should reload what it shows: changes while it was away are not replayed. A
replica that loses its LISTEN connection ends its open streams and answers 503 until it listens again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any, Literal

import asyncpg
import msgspec
from aiohttp import web

from tocsin.api.context import Context
from tocsin.api.incidents import view
from tocsin.events.openapi import Endpoint
from tocsin.events.web import ApiError

log = logging.getLogger("tocsin.api.stream")
CHANNEL = "tocsin_incidents"
APPLICATION_NAME = "tocsin-stream"   # names the LISTEN connection in pg_stat_activity
MAX_QUEUE = 1000          # a stream that falls this far behind is ended; the client reconnects and reloads
_CLOSE: dict[str, Any] = {"event": "close"}


def notice(kind: str, incident_id: str) -> str:
    """The payload the projector sends (well under Postgres's 8,000-byte limit)."""
    return json.dumps({"kind": kind, "id": incident_id})


class Broadcaster:
    """One LISTEN connection per API process, fanning notices out to every open stream."""

    def __init__(self, heartbeat: float = 15) -> None:
        self.dsn = ""
        self.pool: asyncpg.Pool | None = None
        self.heartbeat = heartbeat
        self.queues: set[asyncio.Queue[dict[str, Any]]] = set()
        self.listening = asyncio.Event()
        self._notices: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.closing = False

    async def start(self, dsn: str, pool: asyncpg.Pool) -> None:
        self.dsn, self.pool, self.closing = dsn, pool, False
        self._tasks = [asyncio.create_task(self._listen(), name="stream-listen"),
                       asyncio.create_task(self._publish(), name="stream-publish")]
        try:
            await asyncio.wait_for(self.listening.wait(), 10)
        except TimeoutError:
            log.warning("stream: not listening yet; /api/v1/stream answers 503 until it is")

    async def stop(self) -> None:
        self.close_streams()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def close_streams(self) -> None:
        """Tell every open stream to end (at shutdown, before the server waits for handlers)."""
        self.closing = True
        self._end_streams()

    def _end_streams(self) -> None:
        for queue in list(self.queues):
            self.queues.discard(queue)
            while True:   # the close goes in even when the queue is full
                try:
                    queue.put_nowait(_CLOSE)
                    break
                except asyncio.QueueFull:
                    queue.get_nowait()

    async def _listen(self) -> None:
        delay = 0.5
        lost = False
        while True:
            conn = None
            try:
                conn = await asyncpg.connect(self.dsn, server_settings={"application_name": APPLICATION_NAME})
                await conn.add_listener(CHANNEL, self._on_notice)
                self.listening.set()
                if lost:
                    log.info("stream: listening again")
                    lost = False
                delay = 0.5
                while not conn.is_closed():
                    await asyncio.sleep(5)
                    await conn.fetchval("SELECT 1", timeout=5)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("stream: listen connection lost (%s); connecting again", exc)
            finally:
                # Notices sent while nobody listens are gone: end the open streams, so their clients
                # reconnect (refused until this replica listens again) and read again what they show.
                lost = True
                self.listening.clear()
                self._end_streams()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=2)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)

    def _on_notice(self, conn: object, pid: int, channel: str, payload: str) -> None:
        try:
            data = json.loads(payload)
            self._notices.put_nowait((str(data["kind"]), str(data["id"])))
        except (ValueError, KeyError, TypeError):
            log.warning("stream: unreadable notice %r", payload[:200])

    async def _publish(self) -> None:
        """Read each changed incident once per process, however many streams are open."""
        while True:
            kind, incident_id = await self._notices.get()
            if not self.queues or self.pool is None:
                continue
            try:
                row = await self.pool.fetchrow("SELECT * FROM api_incidents WHERE id = $1", incident_id)
            except Exception as exc:
                log.warning("stream: cannot read incident %s: %s", incident_id, exc)
                continue
            if row is None:
                continue
            # The list shape, encoded as the API encodes it (msgspec: times as RFC 3339).
            data = msgspec.to_builtins(view(row)) if kind == "incident" else {"incident_id": incident_id}
            event = {"event": kind, "team": row["team"], "data": data}
            for queue in list(self.queues):
                try:
                    queue.put_nowait(event)
                except asyncio.QueueFull:
                    self.queues.discard(queue)
                    queue.get_nowait()          # make room for the close, so the stream ends
                    queue.put_nowait(_CLOSE)


BROADCASTER = web.AppKey("tocsin_stream", Broadcaster)


def _frame(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def stream(request: web.Request) -> web.StreamResponse:
    ctx = Context.of(request)
    caller = await ctx.caller(request)
    caller.require("incidents:read")
    # Like the incident list: only the teams the caller has a role in (an administrator sees all). Roles
    # are read once, when the stream opens; a client reconnects to pick up a changed role.
    visible = caller.visible_teams()
    broadcaster = request.app[BROADCASTER]
    if broadcaster.closing or not broadcaster.listening.is_set():
        raise ApiError(503, "the event stream is not available right now", headers={"Retry-After": "2"})
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache, no-transform",
        "X-Accel-Buffering": "no"})
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_QUEUE)
    broadcaster.queues.add(queue)
    try:
        await response.prepare(request)
        await response.write(b"retry: 3000\n\n" + _frame("hello", {"heartbeat": broadcaster.heartbeat}))
        while True:
            try:
                async with asyncio.timeout(broadcaster.heartbeat):
                    event = await queue.get()
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if event is _CLOSE:
                break
            if visible is not None and event["team"] not in visible:
                continue
            await response.write(_frame(event["event"], event["data"]))
    except ConnectionResetError:
        pass   # the client went away
    finally:
        broadcaster.queues.discard(queue)
    return response


def install(app: web.Application, heartbeat: float = 15) -> Broadcaster:
    """Put a broadcaster on the app (started with the app's resources); at shutdown, end open streams
    first, so a stop never waits on them."""
    broadcaster = Broadcaster(heartbeat)
    app[BROADCASTER] = broadcaster

    async def end_streams(app: web.Application) -> None:
        broadcaster.close_streams()
    app.on_shutdown.append(end_streams)
    return broadcaster


class StreamEvent(msgspec.Struct, kw_only=True):
    """One server-sent event; `data` is JSON: `{"heartbeat"}`, an incident in the list shape, or
    `{"incident_id"}`."""

    event: Literal["hello", "incident", "delivery"]
    data: str


ENDPOINTS = [
    Endpoint("GET", "/api/v1/stream", stream, "Incident changes as server-sent events", scope="incidents:read",
             team="each incident's team (filtered to the caller's)", content="text/event-stream",
             responses={200: StreamEvent}, errors=(503,), tag="incidents"),
]
