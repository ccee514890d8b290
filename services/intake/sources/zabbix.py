"""Zabbix, through Tocsin's own webhook media type (deploy/integrations/zabbix/): one flat JSON object of
strings, one per media type parameter, each a Zabbix macro expanded to text.

One event id per problem: the PROBLEM, every UPDATE (acknowledge, comment, severity change) and the
RECOVERY notification all carry it, so it is the dedup key.
"""

from __future__ import annotations

import re

import msgspec

from tocsin.events.alerts import Link, Severity
from tocsin.intake.sources.base import Incoming, Normalized, PayloadError, clip, decode, map_severity


class ZabbixEvent(msgspec.Struct):
    event_id: str
    event_value: str
    event_update: str
    event_ack: str = ""
    event_nseverity: str = ""
    event_severity: str = ""
    host_name: str = ""
    host_ip: str = ""
    trigger_id: str = ""
    trigger_description: str = ""
    event_tags: str = ""
    subject: str = ""
    message: str = ""
    zabbix_url: str = ""
    # Not sent by the shipped media type; honoured for the title when a user adds them.
    event_name: str = ""
    trigger_name: str = ""


# A value that is nothing but a macro, e.g. "{EVENT.ID}", "{$ZABBIX.URL}", "{EVENT.TAGS.service}":
# Zabbix leaves a macro as it is when it cannot expand it in that context (a parameter mistyped, the
# media type used by a discovery or autoregistration action). Macros inside free text are left alone.
_UNEXPANDED = re.compile(r"\{[$#?]?[A-Z][A-Z0-9_.]*(?::[^{}]*)?\}")
# {$ZABBIX.URL} is a global user macro the administrator sets, not part of the media type; without it
# the alert still pages, only without a link.
_OPTIONAL_MACROS = frozenset({"zabbix_url"})
_DIGITS = re.compile(r"[0-9]+")

# {EVENT.NSEVERITY} 0..5: Not classified, Information, Warning, Average, High, Disaster.
_BY_NUMBER: tuple[Severity, ...] = ("info", "info", "warning", "error", "critical", "critical")
_BY_NAME: dict[str, Severity] = {
    "not classified": "info", "information": "info", "warning": "warning", "average": "error",
    "high": "critical", "disaster": "critical",
}
# What Zabbix writes for a macro it knows but cannot resolve (e.g. {HOST.IP} without an interface).
_UNKNOWN = "*UNKNOWN*"


def parse(incoming: Incoming) -> list[Normalized]:
    try:
        event = decode(incoming.body, ZabbixEvent)
    except PayloadError as exc:
        # decode() puts a missing field at its parent's path (here the root): name the field itself.
        missing = re.fullmatch(r"Object missing required field `(\w+)`", str(exc))
        if missing and not exc.path:
            raise PayloadError(str(exc), missing.group(1)) from None
        raise
    assert isinstance(event, ZabbixEvent)
    _refuse_unexpanded(event)
    if not _DIGITS.fullmatch(event.event_id):
        raise PayloadError(f"event_id must be a Zabbix event id (digits), not {event.event_id!r}", "event_id")
    for name in ("event_value", "event_update"):
        if getattr(event, name) not in ("0", "1"):
            raise PayloadError(f'{name} must be "0" or "1", not {getattr(event, name)!r}', name)
    ack = event.event_ack.strip().lower()
    if ack not in ("", "yes", "no"):
        raise PayloadError(f'event_ack must be "Yes" or "No", not {event.event_ack!r}', "event_ack")

    resolved = event.event_value == "0"
    return [Normalized(
        dedup_key=f"zabbix-{event.event_id}",
        status="resolved" if resolved else "firing",
        title=clip(_title(event), 500),
        severity=severity(event.event_nseverity, event.event_severity),
        details=clip(event.message.strip() or event.trigger_description.strip(), 10_000),
        labels=_labels(event),
        links=_links(event),
        raw=incoming.body,
        # An update operation of a problem someone acknowledged. Later updates (a comment after the
        # acknowledgement) say "Yes" again; acknowledging an acknowledged incident changes nothing.
        acknowledge=not resolved and event.event_update == "1" and ack == "yes",
    )]


def _refuse_unexpanded(event: ZabbixEvent) -> None:
    for name in event.__struct_fields__:
        value = getattr(event, name)
        if name not in _OPTIONAL_MACROS and _UNEXPANDED.fullmatch(value.strip()):
            raise PayloadError(
                f"{name} is {value.strip()!r}, a macro Zabbix did not expand: check the media type parameter "
                f"{name!r} and that the media type is used by a trigger action", name)


def severity(nseverity: str, name: str) -> Severity:
    """{EVENT.NSEVERITY} when it is a number 0..5, else the severity's name ({EVENT.SEVERITY}; renamed
    severities fall back to the common names, then to critical)."""
    number = nseverity.strip()
    if _DIGITS.fullmatch(number) and int(number) < len(_BY_NUMBER):
        return _BY_NUMBER[int(number)]
    return _BY_NAME.get(name.strip().lower()) or map_severity(name)


def _title(event: ZabbixEvent) -> str:
    for text in (event.subject, event.event_name, event.trigger_name):
        if text.strip():
            return text.strip()
    host = event.host_name.strip()
    what = "Zabbix recovery" if event.event_value == "0" else "Zabbix problem"
    return f"{what} {event.event_id}" + (f" on {host}" if host else "")


def parse_tags(text: str) -> dict[str, str]:
    """{EVENT.TAGS}: "tag:value, tag:value" in Zabbix's order; a tag without a value is written bare.

    Zabbix does not escape anything, so the text is split on ", " and each piece is read as `tag:value`
    (the first ':' separates, later ones belong to the value). A piece without ':' is a tag without a
    value when it is one word, else the rest of the previous value (a value that contained ", ").
    A tag given twice keeps both values, joined with ", ".
    """
    pairs: list[list[str]] = []
    for piece in text.split(", "):
        piece = piece.strip()
        if not piece.strip(","):
            continue
        if ":" in piece:
            tag, _, value = piece.partition(":")
            pairs.append([tag.strip(), value.strip()])
        elif pairs and re.search(r"\s", piece):
            pairs[-1][1] = f"{pairs[-1][1]}, {piece}" if pairs[-1][1] else piece
        else:
            pairs.append([piece, ""])
    values: dict[str, list[str]] = {}
    for tag, value in pairs:
        if tag:
            seen = values.setdefault(tag, [])
            if value and value not in seen:
                seen.append(value)
    return {tag: ", ".join(seen) for tag, seen in values.items()}


def _labels(event: ZabbixEvent) -> dict[str, str]:
    labels = parse_tags(event.event_tags)
    # The fields of the event win over an event tag of the same name.
    for name in ("host_name", "host_ip", "trigger_id"):
        value = getattr(event, name).strip()
        if value and value != _UNKNOWN:
            labels[name] = value
    return labels


def _links(event: ZabbixEvent) -> list[Link]:
    base = event.zabbix_url.strip().rstrip("/")
    if not re.match(r"https?://[^\s{}]+$", base, re.IGNORECASE) or not _DIGITS.fullmatch(event.trigger_id):
        return []
    return [Link(href=f"{base}/tr_events.php?triggerid={event.trigger_id}&eventid={event.event_id}",
                 text="Zabbix event")]
