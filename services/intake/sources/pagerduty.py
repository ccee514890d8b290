"""PagerDuty Events API v2 (`POST /v2/enqueue` body): trigger, acknowledge and resolve by `dedup_key`.

Checked by hand rather than by a msgspec struct so every refusal names its field the way PagerDuty's own
400 answer does (`payload.severity`), and so acknowledge/resolve ignore what PagerDuty ignores for them.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec

from tocsin.events.alerts import Link, Severity
from tocsin.intake.sources.base import (
    Incoming,
    Normalized,
    PayloadError,
    clip,
    decode,
    flatten_labels,
    render,
    string_field,
)

ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES: dict[str, Severity] = {"critical": "critical", "error": "error", "warning": "warning", "info": "info"}
MAX_DEDUP_KEY = 255       # PagerDuty's limit
MAX_SUMMARY = 1024        # PagerDuty's limit; longer summaries are clipped, not refused
MAX_LINKS = 20


def parse(incoming: Incoming) -> list[Normalized]:
    doc = decode(incoming.body, dict[str, Any])
    assert isinstance(doc, dict)
    action = string_field(doc, "event_action", "event_action", required=True)
    if action not in ACTIONS:
        raise PayloadError(f"event_action must be one of {', '.join(ACTIONS)}, not {action!r}", "event_action")
    dedup_key = string_field(doc, "dedup_key", "dedup_key", required=action != "trigger")
    if len(dedup_key) > MAX_DEDUP_KEY:
        raise PayloadError(f"dedup_key is longer than {MAX_DEDUP_KEY} characters", "dedup_key")
    # The routing key is the route token: it authenticated the request and is not kept with the alert.
    raw = msgspec.json.encode({k: v for k, v in doc.items() if k != "routing_key"})
    if action != "trigger":
        return [Normalized(
            dedup_key=dedup_key, status="resolved" if action == "resolve" else "firing",
            title=f"{'Resolved' if action == 'resolve' else 'Acknowledged'} via the PagerDuty Events API",
            severity="info", acknowledge=action == "acknowledge", raw=raw)]

    payload = doc.get("payload")
    if not isinstance(payload, dict):
        raise PayloadError("a trigger needs a payload object", "payload")
    summary = string_field(payload, "summary", "payload.summary", required=True)
    source = string_field(payload, "source", "payload.source", required=True)
    given = string_field(payload, "severity", "payload.severity", required=True)
    severity = SEVERITIES.get(given)
    if severity is None:   # PagerDuty answers 400 to anything else ("fatal", "Critical")
        raise PayloadError(f"payload.severity must be one of {', '.join(SEVERITIES)}, not {given!r}",
                           "payload.severity")
    details = payload.get("custom_details")
    labels = flatten_labels(details, depth=2) if isinstance(details, dict) else {}
    labels.update({"source": source, "severity": severity})
    for key in ("component", "group", "class"):
        value = string_field(payload, key, f"payload.{key}")
        if value:
            labels[key] = value
    return [Normalized(
        dedup_key=dedup_key or uuid.uuid4().hex,   # PagerDuty makes one up too, and returns it
        status="firing", title=clip(" ".join(summary.split()), MAX_SUMMARY), severity=severity,
        details=clip(render(details), 10_000), labels=labels, links=_links(doc), raw=raw)]




def _links(doc: dict[str, Any]) -> list[Link]:
    """`links` as they are, `images` as links to where the image points (else the image itself), then the
    sending tool (`client_url`)."""
    out: list[Link] = []
    for name, href_keys, text_key, default_text in (("links", ("href",), "text", "Link"),
                                                     ("images", ("href", "src"), "alt", "Image")):
        items = doc.get(name)
        if items is None:
            continue
        if not isinstance(items, list):
            raise PayloadError(f"{name} must be an array", name)
        for i, item in enumerate(items[:MAX_LINKS]):
            if not isinstance(item, dict):
                raise PayloadError(f"{name}[{i}] must be an object", f"{name}[{i}]")
            required = href_keys[-1]
            string_field(item, required, f"{name}[{i}].{required}", required=True)
            hrefs = [string_field(item, k, f"{name}[{i}].{k}") for k in href_keys]
            text = string_field(item, text_key, f"{name}[{i}].{text_key}")
            out.append(Link(href=next(h for h in hrefs if h), text=clip(text or default_text, 200)))
    client_url = string_field(doc, "client_url", "client_url")
    if client_url:
        out.append(Link(href=client_url, text=clip(string_field(doc, "client", "client") or "Source", 200)))
    return out
