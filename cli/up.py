"""`tocsin up`: every service in one process, with an embedded NATS and Postgres unless URLs are given."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import asyncpg
from aiohttp import web

from tocsin import runtime
from tocsin.api.app import create_app as create_api
from tocsin.api.settings import Settings as ApiSettings
from tocsin.embedded import EmbeddedNats, embedded_postgres
from tocsin.events import keys, pg
from tocsin.events.base import utcnow
from tocsin.events.bus import Bus
from tocsin.events.configbus import ConfigWatcher
from tocsin.events.tasks import cancel_and_wait
from tocsin.events.web import parse_listen
from tocsin.intake import heartbeats, mail
from tocsin.intake.app import Intake
from tocsin.intake.settings import Settings as IntakeSettings
from tocsin.notifier import app as notifier
from tocsin.notifier.settings import Settings as NotifierSettings
from tocsin.router import app as router
from tocsin.router.settings import Settings as RouterSettings
from tocsin.scheduler import app as scheduler
from tocsin.scheduler.settings import Settings as SchedulerSettings

log = logging.getLogger("tocsin.up")

COMPONENTS = (("api", "tocsin.api"), ("scheduler", "tocsin.scheduler"))


async def migrate_all(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        applied = []
        for component, package in COMPONENTS:
            applied += await pg.migrate(conn, component, package)
        return applied
    finally:
        await conn.close()


async def pending_all(database_url: str) -> list[str]:
    conn = await asyncpg.connect(database_url)
    try:
        out = []
        for component, package in COMPONENTS:
            out += await pg.pending(conn, component, package)
        return out
    finally:
        await conn.close()


async def _bounded(what: str, step: Awaitable[object], seconds: float) -> bool:
    try:
        async with asyncio.timeout(seconds):
            await step
        return True
    except TimeoutError:
        log.error("shutdown: %s did not finish within %s s", what, seconds)
        return False


class Stack:
    """All five services on one bus connection and one pool; one HTTP listener for intake and API, beside
    it the mail (SMTP) and heartbeat (UDP) listeners of the intake.

    `smtp` / `udp` are listen addresses or "off"; None takes `TOCSIN_SMTP` / `TOCSIN_UDP`, else the
    defaults (127.0.0.1:2525, 127.0.0.1:9999), skipped with a warning when something else holds them."""

    def __init__(self, nats_url: str, database_url: str, *, http: str, config_file: str = "",
                 public_url: str = "", clock: Callable[[], datetime] = utcnow,
                 services: tuple[str, ...] = ("router", "scheduler", "notifier"),
                 smtp: str | None = None, udp: str | None = None, secret_key: bytes | None = None) -> None:
        self.nats_url, self.database_url, self.http = nats_url, database_url, http
        self.clock = clock
        self.services = services   # the consumers to run here; intake and API always are
        host, port = parse_listen(http, 8080)
        self.host, self.port = host, port
        public = public_url or os.environ.get("TOCSIN_PUBLIC_URL") or f"http://{host}:{port}"
        key = keys.secret_key() if secret_key is None else secret_key
        self.api_settings = replace(ApiSettings.from_env(), nats_url=nats_url, database_url=database_url,
                                    listen=http, public_url=public, config_file=config_file, secret_key=key)
        self.router_settings = replace(RouterSettings.from_env(), nats_url=nats_url, public_url=public)
        self.scheduler_settings = replace(SchedulerSettings.from_env(), nats_url=nats_url,
                                          database_url=database_url)
        self.notifier_settings = replace(NotifierSettings.from_env(), nats_url=nats_url, secret_key=key,
                                         public_url=public)
        self.intake_settings = replace(IntakeSettings.from_env(), nats_url=nats_url)
        if smtp is not None:
            self.intake_settings = replace(self.intake_settings, smtp_listen=smtp)
        if udp is not None:
            self.intake_settings = replace(self.intake_settings, udp_listen=udp)
        self.tasks: list[asyncio.Task[None]] = []
        self.runner: web.AppRunner | None = None
        self.listeners = contextlib.AsyncExitStack()
        self.mail: mail.MailListener | None = None
        self.heartbeats: heartbeats.HeartbeatListener | None = None

    async def start(self) -> None:
        await migrate_all(self.database_url)
        self.bus = await Bus.connect(self.nats_url, "tocsin-up")
        await self.bus.ensure_streams()
        self.pool = await asyncpg.create_pool(self.database_url, min_size=2, max_size=20)
        app = create_api(self.api_settings, bus=self.bus, pool=self.pool)
        intake = self.intake = Intake(self.intake_settings)
        intake.add_routes(app)
        self.intake_watcher = ConfigWatcher(self.bus)

        async def intake_resources(app: web.Application):  # type: ignore[no-untyped-def]
            await self.intake_watcher.start()
            intake.attach(self.bus, self.intake_watcher)
            yield
            await self.intake_watcher.stop()

        app.cleanup_ctx.append(intake_resources)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
        await self.runner.setup()   # applies the config file before the other services start
        site = web.TCPSite(self.runner, self.host, self.port)
        await site.start()
        self.mail = await self.listeners.enter_async_context(mail.serve(intake, self.intake_settings))
        self.heartbeats = await self.listeners.enter_async_context(
            heartbeats.serve(intake, self.intake_settings))
        runs = {
            "router": lambda: router.run(self.router_settings, self.bus, self.clock),
            "scheduler": lambda: scheduler.run(self.scheduler_settings, self.bus, self.pool, self.clock),
            "notifier": lambda: notifier.run(self.notifier_settings, self.bus),
        }
        self.tasks = [asyncio.create_task(runs[name](), name=name) for name in self.services]

    async def stop(self) -> None:
        pending = await cancel_and_wait(self.tasks)
        if pending:
            log.error("services still running at shutdown: %s", ", ".join(t.get_name() for t in pending))
        # Each step is bounded: a stop that hangs is worse than one that leaves a connection behind.
        await _bounded("listeners", self.listeners.aclose(), 10)
        if self.runner is not None:
            await _bounded("http", self.runner.cleanup(), 15)
        if not await _bounded("postgres pool", self.pool.close(), 10):
            self.pool.terminate()
        await _bounded("nats", self.bus.close(), 10)

    def doors(self) -> list[tuple[str, str]]:
        """The mail and heartbeat listeners that are open, as (name, address)."""
        out = []
        if self.mail is not None:
            out.append(("mail", self.mail.address))
        if self.heartbeats is not None:
            out.append(("UDP heartbeats", self.heartbeats.address))
        return out

    async def wait(self) -> None:
        """Until a service task dies (then raise its error) or the caller cancels."""
        done, _ = await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()


def up(config: str, data_dir: Path) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    lock = open(data_dir / "lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another `tocsin up` is running with data dir {data_dir}")
        return 1
    http = os.environ.get("TOCSIN_HTTP", "127.0.0.1:8080")
    nats_url = os.environ.get("TOCSIN_NATS_URL", "")
    database_url = os.environ.get("TOCSIN_DATABASE_URL", "")
    nats = pg_server = None
    try:
        if not nats_url:
            nats = EmbeddedNats(data_dir / "nats").start()
            nats_url = nats.url
        if not database_url:
            pg_server = embedded_postgres(data_dir / "postgres").start()
            database_url = pg_server.url()
        runtime.write(data_dir, runtime.Runtime(nats_url=nats_url, database_url=database_url, http=http,
                                                pid=os.getpid()))
        asyncio.run(_serve(nats_url, database_url, http, config, keys.secret_key(data_dir)))
        return 0
    finally:
        runtime.remove(data_dir)
        if pg_server:
            pg_server.stop()
        if nats:
            nats.stop()


async def _serve(nats_url: str, database_url: str, http: str, config: str, key: bytes) -> None:
    stack = Stack(nats_url, database_url, http=http, config_file=config, secret_key=key)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stack.start()
    doors = "".join(f", {name} on {where}" for name, where in stack.doors())
    print(f"tocsin is up: http://{stack.host}:{stack.port}  (intake and API{doors}; Ctrl-C stops)", flush=True)
    waiter = asyncio.create_task(stack.wait())
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        stopper.cancel()
        await stack.stop()
    if waiter.done() and not waiter.cancelled() and waiter.exception():
        raise waiter.exception()  # type: ignore[misc]
