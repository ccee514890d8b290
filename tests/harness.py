"""Helpers for the tests: fake provider servers, a movable clock, and a handle on a running stack."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import nats
from aiohttp import web

from tocsin.api.auth import create_token
from tocsin.events.bus import Bus
from tocsin.up import Stack

# The smallest working installation: one person, paged through the terminal, one team and its policy.
ONE_TEAM = """users:
  alice: {contacts: {out: {type: log}}}
teams:
  infra:
    members: [alice]
    rotations: {primary: {members: [alice], shift: 1d, start: "2026-01-01T09:00"}}
    escalation: {steps: [{notify: ["rotation:primary"]}]}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def purge_nats(url: str) -> None:
    """Start from nothing on an external server: drop every stream (KV buckets are streams too)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for info in await js.streams_info():
            await js.delete_stream(info.config.name)
    finally:
        await nc.close()


class FakeClock:
    """Real time plus an offset that tests move forward instead of sleeping."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    query: str = ""

    def json(self) -> Any:
        import json
        return json.loads(self.body)


Responder = Callable[[Received], Awaitable[web.StreamResponse] | web.StreamResponse]


class FakeProvider:
    """A local HTTP server that records every request and answers as told (default 200 `{"id": ...}`).

    `answers` is a list consumed one request at a time: an int status, or a callable responder.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.requests: list[Received] = []
        self.answers: list[int | Responder] = []
        self.default: int | Responder = 200
        self.port = free_port()
        self.arrived = asyncio.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FakeProvider:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received = Received(request.method, request.path, dict(request.headers), await request.read(),
                            time.monotonic(), request.query_string)
        self.requests.append(received)
        self.arrived.set()
        answer = self.answers.pop(0) if self.answers else self.default
        if callable(answer):
            result = answer(received)
            if asyncio.iscoroutine(result):
                result = await result
            return result  # type: ignore[return-value]
        return web.json_response({"id": f"{self.name}-{len(self.requests)}"}, status=answer)

    async def wait_for(self, count: int, timeout: float = 15) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: {len(self.requests)} requests, expected {count}")
            await asyncio.sleep(0.02)
        return self.requests


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15, interval: float = 0.05) -> Any:
    """Poll until `check` returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


@dataclass
class StackHandle:
    nats_url: str
    database_url: str
    clock: FakeClock
    tmp: Path
    stack: Stack | None = None
    port: int = 0
    session: aiohttp.ClientSession | None = None
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, config_yaml: str,
                    services: tuple[str, ...] = ("router", "scheduler", "notifier")) -> StackHandle:
        path = self.tmp / "tocsin.yaml"
        path.write_text(textwrap.dedent(config_yaml))
        self.port = free_port()
        self.stack = Stack(self.nats_url, self.database_url, http=f"127.0.0.1:{self.port}",
                           config_file=str(path), clock=self.clock, services=services)
        await self.stack.start()
        self.session = aiohttp.ClientSession()
        return self

    async def stop(self) -> None:
        if self.session:
            await self.session.close()
        if self.stack:
            await self.stack.stop()

    @property
    def bus(self) -> Bus:
        assert self.stack
        return self.stack.bus

    @property
    def pool(self) -> asyncpg.Pool:
        assert self.stack
        return self.stack.pool

    async def token(self, user: str, scopes: tuple[str, ...] = ("admin",)) -> str:
        if user not in self.tokens:
            async with self.pool.acquire() as conn:
                self.tokens[user] = await create_token(conn, user, scopes=scopes)
        return self.tokens[user]

    async def post_alert(self, source: str, body: bytes | str | dict[str, Any], token: str,
                         headers: dict[str, str] | None = None) -> tuple[int, Any]:
        assert self.session
        data = body if isinstance(body, bytes | str) else __import__("json").dumps(body)
        hdrs = {"Content-Type": "application/json", "Authorization": f"Bearer {token}", **(headers or {})}
        async with self.session.post(f"{self.url}/api/v1/intake/{source}", data=data, headers=hdrs) as resp:
            return resp.status, await resp.json(content_type=None)

    async def api(self, method: str, path: str, user: str = "alice", json: Any = None) -> tuple[int, Any]:
        assert self.session
        token = await self.token(user)
        async with self.session.request(method, f"{self.url}{path}", json=json,
                                        headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status, await resp.json(content_type=None)

    async def incidents(self, **query: str) -> list[dict[str, Any]]:
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        status, body = await self.api("GET", f"/api/v1/incidents?{qs}")
        assert status == 200, body
        return body["items"]  # type: ignore[no-any-return]

    async def incident(self, incident_id: str) -> dict[str, Any]:
        status, body = await self.api("GET", f"/api/v1/incidents/{incident_id}")
        assert status == 200, body
        return body  # type: ignore[no-any-return]


class ServiceProcess:
    """One Tocsin service as its own OS process (`python -m tocsin <service>`), to kill for real."""

    def __init__(self, service: str, nats_url: str, database_url: str, log: Path, *args: str) -> None:
        self.argv = [sys.executable, "-m", "tocsin", service, *args]
        self.env = {**os.environ, "TOCSIN_NATS_URL": nats_url, "TOCSIN_DATABASE_URL": database_url}
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=out)
        return self

    def kill(self) -> None:
        assert self.proc
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
