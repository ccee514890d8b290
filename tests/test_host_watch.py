"""Heartbeats that page: boot, shutdown, overdue (an incident) and back, and metric thresholds with renotify,
from UDP datagrams to the fake ntfy server, on a running stack with a movable clock."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import Counter
from datetime import timedelta
from typing import Any

import msgspec
import pytest
from nats.js.errors import NotFoundError

from harness import FakeClock, FakeProvider, StackHandle, eventually, free_port
from tocsin.events import heartbeats, hostwatch
from tocsin.events.base import new_id, utcnow
from tocsin.events.config import CONFIG_SUBJECT, ConfigApplied, parse_config
from tocsin.events.configbus import ConfigWatcher
from tocsin.events.streams import HOSTS
from tocsin.scheduler.app import Scheduler
from tocsin.scheduler.settings import Settings as SchedulerSettings

CONFIG = """
timezone: UTC
security: {{allow_private_networks: true}}
providers: {{ntfy: {{server: "{ntfy}"}}}}
users:
  alice: {{contacts: {{push: {{type: ntfy, topic: alice-pages}}}}}}
channels:
  web-room: {{type: ntfy, topic: web-room}}
  infra-room: {{type: ntfy, topic: infra-room}}
  fallback: {{type: ntfy, topic: fallback}}
default_channels: [fallback]
teams:
  infra:
    members: [alice]
    channels: [infra-room]
    rotations: {{primary: {{members: [alice], shift: 1d, start: "2026-01-01T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"], wait: 5m}}], repeat: 1}}
hosts:
  prod-web-01: {{watch: true, team: infra, interval: 30s, thresholds: high_sensitivity, channels: [web-room]}}
  db-01: {{watch: true, team: infra, interval: 10s, overdue_after: 5m}}
  quiet-01: {{team: infra, interval: 30s}}
thresholds:
  high_sensitivity:
    cpu_monitor.cpu_percent: {{warning: "> 80", critical: "> 90"}}
    disk_monitor.free_percent: {{warning: "< 15", critical: "< 5"}}
renotify: 1h
"""


@pytest.fixture
def udp(monkeypatch: pytest.MonkeyPatch) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    monkeypatch.setenv("TOCSIN_UDP", f"127.0.0.1:{port}")
    monkeypatch.setenv("TOCSIN_SMTP", f"127.0.0.1:{free_port()}")
    return port


class Host:
    """A heartbeat sender in the test: each datagram takes the next seq."""

    def __init__(self, port: int, name: str, interval: int = 30) -> None:
        self.port, self.name, self.interval, self.seq = port, name, interval, 0

    def send(self, event: str = "alive", **metrics: dict[str, float]) -> None:
        self.seq += 1
        datagram: dict[str, Any] = {"host": self.name, "event": event, "interval": self.interval, "seq": self.seq}
        if metrics:
            datagram["metrics"] = metrics
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(json.dumps(datagram).encode(), ("127.0.0.1", self.port))


def told(ntfy: FakeProvider) -> list[tuple[str, str]]:
    """(topic, text) of every request the fake ntfy server got, in order: the title without its
    `#1 [CRITICAL] ` prefix (a notice's message is the same text; a page's is the incident's details)."""
    return [(r.json()["topic"], r.json()["title"].split("] ", 1)[1]) for r in ntfy.requests]


async def beats_applied(stack: StackHandle, n: int) -> bool:
    """The scheduler has applied the first `n` heartbeats on the stream (the consumer's acked position)."""
    try:
        info = await stack.bus.js.consumer_info("HEARTBEATS", "scheduler-heartbeats")
    except NotFoundError:   # the scheduler has not started yet
        return False
    return bool(info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq >= n)


async def settled(stack: StackHandle, beats: int) -> None:
    await eventually(lambda: beats_applied(stack, beats))
    await asyncio.sleep(0.5)   # what the router does with the notices; nothing more may arrive after this


async def test_boot_overdue_back_and_shutdown_page_the_host_channels_and_team(stack, ntfy, clock, udp):
    await stack.start(CONFIG.format(ntfy=ntfy.url))
    web = Host(udp, "prod-web-01")
    web.send("boot")
    await ntfy.wait_for(2)
    assert sorted(told(ntfy)) == [("infra-room", "prod-web-01 booted"), ("web-room", "prod-web-01 booted")]
    web.send("alive")
    await settled(stack, 2)
    assert len(ntfy.requests) == 2

    # 3 intervals without a beat: an incident for the team, paged to the on-call person and the channels
    clock.advance(timedelta(seconds=91))
    await ntfy.wait_for(5)
    assert sorted(told(ntfy)[2:]) == [("alice-pages", "prod-web-01 udp overdue"),
                                      ("infra-room", "prod-web-01 udp overdue"),
                                      ("web-room", "prod-web-01 udp overdue")]
    [incident] = await eventually(lambda: stack.incidents(status="triggered"))
    assert incident["title"] == "prod-web-01 udp overdue" and incident["route"] == "host:prod-web-01"
    assert incident["team"] == "infra" and incident["source"] == "heartbeat"

    # it escalates like any incident until someone acknowledges or the host comes back
    clock.advance(timedelta(minutes=5, seconds=1))
    await ntfy.wait_for(6)
    assert told(ntfy)[5] == ("alice-pages", "prod-web-01 udp overdue")

    web.send("alive")
    await ntfy.wait_for(8)
    assert sorted(told(ntfy)[6:]) == [("infra-room", "prod-web-01 udp is back"),
                                      ("web-room", "prod-web-01 udp is back")]
    await eventually(lambda: stack.incidents(status="resolved"))

    web.send("shutdown")
    await ntfy.wait_for(10)
    assert sorted(told(ntfy)[8:]) == [("infra-room", "prod-web-01 udp shutdown"),
                                      ("web-room", "prod-web-01 udp shutdown")]
    # a host that said it shuts down is not overdue
    clock.advance(timedelta(hours=1))
    await settled(stack, 4)
    assert len(ntfy.requests) == 10


async def test_overdue_after_channels_default_and_unwatched_hosts(stack, ntfy, clock, udp):
    await stack.start(CONFIG.format(ntfy=ntfy.url))
    db, quiet = Host(udp, "db-01", 10), Host(udp, "quiet-01")
    quiet.send("boot")
    db.send("alive")      # no boot: nothing to tell, but watched from now on
    await settled(stack, 2)
    assert ntfy.requests == []
    clock.advance(timedelta(seconds=61))     # 3 x 10 s would be overdue; overdue_after says 5 m
    await settled(stack, 2)
    assert ntfy.requests == []
    clock.advance(timedelta(minutes=5))
    await ntfy.wait_for(3)
    # no channels of its own: default_channels, and the team's
    assert sorted(told(ntfy)) == [("alice-pages", "db-01 udp overdue"), ("fallback", "db-01 udp overdue"),
                                  ("infra-room", "db-01 udp overdue")]
    # an unwatched host is never overdue, and its boot was not told
    assert all("quiet-01" not in m for _, m in told(ntfy))
    # the state is in Postgres: the overdue spell is recorded once
    row = await stack.pool.fetchrow("SELECT status FROM scheduler_hosts WHERE host = 'db-01'")
    assert row["status"] == "overdue"


async def test_thresholds_notify_each_change_and_renotify(stack, ntfy, clock, udp):
    # Not watched (the clock moves hours without beats, and it must not be overdue): thresholds still apply.
    await stack.start(CONFIG.format(ntfy=ntfy.url).replace("prod-web-01: {watch: true", "prod-web-01: {watch: false"))
    web = Host(udp, "prod-web-01")
    web.send("alive", cpu_monitor={"cpu_percent": 12.5}, disk_monitor={"free_percent": 50})
    await settled(stack, 1)
    assert ntfy.requests == []

    def metric_lines(start: int) -> list[str]:
        return sorted(m for t, m in told(ntfy)[start:] if t == "web-room")

    web.send("alive", cpu_monitor={"cpu_percent": 95.2}, disk_monitor={"free_percent": 12.0})
    await ntfy.wait_for(4)   # two changes, each to the host's channel and the team's
    assert metric_lines(0) == [
        "CRITICAL: prod-web-01 - cpu_monitor.cpu_percent = 95.2 (threshold: > 90.0)",
        "WARNING: prod-web-01 - disk_monitor.free_percent = 12.0 (threshold: < 15.0)"]
    assert sorted(m for t, m in told(ntfy) if t == "infra-room") == metric_lines(0)

    web.send("alive", cpu_monitor={"cpu_percent": 97.0}, disk_monitor={"free_percent": 11.0})   # no change
    await settled(stack, 3)
    assert len(ntfy.requests) == 4

    clock.advance(timedelta(minutes=61))     # still not OK after renotify: told again, last value
    await ntfy.wait_for(8)
    assert metric_lines(4) == [
        "CRITICAL: prod-web-01 - cpu_monitor.cpu_percent = 97.0 (threshold: > 90.0)",
        "WARNING: prod-web-01 - disk_monitor.free_percent = 11.0 (threshold: < 15.0)"]
    web.send("alive", cpu_monitor={"cpu_percent": 85.0}, disk_monitor={"free_percent": 40.0})
    await ntfy.wait_for(12)
    assert metric_lines(8) == [
        "OK: prod-web-01 - disk_monitor.free_percent = 40.0 (was WARNING, threshold: < 15.0)",
        "WARNING: prod-web-01 - cpu_monitor.cpu_percent = 85.0 (threshold: > 80.0)"]

    clock.advance(timedelta(minutes=61))     # only the metric still not OK is told again
    await ntfy.wait_for(14)
    assert metric_lines(12) == ["WARNING: prod-web-01 - cpu_monitor.cpu_percent = 85.0 (threshold: > 80.0)"]
    web.send("alive", cpu_monitor={"cpu_percent": 3.0})
    await ntfy.wait_for(16)
    assert metric_lines(14) == [
        "OK: prod-web-01 - cpu_monitor.cpu_percent = 3.0 (was WARNING, threshold: > 80.0)"]
    clock.advance(timedelta(hours=3))
    await settled(stack, 5)
    assert len(ntfy.requests) == 16


async def test_host_state_survives_a_restart(stack, ntfy, clock, udp):
    """The last beat is in Postgres: a stack started again still knows the host is due, and tells once."""
    await stack.start(CONFIG.format(ntfy=ntfy.url))
    web = Host(udp, "prod-web-01")
    web.send("alive")
    await settled(stack, 1)
    await stack.stop()
    clock.advance(timedelta(minutes=2))
    await stack.start(CONFIG.format(ntfy=ntfy.url))
    await ntfy.wait_for(3)
    assert sorted(told(ntfy)) == [("alice-pages", "prod-web-01 udp overdue"),
                                  ("infra-room", "prod-web-01 udp overdue"), ("web-room", "prod-web-01 udp overdue")]
    await asyncio.sleep(1)
    assert len(ntfy.requests) == 3


async def test_no_host_is_overdue_before_the_beats_that_waited_are_read(bus, pool):
    """A scheduler that starts after a long stop finds every deadline past; its first ticks must wait for
    the heartbeats queued meanwhile, or every host would be called overdue (and back a moment later)."""
    config = parse_config(CONFIG.format(ntfy="http://127.0.0.1:9"), env={})
    await bus.publish(CONFIG_SUBJECT, ConfigApplied(id=new_id(), at=utcnow(), revision=1, config=config))
    watcher = ConfigWatcher(bus)
    await watcher.start()
    clock = FakeClock()
    long_ago = clock() - timedelta(minutes=10)
    await pool.execute("INSERT INTO scheduler_hosts (host, status, last_seen, last_received_at, overdue_at) "
                       "VALUES ('prod-web-01', 'up', $1, $1, $2)", long_ago, long_ago + timedelta(seconds=90))
    await bus.publish(heartbeats.subject("prod-web-01"), heartbeats.HeartbeatReceived(
        id="prod-web-01-queued", aggregate_id="prod-web-01", at=utcnow(), host="prod-web-01", event="alive",
        interval=30, seq=7, received_at=utcnow()))
    scheduler = Scheduler(SchedulerSettings(tick_seconds=0.05), bus, pool, clock, watcher)

    async def notices() -> list[str]:
        return [hostwatch.decoder.decode(d).text for _, d in await bus.read_subject(HOSTS.name, "hosts.>")]

    await scheduler.tick()                    # before it has read anything: nobody is overdue yet
    assert await notices() == []
    task = asyncio.create_task(scheduler.run())
    try:
        await eventually(lambda: pool.fetchval("SELECT last_seen > $1 FROM scheduler_hosts", long_ago))
        await asyncio.sleep(0.3)
        assert await notices() == []
        clock.advance(timedelta(seconds=91))
        assert await eventually(notices) == ["prod-web-01 udp overdue"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await watcher.stop()


async def test_two_schedulers_tell_each_overdue_host_and_each_renotify_once(bus, pool):
    hosts = {f"web-{i:02d}": {"watch": True, "team": "infra", "interval": "30s", "thresholds": "p"}
             for i in range(40)}
    config = parse_config(CONFIG.format(ntfy="http://127.0.0.1:9"), env={})
    config = msgspec.structs.replace(config, hosts=hosts, thresholds={"p": {"m.cpu": {"critical": "> 90"}}})
    await bus.publish(CONFIG_SUBJECT, ConfigApplied(id=new_id(), at=utcnow(), revision=1, config=config))
    clock = FakeClock()
    due = clock() - timedelta(seconds=1)
    await pool.execute("INSERT INTO scheduler_hosts (host, status, last_seen, last_received_at, overdue_at) "
                       "SELECT h, 'up', $2, $2, $2 FROM unnest($1::text[]) AS h", list(hosts), due)
    await pool.execute("INSERT INTO scheduler_host_metrics (host, metric, level, value, since, renotify_at) "
                       "SELECT h, 'm.cpu', 'CRITICAL', 95, $2, $2 FROM unnest($1::text[]) AS h", list(hosts), due)
    published: list[hostwatch.HostNotice] = []

    async def seen(msg) -> None:  # type: ignore[no-untyped-def]
        # A plain subscription sees every publish, also copies that JetStream would drop as duplicates.
        published.append(hostwatch.decoder.decode(msg.data))

    sub = await bus.nc.subscribe("hosts.>", cb=seen)
    watchers = [ConfigWatcher(bus) for _ in range(2)]
    schedulers = [Scheduler(SchedulerSettings(tick_seconds=0.01), bus, pool, clock, w) for w in watchers]
    for watcher in watchers:
        await watcher.start()
    tasks = [asyncio.create_task(s.run()) for s in schedulers]
    try:
        await eventually(lambda: pool.fetchval("SELECT count(*) = 40 FROM scheduler_hosts WHERE status = "
                                               "'overdue'"))
        await eventually(lambda: pool.fetchval("SELECT count(*) = 40 FROM scheduler_host_metrics "
                                               "WHERE renotified = 1"))
        await asyncio.sleep(0.5)
        kinds = Counter((n.host, n.kind) for n in published)
        assert len(kinds) == 80 and set(kinds.values()) == {1}, kinds.most_common(3)
        assert {n.text for n in published if n.kind == "metric"} == {
            f"CRITICAL: {h} - m.cpu = 95.0 (threshold: > 90.0)" for h in hosts}
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for watcher in watchers:
            await watcher.stop()
        await sub.unsubscribe()


async def test_silences_cover_host_notices_and_overdue_incidents(stack, ntfy, clock, udp):
    await stack.start(CONFIG.format(ntfy=ntfy.url) + """
silences:
  - {matchers: {host: db-01}, starts: "2020-01-01T00:00", ends: "2040-01-01T00:00", comment: rack move}
  - {matchers: {metric: disk_monitor.free_percent}, starts: "2020-01-01T00:00", ends: "2040-01-01T00:00"}
""")
    db, web = Host(udp, "db-01", 10), Host(udp, "prod-web-01")
    db.send("boot")
    web.send("alive", cpu_monitor={"cpu_percent": 95.2}, disk_monitor={"free_percent": 1.0})
    await ntfy.wait_for(2)     # the cpu line, to the host's channel and the team's; not the disk line
    await settled(stack, 2)
    assert sorted(told(ntfy)) == [
        ("infra-room", "CRITICAL: prod-web-01 - cpu_monitor.cpu_percent = 95.2 (threshold: > 90.0)"),
        ("web-room", "CRITICAL: prod-web-01 - cpu_monitor.cpu_percent = 95.2 (threshold: > 90.0)")]
    clock.advance(timedelta(minutes=6))      # both overdue; db-01 silenced: an incident, nobody paged
    await ntfy.wait_for(5)                   # prod-web-01 udp overdue: its page and two channels
    items = await eventually(lambda: _count_incidents(stack, 2))
    [incident] = [i for i in items if i["title"] == "db-01 udp overdue"]
    detail = await eventually(lambda: _silenced(stack, incident["id"]))
    assert detail["comment"] == "rack move" and detail["silence_id"] == "config:0"
    await asyncio.sleep(0.5)
    assert all("db-01" not in text for _, text in told(ntfy)[2:])


async def _silenced(stack: StackHandle, incident_id: str) -> dict[str, Any] | None:
    timeline = (await stack.incident(incident_id))["timeline"]
    return next((e for e in timeline if e["type"] == "incident.silenced"), None)


async def _count_incidents(stack: StackHandle, n: int) -> list[dict[str, Any]] | None:
    items = await stack.incidents()
    return items if len(items) == n else None
