"""Checkly webhook alert channel with the body template in docs/integrations/checkly.md: one alert per request,
keyed by the check id so a recovery resolves what the failure opened; optionally signed (`x-checkly-signature`).

Checkly renders the template with Handlebars: `{{VAR}}` HTML-escapes a value (`"` becomes `&quot;`), which
keeps the JSON valid, but leaves newlines and backslashes alone, so a multi-line error message arrives as
broken JSON. Such a body is repaired (control characters and stray backslashes inside strings escaped) rather
than refused, because a refused failure alert is a page that never happens.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
from collections.abc import Callable, Mapping
from functools import partial

import msgspec

from tocsin.events.alerts import AlertStatus, Link, Severity
from tocsin.intake.sources.base import Incoming, Normalized, PayloadError, SignatureError, clip, decode

SIGNATURE_HEADER = "x-checkly-signature"

# ALERT_TYPE -> (status, severity). Every code of Checkly's alert-state table, plus ALERT_SSL (certificate expiry)
# and ALERT_FAIL (older docs' spelling of ALERT_FAILURE).
ALERT_TYPES: dict[str, tuple[AlertStatus, Severity]] = {
    "ALERT_FAILURE": ("firing", "critical"),
    "ALERT_FAIL": ("firing", "critical"),
    "ALERT_FAILURE_REMAIN": ("firing", "critical"),
    "ALERT_DEGRADED_FAILURE": ("firing", "critical"),
    "ALERT_DEGRADED": ("firing", "warning"),
    "ALERT_DEGRADED_REMAIN": ("firing", "warning"),
    "ALERT_FAILURE_DEGRADED": ("firing", "warning"),
    "ALERT_SSL": ("firing", "warning"),
    "ALERT_RECOVERY": ("resolved", "critical"),
    "ALERT_DEGRADED_RECOVERY": ("resolved", "warning"),
}

Number = str | int | float   # quoted in the template, but a hand-written one may leave numbers bare


class CheckAlert(msgspec.Struct):
    alert_type: str
    check_id: str
    event: str = ""                      # ALERT_TITLE
    check_name: str = ""
    group_name: str = ""
    check_type: str = ""
    check_result_id: str = ""
    check_error_message: str = ""
    response_time: Number = ""
    api_check_response_status_code: Number = ""
    api_check_response_status_text: str = ""
    run_location: str = ""
    ssl_days_remaining: Number = ""
    ssl_check_domain: str = ""
    started_at: str = ""
    tags: str | list[str] = ""
    link: str = ""                       # RESULT_LINK
    region: str = ""


def parse(incoming: Incoming) -> list[Normalized]:
    if incoming.route.secret:
        verify_signature(incoming)
    alert, raw = _decode(incoming.body)
    text = partial(_text, alert)
    kind = alert.alert_type.strip().upper()
    if kind not in ALERT_TYPES:
        raise PayloadError(f"unknown alert_type {alert.alert_type[:40]!r} (one of {', '.join(ALERT_TYPES)})",
                           "alert_type")
    check_id = text("check_id")
    if not check_id:
        raise PayloadError("check_id is empty", "check_id")
    status, severity = ALERT_TYPES[kind]
    name = text("check_name") or f"Check {check_id}"
    title = text("event") or f"{name} {_VERBS.get(kind, 'has failed')}"
    labels = {k: v for k, v in (
        ("check_id", check_id), ("check_name", text("check_name")), ("check_type", text("check_type")),
        ("group_name", text("group_name")), ("tags", text("tags")), ("run_location", text("run_location")),
        ("region", text("region"))) if v}
    link = text("link")
    return [Normalized(
        # An SSL expiry notice is about the certificate, not the check's runs: a recovery must not close it.
        dedup_key=f"{check_id}:ssl" if kind == "ALERT_SSL" else check_id,
        status=status, severity=severity, title=clip(title, 500), details=clip(_details(text), 10_000),
        labels=labels, links=[Link(href=link, text="Check result")] if _is_web_url(link) else [], raw=raw)]


def verify_signature(incoming: Incoming) -> None:
    """Hex HMAC-SHA256 of the raw body with the route's secret. Checkly's `x-checkly-timestamp` is not signed,
    so it proves nothing and is not checked."""
    given = _header(incoming.headers, SIGNATURE_HEADER)
    if not given:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header; this route requires a signed request")
    expected = hmac.new(incoming.route.secret.encode(), incoming.body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), given.strip().lower().encode("utf-8", "replace")):
        raise SignatureError("the request signature does not match this route's secret")


_VERBS = {"ALERT_DEGRADED": "is degraded", "ALERT_DEGRADED_REMAIN": "is degraded",
          "ALERT_FAILURE_DEGRADED": "is degraded", "ALERT_RECOVERY": "has recovered",
          "ALERT_DEGRADED_RECOVERY": "has recovered", "ALERT_SSL": "has an expiring SSL certificate"}


def _text(alert: CheckAlert, field: str) -> str:
    """A field as text, with Handlebars' HTML escaping undone."""
    value = getattr(alert, field)
    if isinstance(value, list):
        value = ",".join(value)
    return html.unescape(str(value)).strip()


def _details(text: Callable[[str], str]) -> str:
    lines = [text("check_error_message")]
    if code := text("api_check_response_status_code"):
        lines.append(f"Response: {code} {text('api_check_response_status_text')}".rstrip())
    if ms := text("response_time"):
        lines.append(f"Response time: {ms} ms")
    if days := text("ssl_days_remaining"):
        lines.append(f"SSL certificate of {text('ssl_check_domain') or 'the check'} expires in {days} days")
    if where := text("run_location"):
        region = text("region")
        lines.append(f"Location: {where} ({region})" if region else f"Location: {where}")
    if started := text("started_at"):
        lines.append(f"Started at: {started}")
    return "\n".join(line for line in lines if line)


def _decode(body: bytes) -> tuple[CheckAlert, bytes]:
    """The alert and the JSON to keep as raw (the repaired body when the sent one was not valid JSON)."""
    try:
        alert = decode(body, CheckAlert)
    except PayloadError as first:
        repaired = _escape_inside_strings(body)
        if repaired == body:
            raise
        try:
            alert = decode(repaired, CheckAlert)
        except PayloadError:
            raise first from None
        body = repaired
    assert isinstance(alert, CheckAlert)
    return alert, body


# A JSON string, its closing quote optional so an unterminated one is consumed once (linear time).
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"?', re.S)
_INSIDE = re.compile(rb"\\(u[0-9a-fA-F]{4}|.)|[\x00-\x1f]", re.S)


def _escape_inside_strings(body: bytes) -> bytes:
    def fix(m: re.Match[bytes]) -> bytes:
        escaped = m.group(1)
        if escaped is None:
            return b"\\u%04x" % m.group(0)[0]
        if len(escaped) == 5 or escaped in b'"\\/bfnrt':
            return m.group(0)
        return b"\\\\" + (b"\\u%04x" % escaped[0] if escaped[0] < 0x20 else escaped)
    return _STRING.sub(lambda s: _INSIDE.sub(fix, s.group(0)), body)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # aiohttp's headers are case-insensitive; a plain dict (tests, other callers) may not be.
    if name in headers:
        return headers[name]
    return next((v for k, v in headers.items() if k.lower() == name), None)


def _is_web_url(href: str) -> bool:
    return href.lower().startswith(("http://", "https://")) and len(href) <= 4096
