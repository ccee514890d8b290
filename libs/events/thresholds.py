"""Metric thresholds of heartbeat hosts: the `thresholds:` profiles, their checks, and the level state machine.

A profile maps `monitor.metric` to `{warning: "> 80", critical: "> 90"}` (ops `>`, `<`, `>=`, `<=`). A metric
is CRITICAL when the critical comparison holds, else WARNING when the warning one holds, else OK. Every change
of level, in any direction, is told once, in one of these forms:

    CRITICAL: prod-web-01 - cpu_monitor.cpu_percent = 95.2 (threshold: > 90.0)
    WARNING: prod-web-01 - cpu_monitor.cpu_percent = 85.0 (threshold: > 80.0)
    OK: prod-web-01 - cpu_monitor.cpu_percent = 42.0 (was CRITICAL, threshold: > 90.0)

The recovery names the level it leaves and the threshold it no longer crosses, so "OK" alone is never
mistaken for a value that was always fine. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

Level = Literal["OK", "WARNING", "CRITICAL"]
OPS = (">=", "<=", ">", "<")
METRIC_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}\.[A-Za-z0-9_.-]{1,128}$")
_RULE = re.compile(r"^\s*(>=|<=|>|<)\s*(\S+)\s*$")
RULE_KEYS = ("warning", "critical")


@dataclass(frozen=True)
class Threshold:
    op: str
    value: float

    def crossed(self, value: float) -> bool:
        match self.op:
            case ">":
                return value > self.value
            case ">=":
                return value >= self.value
            case "<":
                return value < self.value
            case _:
                return value <= self.value

    @property
    def rising(self) -> bool:
        """True when larger values are worse (`>` and `>=`)."""
        return self.op.startswith(">")

    def __str__(self) -> str:
        return f"{self.op} {float(self.value)!r}"


@dataclass(frozen=True)
class Rule:
    warning: Threshold | None = None
    critical: Threshold | None = None

    def level(self, value: float) -> Level:
        if self.critical is not None and self.critical.crossed(value):
            return "CRITICAL"
        if self.warning is not None and self.warning.crossed(value):
            return "WARNING"
        return "OK"

    def threshold_of(self, level: Level) -> Threshold | None:
        return self.critical if level == "CRITICAL" else self.warning if level == "WARNING" else None


def parse_threshold(text: Any) -> Threshold:
    """`"> 80"` -> Threshold(">", 80.0); raises ValueError with a message fit for a config error."""
    if not isinstance(text, str):
        raise ValueError(f'must be text such as "> 80", not {text!r}')
    m = _RULE.match(text)
    if not m:
        raise ValueError(f'{text!r} is not an operator and a number (use >, <, >= or <=, as in "> 80")')
    op, number = m.groups()
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"{number!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{number!r} is not a finite number")
    return Threshold(op, value)


def parse_rule(spec: dict[str, Any]) -> Rule:
    """A checked profile entry (see `profile_errors`)."""
    return Rule(**{k: parse_threshold(spec[k]) for k in RULE_KEYS if k in spec})


def parse_profile(profile: dict[str, Any]) -> dict[str, Rule]:
    return {metric: parse_rule(spec) for metric, spec in profile.items()}


def profile_errors(thresholds: dict[str, Any]) -> list[tuple[str, str]]:
    """Every problem of the `thresholds:` section, each with its path."""
    errors: list[tuple[str, str]] = []
    for name, profile in thresholds.items():
        path = f"thresholds.{name}"
        if not isinstance(profile, dict) or not profile:
            errors.append((path, "a profile maps metric names (monitor.metric) to {warning, critical}"))
            continue
        for metric, spec in profile.items():
            mpath = f"{path}.{metric}"
            if not METRIC_NAME.match(str(metric)):
                errors.append((mpath, "a metric is named monitor.metric, as the heartbeat sends it "
                                      "(cpu_monitor.cpu_percent)"))
            if not isinstance(spec, dict):
                errors.append((mpath, 'must be a mapping such as {warning: "> 80", critical: "> 90"}'))
                continue
            for key in spec:
                if key not in RULE_KEYS:
                    errors.append((f"{mpath}.{key}", "unknown field (one of critical, warning)"))
            if not any(k in spec for k in RULE_KEYS):
                errors.append((mpath, "needs warning, critical or both"))
            parsed: dict[str, Threshold] = {}
            for key in RULE_KEYS:
                if key in spec:
                    try:
                        parsed[key] = parse_threshold(spec[key])
                    except ValueError as exc:
                        errors.append((f"{mpath}.{key}", str(exc)))
            warning, critical = parsed.get("warning"), parsed.get("critical")
            if warning and critical:
                if warning.rising != critical.rising:
                    errors.append((f"{mpath}.critical", f"goes the other way from warning ({critical} against "
                                                        f"{warning}): both must be > / >= or both < / <="))
                elif (critical.value < warning.value) if critical.rising else (critical.value > warning.value):
                    errors.append((f"{mpath}.critical", f"{critical} is reached before warning {warning}: "
                                                        "critical must be at or beyond warning"))
    return errors


def format_value(value: float) -> str:
    return repr(float(value))


def notice_text(host: str, metric: str, value: float, level: Level, threshold: Threshold | None,
                was: Level | None = None) -> str:
    """The one line told for a level (see the module doc for the three forms)."""
    head = f"{level}: {host} - {metric} = {format_value(value)}"
    if level == "OK":
        if was is None or threshold is None:
            return head
        return f"{head} (was {was}, threshold: {threshold})"
    return f"{head} (threshold: {threshold})"


@dataclass(frozen=True)
class Change:
    """A metric moved from one level to another: tell it with `text`."""

    metric: str
    level: Level
    was: Level
    value: float
    text: str


def transition(host: str, metric: str, rule: Rule, was: Level, value: float) -> Change | None:
    """The state machine for one metric: the change a new value makes, or None when the level holds."""
    level = rule.level(value)
    if level == was:
        return None
    # A recovery quotes the threshold it no longer crosses: the one of the level it leaves.
    threshold = rule.threshold_of(was) if level == "OK" else rule.threshold_of(level)
    return Change(metric=metric, level=level, was=was, value=value,
                  text=notice_text(host, metric, value, level, threshold, was if level == "OK" else None))
