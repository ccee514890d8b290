"""UDP heartbeats: check each datagram and store the accepted ones on the HEARTBEATS stream.

Checks, in order, each failure dropped and counted: parseable JSON object of at most 8 KiB (`malformed`),
a host named in the config's `hosts:` (`unknown_host`), the host key's signature when it has one
(`bad_signature`), fields of the right types (`malformed`), `ts` within two minutes of now (`stale`), and
the host's sequence (`replayed`): `seq` above the last accepted one, except that a `boot` starts over,
and a boot must be newer than anything accepted from the host before. Paging on heartbeats (overdue,
boot, thresholds) is not done here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tocsin.events import heartbeats
from tocsin.events.heartbeats import KINDS, MAX_DATAGRAM, HeartbeatReceived
from tocsin.events.streams import HEARTBEATS
from tocsin.intake.settings import DEFAULT_UDP, Settings, address_of, door

if TYPE_CHECKING:
    from tocsin.intake.app import Intake

log = logging.getLogger("tocsin.intake.heartbeats")

MAX_SKEW = 120.0                # seconds a datagram's `ts` may be away from now
MAX_INTERVAL = 7 * 86400
MAX_METRICS = 256
MAX_METRIC_NAME = 200
QUEUE_SIZE = 10_000
COUNTERS = ("accepted", "unknown_host", "bad_signature", "malformed", "stale", "replayed", "overflow",
            "unpublished")


class Malformed(ValueError):
    pass


@dataclass(frozen=True)
class Beat:
    host: str
    event: heartbeats.HeartbeatKind
    interval: int
    seq: int
    ts: float | None
    metrics: dict[str, float]


@dataclass
class HostState:
    seq: int
    last_ts: float | None     # the newest `ts` accepted from the host
    boot_ts: float | None     # the `ts` of its last boot
    epoch: str                # names datagrams without `ts`: "<host>-<epoch>-<seq>"


def _reject_constant(name: str) -> float:
    raise Malformed(f"{name} is not a number")


def parse(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_DATAGRAM:
        raise Malformed(f"larger than {MAX_DATAGRAM} bytes")
    try:
        value = json.loads(data, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise Malformed(f"not JSON: {exc}") from None
    if not isinstance(value, dict) or not isinstance(value.get("host"), str):
        raise Malformed("not an object with a host")
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _flatten(metrics: Any, prefix: str, out: dict[str, float], depth: int = 0) -> None:
    if not isinstance(metrics, dict) or depth > 4:
        raise Malformed("metrics must be an object of numbers (or of objects of numbers)")
    for name, value in metrics.items():
        full = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict):
            _flatten(value, full, out, depth + 1)
        elif _number(value) and full and len(full) <= MAX_METRIC_NAME:
            out[full] = float(value)
        else:
            raise Malformed(f"metric {full[:MAX_METRIC_NAME]!r} is not a number")
        if len(out) > MAX_METRICS:
            raise Malformed(f"more than {MAX_METRICS} metrics")


def beat_of(datagram: dict[str, Any]) -> Beat:
    event: Any = datagram.get("event")
    interval: Any = datagram.get("interval")
    seq: Any = datagram.get("seq")
    ts: Any = datagram.get("ts")
    if event not in KINDS:
        raise Malformed("event must be boot, alive or shutdown")
    if not (_number(interval) and interval == int(interval) and 0 < interval <= MAX_INTERVAL):
        raise Malformed("interval must be whole seconds")
    if not (isinstance(seq, int) and not isinstance(seq, bool) and 0 <= seq < 2**63):
        raise Malformed("seq must be a whole number")
    if ts is not None and not (_number(ts) and ts > 0):
        raise Malformed("ts must be seconds since the epoch")
    metrics: dict[str, float] = {}
    if datagram.get("metrics") is not None:
        _flatten(datagram["metrics"], "", metrics)
    return Beat(host=datagram["host"], event=event, interval=int(interval), seq=seq,
                ts=float(ts) if ts is not None else None, metrics=metrics)


def in_sequence(state: HostState | None, beat: Beat) -> bool:
    """A boot starts a new sequence, but only when it is newer than all that came before it (else anyone
    who kept an old boot datagram could reset the sequence and replay the rest); within a boot, `seq` rises."""
    if state is None:
        return True
    if beat.event == "boot":
        return beat.ts is None or state.last_ts is None or beat.ts > state.last_ts
    if beat.seq <= state.seq:
        return False
    # A datagram from before the last boot is a replay even though its number is higher.
    return beat.ts is None or state.boot_ts is None or beat.ts >= state.boot_ts


class HeartbeatProtocol(asyncio.DatagramProtocol):
    """Receives datagrams into a queue; one worker checks and publishes them in arrival order, so the
    per-host sequence checks never race. `counters` says what happened to every datagram."""

    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.hosts: dict[str, HostState] = {}
        self.queue: asyncio.Queue[tuple[bytes, str, datetime]] = asyncio.Queue(QUEUE_SIZE)
        self._told: dict[tuple[str, str], float] = {}

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            self.queue.put_nowait((data, str(addr[0]), self.intake.clock()))
        except asyncio.QueueFull:
            self.counters["overflow"] += 1

    def error_received(self, exc: Exception) -> None:
        log.debug("heartbeat socket error: %s", exc)

    async def run(self) -> None:
        while True:
            data, peer, received = await self.queue.get()
            try:
                outcome = await self.handle(data, peer, received)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("heartbeat from %s not handled", peer)
                outcome = "unpublished"
            self.counters[outcome] += 1

    async def handle(self, data: bytes, peer: str, received: datetime) -> str:
        """Check one datagram and publish it; return the name of the counter it belongs to."""
        try:
            datagram = parse(data)
        except Malformed as exc:
            self._tell("malformed", peer, str(exc))
            return "malformed"
        host = datagram["host"]
        spec = self.intake.config.directory.config.hosts.get(host)
        if spec is None:
            self._tell("unknown_host", peer, f"host {host[:64]!r} is not in the config's hosts")
            return "unknown_host"
        key = spec.get("key")
        if key and not heartbeats.signature_ok(datagram, str(key)):
            self._tell("bad_signature", peer, f"host {host}: signature missing or wrong")
            return "bad_signature"
        try:
            beat = beat_of(datagram)
            if key and beat.ts is None:
                raise Malformed("a signed datagram carries ts")
        except Malformed as exc:
            self._tell("malformed", peer, f"host {host}: {exc}")
            return "malformed"
        if beat.ts is not None and abs(received.timestamp() - beat.ts) > MAX_SKEW:
            self._tell("stale", peer, f"host {host}: ts is more than {MAX_SKEW:.0f}s away from now; check its clock")
            return "stale"
        state = await self._state(host)
        if not in_sequence(state, beat):
            self._tell("replayed", peer, f"host {host}: {beat.event} seq {beat.seq} is not newer than what came "
                                         "before")
            return "replayed"
        event = self._accept(state, beat, received, signed=bool(key), peer=peer)
        if not self.intake.bus.connected:
            return "unpublished"
        try:
            await self.intake.bus.publish(heartbeats.subject(host), event)
        except Exception as exc:
            log.warning("heartbeat of %s not stored: %s", host, exc)
            return "unpublished"
        return "accepted"

    def _accept(self, state: HostState | None, beat: Beat, received: datetime, *, signed: bool,
                peer: str) -> HeartbeatReceived:
        ts_text = json.dumps(beat.ts) if beat.ts is not None else ""
        if beat.event == "boot" or state is None:
            # Datagrams without `ts` are named after the boot (or first sight) they follow.
            epoch = ts_text or str(int(received.timestamp()))
            state = HostState(seq=beat.seq, last_ts=None, boot_ts=beat.ts if beat.event == "boot" else None,
                              epoch=epoch)
            self.hosts[beat.host] = state
        state.seq = beat.seq
        if beat.ts is not None:
            state.last_ts = beat.ts if state.last_ts is None else max(state.last_ts, beat.ts)
        return HeartbeatReceived(
            id=f"{beat.host}-{ts_text or state.epoch}-{beat.seq}", aggregate_id=beat.host, at=received,
            host=beat.host, event=beat.event, interval=beat.interval, seq=beat.seq, metrics=beat.metrics,
            received_at=received, ts=beat.ts, boot_ts=state.boot_ts, epoch=state.epoch, signed=signed, peer=peer)

    async def _state(self, host: str) -> HostState | None:
        """The host's sequence; after a restart, from the last heartbeat stored for it."""
        if host in self.hosts:
            return self.hosts[host]
        if not self.intake.bus.connected:
            return None
        try:
            last = await self.intake.bus.last_on_subject(HEARTBEATS.name, heartbeats.subject(host))
        except Exception as exc:
            log.warning("could not read the last heartbeat of %s: %s", host, exc)
            return None
        if last is None:
            return None
        try:
            event = heartbeats.decoder.decode(last[1])
        except Exception:
            return None
        state = HostState(seq=event.seq, last_ts=event.ts, boot_ts=event.boot_ts, epoch=event.epoch)
        self.hosts[host] = state
        return state

    def _tell(self, reason: str, peer: str, message: str) -> None:
        # A misconfigured host sends every interval: say it once a minute per reason and sender.
        now = time.monotonic()
        if now - self._told.get((reason, peer), -60.0) >= 60.0:
            if len(self._told) > 10_000:
                self._told.clear()
            self._told[(reason, peer)] = now
            log.info("heartbeat from %s dropped (%s): %s", peer, reason, message)


class HeartbeatListener:
    def __init__(self, transport: asyncio.DatagramTransport, protocol: HeartbeatProtocol,
                 worker: asyncio.Task[None]) -> None:
        self.transport, self.protocol, self.worker = transport, protocol, worker

    @property
    def port(self) -> int:
        return int(self.transport.get_extra_info("sockname")[1])

    @property
    def address(self) -> str:
        return address_of(self.transport.get_extra_info("sockname"))

    @property
    def counters(self) -> dict[str, int]:
        return self.protocol.counters

    async def close(self) -> None:
        self.transport.close()
        self.worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.worker


@contextlib.asynccontextmanager
async def serve(intake: Intake, settings: Settings) -> AsyncIterator[HeartbeatListener | None]:
    """The UDP listener on `TOCSIN_UDP` for as long as the context lasts (None when it is off)."""
    where = door(settings.udp_listen, DEFAULT_UDP)
    if where is None:
        yield None
        return
    loop = asyncio.get_running_loop()
    protocol = HeartbeatProtocol(intake)
    try:
        transport, _ = await loop.create_datagram_endpoint(lambda: protocol, local_addr=(where.host, where.port))
    except OSError as exc:
        if where.explicit:
            raise OSError(exc.errno, f"cannot listen for UDP heartbeats on {where} (TOCSIN_UDP): "
                                     f"{exc.strerror}") from exc
        log.warning("UDP heartbeats are off: %s is not free (%s); set TOCSIN_UDP to another address or off",
                    where, exc.strerror)
        yield None
        return
    listener = HeartbeatListener(transport, protocol, asyncio.create_task(protocol.run(), name="heartbeats"))
    log.info("UDP heartbeats on %s", where)
    try:
        yield listener
    finally:
        await listener.close()
