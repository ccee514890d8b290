"""Opsgenie Alert API v2: create an alert, and close or acknowledge it by alias.

The rest of the URL says which call it is, so both ways tools build Opsgenie URLs work:
`""` or `v2/alerts` creates; `<alias>/close`, `<alias>/acknowledge` (or the same under `v2/alerts/`) act on
an alert, with `?identifierType=alias`. Opsgenie's own alert ids and tiny ids are never known here.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from tocsin.events.alerts import Severity
from tocsin.intake.sources.base import (
    Incoming,
    Normalized,
    PayloadError,
    clip,
    decode,
    flatten_labels,
    string_field,
)

PRIORITIES: dict[str, Severity] = {"P1": "critical", "P2": "error", "P3": "warning", "P4": "info", "P5": "info"}
DEFAULT_PRIORITY = "P3"    # Opsgenie's default
MAX_MESSAGE = 130          # Opsgenie's limit: a longer message is clipped for the title and kept whole in details
MAX_ALIAS = 512            # Opsgenie's limit: a longer alias is refused (it is the identity, clipping could merge)
ACTIONS = {"close": "Closed", "acknowledge": "Acknowledged"}
API_PREFIX = "v2/alerts"


def parse(incoming: Incoming) -> list[Normalized]:
    rest = incoming.path.strip("/")
    if rest == API_PREFIX or rest.startswith(API_PREFIX + "/"):
        rest = rest[len(API_PREFIX):].strip("/")   # a tool given the bare API URL appends /v2/alerts itself
    if not rest:
        return [_create(incoming.body)]
    identifier, _, action = rest.rpartition("/")
    if action not in ACTIONS or not identifier:
        raise PayloadError(f"unsupported Opsgenie call {incoming.path!r}: create (no path), "
                           "<alias>/close or <alias>/acknowledge")
    kind = incoming.query.get("identifierType", "id").strip().lower()
    if kind != "alias":
        raise PayloadError(f"identifierType={kind!r} cannot be mapped: Tocsin knows alerts by alias only, "
                           "not by Opsgenie's id or tiny id; send ?identifierType=alias")
    if len(identifier) > MAX_ALIAS:
        raise PayloadError(f"the alias is longer than {MAX_ALIAS} characters")
    return [_action(identifier, action, incoming.body)]


def _create(body: bytes) -> Normalized:
    doc = decode(body, dict[str, Any])
    assert isinstance(doc, dict)
    message = string_field(doc, "message", required=True)
    alias = string_field(doc, "alias")
    if len(alias) > MAX_ALIAS:
        raise PayloadError(f"alias is longer than {MAX_ALIAS} characters", "alias")
    priority = string_field(doc, "priority") or DEFAULT_PRIORITY
    if priority not in PRIORITIES:
        raise PayloadError(f"priority must be one of {', '.join(PRIORITIES)}, not {priority!r}", "priority")
    tags = doc.get("tags")
    if tags is not None and not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
        raise PayloadError("tags must be an array of strings", "tags")
    details = doc.get("details")
    if details is not None and not isinstance(details, dict):
        raise PayloadError("details must be an object of strings", "details")
    title = " ".join(message.split())
    text = string_field(doc, "description")
    if len(title) > MAX_MESSAGE:
        text = f"{message}\n\n{text}" if text else message
    note = string_field(doc, "note")
    if note:
        text = f"{text}\n\nNote: {note}" if text else f"Note: {note}"
    labels = flatten_labels(details, depth=1) if details else {}
    if tags:
        labels["tags"] = ",".join(tags)
    labels["priority"] = priority
    for key in ("entity", "source"):
        value = string_field(doc, key)
        if value:
            labels[key] = clip(value, 512)
    return Normalized(
        # Without an alias Opsgenie does not deduplicate by anything the sender knows; the message will do.
        dedup_key=alias if alias.strip() else "message:" + hashlib.sha256(message.encode()).hexdigest()[:32],
        status="firing", title=clip(title, MAX_MESSAGE), severity=PRIORITIES[priority],
        details=clip(text, 15_000), labels=labels, raw=body)


def _action(alias: str, action: str, body: bytes) -> Normalized:
    # The body (AlertActionPayload: user, source, note) is optional; curl -X POST sends none.
    doc = decode(body, dict[str, Any]) if body.strip() else {}
    assert isinstance(doc, dict)
    user, note = string_field(doc, "user"), string_field(doc, "note")
    verb = ACTIONS[action]
    title = f"{verb} by {' '.join(user.split())}" if user.strip() else f"{verb} via the Opsgenie API"
    return Normalized(
        dedup_key=alias, status="resolved" if action == "close" else "firing", title=clip(title, 200),
        severity="info", details=clip(note, 15_000), acknowledge=action == "acknowledge",
        raw=msgspec.json.encode(doc))


