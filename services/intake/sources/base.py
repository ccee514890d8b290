from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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


MAX_LABELS = 64
MAX_LABEL_VALUE = 512

# ------------------------------------------------------------------ JSON values as text


def scalar_text(value: Any) -> str | None:
    """A string as it is, a number or boolean as JSON writes it; None for null, objects and arrays."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return msgspec.json.encode(value).decode()
    return None


def render(value: Any) -> str:
    """Text for a details field: strings as they are, anything else as indented JSON."""
    text = scalar_text(value)
    if text is not None:
        return text
    if value is None:
        return ""
    return msgspec.json.format(msgspec.json.encode(value), indent=2).decode()


def flatten_labels(doc: dict[str, Any], prefix: str = "", depth: int = 3,
                   out: dict[str, str] | None = None) -> dict[str, str]:
    """Scalar fields as labels, nested objects as dotted keys (`alert.host`); arrays and nulls are left
    out, and so is anything past `depth` levels or MAX_LABELS labels."""
    out = {} if out is None else out
    for key, value in doc.items():
        if len(out) >= MAX_LABELS:
            break
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if depth > 1:
                flatten_labels(value, f"{name}.", depth - 1, out)
            continue
        text = scalar_text(value)
        if text is not None and name:
            out[name] = clip(text, MAX_LABEL_VALUE)
    return out


def string_field(doc: dict[str, Any], key: str, path: str = "", required: bool = False) -> str:
    """A string field of a JSON object: "" when absent and optional; PayloadError naming `path` (default
    the key) when it is required and absent or empty, or not a string."""
    path = path or key
    value = doc.get(key)
    if value is None:
        if required:
            raise PayloadError(f"{path} is required", path)
        return ""
    if not isinstance(value, str):
        raise PayloadError(f"{path} must be a string", path)
    if required and not value.strip():
        raise PayloadError(f"{path} must not be empty", path)
    return value
