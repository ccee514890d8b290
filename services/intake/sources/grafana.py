"""Grafana unified alerting, webhook contact point (default payload): every alert of the group, each with its
own status, optionally signed with HMAC-SHA256 (Grafana 12+, `hmacConfig`)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Literal

import msgspec

from tocsin.events.alerts import Link
from tocsin.intake.sources.base import Incoming, Normalized, PayloadError, SignatureError, clip, decode, map_severity

# Grafana's contact point names the signature header (`hmacConfig.header`); empty means its default. The UI
# shows X-Grafana-Alerting-Signature, the first grafana/alerting release of the signer used
# X-Grafana-Alert-Signature: both are read.
SIGNATURE_HEADERS = ("X-Grafana-Alerting-Signature", "X-Grafana-Alert-Signature")
# The timestamp header has no default in Grafana and a route has no field for it: Tocsin reads these names,
# and the docs tell users to set `Timestamp header` to the first one.
TIMESTAMP_HEADERS = ("X-Grafana-Alerting-Timestamp", "X-Grafana-Alerting-Signature-Timestamp")
MAX_CLOCK_SKEW = 300   # seconds a signed timestamp may be off from ours, either way


class GrafanaAlert(msgspec.Struct):
    status: Literal["firing", "resolved"]
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    startsAt: str = ""
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: str = ""
    silenceURL: str = ""
    dashboardURL: str = ""
    panelURL: str = ""
    valueString: str = ""


class GrafanaGroup(msgspec.Struct):
    alerts: list[msgspec.Raw]
    receiver: str = ""
    status: str = ""
    externalURL: str = ""


def parse(incoming: Incoming, now: float | None = None) -> list[Normalized]:
    if incoming.route.secret:
        verify_signature(incoming, time.time() if now is None else now)
    group = decode(incoming.body, GrafanaGroup)
    assert isinstance(group, GrafanaGroup)
    if not group.alerts:
        raise PayloadError("the group has no alerts", "alerts")
    return [_normalize(_alert(raw, i), bytes(raw)) for i, raw in enumerate(group.alerts)]


def verify_signature(incoming: Incoming, now: float) -> None:
    """Hex HMAC-SHA256 of the raw body with the route's secret, or of `timestamp:body` when a timestamp header
    came with it; a timestamp must be within MAX_CLOCK_SKEW of now, so a captured request cannot be replayed
    later (without one, Grafana signs the body alone and a replay cannot be told apart)."""
    given = _header(incoming.headers, SIGNATURE_HEADERS)
    if not given:
        raise SignatureError(f"missing {SIGNATURE_HEADERS[0]} header; this route requires a signed request")
    signed = incoming.body
    timestamp = _header(incoming.headers, TIMESTAMP_HEADERS)
    if timestamp is not None:
        timestamp = timestamp.strip()
        if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
            raise SignatureError(f"{TIMESTAMP_HEADERS[0]} is not a Unix time in seconds")
        if abs(now - int(timestamp)) > MAX_CLOCK_SKEW:
            raise SignatureError(f"the signed timestamp is more than {MAX_CLOCK_SKEW} s away from this server's "
                                 "clock (a replay, or clocks out of sync)")
        signed = timestamp.encode() + b":" + incoming.body
    expected = hmac.new(incoming.route.secret.encode(), signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode("utf-8", "replace")):
        hint = "" if timestamp is not None else (
            f" (if Grafana's Timestamp header is set, it must be named {TIMESTAMP_HEADERS[0]})")
        raise SignatureError(f"the request signature does not match this route's secret{hint}")


def _header(headers: Mapping[str, str], names: tuple[str, ...]) -> str | None:
    # aiohttp's headers are case-insensitive; a plain dict (tests, other callers) may not be.
    wanted = {n.lower() for n in names}
    for name in names:
        if name in headers:
            return headers[name]
    return next((v for k, v in headers.items() if k.lower() in wanted), None)


def _alert(raw: msgspec.Raw, i: int) -> GrafanaAlert:
    try:
        alert = decode(bytes(raw), GrafanaAlert)
    except PayloadError as exc:
        inner = exc.path if exc.path.startswith("[") or not exc.path else f".{exc.path}"
        raise PayloadError(str(exc), f"alerts[{i}]{inner}") from None
    assert isinstance(alert, GrafanaAlert)
    return alert


def _normalize(alert: GrafanaAlert, raw: bytes) -> Normalized:
    labels = alert.labels or {}
    annotations = alert.annotations or {}
    name = labels.get("alertname", "").strip() or "Grafana alert"
    where = labels.get("instance", "").strip()
    title = annotations.get("summary", "").strip() or (f"{name} on {where}" if where else name)
    details = "\n\n".join(part for part in (
        annotations.get("description", "").strip(),
        f"Value: {alert.valueString}" if alert.valueString.strip() else "") if part)
    links = [Link(href=href, text=text) for href, text in (
        (alert.generatorURL, "Source"), (alert.dashboardURL, "Dashboard"), (alert.panelURL, "Panel"),
        (alert.silenceURL, "Silence"), (annotations.get("runbook_url", ""), "Runbook")) if _is_web_url(href)]
    # Grafana's fingerprint is the hash of the alert's labels; hand-made payloads may lack it.
    key = alert.fingerprint if alert.fingerprint.strip() else "labels-" + hashlib.sha256(
        msgspec.json.encode(sorted(labels.items()))).hexdigest()[:16]
    return Normalized(
        dedup_key=key, status=alert.status, title=clip(title, 500), severity=map_severity(labels.get("severity")),
        details=clip(details, 10_000), labels=dict(labels), links=links, raw=raw)


def _is_web_url(href: str) -> bool:
    return href.lower().startswith(("http://", "https://")) and len(href) <= 4096
