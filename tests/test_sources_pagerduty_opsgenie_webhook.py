"""PagerDuty Events v2, Opsgenie Alert API and generic JSON webhooks: the parsers fixture by fixture, then
the drop-in paths (`/v2/enqueue`, GenieKey, close by alias, route field mappings) through the running stack."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from harness import ONE_TEAM, StackHandle, eventually
from tocsin.events.alerts import Link
from tocsin.events.config import Route
from tocsin.events.streams import ALERTS
from tocsin.intake.sources import PARSERS, Incoming, Normalized, PayloadError

DISK_KEY = "db-01.prod.example.net/disk/var"
DISK_ALIAS = "DiskFull-db-01.prod.example.net-var"


def parse(source: str, body: bytes | str | dict[str, Any] | list[Any], *, path: str = "",
          query: dict[str, str] | None = None, **route: Any) -> list[Normalized]:
    data = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
    return PARSERS[source](Incoming(body=data, route=Route(source=source, team="infra", **route),
                                    query=query or {}, path=path))


def fixture(fixtures_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((fixtures_dir / name).read_text())  # type: ignore[no-any-return]


# ================================================================== PagerDuty, parser level


def test_pagerduty_full_trigger(fixtures_dir):
    [alert] = parse("pagerduty", (fixtures_dir / "pagerduty" / "trigger.json").read_bytes())
    assert alert.dedup_key == "db-01.prod.example.net/disk/var"
    assert alert.status == "firing" and alert.acknowledge is False
    assert alert.title == "Disk /var is 95% full on db-01.prod.example.net"
    assert alert.severity == "critical"
    assert alert.labels == {
        "mount": "/var", "used_percent": "95.2", "free_bytes": "2254857830", "threshold": "> 90%",
        "runbook": "https://runbooks.example.net/disk-full",
        "source": "db-01.prod.example.net", "severity": "critical", "component": "postgres", "group": "prod-db",
        "class": "disk usage"}
    assert alert.details == (
        '{\n  "mount": "/var",\n  "used_percent": 95.2,\n  "free_bytes": 2254857830,\n  "threshold": "> 90%",\n'
        '  "runbook": "https://runbooks.example.net/disk-full"\n}')
    assert alert.links == [
        Link(href="https://grafana.example.net/d/rYdddlPWk?orgId=1", text="Node dashboard"),
        Link(href="https://runbooks.example.net/disk-full", text="Runbook: disk full"),
        Link(href="https://grafana.example.net/d/rYdddlPWk?orgId=1&viewPanel=7",
             text="Disk usage /var on db-01, last 6 hours"),
        Link(href="https://alertmanager.example.net/#/alerts?receiver=pagerduty", text="Prometheus Alertmanager")]
    raw = json.loads(alert.raw)
    assert "routing_key" not in raw   # the route token is never stored with the alert
    assert raw["payload"]["custom_details"]["free_bytes"] == 2254857830


def test_pagerduty_minimal_trigger_gets_a_new_dedup_key_each_time(fixtures_dir):
    body = (fixtures_dir / "pagerduty" / "trigger-minimal.json").read_bytes()
    [first], [second] = parse("pagerduty", body), parse("pagerduty", body)
    assert re.fullmatch(r"[0-9a-f]{32}", first.dedup_key)
    assert first.dedup_key != second.dedup_key
    assert first.title == "Nightly backup job failed on backup-01"
    assert first.severity == "error" and first.status == "firing"
    assert first.labels == {"source": "backup-01.prod.example.net", "severity": "error"}
    assert first.details == "" and first.links == []


def test_pagerduty_acknowledge_and_resolve(fixtures_dir):
    [ack] = parse("pagerduty", (fixtures_dir / "pagerduty" / "acknowledge.json").read_bytes())
    assert (ack.dedup_key, ack.status, ack.acknowledge) == ("db-01.prod.example.net/disk/var", "firing", True)
    assert ack.title == "Acknowledged via the PagerDuty Events API"
    assert json.loads(ack.raw) == {"dedup_key": "db-01.prod.example.net/disk/var", "event_action": "acknowledge"}
    [res] = parse("pagerduty", (fixtures_dir / "pagerduty" / "resolve.json").read_bytes())
    assert (res.dedup_key, res.status, res.acknowledge) == ("db-01.prod.example.net/disk/var", "resolved", False)
    assert res.title == "Resolved via the PagerDuty Events API"


def test_pagerduty_acknowledge_ignores_payload_like_pagerduty():
    [ack] = parse("pagerduty", {"event_action": "acknowledge", "dedup_key": "k", "payload": "junk", "links": 7})
    assert ack.acknowledge and ack.dedup_key == "k"


def test_pagerduty_invalid_severity_is_refused_with_its_path(fixtures_dir):
    with pytest.raises(PayloadError) as err:
        parse("pagerduty", (fixtures_dir / "pagerduty" / "invalid-severity.json").read_bytes())
    assert err.value.path == "payload.severity"
    assert "fatal" in str(err.value)


TRIGGER = {"routing_key": "x" * 32, "event_action": "trigger",
           "payload": {"summary": "s", "source": "h", "severity": "info"}}
PD_BAD = [
    # (id, body, path)
    ("no event_action", {"routing_key": "x", "dedup_key": "k"}, "event_action"),
    ("unknown event_action", {**TRIGGER, "event_action": "snooze"}, "event_action"),
    ("no payload", {"event_action": "trigger"}, "payload"),
    ("no summary", {**TRIGGER, "payload": {"source": "h", "severity": "info"}}, "payload.summary"),
    ("blank summary", {**TRIGGER, "payload": {"summary": "  ", "source": "h", "severity": "info"}},
     "payload.summary"),
    ("no source", {**TRIGGER, "payload": {"summary": "s", "severity": "info"}}, "payload.source"),
    ("no severity", {**TRIGGER, "payload": {"summary": "s", "source": "h"}}, "payload.severity"),
    ("capitalised severity", {**TRIGGER, "payload": {"summary": "s", "source": "h", "severity": "Critical"}},
     "payload.severity"),
    ("component not a string", {**TRIGGER, "payload": {**TRIGGER["payload"], "component": 3}}, "payload.component"),
    ("acknowledge without dedup_key", {"event_action": "acknowledge"}, "dedup_key"),
    ("resolve with empty dedup_key", {"event_action": "resolve", "dedup_key": ""}, "dedup_key"),
    ("dedup_key over 255", {**TRIGGER, "dedup_key": "k" * 256}, "dedup_key"),
    ("links not an array", {**TRIGGER, "links": {"href": "u"}}, "links"),
    ("link without href", {**TRIGGER, "links": [{"text": "t"}]}, "links[0].href"),
    ("image without src", {**TRIGGER, "images": [{"href": "u"}]}, "images[0].src"),
    ("not an object", [TRIGGER], ""),
]


@pytest.mark.parametrize(("case", "body", "path"), PD_BAD, ids=[c[0] for c in PD_BAD])
def test_pagerduty_refusals_name_the_field(case, body, path):
    with pytest.raises(PayloadError) as err:
        parse("pagerduty", body)
    assert err.value.path == path


def test_pagerduty_long_summary_is_clipped_and_custom_details_may_be_text():
    [alert] = parse("pagerduty", {**TRIGGER, "payload": {**TRIGGER["payload"], "summary": "a" * 2000,
                                                         "custom_details": "free text"}})
    assert len(alert.title) == 1024 and alert.title.endswith("…")
    assert alert.details == "free text"
    assert alert.labels == {"source": "h", "severity": "info"}


# ================================================================== Opsgenie, parser level


def test_opsgenie_create_alert(fixtures_dir):
    [alert] = parse("opsgenie", (fixtures_dir / "opsgenie" / "create-alert.json").read_bytes())
    assert alert.dedup_key == "DiskFull-db-01.prod.example.net-var"
    assert alert.status == "firing" and alert.acknowledge is False
    assert alert.title == "Disk /var is 95% full on db-01"
    assert alert.severity == "critical"
    assert alert.details == (
        "Only 2.1 GiB left on /var (95.2% used) on db-01.prod.example.net. PostgreSQL WAL archiving will stop "
        "when the disk is full.\n\nNote: Opened automatically from Prometheus rule DiskFull")
    assert alert.labels == {
        "mount": "/var", "used_percent": "95.2", "instance": "db-01:9100",
        "runbook": "https://runbooks.example.net/disk-full", "tags": "prod,db,disk,Critical", "priority": "P1",
        "entity": "db-01.prod.example.net", "source": "prometheus-prod"}
    assert json.loads(alert.raw)["alias"] == "DiskFull-db-01.prod.example.net-var"


@pytest.mark.parametrize("path", ["DiskFull-db-01.prod.example.net-var/close",
                                  "v2/alerts/DiskFull-db-01.prod.example.net-var/close"])
def test_opsgenie_close_by_alias(fixtures_dir, path):
    [alert] = parse("opsgenie", (fixtures_dir / "opsgenie" / "close-alert.json").read_bytes(), path=path,
                    query={"identifierType": "alias"})
    assert alert.dedup_key == "DiskFull-db-01.prod.example.net-var"
    assert alert.status == "resolved" and alert.acknowledge is False
    assert alert.title == "Closed by Monitoring Script"
    assert alert.details == "Resolved: /var back to 61% used after log rotation"


def test_opsgenie_acknowledge_by_alias(fixtures_dir):
    [alert] = parse("opsgenie", (fixtures_dir / "opsgenie" / "acknowledge-alert.json").read_bytes(),
                    path="DiskFull-db-01.prod.example.net-var/acknowledge", query={"identifierType": "alias"})
    assert alert.dedup_key == "DiskFull-db-01.prod.example.net-var"
    assert alert.status == "firing" and alert.acknowledge is True
    assert alert.title == "Acknowledged by jane.doe@example.net"
    assert alert.details == "Looking into it, rotating logs now"


def test_opsgenie_close_without_a_body():
    [alert] = parse("opsgenie", b"", path="a1/close", query={"identifierType": "alias"})
    assert (alert.dedup_key, alert.status, alert.title) == ("a1", "resolved", "Closed via the Opsgenie API")


def test_opsgenie_create_through_the_bare_api_url_and_defaults():
    [alert] = parse("opsgenie", {"message": "Certificate for shop.example.net expires in 7 days"},
                    path="v2/alerts")
    # No alias: the message identifies it (sha256 of the message, first 32 hex digits).
    assert alert.dedup_key == "message:880542a0a9663a9a2dc7bdc5abe86117"
    assert alert.severity == "warning"          # P3, Opsgenie's default
    assert alert.labels == {"priority": "P3"}
    assert alert.details == ""


@pytest.mark.parametrize(("priority", "severity"),
                         [("P1", "critical"), ("P2", "error"), ("P3", "warning"), ("P4", "info"), ("P5", "info")])
def test_opsgenie_priorities(priority, severity):
    [alert] = parse("opsgenie", {"message": "m", "priority": priority})
    assert alert.severity == severity


def test_opsgenie_message_over_130_is_clipped_and_kept_whole_in_details():
    message = "x" * 140
    [alert] = parse("opsgenie", {"message": message, "alias": "a", "description": "d"})
    assert alert.title == "x" * 129 + "…"
    assert alert.details == message + "\n\nd"


OG_BAD = [
    # (id, body, path in URL, identifierType, error path, words in the message)
    ("no message", {"alias": "a"}, "", None, "message", "required"),
    ("blank message", {"message": " "}, "", None, "message", "empty"),
    ("alias over 512", {"message": "m", "alias": "a" * 513}, "", None, "alias", "512"),
    ("unknown priority", {"message": "m", "priority": "P0"}, "", None, "priority", "P0"),
    ("tags not strings", {"message": "m", "tags": [1]}, "", None, "tags", "strings"),
    ("details not an object", {"message": "m", "details": "x"}, "", None, "details", "object"),
    ("close by id (the default)", {}, "a1/close", None, "", "identifierType='id'"),
    ("close by tiny id", {}, "1234/close", "tiny", "", "alias only"),
    ("unsupported call", {"message": "m"}, "a1/message", "alias", "", "unsupported"),
    ("action without identifier", {}, "close", "alias", "", "unsupported"),
]


@pytest.mark.parametrize(("case", "body", "path", "kind", "error_path", "words"), OG_BAD,
                         ids=[c[0] for c in OG_BAD])
def test_opsgenie_refusals(case, body, path, kind, error_path, words):
    with pytest.raises(PayloadError) as err:
        parse("opsgenie", body, path=path, query={"identifierType": kind} if kind else {})
    assert err.value.path == error_path
    assert words in str(err.value)


# ================================================================== webhook, parser level


def test_webhook_usual_names_without_a_mapping():
    [alert] = parse("webhook", {"title": "Queue backlog over 10k", "severity": "warning", "id": "q-42",
                                "status": "firing", "description": "orders queue: 10,412 messages",
                                "queue": {"name": "orders", "depth": 10412}})
    assert alert.title == "Queue backlog over 10k"
    assert alert.severity == "warning"
    assert alert.dedup_key == "q-42"
    assert alert.status == "firing"
    assert alert.details == "orders queue: 10,412 messages"
    assert alert.labels == {"title": "Queue backlog over 10k", "severity": "warning", "id": "q-42",
                            "status": "firing", "description": "orders queue: 10,412 messages",
                            "queue.name": "orders", "queue.depth": "10412"}


def test_webhook_route_mapping_with_dotted_paths_and_list_indexes():
    fields = {"title": "alert.name", "severity": "alert.level", "dedup_key": "items.0.id",
              "status": "state.value", "details": "alert.text"}
    body = {"alert": {"name": "Payment API 5xx over 2%", "level": "major", "text": "5xx ratio 2.7% for 5m"},
            "items": [{"id": "pay-5xx"}, {"id": "other"}], "state": {"value": "ALERTING"},
            "title": "ignored, the mapping wins"}
    [alert] = parse("webhook", body, fields=fields)
    assert (alert.title, alert.severity, alert.dedup_key, alert.status) == (
        "Payment API 5xx over 2%", "error", "pay-5xx", "firing")
    assert alert.details == "5xx ratio 2.7% for 5m"
    [done] = parse("webhook", {**body, "state": {"value": "OK"}}, fields=fields)
    assert (done.dedup_key, done.status) == ("pay-5xx", "resolved")


def test_webhook_mapping_that_finds_nothing_falls_back_to_the_usual_names():
    [alert] = parse("webhook", {"summary": "Backup late", "alert": {"name": {"nested": True}}},
                    fields={"title": "alert.name", "dedup_key": "missing.path"})
    assert alert.title == "Backup late"
    assert alert.dedup_key == "title:b864c6a95c8ac244c3ff1bec8046a225"   # sha256 of the title, first 32 hex digits
    [again] = parse("webhook", {"summary": "Backup late", "status": "resolved"})
    assert again.dedup_key == alert.dedup_key and again.status == "resolved"


@pytest.mark.parametrize(("status", "resolved_values", "expected"), [
    ("resolved", [], "resolved"), ("OK", [], "resolved"), ("Recovered", [], "resolved"), ("up", [], "resolved"),
    ("closed", [], "resolved"), ("firing", [], "firing"), ("DOWN", [], "firing"), (0, [], "firing"),
    (0, ["0"], "resolved"), ("ok", ["0"], "firing"), (False, ["false"], "resolved"),
])
def test_webhook_resolved_values(status, resolved_values, expected):
    [alert] = parse("webhook", {"title": "t", "state": status}, resolved_values=resolved_values)
    assert alert.status == expected


@pytest.mark.parametrize(("body", "severity"), [
    ({"title": "t"}, "error"), ({"title": "t", "level": "CRIT"}, "critical"), ({"title": "t", "priority": "P1"},
                                                                                "critical"),
    ({"title": "t", "severity": "banana"}, "error"), ({"title": "t", "severity": "info"}, "info"),
])
def test_webhook_severity(body, severity):
    [alert] = parse("webhook", body)
    assert alert.severity == severity


def test_webhook_without_any_title_pages_as_webhook_alert_keyed_by_body():
    [a] = parse("webhook", {"host": "web-01", "value": 97})
    [b] = parse("webhook", {"value": 97, "host": "web-01"})
    [c] = parse("webhook", {"host": "web-02", "value": 97})
    assert a.title == "Webhook alert"
    assert a.dedup_key == b.dedup_key != c.dedup_key     # key order does not matter, content does
    assert a.dedup_key.startswith("body:")
    assert a.details == '{\n  "host": "web-01",\n  "value": 97\n}'   # the whole object when nothing names one


def test_webhook_array_posts_several():
    alerts = parse("webhook", [{"title": "one", "id": "1"}, {"title": "two", "id": "2", "status": "ok"}])
    assert [(a.title, a.dedup_key, a.status) for a in alerts] == [("one", "1", "firing"), ("two", "2", "resolved")]


WEBHOOK_BAD = [
    ("empty array", [], ""),
    ("over 100", [{"title": "t"}] * 101, ""),
    ("array of non-objects", [{"title": "t"}, 3], "[1]"),
    ("a string", "just text", ""),
    ("null", None, ""),
]


@pytest.mark.parametrize(("case", "body", "path"), WEBHOOK_BAD, ids=[c[0] for c in WEBHOOK_BAD])
def test_webhook_refusals(case, body, path):
    with pytest.raises(PayloadError) as err:
        parse("webhook", json.dumps(body))
    assert err.value.path == path


def test_webhook_100_alerts_is_the_cap():
    assert len(parse("webhook", [{"title": f"t{i}"} for i in range(100)])) == 100


# ================================================================== through the running stack

PD_TOKEN = "b4d1e6c2a9f34f0e8c7a5d3b2e1f0a9c"     # 32 characters, like a PagerDuty routing key
OG_TOKEN = "opsgenie-route-token-0001"
HOOK_TOKEN = "webhook-route-token-0001"
AM_TOKEN = "alertmanager-token-0001"

CONFIG = f"""
{ONE_TEAM}
routes:
  pd: {{source: pagerduty, team: infra, token: {PD_TOKEN}}}
  og: {{source: opsgenie, team: infra, token: {OG_TOKEN}}}
  hook:
    source: webhook
    team: infra
    token: {HOOK_TOKEN}
    fields: {{title: check.name, severity: check.sev, dedup_key: check.id, status: result.state}}
    resolved_values: [passing]
  am: {{source: alertmanager, team: infra, token: {AM_TOKEN}}}
"""


async def post(stack: StackHandle, path: str, body: bytes | str | dict[str, Any],
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    assert stack.session
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    async with stack.session.post(f"{stack.url}{path}", data=data,
                                  headers={"Content-Type": "application/json", **(headers or {})}) as resp:
        return resp.status, await resp.json(content_type=None)


async def incident_where(stack: StackHandle, **want: Any) -> dict[str, Any]:
    async def find() -> dict[str, Any] | None:
        for item in await stack.incidents():
            if all(item.get(k) == v for k, v in want.items()):
                return item
        return None
    return await eventually(find)  # type: ignore[no-any-return]


async def stored_alerts(stack: StackHandle) -> int:
    info = await stack.bus.js.stream_info(ALERTS.name)
    return int(info.state.messages)


async def test_enqueue_trigger_acknowledge_resolve(stack, fixtures_dir):
    await stack.start(CONFIG)
    trigger = fixture(fixtures_dir, "pagerduty/trigger.json")
    assert trigger["routing_key"] == PD_TOKEN
    status, answer = await post(stack, "/v2/enqueue", trigger)
    assert status == 202, answer
    assert answer == {"status": "success", "message": "Event processed", "dedup_key": DISK_KEY}
    opened = await incident_where(stack, title="Disk /var is 95% full on db-01.prod.example.net",
                                  status="triggered")
    assert opened["source"] == "pagerduty" and opened["route"] == "pd" and opened["severity"] == "critical"

    status, answer = await post(stack, "/v2/enqueue", fixture(fixtures_dir, "pagerduty/acknowledge.json"))
    assert status == 202 and answer["dedup_key"] == DISK_KEY, answer
    acked = await incident_where(stack, id=opened["id"], status="acknowledged")
    assert acked["acknowledged_by"] == "pagerduty"

    status, answer = await post(stack, "/v2/enqueue", fixture(fixtures_dir, "pagerduty/resolve.json"))
    assert status == 202 and answer["dedup_key"] == DISK_KEY, answer
    resolved = await incident_where(stack, id=opened["id"], status="resolved")
    assert resolved["resolved_by"] == "system"
    assert len(await stack.incidents()) == 1


async def test_enqueue_without_dedup_key_returns_the_generated_one(stack, fixtures_dir):
    await stack.start(CONFIG)
    status, answer = await post(stack, "/v2/enqueue", fixture(fixtures_dir, "pagerduty/trigger-minimal.json"))
    assert status == 202, answer
    key = answer["dedup_key"]
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    await incident_where(stack, title="Nightly backup job failed on backup-01", status="triggered")
    # The sender resolves with the key it was given.
    status, _ = await post(stack, "/v2/enqueue", {"routing_key": PD_TOKEN, "event_action": "resolve",
                                                  "dedup_key": key})
    assert status == 202
    await incident_where(stack, title="Nightly backup job failed on backup-01", status="resolved")


async def test_pagerduty_body_on_tocsins_own_path_keeps_tocsins_answer(stack, fixtures_dir):
    await stack.start(CONFIG)
    status, answer = await stack.post_alert("pagerduty", (fixtures_dir / "pagerduty" / "trigger.json").read_bytes(),
                                            PD_TOKEN)
    assert status == 202, answer
    assert answer["accepted"] == 1 and answer["alerts"][0]["dedup_key"] == DISK_KEY

    async def stored() -> Any:
        code, body = await stack.api("GET", f"/api/v1/alerts/{answer['alerts'][0]['alert_id']}")
        return body if code == 200 else None
    alert = await eventually(stored)
    assert alert["source"] == "pagerduty" and alert["title"] == "Disk /var is 95% full on db-01.prod.example.net"
    assert "routing_key" not in alert["raw"] and PD_TOKEN not in json.dumps(alert)


ENQUEUE_BAD = [
    # (id, content type, body, status, code, path)
    ("routing key of an alertmanager route", "application/json",
     {"routing_key": AM_TOKEN, "event_action": "resolve", "dedup_key": "k"}, 403, "forbidden", None),
    ("unknown routing key", "application/json",
     {"routing_key": "f" * 32, "event_action": "resolve", "dedup_key": "k"}, 401, "unauthorized", None),
    ("no routing key", "application/json", {"event_action": "resolve", "dedup_key": "k"}, 401, "unauthorized",
     None),
    ("routing key not a string", "application/json", {"routing_key": 5}, 422, "unprocessable", "routing_key"),
    ("not json", "application/json", "{nope", 422, "unprocessable", None),
    ("xml", "application/xml", "<event/>", 415, "unsupported_media_type", None),
    ("invalid severity", "application/json", "pagerduty/invalid-severity.json", 422, "unprocessable",
     "payload.severity"),
]


@pytest.mark.parametrize(("case", "ctype", "body", "status", "code", "path"), ENQUEUE_BAD,
                         ids=[c[0] for c in ENQUEUE_BAD])
async def test_enqueue_refusals(stack, fixtures_dir, case, ctype, body, status, code, path):
    await stack.start(CONFIG)
    if isinstance(body, str) and body.endswith(".json"):
        body = fixture(fixtures_dir, body)
        body["routing_key"] = PD_TOKEN
    status_got, answer = await post(stack, "/v2/enqueue", body, headers={"Content-Type": ctype})
    assert status_got == status, answer
    assert answer["error"]["code"] == code and answer["error"]["message"]
    if path is not None:
        assert answer["error"]["details"]["path"] == path
    assert await stored_alerts(stack) == 0


async def test_opsgenie_create_acknowledge_close_with_geniekey(stack, fixtures_dir):
    await stack.start(CONFIG)
    genie = {"Authorization": f"GenieKey {OG_TOKEN}"}
    status, answer = await post(stack, "/api/v1/intake/opsgenie",
                                (fixtures_dir / "opsgenie" / "create-alert.json").read_bytes(), genie)
    assert status == 202, answer
    assert answer["alerts"][0]["dedup_key"] == DISK_ALIAS
    opened = await incident_where(stack, title="Disk /var is 95% full on db-01", status="triggered")
    assert opened["source"] == "opsgenie" and opened["severity"] == "critical"

    status, answer = await post(stack, f"/api/v1/intake/opsgenie/{DISK_ALIAS}/acknowledge?identifierType=alias",
                                (fixtures_dir / "opsgenie" / "acknowledge-alert.json").read_bytes(), genie)
    assert status == 202, answer
    acked = await incident_where(stack, id=opened["id"], status="acknowledged")
    assert acked["acknowledged_by"] == "opsgenie"

    status, answer = await post(stack, f"/api/v1/intake/opsgenie/{DISK_ALIAS}/close?identifierType=alias",
                                (fixtures_dir / "opsgenie" / "close-alert.json").read_bytes(), genie)
    assert status == 202, answer
    await incident_where(stack, id=opened["id"], status="resolved")


async def test_opsgenie_close_by_id_is_refused_with_a_clear_message(stack):
    await stack.start(CONFIG)
    status, answer = await post(stack, "/api/v1/intake/opsgenie/8418d193-2dab-4490-b331-8c02cdd196b7/close",
                                {"user": "u"}, {"Authorization": f"GenieKey {OG_TOKEN}"})
    assert status == 422, answer
    assert "identifierType=alias" in answer["error"]["message"]
    status, answer = await post(stack, "/api/v1/intake/opsgenie", {"message": "m"},
                                {"Authorization": f"GenieKey {HOOK_TOKEN}"})
    assert status == 403, answer
    assert await stored_alerts(stack) == 0


async def test_webhook_route_mapping_opens_and_resolves(stack):
    await stack.start(CONFIG)
    body = {"check": {"name": "Login page slow", "sev": "warning", "id": "chk-login"},
            "result": {"state": "failing", "ms": 4210}}
    status, answer = await stack.post_alert("webhook", body, HOOK_TOKEN)
    assert status == 202, answer
    assert answer["alerts"][0]["dedup_key"] == "chk-login"
    opened = await incident_where(stack, title="Login page slow", status="triggered")
    assert opened["severity"] == "warning" and opened["source"] == "webhook"

    status, answer = await stack.post_alert("webhook", {**body, "result": {"state": "passing", "ms": 180}},
                                            HOOK_TOKEN)
    assert status == 202 and answer["alerts"][0]["dedup_key"] == "chk-login", answer
    await incident_where(stack, id=opened["id"], status="resolved")


async def test_webhook_array_and_its_cap(stack):
    await stack.start(CONFIG)
    two = [{"check": {"name": f"Check {i}", "id": f"c{i}"}} for i in range(2)]
    status, answer = await stack.post_alert("webhook", json.dumps(two), HOOK_TOKEN)
    assert status == 202 and answer["accepted"] == 2, answer
    status, answer = await stack.post_alert("webhook", json.dumps([{"title": "t"}] * 101), HOOK_TOKEN)
    assert status == 422 and answer["error"]["code"] == "unprocessable", answer
    assert await stored_alerts(stack) == 2
