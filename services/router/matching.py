"""Alertmanager-style label matchers: `=`, `!=`, `=~`, `!~`, regexes anchored at both ends."""

from __future__ import annotations

import re
from functools import lru_cache

from tocsin.events.config import parse_matcher


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def matches(matchers: dict[str, str], labels: dict[str, str]) -> bool:
    return all(_holds(spec, labels.get(label, "")) for label, spec in matchers.items())


def failed(matchers: dict[str, str], labels: dict[str, str]) -> list[tuple[str, str]]:
    """(label, matcher) of each matcher the labels fail, in the order written: why an alert opened nothing."""
    return [(label, spec) for label, spec in matchers.items() if not _holds(spec, labels.get(label, ""))]


def _holds(spec: str, actual: str) -> bool:
    op, value = parse_matcher(spec)
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    if op == "=~":
        return _compiled(value).fullmatch(actual) is not None
    return _compiled(value).fullmatch(actual) is None
