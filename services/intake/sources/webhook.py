"""Any JSON: an object is one alert, a top-level array is several. The route may say where the fields are.

`Route.fields` maps title, severity, dedup_key, status and details to dotted paths (`alert.name`,
`items.0.id`); what it leaves out, or what is not found at its path, comes from the usual names. Nothing
but an unreadable body is refused: a page with a plain title is better than no page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import msgspec

from tocsin.events.alerts import AlertStatus
from tocsin.intake.sources.base import (
    Incoming,
    Normalized,
    PayloadError,
    clip,
    decode,
    flatten_labels,
    map_severity,
    render,
    scalar_text,
)

MAX_ALERTS = 100          # per request; a larger array is refused whole (422)
FALLBACK_TITLE = "Webhook alert"
# Values of the status field that mean resolved, case-insensitive, when the route sets no `resolved_values`.
# "0" is left out on purpose: Zabbix sends 0 for a recovery, Uptime Kuma 0 for DOWN.
RESOLVED_VALUES = ("resolved", "resolve", "ok", "recovered", "recovery", "up", "closed", "cleared",
                   "normal", "inactive")
FIELDS = ("title", "severity", "dedup_key", "status", "details")
DEFAULTS: dict[str, tuple[str, ...]] = {
    "title": ("title", "summary", "message", "name", "alertname"),
    "severity": ("severity", "level", "priority"),
    "dedup_key": ("dedup_key", "fingerprint", "id", "alert_id"),
    "status": ("status", "state"),
    "details": ("details", "description", "text", "body"),
}


def parse(incoming: Incoming) -> list[Normalized]:
    doc = decode(incoming.body, Any)   # type: ignore[arg-type]
    if isinstance(doc, list):
        if not doc:
            raise PayloadError("the array has no alerts")
        if len(doc) > MAX_ALERTS:
            raise PayloadError(f"at most {MAX_ALERTS} alerts in one request, not {len(doc)}")
        items = doc
    elif isinstance(doc, dict):
        items = [doc]
    else:
        raise PayloadError("send a JSON object (one alert) or an array of objects")
    resolved = {v.strip().lower() for v in incoming.route.resolved_values} or set(RESOLVED_VALUES)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise PayloadError("each alert must be a JSON object", f"[{i}]" if isinstance(doc, list) else "")
        out.append(_alert(item, incoming.route.fields, resolved))
    return out


def _alert(item: dict[str, Any], fields: dict[str, str], resolved: set[str]) -> Normalized:
    def text(name: str) -> str:
        return scalar_text(_field(item, fields, name, _is_text)) or ""

    title = clip(" ".join(text("title").split()), 500)
    key = text("dedup_key")
    if not key.strip():
        # Without an id the title is the identity, so "Disk full" firing and resolved meet again. Without
        # either, the body is: a retry folds, and any other body opens its own incident rather than hiding
        # behind one shared "Webhook alert".
        key = ("title:" + _digest(title.encode()) if title
               else "body:" + _digest(msgspec.json.encode(item, order="sorted")))
    elif len(key) > 512:
        key = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    title = title or FALLBACK_TITLE
    status: AlertStatus = "resolved" if text("status").strip().lower() in resolved else "firing"
    details_value = _field(item, fields, "details", lambda v: v is not None)
    if details_value is None:
        details_value = item   # nothing named: the whole object is the best description there is
    return Normalized(
        dedup_key=key, status=status, title=title, severity=map_severity(text("severity"), "error"),
        details=clip(render(details_value), 10_000), labels=flatten_labels(item),
        raw=msgspec.json.encode(item))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def _field(item: dict[str, Any], fields: dict[str, str], name: str, usable: Callable[[Any], bool]) -> Any:
    """The value at the route's path for `name` if usable, else the first usable one of the usual names."""
    path = fields.get(name, "").strip()
    if path:
        value = value_at(item, path)
        if usable(value):
            return value
    for key in DEFAULTS[name]:
        if usable(item.get(key)):
            return item[key]
    return None


def _is_text(value: Any) -> bool:
    text = scalar_text(value)
    return text is not None and bool(text.strip())


def value_at(doc: Any, path: str) -> Any:
    """`alert.name`, `items.0.id`: object keys and list indexes separated by dots; None when absent."""
    for part in path.split("."):
        if isinstance(doc, dict):
            doc = doc.get(part)
        elif isinstance(doc, list) and part.lstrip("-").isdigit() and -len(doc) <= int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
    return doc
