"""One module per monitoring tool; each turns the tool's own request into `Normalized` alerts.

A parser takes an `Incoming` (body, headers, query, route) and returns the alerts, or raises
PayloadError (422, with the path of the problem) or SignatureError (401). It never raises anything else
for any input: property tests feed each one arbitrary JSON.
"""

from __future__ import annotations

from collections.abc import Callable

from tocsin.intake.sources import alertmanager, checkly, grafana, opsgenie, pagerduty, uptimekuma, webhook, zabbix
from tocsin.intake.sources.base import Incoming, Normalized, PayloadError, SignatureError

Parser = Callable[[Incoming], list[Normalized]]

# The explicit registry: source name (as in the URL and in a route's `source`) -> parser.
PARSERS: dict[str, Parser] = {
    "alertmanager": alertmanager.parse,
    "pagerduty": pagerduty.parse,
    "opsgenie": opsgenie.parse,
    "webhook": webhook.parse,
    "zabbix": zabbix.parse,
    "grafana": grafana.parse,
    "checkly": checkly.parse,
    "uptimekuma": uptimekuma.parse,
}

__all__ = ["PARSERS", "Incoming", "Normalized", "Parser", "PayloadError", "SignatureError"]
