"""Prometheus Alertmanager webhook (version 4): every alert of the group, each with its own status."""

from __future__ import annotations

from typing import Literal

import msgspec

from tocsin.events.alerts import Link
from tocsin.intake.sources.base import Incoming, Normalized, PayloadError, clip, decode, map_severity


class AMAlert(msgspec.Struct):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    startsAt: str = ""
    endsAt: str = ""
    generatorURL: str = ""
    fingerprint: str = ""


class AMGroup(msgspec.Struct):
    alerts: list[msgspec.Raw]
    version: str = "4"
    status: str = ""
    receiver: str = ""
    groupKey: str = ""
    externalURL: str = ""
    truncatedAlerts: int = 0


_alert_decoder = msgspec.json.Decoder(AMAlert)


def parse(incoming: Incoming) -> list[Normalized]:
    group = decode(incoming.body, AMGroup)
    assert isinstance(group, AMGroup)
    if not group.alerts:
        raise PayloadError("the group has no alerts", "alerts")
    out = []
    for i, raw in enumerate(group.alerts):
        try:
            alert = _alert_decoder.decode(raw)
        except msgspec.ValidationError as exc:
            raise PayloadError(str(exc).split(" - at ")[0], f"alerts[{i}]") from None
        labels = alert.labels
        name = labels.get("alertname", "alert")
        summary = alert.annotations.get("summary") or alert.annotations.get("title") or ""
        where = labels.get("instance") or labels.get("job") or ""
        title = summary or (f"{name} on {where}" if where else name)
        links = []
        if alert.generatorURL:
            links.append(Link(href=alert.generatorURL, text="Source"))
        if group.externalURL:
            links.append(Link(href=group.externalURL, text="Alertmanager"))
        # Without a fingerprint (hand-made payloads) the label set identifies the alert, as in Alertmanager.
        key = alert.fingerprint or ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        out.append(Normalized(
            dedup_key=key, status=alert.status, title=clip(title, 500),
            severity=map_severity(labels.get("severity")),
            details=clip(alert.annotations.get("description", ""), 10_000),
            labels=dict(labels), links=links, raw=bytes(raw)))
    return out
