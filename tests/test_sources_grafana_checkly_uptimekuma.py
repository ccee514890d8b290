"""Grafana, Checkly and Uptime Kuma intake: each fixture normalized field by field, signature tables, and the
HTTP door on the running stack (202 counts, 401 bad_signature with nothing stored, DOWN then UP resolving)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path

import msgspec
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import ONE_TEAM, StackHandle, eventually
from tocsin.events.alerts import Link
from tocsin.events.config import Route, parse_config
from tocsin.events.streams import ALERTS
from tocsin.intake.sources import Incoming, Normalized, PayloadError, SignatureError, checkly, grafana, uptimekuma

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SECRET = "hmac-secret-for-tests-0001"
NOW = 1795753540   # the example timestamp of fixtures/grafana/headers-hmac.txt


def body_of(source: str, name: str) -> bytes:
    # Tools send compact JSON; the fixtures are pretty-printed, so sign and send exactly these bytes.
    return json.dumps(json.loads((FIXTURES / source / name).read_text())).encode()


def incoming(source: str, body: bytes, secret: str = "", headers: dict[str, str] | None = None) -> Incoming:
    return Incoming(body=body, route=Route(source=source, team="infra", secret=secret), headers=headers or {})


def sign(data: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def fields(alert: Normalized) -> dict:
    return {"status": alert.status, "severity": alert.severity, "title": alert.title, "dedup_key": alert.dedup_key,
            "labels": alert.labels, "links": [(link.text, link.href) for link in alert.links]}


# ---------------------------------------------------------------------------------------------- Grafana

GRAFANA_LABELS_01 = {"alertname": "HighCPUUsage", "grafana_folder": "Infrastructure", "instance": "web-01:9100",
                     "severity": "critical", "team": "ops"}
GRAFANA_LABELS_02 = {**GRAFANA_LABELS_01, "instance": "web-02:9100"}
SOURCE_URL = "https://grafana.example.net/alerting/grafana/fe3k9q1v0w1s0c/view?orgId=1"
RUNBOOK_URL = "https://runbooks.example.net/high-cpu"


def silence_url(instance: str) -> str:
    return ("https://grafana.example.net/alerting/silence/new?alertmanager=grafana&matcher=__alert_rule_uid__%3D"
            f"fe3k9q1v0w1s0c&matcher=instance%3D{instance}%3A9100&matcher=severity%3Dcritical&matcher=team%3Dops"
            "&orgId=1")


def dashboard_links(start: str, end: str, instance: str) -> list[tuple[str, str]]:
    dashboard = f"https://grafana.example.net/d/rYdddlPWk?from={start}&orgId=1&to={end}"
    return [("Source", SOURCE_URL), ("Dashboard", dashboard), ("Panel", dashboard + "&viewPanel=3"),
            ("Silence", silence_url(instance)), ("Runbook", RUNBOOK_URL)]


GRAFANA_WEB01_FIRING = {
    "status": "firing", "severity": "critical", "title": "High CPU usage on web-01:9100",
    "dedup_key": "a6c0f2e1b7d93c45", "labels": GRAFANA_LABELS_01,
    "links": dashboard_links("1795749310000", "1795752940512", "web-01")}
GRAFANA_WEB01_RESOLVED = {
    **GRAFANA_WEB01_FIRING, "status": "resolved", "links": dashboard_links("1795749310000", "1795753510000", "web-01")}
GRAFANA_WEB02_FIRING = {
    "status": "firing", "severity": "critical", "title": "High CPU usage on web-02:9100",
    "dedup_key": "5d1b9e07c3a2f468", "labels": GRAFANA_LABELS_02,
    "links": dashboard_links("1795749610000", "1795753540498", "web-02")}


@pytest.mark.parametrize(("name", "expected"), [
    ("firing-1.json", [GRAFANA_WEB01_FIRING]),
    ("resolved-1.json", [GRAFANA_WEB01_RESOLVED]),
    ("firing-2-mixed.json", [GRAFANA_WEB01_RESOLVED, GRAFANA_WEB02_FIRING]),
])
def test_grafana_fixtures(name, expected):
    body = body_of("grafana", name)
    out = grafana.parse(incoming("grafana", body))
    assert [fields(a) for a in out] == expected
    # Each alert keeps its own JSON, not the whole group.
    sent = json.loads(body)["alerts"]
    assert [json.loads(a.raw) for a in out] == sent


def test_grafana_details_are_description_and_value_string():
    [alert] = grafana.parse(incoming("grafana", body_of("grafana", "firing-1.json")))
    assert alert.details == (
        "CPU usage on web-01:9100 has been above 90% for 5 minutes.\n\n"
        "Value: [ var='A' labels={instance=web-01:9100} value=95.2 ], "
        "[ var='C' labels={instance=web-01:9100} value=1 ]")


def grafana_group(**alert: object) -> bytes:
    return json.dumps({"receiver": "tocsin", "status": "firing", "alerts": [alert]}).encode()


@pytest.mark.parametrize(("alert", "title"), [
    ({"labels": {"alertname": "DiskFull", "instance": "db-01"}, "annotations": {}}, "DiskFull on db-01"),
    ({"labels": {"alertname": "DiskFull"}, "annotations": {"description": "d"}}, "DiskFull"),
    ({"labels": {}, "annotations": {"summary": "  "}}, "Grafana alert"),
    ({"labels": None, "annotations": None}, "Grafana alert"),
])
def test_grafana_title_falls_back_to_alertname_and_instance(alert, title):
    [out] = grafana.parse(incoming("grafana", grafana_group(status="firing", **alert)))
    assert out.title == title
    assert out.severity == "critical"   # no severity label


def test_grafana_without_fingerprint_keys_on_the_sorted_labels():
    def key(labels: dict) -> str:
        return grafana.parse(incoming("grafana", grafana_group(status="firing", labels=labels)))[0].dedup_key
    a = key({"alertname": "X", "instance": "a"})
    assert a == key({"instance": "a", "alertname": "X"})
    assert a != key({"alertname": "X", "instance": "b"})
    assert a.startswith("labels-") and len(a) == len("labels-") + 16


def test_grafana_keeps_only_web_links():
    [out] = grafana.parse(incoming("grafana", grafana_group(
        status="firing", labels={"alertname": "X"}, generatorURL="javascript:alert(1)", dashboardURL="",
        panelURL="https://g.example/d/1", annotations={"runbook_url": "file:///etc/passwd"})))
    assert out.links == [Link(href="https://g.example/d/1", text="Panel")]


@pytest.mark.parametrize(("body", "path"), [
    (json.dumps({"alerts": []}), "alerts"),
    (json.dumps({"status": "firing"}), ""),
    (json.dumps({"alerts": [{"status": "pending", "labels": {}}]}), "alerts[0].status"),
    (json.dumps({"alerts": [{"status": "firing", "labels": {"a": 1}}]}), "alerts[0].labels[...]"),
    (json.dumps({"alerts": [1]}), "alerts[0]"),
])
def test_grafana_bad_bodies_say_where(body, path):
    with pytest.raises(PayloadError) as err:
        grafana.parse(incoming("grafana", body.encode()))
    assert err.value.path == path


GRAFANA_BODY = body_of("grafana", "firing-2-mixed.json")
TS = str(NOW)


def ts_sign(timestamp: str, data: bytes = GRAFANA_BODY, secret: str = SECRET) -> str:
    return sign(timestamp.encode() + b":" + data, secret)


GRAFANA_SIGNATURES = [
    # (case, headers, accepted)
    ("body signed", {"X-Grafana-Alerting-Signature": sign(GRAFANA_BODY)}, True),
    ("header name in any case", {"x-grafana-alerting-signature": sign(GRAFANA_BODY)}, True),
    ("upper-case hex", {"X-Grafana-Alerting-Signature": sign(GRAFANA_BODY).upper()}, True),
    ("first release's default header", {"X-Grafana-Alert-Signature": sign(GRAFANA_BODY)}, True),
    ("timestamp signed", {"X-Grafana-Alerting-Signature": ts_sign(TS), "X-Grafana-Alerting-Timestamp": TS}, True),
    ("timestamp in the other accepted header",
     {"X-Grafana-Alerting-Signature": ts_sign(TS), "X-Grafana-Alerting-Signature-Timestamp": TS}, True),
    ("timestamp 299 s old", {"X-Grafana-Alerting-Signature": ts_sign(str(NOW - 299)),
                             "X-Grafana-Alerting-Timestamp": str(NOW - 299)}, True),
    ("missing", {}, False),
    ("empty", {"X-Grafana-Alerting-Signature": ""}, False),
    ("wrong", {"X-Grafana-Alerting-Signature": "0" * 64}, False),
    ("not hex", {"X-Grafana-Alerting-Signature": "ünïcode"}, False),
    ("another secret", {"X-Grafana-Alerting-Signature": sign(GRAFANA_BODY, "other-secret")}, False),
    ("over a different body", {"X-Grafana-Alerting-Signature": sign(GRAFANA_BODY + b" ")}, False),
    ("under a header Tocsin does not read", {"X-Signature": sign(GRAFANA_BODY)}, False),
    ("timestamp signed but its header missing", {"X-Grafana-Alerting-Signature": ts_sign(TS)}, False),
    ("body signed but a timestamp came", {"X-Grafana-Alerting-Signature": sign(GRAFANA_BODY),
                                          "X-Grafana-Alerting-Timestamp": TS}, False),
    ("timestamp changed", {"X-Grafana-Alerting-Signature": ts_sign(TS),
                           "X-Grafana-Alerting-Timestamp": str(NOW + 1)}, False),
    ("stale timestamp", {"X-Grafana-Alerting-Signature": ts_sign(str(NOW - 301)),
                         "X-Grafana-Alerting-Timestamp": str(NOW - 301)}, False),
    ("timestamp from the future", {"X-Grafana-Alerting-Signature": ts_sign(str(NOW + 3600)),
                                   "X-Grafana-Alerting-Timestamp": str(NOW + 3600)}, False),
    ("timestamp not a number", {"X-Grafana-Alerting-Signature": ts_sign("soon"),
                                "X-Grafana-Alerting-Timestamp": "soon"}, False),
    ("timestamp in milliseconds", {"X-Grafana-Alerting-Signature": ts_sign(TS + "000"),
                                   "X-Grafana-Alerting-Timestamp": TS + "000"}, False),
]


@pytest.mark.parametrize(("case", "headers", "accepted"), GRAFANA_SIGNATURES, ids=[c[0] for c in GRAFANA_SIGNATURES])
def test_grafana_signature(case, headers, accepted):
    request = incoming("grafana", GRAFANA_BODY, secret=SECRET, headers=headers)
    if accepted:
        assert len(grafana.parse(request, now=NOW)) == 2
    else:
        with pytest.raises(SignatureError):
            grafana.parse(request, now=NOW)


def test_grafana_without_a_route_secret_checks_nothing():
    request = incoming("grafana", GRAFANA_BODY, headers={"X-Grafana-Alerting-Signature": "0" * 64,
                                                         "X-Grafana-Alerting-Timestamp": "1"})
    assert len(grafana.parse(request, now=NOW)) == 2


def test_grafana_signature_is_checked_before_the_body_is_read():
    with pytest.raises(SignatureError):
        grafana.parse(incoming("grafana", b"{not json", secret=SECRET), now=NOW)


# ---------------------------------------------------------------------------------------------- Checkly

CHECK_ID = "5f7c2a9e-8d41-4b3a-9c6e-0e2f1d8b7a64"
CHECKLY_LABELS = {"check_id": CHECK_ID, "check_name": "Shop API health", "check_type": "API", "group_name": "Shop",
                  "tags": "shop,production", "run_location": "Frankfurt", "region": "eu-central-1"}


def result_link(session: str) -> str:
    return f"https://app.checklyhq.com/checks/{CHECK_ID}/check-sessions/{session}"


@pytest.mark.parametrize(("name", "expected", "details"), [
    ("failure.json", {
        "status": "firing", "severity": "critical", "title": "Shop API health has failed", "dedup_key": CHECK_ID,
        "labels": CHECKLY_LABELS,
        "links": [("Check result", result_link("3b8e6f0a-41c2-4d7e-a5b9-2c0d8e6f1a73"))]},
     "Request failed with status code 503\nResponse: 503 Service Unavailable\nResponse time: 1873 ms\n"
     "Location: Frankfurt (eu-central-1)\nStarted at: 2026-11-27T04:20:01.512Z"),
    ("recovery.json", {
        "status": "resolved", "severity": "critical", "title": "Shop API health has recovered",
        "dedup_key": CHECK_ID, "labels": CHECKLY_LABELS,
        "links": [("Check result", result_link("7d1f3e5a-9b2c-4d6e-8f0a-1b3c5d7e9f20"))]},
     "Response: 200 OK\nResponse time: 212 ms\nLocation: Frankfurt (eu-central-1)\n"
     "Started at: 2026-11-27T04:26:01.337Z"),
])
def test_checkly_fixtures(name, expected, details):
    body = body_of("checkly", name)
    [alert] = checkly.parse(incoming("checkly", body))
    assert fields(alert) == expected
    assert alert.details == details
    assert alert.raw == body


def checkly_body(**changes: object) -> bytes:
    return json.dumps({**json.loads(body_of("checkly", "failure.json")), **changes}).encode()


@pytest.mark.parametrize(("alert_type", "status", "severity", "dedup_key"), [
    ("ALERT_FAILURE", "firing", "critical", CHECK_ID),
    ("ALERT_FAILURE_REMAIN", "firing", "critical", CHECK_ID),
    ("ALERT_DEGRADED_FAILURE", "firing", "critical", CHECK_ID),
    ("ALERT_DEGRADED", "firing", "warning", CHECK_ID),
    ("ALERT_DEGRADED_REMAIN", "firing", "warning", CHECK_ID),
    ("ALERT_FAILURE_DEGRADED", "firing", "warning", CHECK_ID),
    ("ALERT_RECOVERY", "resolved", "critical", CHECK_ID),
    ("ALERT_DEGRADED_RECOVERY", "resolved", "warning", CHECK_ID),
    ("ALERT_SSL", "firing", "warning", f"{CHECK_ID}:ssl"),
    ("alert_degraded", "firing", "warning", CHECK_ID),
])
def test_checkly_alert_types(alert_type, status, severity, dedup_key):
    [alert] = checkly.parse(incoming("checkly", checkly_body(alert_type=alert_type)))
    assert (alert.status, alert.severity, alert.dedup_key) == (status, severity, dedup_key)


def test_checkly_title_without_alert_title_and_ssl_details():
    [alert] = checkly.parse(incoming("checkly", checkly_body(
        event="", alert_type="ALERT_SSL", ssl_days_remaining="12", ssl_check_domain="shop.example.net",
        check_error_message="", api_check_response_status_code="", response_time="")))
    assert alert.title == "Shop API health has an expiring SSL certificate"
    assert alert.details.splitlines()[0] == "SSL certificate of shop.example.net expires in 12 days"


def test_checkly_undoes_handlebars_escaping():
    [alert] = checkly.parse(incoming("checkly", checkly_body(
        event="Check &quot;Shop &amp; Cart&quot; has failed", link="https://app.checklyhq.com/r?a=1&amp;b=2")))
    assert alert.title == 'Check "Shop & Cart" has failed'
    assert alert.links == [Link(href="https://app.checklyhq.com/r?a=1&b=2", text="Check result")]


def test_checkly_multi_line_error_message_is_repaired_not_refused():
    # {{CHECK_ERROR_MESSAGE}} inside quotes: Handlebars leaves the newlines and backslashes raw.
    template = (FIXTURES / "checkly" / "failure.json").read_text()
    sent = template.replace('"Request failed with status code 503"',
                            '"Timeout 30000ms exceeded.\n  waiting for C:\\app\\x\tdone"').encode()
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(sent)
    [alert] = checkly.parse(incoming("checkly", sent))
    assert alert.details.startswith("Timeout 30000ms exceeded.\n  waiting for C:\\app\\x\tdone\n")
    assert json.loads(alert.raw)["check_error_message"] == "Timeout 30000ms exceeded.\n  waiting for C:\\app\\x\tdone"


@pytest.mark.parametrize(("body", "path"), [
    (checkly_body(alert_type="ALERT_SOMETHING"), "alert_type"),
    (checkly_body(check_id="  "), "check_id"),
    (json.dumps({"alert_type": "ALERT_FAILURE"}).encode(), ""),
    (checkly_body(check_id=5), "check_id"),
    (b'{"alert_type": "ALERT_FAILURE", "check_id": "x"', ""),
])
def test_checkly_bad_bodies_say_where(body, path):
    with pytest.raises(PayloadError) as err:
        checkly.parse(incoming("checkly", body))
    assert err.value.path == path


CHECKLY_BODY = body_of("checkly", "failure.json")
CHECKLY_SIGNATURES = [
    ("right", {"x-checkly-signature": sign(CHECKLY_BODY)}, True),
    ("header name in any case", {"X-Checkly-Signature": sign(CHECKLY_BODY)}, True),
    ("upper-case hex", {"x-checkly-signature": sign(CHECKLY_BODY).upper()}, True),
    ("missing", {}, False),
    ("empty", {"x-checkly-signature": ""}, False),
    ("wrong", {"x-checkly-signature": "f" * 64}, False),
    ("another secret", {"x-checkly-signature": sign(CHECKLY_BODY, "nope")}, False),
    ("over a different body", {"x-checkly-signature": sign(body_of("checkly", "recovery.json"))}, False),
    ("with a sha256= prefix", {"x-checkly-signature": "sha256=" + sign(CHECKLY_BODY)}, False),
    ("not ascii", {"x-checkly-signature": "é" * 64}, False),
]


@pytest.mark.parametrize(("case", "headers", "accepted"), CHECKLY_SIGNATURES, ids=[c[0] for c in CHECKLY_SIGNATURES])
def test_checkly_signature(case, headers, accepted):
    request = incoming("checkly", CHECKLY_BODY, secret=SECRET, headers=headers)
    if accepted:
        assert checkly.parse(request)[0].dedup_key == CHECK_ID
    else:
        with pytest.raises(SignatureError):
            checkly.parse(request)


def test_checkly_without_a_route_secret_checks_nothing():
    request = incoming("checkly", CHECKLY_BODY, headers={"x-checkly-signature": "0" * 64})
    assert checkly.parse(request)[0].status == "firing"


# ---------------------------------------------------------------------------------------------- Uptime Kuma

KUMA_LABELS = {"env": "prod", "monitor_name": "Shop API", "monitor_path": "Shop API", "monitor_type": "http",
               "monitor_id": "7"}
KUMA_LINKS = [("Monitored URL", "https://shop.example.net/healthz")]


@pytest.mark.parametrize(("name", "expected", "details"), [
    ("down.json", {
        "status": "firing", "severity": "critical", "title": "Shop API is down: Request failed with status code 503",
        "dedup_key": "uptimekuma-monitor-7", "labels": KUMA_LABELS, "links": KUMA_LINKS},
     "Request failed with status code 503\nTarget: https://shop.example.net/healthz\n"
     "At: 2026-11-27 05:20:05 (Europe/Berlin)"),
    ("up.json", {
        "status": "resolved", "severity": "critical", "title": "Shop API is up: 200 - OK",
        "dedup_key": "uptimekuma-monitor-7", "labels": KUMA_LABELS, "links": KUMA_LINKS},
     "200 - OK\nTarget: https://shop.example.net/healthz\nAt: 2026-11-27 05:26:05 (Europe/Berlin)"),
])
def test_uptimekuma_fixtures(name, expected, details):
    body = body_of("uptimekuma", name)
    [alert] = uptimekuma.parse(incoming("uptimekuma", body))
    assert fields(alert) == expected
    assert alert.details == details
    assert alert.raw == body


def test_uptimekuma_test_button_is_an_info_alert_each_press_its_own():
    body = body_of("uptimekuma", "test.json")
    [first] = uptimekuma.parse(incoming("uptimekuma", body))
    [second] = uptimekuma.parse(incoming("uptimekuma", body))
    assert {k: v for k, v in fields(first).items() if k != "dedup_key"} == {
        "status": "firing", "severity": "info", "title": "Tocsin webhook Testing", "labels": {}, "links": []}
    assert first.dedup_key.startswith("uptimekuma-test-") and second.dedup_key.startswith("uptimekuma-test-")
    assert first.dedup_key != second.dedup_key
    assert first.raw == body


def test_uptimekuma_certificate_notice_is_a_warning_keyed_by_its_text():
    msg = "[Shop API][https://shop.example.net/healthz] Certificate will be expired in 13 days"
    body = json.dumps({"heartbeat": None, "monitor": None, "msg": msg}).encode()
    [a] = uptimekuma.parse(incoming("uptimekuma", body))
    [b] = uptimekuma.parse(incoming("uptimekuma", body))
    assert (a.status, a.severity, a.title) == ("firing", "warning", msg)
    assert a.dedup_key == b.dedup_key and a.dedup_key.startswith("uptimekuma-notice-")


def kuma_body(status: int, **monitor: object) -> bytes:
    doc = json.loads(body_of("uptimekuma", "down.json"))
    doc["heartbeat"]["status"] = status
    doc["monitor"].update(monitor)
    return json.dumps(doc).encode()


@pytest.mark.parametrize("status", [2, 3], ids=["pending", "maintenance"])
def test_uptimekuma_pending_and_maintenance_are_not_alerts(status):
    assert uptimekuma.parse(incoming("uptimekuma", kuma_body(status))) == []


def test_uptimekuma_tags_become_labels_and_a_severity_tag_sets_severity():
    tags = [{"name": "severity", "value": "warning"}, {"name": "team", "value": "shop"},
            {"name": "team", "value": "web"}, {"name": "public", "value": ""}]
    [alert] = uptimekuma.parse(incoming("uptimekuma", kuma_body(0, tags=tags)))
    assert alert.severity == "warning"
    assert alert.labels == {"severity": "warning", "team": "shop,web", "public": "", "monitor_name": "Shop API",
                            "monitor_path": "Shop API", "monitor_type": "http", "monitor_id": "7"}


def test_uptimekuma_non_http_monitor_has_no_link():
    [alert] = uptimekuma.parse(incoming("uptimekuma", kuma_body(
        0, type="port", url="https://", hostname="db-01.example.net", port=5432)))
    assert alert.links == []
    assert "Target: db-01.example.net:5432" in alert.details


def test_uptimekuma_without_monitor_keys_on_the_heartbeat_monitor_id():
    doc = json.loads(body_of("uptimekuma", "down.json"))
    doc["monitor"] = None
    [alert] = uptimekuma.parse(incoming("uptimekuma", json.dumps(doc).encode()))
    assert (alert.dedup_key, alert.title, alert.labels) == (
        "uptimekuma-monitor-7", "Monitor 7 is down: Request failed with status code 503", {"monitor_id": "7"})


@pytest.mark.parametrize(("body", "path"), [
    (kuma_body(4), "heartbeat.status"),
    (json.dumps({"heartbeat": None, "monitor": None, "msg": " "}).encode(), "msg"),
    (json.dumps({"heartbeat": {"status": "down"}}).encode(), "heartbeat.status"),
    (json.dumps({"heartbeat": {"status": 0}, "monitor": None}).encode(), "monitor"),
    (json.dumps({"heartbeat": None, "monitor": None, "msg": None}).encode(), "msg"),
])
def test_uptimekuma_bad_bodies_say_where(body, path):
    with pytest.raises(PayloadError) as err:
        uptimekuma.parse(incoming("uptimekuma", body))
    assert err.value.path == path


# ---------------------------------------------------------------------------------------------- fuzzing

header_text = st.text(max_size=80)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(signature=header_text, timestamp=st.one_of(st.none(), header_text), body=st.binary(max_size=200))
def test_grafana_signature_check_only_ever_says_signature_error(signature, timestamp, body):
    headers = {"X-Grafana-Alerting-Signature": signature}
    if timestamp is not None:
        headers["X-Grafana-Alerting-Timestamp"] = timestamp
    with pytest.raises(SignatureError):
        grafana.parse(incoming("grafana", body, secret=SECRET, headers=headers), now=NOW)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=st.text(max_size=200), signature=header_text)
def test_checkly_any_error_message_text_is_accepted_and_signatures_only_fail_as_such(message, signature):
    # What Handlebars does to the value inside "{{CHECK_ERROR_MESSAGE}}": HTML escaping, nothing else.
    escaped = (message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
               .replace("'", "&#x27;").replace("`", "&#x60;").replace("=", "&#x3D;"))
    sent = (FIXTURES / "checkly" / "failure.json").read_text().replace(
        "Request failed with status code 503", escaped).encode()
    trailing = len(escaped) - len(escaped.rstrip("\\"))
    if trailing % 2 == 0:   # a value ending in an odd backslash eats its closing quote: nothing can tell
        [alert] = checkly.parse(incoming("checkly", sent))
        if "\\" not in escaped:   # a backslash may start a valid JSON escape, which then means what JSON says
            assert json.loads(alert.raw)["check_error_message"] == escaped
    with pytest.raises(SignatureError):
        checkly.parse(incoming("checkly", sent, secret=SECRET, headers={"x-checkly-signature": signature}))


# ---------------------------------------------------------------------------------------------- over HTTP

GRAFANA_TOKEN = "grafana-route-token-0001"
GRAFANA_SIGNED_TOKEN = "grafana-signed-token-001"
CHECKLY_TOKEN = "checkly-signed-token-001"
KUMA_TOKEN = "uptimekuma-token-000001"

CONFIG = f"""
{ONE_TEAM}
routes:
  graf: {{source: grafana, team: infra, token: {GRAFANA_TOKEN}}}
  graf-signed: {{source: grafana, team: infra, token: {GRAFANA_SIGNED_TOKEN}, secret: {SECRET}}}
  checks: {{source: checkly, team: infra, token: {CHECKLY_TOKEN}, secret: {SECRET}}}
  kuma: {{source: uptimekuma, team: infra, token: {KUMA_TOKEN}}}
"""


async def stored_alerts(stack: StackHandle) -> int:
    info = await stack.bus.js.stream_info(ALERTS.name)
    return int(info.state.messages)


async def test_fixtures_over_http_are_accepted_with_their_count(stack):
    await stack.start(CONFIG)
    now = str(int(time.time()))
    sent = [
        ("grafana", GRAFANA_TOKEN, GRAFANA_BODY, {}, ["a6c0f2e1b7d93c45", "5d1b9e07c3a2f468"]),
        ("grafana", GRAFANA_SIGNED_TOKEN, GRAFANA_BODY,
         {"X-Grafana-Alerting-Signature": ts_sign(now), "X-Grafana-Alerting-Timestamp": now},
         ["a6c0f2e1b7d93c45", "5d1b9e07c3a2f468"]),
        ("checkly", CHECKLY_TOKEN, CHECKLY_BODY, {"x-checkly-signature": sign(CHECKLY_BODY)}, [CHECK_ID]),
        ("uptimekuma", KUMA_TOKEN, body_of("uptimekuma", "down.json"), {}, ["uptimekuma-monitor-7"]),
        ("uptimekuma", KUMA_TOKEN, kuma_body(2), {}, []),
    ]
    for source, token, body, headers, keys in sent:
        status, answer = await stack.post_alert(source, body, token, headers=headers)
        assert status == 202, (source, answer)
        assert answer["accepted"] == len(keys)
        assert [a["dedup_key"] for a in answer["alerts"]] == keys
    assert await stored_alerts(stack) == 6


async def test_token_in_the_query_string_for_uptimekuma(stack):
    await stack.start(CONFIG)
    assert stack.session
    async with stack.session.post(f"{stack.url}/api/v1/intake/uptimekuma?token={KUMA_TOKEN}",
                                  data=body_of("uptimekuma", "test.json"),
                                  headers={"Content-Type": "application/json"}) as resp:
        assert resp.status == 202
        assert (await resp.json())["accepted"] == 1


BAD_SIGNATURES = [
    ("grafana", GRAFANA_SIGNED_TOKEN, GRAFANA_BODY, {}),
    ("grafana", GRAFANA_SIGNED_TOKEN, GRAFANA_BODY, {"X-Grafana-Alerting-Signature": sign(b"{}")}),
    ("grafana", GRAFANA_SIGNED_TOKEN, GRAFANA_BODY, {
        "X-Grafana-Alerting-Signature": ts_sign("1000000000"), "X-Grafana-Alerting-Timestamp": "1000000000"}),
    ("checkly", CHECKLY_TOKEN, CHECKLY_BODY, {}),
    ("checkly", CHECKLY_TOKEN, CHECKLY_BODY, {"x-checkly-signature": sign(CHECKLY_BODY, "wrong-secret")}),
]


@pytest.mark.parametrize(("source", "token", "body", "headers"), BAD_SIGNATURES,
                         ids=["grafana missing", "grafana other body", "grafana stale", "checkly missing",
                              "checkly wrong secret"])
async def test_bad_signature_is_401_and_nothing_is_stored(stack, source, token, body, headers):
    await stack.start(CONFIG)
    status, answer = await stack.post_alert(source, body, token, headers=headers)
    assert status == 401, answer
    assert answer["error"]["code"] == "bad_signature"
    assert answer["error"]["message"]
    assert SECRET not in json.dumps(answer)
    assert await stored_alerts(stack) == 0


async def test_uptimekuma_down_then_up_is_one_incident_resolved(stack):
    await stack.start(CONFIG)
    status, answer = await stack.post_alert("uptimekuma", body_of("uptimekuma", "down.json"), KUMA_TOKEN)
    assert status == 202, answer

    async def opened():
        items = await stack.incidents()
        return items if items and items[0]["status"] == "triggered" else None
    [incident] = await eventually(opened)
    assert incident["title"] == "Shop API is down: Request failed with status code 503"
    assert (incident["source"], incident["route"], incident["severity"]) == ("uptimekuma", "kuma", "critical")

    status, answer = await stack.post_alert("uptimekuma", body_of("uptimekuma", "up.json"), KUMA_TOKEN)
    assert status == 202, answer

    async def resolved():
        items = await stack.incidents()
        return items if items and items[0]["status"] == "resolved" else None
    [incident] = await eventually(resolved)
    assert incident["resolved_by"] == "system"
    assert incident["alert_count"] == 2


# ---------------------------------------------------------------------------------------------- the docs

DOCS = Path(__file__).resolve().parents[1] / "docs" / "integrations"


def code_blocks(doc: str, lang: str) -> list[str]:
    parts = (DOCS / doc).read_text().split(f"```{lang}\n")[1:]
    return [p.split("```", 1)[0] for p in parts]


@pytest.mark.parametrize("doc", ["grafana.md", "checkly.md", "uptimekuma.md"])
def test_the_documented_route_is_a_valid_config(doc):
    routes = yaml.safe_load(code_blocks(doc, "yaml")[0])["routes"]
    team = {"members": ["alice"], "escalation": {"steps": [{"notify": ["user:alice"]}]}}
    config = {"users": {"alice": {}}, "teams": {"infra": team, "web": team}, "routes": routes}
    env = {"GRAFANA_HMAC_SECRET": SECRET, "CHECKLY_WEBHOOK_SECRET": SECRET}
    parsed = parse_config(yaml.safe_dump(config), env=env)
    assert [r.source for r in parsed.routes.values()] == [doc.removesuffix(".md")]


def test_the_documented_checkly_template_renders_to_what_the_parser_reads():
    template = next(b for b in code_blocks("checkly.md", "json") if "{{ALERT_TYPE}}" in b)
    fixture = json.loads((FIXTURES / "checkly" / "failure.json").read_text())
    variables = {"ALERT_TITLE": fixture["event"], "ALERT_TYPE": "ALERT_FAILURE", "CHECK_NAME": "Shop API health",
                 "CHECK_ID": CHECK_ID, "RESULT_LINK": fixture["link"], "TAGS": "shop,production"}
    rendered = template
    for name in {m.split("}}")[0] for m in template.split("{{")[1:]}:
        rendered = rendered.replace("{{" + name + "}}", variables.get(name, f"value of {name}"))
    assert sorted(json.loads(rendered)) == sorted(fixture)
    [alert] = checkly.parse(incoming("checkly", rendered.encode()))
    assert (alert.status, alert.dedup_key, alert.title) == ("firing", CHECK_ID, "Shop API health has failed")
