"""Alertmanager-style label matchers: `=`, `!=`, `=~`, `!~`, regexes anchored at both ends."""

from __future__ import annotations

import re
from functools import lru_cache

from tocsin.events.config import parse_matcher


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def matches(matchers: dict[str, str], labels: dict[str, str]) -> bool:
    for label, spec in matchers.items():
        op, value = parse_matcher(spec)
        actual = labels.get(label, "")
        if op == "=" and actual != value:
            return False
        if op == "!=" and actual == value:
            return False
        if op == "=~" and not _compiled(value).fullmatch(actual):
            return False
        if op == "!~" and _compiled(value).fullmatch(actual):
            return False
    return True
