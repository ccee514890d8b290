"""ROUTING stream: what the router did with each alert, so "why was nobody paged?" has an answer.

One `AlertRouted` per alert, on `routing.<route>`, id `stable_id("routed", alert id)`: an alert handled
again after a crash records the same outcome once. The API keeps the latest per alert and shows it as
`routing` in `GET /api/v1/alerts/{id}`.

| outcome       | meaning                                                                          | paged |
|---------------|----------------------------------------------------------------------------------|-------|
| `opened`      | opened incident `incident_number` and paged its first step                       | yes   |
| `silenced`    | opened the incident, but `silence` covers its labels: recorded, not paged yet    | no    |
| `attached`    | a duplicate: an open incident has the same incident key; attached, not paged      | no    |
| `no_match`    | a firing alert whose labels fail the route's `match` (see `failed_matchers`)     | no    |
| `no_route`    | the route (or its team) is not in the config                                     | no    |
| `no_incident` | a resolve or acknowledgement with no open incident for its key: dropped          | no    |

Rate limiting happens earlier, at the intake: an alert over the route's limit is answered 429 and never
stored, so it has no id and no outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from tocsin.events.base import Event

Outcome = Literal["opened", "silenced", "attached", "no_match", "no_route", "no_incident"]


class SilenceRef(msgspec.Struct, frozen=True, kw_only=True):
    id: str                      # `config:<index>` for a silence of tocsin.yaml, else the API silence's id
    comment: str = ""
    matchers: dict[str, str] = {}
    ends: datetime | None = None


class FailedMatcher(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    matcher: str                 # as written in the route: `=~prod|staging`
    actual: str | None           # the alert's value, None when it has no such label


class AlertRouted(Event, frozen=True, kw_only=True, tag="alert.routed"):
    """`aggregate_id` is the alert id."""

    alert_id: str
    route: str
    outcome: Outcome
    paged: bool = False
    reason: str = ""
    incident_id: str = ""
    incident_number: int = 0
    effect: str = ""             # attached: "resolved" or "acknowledged" when the alert did that
    silence: SilenceRef | None = None
    failed_matchers: list[FailedMatcher] = []


RoutingEvent = AlertRouted
decoder = msgspec.json.Decoder(RoutingEvent)
SUBJECT_PREFIX = "routing"


def subject(route: str) -> str:
    return f"{SUBJECT_PREFIX}.{route}"
