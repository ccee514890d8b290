from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import msgspec

from tocsin.events.alerts import AlertStatus, Link, Severity
from tocsin.events.config import Route


@dataclass(frozen=True)
class Incoming:
    """What a parser may look at: the body, the request's headers and query, the route it came in on, and
    the rest of the path after `/intake/<source>` (Opsgenie puts the alert alias there)."""

    body: bytes
    route: Route
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    path: str = ""


class SignatureError(Exception):
    """The route has a secret and the request's signature is missing or wrong: 401, nothing accepted."""


class PayloadError(Exception):
    """The body is JSON but not what this source sends: 422 with the path of the first problem."""

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


@dataclass
class Normalized:
    dedup_key: str
    status: AlertStatus
    title: str
    severity: Severity = "critical"
    details: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    raw: bytes = b""
    acknowledge: bool = False     # the sender says someone acknowledged it (PagerDuty, Opsgenie, Zabbix)


_SEVERITIES: dict[str, Severity] = {
    "critical": "critical", "crit": "critical", "page": "critical", "high": "critical", "disaster": "critical",
    "fatal": "critical", "p1": "critical", "p2": "error",
    "error": "error", "err": "error", "major": "error", "average": "warning",
    "warning": "warning", "warn": "warning", "minor": "warning", "p3": "warning",
    "info": "info", "information": "info", "informational": "info", "low": "info", "none": "info",
    "ok": "info", "p4": "info", "p5": "info",
}


def map_severity(value: str | None, default: Severity = "critical") -> Severity:
    if not value:
        return default
    return _SEVERITIES.get(value.strip().lower(), default)


def decode(body: bytes, kind: type) -> object:
    """Decode with msgspec and turn its error into a PayloadError carrying the JSON path."""
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        m = re.search(r" - at `\$(.*)`$", text)
        raise PayloadError(text[: m.start()] if m else text, (m.group(1) if m else "").lstrip(".")) from None
    except msgspec.DecodeError as exc:
        raise PayloadError(f"not valid JSON: {exc}") from None


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
