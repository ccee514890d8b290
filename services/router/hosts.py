"""Tell people what the scheduler noticed about heartbeat hosts (`HostNotice` on `hosts.<host>`).

"Its team", for a host, means two things, by how urgent the news is:

- `overdue` opens an incident for the host's team (route `host:<name>`, dedup slot `_host.<name>`):
  it pages the team's escalation policy like any alert, escalates until acknowledged, and goes to the
  host's channels (else `default_channels`) and the team's channels. A host that sends again
  (`back`) resolves it. A second overdue spell while the first incident is open attaches to it.
- `booted`, `shutdown`, `back` and threshold changes are notices: one message to the host's channels
  (else `default_channels`) and the team's channels, no incident, nobody woken by escalation.

Silences apply: a notice or an overdue incident whose labels (`host`, `event`, and `metric` for
thresholds) match an active silence is not sent (the incident is opened silenced, as for alerts).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tocsin.events import alerts, notify
from tocsin.events.base import Event, stable_id
from tocsin.events.config import DELIVERABLE_KINDS
from tocsin.events.hostwatch import HostNotice
from tocsin.router.paging import HOST_ROUTE_PREFIX, host_channels, public_fields

if TYPE_CHECKING:
    from tocsin.router.app import Router

log = logging.getLogger("tocsin.router.hosts")

SEVERITY = {"CRITICAL": "critical", "WARNING": "warning", "OK": "info"}


def labels_of(notice: HostNotice) -> dict[str, str]:
    labels = {"host": notice.host, "event": notice.kind}
    if notice.metric:
        labels["metric"] = notice.metric
    return labels


async def on_notice(router: Router, notice: HostNotice) -> None:
    directory = router.config.directory
    spec = directory.config.hosts.get(notice.host)
    if spec is None:
        log.info("host %s is not configured any more; %r not told", notice.host, notice.text)
        return
    team = spec.get("team") if spec.get("team") in directory.config.teams else None
    if notice.kind in ("overdue", "back") and team is not None:
        alert = alerts.AlertReceived(
            id=stable_id("host-alert", notice.id), aggregate_id=notice.host, at=notice.at, source="heartbeat",
            route=f"{HOST_ROUTE_PREFIX}{notice.host}", dedup_key=f"{HOST_ROUTE_PREFIX}{notice.host}",
            status="firing" if notice.kind == "overdue" else "resolved", severity="critical", title=notice.text,
            details=f"No heartbeat from {notice.host} within its overdue_after." if notice.kind == "overdue" else "",
            labels={"host": notice.host, "event": "overdue"})
        outcome = await router.settle(alert, f"_host.{notice.host}", team)
        log.info("host %s: %s -> %s", notice.host, notice.kind, outcome.reason)
        if notice.kind == "overdue":
            return   # the incident's first page went to the broadcast channels already
    silence = router.active_silence(labels_of(notice), router.clock())
    if silence is not None:
        log.info("host %s: %r not told: silence %s", notice.host, notice.text, silence.id)
        return
    names = host_channels(directory, notice.host)
    if team is not None:
        names += directory.config.teams[team].channels
    out: list[tuple[str, Event]] = []
    for name in dict.fromkeys(names):
        found = directory.channel(name)
        if found is None or found[0] not in DELIVERABLE_KINDS:
            log.warning("host %s: cannot tell channel %s", notice.host, name)
            continue
        kind, dest = found
        out.append((notify.subject(kind), notify.NotificationRequested(
            id=stable_id("host-notice", notice.id, name), aggregate_id="", at=router.clock(), channel_kind=kind,
            channel=name, destination=public_fields(dest), message_kind="notice", title=notice.text,
            severity=SEVERITY.get(notice.level, "info"), status="")))
    if out:
        await router.bus.publish_many(out)
