"""Metric thresholds: the level state machine (pure, table-driven) and the config's checks with their paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tocsin.events.config import ConfigError, parse_config
from tocsin.events.heartbeats import HeartbeatReceived
from tocsin.events.hostwatch import HostState, MetricState, on_beat
from tocsin.events.thresholds import Rule, parse_profile, parse_threshold, transition

CPU = parse_profile({"cpu_monitor.cpu_percent": {"warning": "> 80", "critical": "> 90"}})["cpu_monitor.cpu_percent"]
DISK = parse_profile({"disk_monitor.free_percent": {"warning": "<= 15", "critical": "< 5"}})[
    "disk_monitor.free_percent"]
ONLY_CRITICAL = Rule(critical=parse_threshold(">= 100"))


# given the level before, when a value arrives, then this line is told (None: nothing)
@pytest.mark.parametrize(("rule", "metric", "was", "value", "told"), [
    (CPU, "cpu_monitor.cpu_percent", "OK", 95.2,
     "CRITICAL: prod-web-01 - cpu_monitor.cpu_percent = 95.2 (threshold: > 90.0)"),
    (CPU, "cpu_monitor.cpu_percent", "OK", 85,
     "WARNING: prod-web-01 - cpu_monitor.cpu_percent = 85.0 (threshold: > 80.0)"),
    (CPU, "cpu_monitor.cpu_percent", "OK", 80, None),                    # > is strict
    (CPU, "cpu_monitor.cpu_percent", "OK", 12.5, None),
    (CPU, "cpu_monitor.cpu_percent", "WARNING", 90.5,
     "CRITICAL: prod-web-01 - cpu_monitor.cpu_percent = 90.5 (threshold: > 90.0)"),
    (CPU, "cpu_monitor.cpu_percent", "WARNING", 81, None),
    (CPU, "cpu_monitor.cpu_percent", "CRITICAL", 99, None),
    (CPU, "cpu_monitor.cpu_percent", "CRITICAL", 85,                   # down one level
     "WARNING: prod-web-01 - cpu_monitor.cpu_percent = 85.0 (threshold: > 80.0)"),
    (CPU, "cpu_monitor.cpu_percent", "CRITICAL", 42,                   # straight back to OK
     "OK: prod-web-01 - cpu_monitor.cpu_percent = 42.0 (was CRITICAL, threshold: > 90.0)"),
    (CPU, "cpu_monitor.cpu_percent", "WARNING", 80,
     "OK: prod-web-01 - cpu_monitor.cpu_percent = 80.0 (was WARNING, threshold: > 80.0)"),
    (DISK, "disk_monitor.free_percent", "OK", 12.0,
     "WARNING: prod-web-01 - disk_monitor.free_percent = 12.0 (threshold: <= 15.0)"),
    (DISK, "disk_monitor.free_percent", "OK", 15,
     "WARNING: prod-web-01 - disk_monitor.free_percent = 15.0 (threshold: <= 15.0)"),
    (DISK, "disk_monitor.free_percent", "WARNING", 4.9,
     "CRITICAL: prod-web-01 - disk_monitor.free_percent = 4.9 (threshold: < 5.0)"),
    (DISK, "disk_monitor.free_percent", "CRITICAL", 5,
     "WARNING: prod-web-01 - disk_monitor.free_percent = 5.0 (threshold: <= 15.0)"),
    (DISK, "disk_monitor.free_percent", "CRITICAL", 50,
     "OK: prod-web-01 - disk_monitor.free_percent = 50.0 (was CRITICAL, threshold: < 5.0)"),
    (ONLY_CRITICAL, "m.x", "OK", 99.99, None),
    (ONLY_CRITICAL, "m.x", "OK", 100, "CRITICAL: prod-web-01 - m.x = 100.0 (threshold: >= 100.0)"),
    (ONLY_CRITICAL, "m.x", "CRITICAL", -3, "OK: prod-web-01 - m.x = -3.0 (was CRITICAL, threshold: >= 100.0)"),
])
def test_level_changes(rule, metric, was, value, told):
    change = transition("prod-web-01", metric, rule, was, value)
    assert (change.text if change else None) == told
    if change:
        assert change.was == was and change.level == told.split(":")[0]


T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def beat(event: str = "alive", seq: int = 2, at: datetime = T0, **metrics: float) -> HeartbeatReceived:
    return HeartbeatReceived(id=f"h-{seq}", at=at, host="prod-web-01", event=event, interval=30, seq=seq,
                             received_at=at, metrics={k.replace("__", "."): v for k, v in metrics.items()})


def test_a_series_of_beats_walks_the_state_machine_both_ways():
    rules = {"cpu_monitor.cpu_percent": CPU}
    state, metrics, told_all = None, {}, []
    for i, value in enumerate([10, 85, 95, 96, 85, 20, 20, 95, 10]):
        at = T0 + timedelta(seconds=30 * i)
        state, changed, told = on_beat(state, metrics, beat(seq=i + 1, at=at, cpu_monitor__cpu_percent=value),
                                       now=at, watch=True, late_after=timedelta(seconds=90), rules=rules)
        metrics.update(changed)
        told_all += [t.level for t in told]
    assert told_all == ["WARNING", "CRITICAL", "WARNING", "OK", "CRITICAL", "OK"]
    assert metrics["cpu_monitor.cpu_percent"] == MetricState(level="OK", value=10, since=T0 + timedelta(seconds=240))


@pytest.mark.parametrize(("before", "event", "watch", "told", "status"), [
    (None, "boot", True, ["booted"], "up"),
    ("up", "alive", True, [], "up"),
    ("overdue", "alive", True, ["back"], "up"),
    ("overdue", "boot", True, ["back", "booted"], "up"),
    ("up", "shutdown", True, ["shutdown"], "down"),
    ("overdue", "shutdown", True, ["back", "shutdown"], "down"),
    ("down", "alive", True, [], "up"),
    ("overdue", "alive", False, [], "up"),        # not watched: liveness is never told
    (None, "boot", False, [], "up"),
])
def test_liveness(before, event, watch, told, status):
    state = None if before is None else HostState(host="prod-web-01", status=before, last_seen=T0,
                                                  last_received_at=T0)
    new, _, out = on_beat(state, {}, beat(event, at=T0 + timedelta(minutes=5)), now=T0 + timedelta(minutes=5),
                          watch=watch, late_after=timedelta(seconds=90), rules={})
    assert [t.kind for t in out] == told
    assert new.status == status
    assert new.overdue_at == (None if status == "down" else T0 + timedelta(minutes=5, seconds=90))
    assert all(t.text.startswith("prod-web-01 ") for t in out)


def test_a_beat_older_than_the_last_applied_changes_nothing():
    state = HostState(host="prod-web-01", status="overdue", last_seen=T0, last_received_at=T0)
    new, changed, told = on_beat(state, {}, beat(at=T0 - timedelta(seconds=1), cpu_monitor__cpu_percent=99),
                                 now=T0, watch=True, late_after=timedelta(seconds=90),
                                 rules={"cpu_monitor.cpu_percent": CPU})
    assert (new, changed, told) == (state, {}, [])


BASE = """
users: {alice: {contacts: {out: {type: log}}}}
teams:
  infra:
    members: [alice]
    escalation: {steps: [{notify: ["user:alice"]}]}
hosts:
  web: {watch: true, team: infra, thresholds: %s}
thresholds:
  p:
"""


@pytest.mark.parametrize(("entry", "profile", "path", "text"), [
    ('m.cpu: {warning: "> 80", critical: "> 90"}', "p", None, None),
    ('m.cpu: {warning: "=> 80"}', "p", "thresholds.p.m.cpu.warning", "is not an operator and a number"),
    ('m.cpu: {warning: "> eighty"}', "p", "thresholds.p.m.cpu.warning", "'eighty' is not a number"),
    ('m.cpu: {warning: "> nan"}', "p", "thresholds.p.m.cpu.warning", "not a finite number"),
    ("m.cpu: {warning: 80}", "p", "thresholds.p.m.cpu.warning", 'must be text such as "> 80"'),
    ('m.cpu: {warning: "> 80", critical: "< 90"}', "p", "thresholds.p.m.cpu.critical", "goes the other way"),
    ('m.cpu: {warning: "> 90", critical: "> 80"}', "p", "thresholds.p.m.cpu.critical", "reached before warning"),
    ('m.free: {warning: "< 5", critical: "< 15"}', "p", "thresholds.p.m.free.critical", "reached before warning"),
    ('m.cpu: {warn: "> 80"}', "p", "thresholds.p.m.cpu.warn", "unknown field"),
    ("m.cpu: {}", "p", "thresholds.p.m.cpu", "needs warning, critical or both"),
    ('cpu: {warning: "> 80"}', "p", "thresholds.p.cpu", "monitor.metric"),
    ('m.cpu: {warning: "> 80"}', "nope", "hosts.web.thresholds", 'unknown thresholds "nope"'),
])
def test_threshold_config_errors_name_their_path(entry, profile, path, text):
    doc = BASE % profile + f"    {entry}\n"
    if path is None:
        parse_config(doc, env={})
        return
    with pytest.raises(ConfigError) as err:
        parse_config(doc, env={})
    assert any(p == path and text in m for p, m in err.value.errors), err.value.errors
