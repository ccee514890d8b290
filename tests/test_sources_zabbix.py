"""Zabbix: the parser against the fixtures, the running stack through problem / acknowledge / recovery, and the
shipped media type (its YAML, and its JavaScript run under Duktape, Zabbix's engine, and under node)."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness import ONE_TEAM, StackHandle, eventually
from tocsin.events.alerts import Link
from tocsin.events.config import Route
from tocsin.intake.sources import PARSERS, Incoming, Normalized, PayloadError
from tocsin.intake.sources.zabbix import parse_tags, severity

MEDIA_TYPE = Path(__file__).resolve().parents[1] / "deploy" / "integrations" / "zabbix" / "tocsin_media_type.yaml"
ROUTE_TOKEN = "zabbix-route-token-0001"
FIXTURE_FIELDS = {"event_id", "event_value", "event_update", "event_ack", "event_nseverity", "event_severity",
                  "host_name", "host_ip", "trigger_id", "trigger_description", "event_tags", "subject", "message",
                  "zabbix_url"}
MACROS = {   # the table of shared/fixtures/README.md, zabbix/
    "event_id": "{EVENT.ID}", "event_value": "{EVENT.VALUE}", "event_update": "{EVENT.UPDATE.STATUS}",
    "event_ack": "{EVENT.ACK.STATUS}", "event_nseverity": "{EVENT.NSEVERITY}", "event_severity": "{EVENT.SEVERITY}",
    "host_name": "{HOST.NAME}", "host_ip": "{HOST.IP}", "trigger_id": "{TRIGGER.ID}",
    "trigger_description": "{TRIGGER.DESCRIPTION}", "event_tags": "{EVENT.TAGS}", "subject": "{ALERT.SUBJECT}",
    "message": "{ALERT.MESSAGE}", "zabbix_url": "{$ZABBIX.URL}",
}


def parse(body: bytes | dict[str, Any]) -> list[Normalized]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return PARSERS["zabbix"](Incoming(body=raw, route=Route(source="zabbix", team="infra")))


def fixture(fixtures_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((fixtures_dir / "zabbix" / name).read_text())  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------- the parser

LABELS = {"class": "os", "component": "cpu", "scope": "performance", "target": "linux",
          "host_name": "prod-web-01", "host_ip": "10.20.0.11", "trigger_id": "23651"}
LINK = Link(href="https://zabbix.example.net/tr_events.php?triggerid=23651&eventid=418273", text="Zabbix event")

EXPECTED = {
    "problem.json": dict(
        dedup_key="zabbix-418273", status="firing", acknowledge=False, severity="critical",
        title="Problem: High CPU utilization (over 90% for 5m)",
        details="Problem started at 04:20:05 on 2026.11.27\nProblem name: High CPU utilization (over 90% for 5m)\n"
                "Host: prod-web-01\nSeverity: High\nOperational data: Current utilization: 95.2 %\n"
                "Original problem ID: 418273"),
    "update-ack.json": dict(
        dedup_key="zabbix-418273", status="firing", acknowledge=True, severity="critical",
        title="Updated problem in 12m 35s: High CPU utilization (over 90% for 5m)",
        details="Jane Doe acknowledged problem at 2026.11.27 04:32:40.\n\n\n"
                "Current problem status is PROBLEM, age is 12m 35s, acknowledged: Yes."),
    "recovery.json": dict(
        dedup_key="zabbix-418273", status="resolved", acknowledge=False, severity="critical",
        title="Resolved in 21m 12s: High CPU utilization (over 90% for 5m)",
        details="Problem has been resolved in 21m 12s at 04:41:17 on 2026.11.27\n"
                "Problem name: High CPU utilization (over 90% for 5m)\nHost: prod-web-01\nSeverity: High\n"
                "Original problem ID: 418273"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_normalizes(fixtures_dir, name):
    body = (fixtures_dir / "zabbix" / name).read_bytes()
    [alert] = parse(body)
    expected = EXPECTED[name]
    assert alert.dedup_key == expected["dedup_key"]
    assert alert.status == expected["status"]
    assert alert.acknowledge is expected["acknowledge"]
    assert alert.severity == expected["severity"]
    assert alert.title == expected["title"]
    assert alert.details == expected["details"]
    assert alert.labels == LABELS
    assert alert.links == [LINK]
    assert alert.raw == body


def test_every_fixture_is_covered(fixtures_dir):
    assert {p.name for p in (fixtures_dir / "zabbix").glob("*.json")} == set(EXPECTED)


@pytest.mark.parametrize(("change", "status", "acknowledge"), [
    ({"event_value": "1", "event_update": "0", "event_ack": "No"}, "firing", False),     # problem
    ({"event_value": "1", "event_update": "0", "event_ack": "Yes"}, "firing", False),    # escalation step, acked
    ({"event_value": "1", "event_update": "1", "event_ack": "Yes"}, "firing", True),     # acknowledged
    ({"event_value": "1", "event_update": "1", "event_ack": "No"}, "firing", False),     # comment, severity change
    ({"event_value": "0", "event_update": "0", "event_ack": "Yes"}, "resolved", False),  # recovery
    ({"event_value": "0", "event_update": "1", "event_ack": "Yes"}, "resolved", False),  # update of a resolved one
    ({"event_value": "1", "event_update": "1", "event_ack": "yes"}, "firing", True),
])
def test_what_each_notification_does(fixtures_dir, change, status, acknowledge):
    [alert] = parse({**fixture(fixtures_dir, "problem.json"), **change})
    assert (alert.status, alert.acknowledge) == (status, acknowledge)


TAGS = [
    # ({EVENT.TAGS}, labels)
    ("", {}),
    ("class:os, component:cpu, scope:performance, target:linux",
     {"class": "os", "component": "cpu", "scope": "performance", "target": "linux"}),
    ("url:https://shop.example.net:8443/cart", {"url": "https://shop.example.net:8443/cart"}),   # ':' in a value
    ("ports:80,443, class:net", {"ports": "80,443", "class": "net"}),                         # ',' in a value
    ("note:disk full, please check, class:os", {"note": "disk full, please check", "class": "os"}),  # ', ' too
    ("critical, class:os", {"critical": "", "class": "os"}),                                   # tag without value
    ("class:os, critical", {"class": "os", "critical": ""}),
    ("service:shop, service:cart, service:shop", {"service": "shop, cart"}),                   # a tag twice
    ("empty:, class:os", {"empty": "", "class": "os"}),
    (":orphan, class:os", {"class": "os"}),                                                     # no tag name
    ("  class : os  ,  x:1", {"class": "os", "x": "1"}),
    (" , ,", {}),
]


@pytest.mark.parametrize(("text", "labels"), TAGS, ids=[t[0] or "empty" for t in TAGS])
def test_event_tags(text, labels):
    assert parse_tags(text) == labels


def test_fields_win_over_tags_and_unknown_ip_is_left_out(fixtures_dir):
    body = {**fixture(fixtures_dir, "problem.json"), "event_tags": "host_name:spoofed, team:web",
            "host_ip": "*UNKNOWN*"}
    [alert] = parse(body)
    assert alert.labels == {"host_name": "prod-web-01", "team": "web", "trigger_id": "23651"}


SEVERITIES = [
    # (event_nseverity, event_severity, Tocsin severity)
    ("0", "Not classified", "info"), ("1", "Information", "info"), ("2", "Warning", "warning"),
    ("3", "Average", "error"), ("4", "High", "critical"), ("5", "Disaster", "critical"),
    ("3", "Renamed by the admin", "error"),        # the number wins
    ("", "Average", "error"), ("7", "Warning", "warning"), ("x", "information", "info"),  # else the name
    ("", "", "critical"), ("", "Something custom", "critical"), ("", "minor", "warning"),
]


@pytest.mark.parametrize(("number", "name", "expected"), SEVERITIES)
def test_severity(number, name, expected):
    assert severity(number, name) == expected


def test_title_falls_back_when_the_action_has_no_message(fixtures_dir):
    body = {**fixture(fixtures_dir, "problem.json"), "subject": "  "}
    assert parse(body)[0].title == "Zabbix problem 418273 on prod-web-01"
    assert parse({**body, "event_name": "High CPU"})[0].title == "High CPU"
    assert parse({**body, "event_value": "0", "host_name": ""})[0].title == "Zabbix recovery 418273"


def test_details_fall_back_to_the_trigger_description(fixtures_dir):
    body = {**fixture(fixtures_dir, "problem.json"), "message": ""}
    assert parse(body)[0].details == "CPU utilization is too high. The system might be slow to respond."


@pytest.mark.parametrize("url", ["{$ZABBIX.URL}", "", "javascript:alert(1)", "zabbix.example.net"])
def test_no_link_without_a_usable_frontend_url(fixtures_dir, url):
    [alert] = parse({**fixture(fixtures_dir, "problem.json"), "zabbix_url": url})
    assert alert.links == []


def test_trailing_slash_of_the_frontend_url(fixtures_dir):
    [alert] = parse({**fixture(fixtures_dir, "problem.json"), "zabbix_url": "https://zabbix.example.net/"})
    assert alert.links == [LINK]


def without(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != key}


REFUSED = [
    # (id, change to problem.json (None: remove the key), path)
    ("event_id unexpanded", {"event_id": "{EVENT.ID}"}, "event_id"),
    ("event_value unexpanded", {"event_value": "{EVENT.VALUE}"}, "event_value"),
    ("event_update unexpanded", {"event_update": "{EVENT.UPDATE.STATUS}"}, "event_update"),
    ("trigger_id unexpanded (not a trigger action)", {"trigger_id": "{TRIGGER.ID}"}, "trigger_id"),
    ("subject unexpanded", {"subject": " {ALERT.SUBJECT} "}, "subject"),
    ("tags unexpanded", {"event_tags": "{EVENT.TAGS}"}, "event_tags"),
    ("user macro in a field", {"host_name": '{$HOST:"ctx"}'}, "host_name"),
    ("event_id missing", {"event_id": None}, "event_id"),
    ("event_value missing", {"event_value": None}, "event_value"),
    ("event_update missing", {"event_update": None}, "event_update"),
    ("event_id not a number", {"event_id": "abc"}, "event_id"),
    ("event_id a JSON number", {"event_id": 418273}, "event_id"),
    ("event_value out of range", {"event_value": "2"}, "event_value"),
    ("event_update not a flag", {"event_update": "yes"}, "event_update"),
    ("event_ack neither Yes nor No", {"event_ack": "Maybe"}, "event_ack"),
    ("tags as a list", {"event_tags": [{"tag": "a", "value": "b"}]}, "event_tags"),
]


@pytest.mark.parametrize(("change", "path"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_refused_with_the_path(fixtures_dir, change, path):
    body = fixture(fixtures_dir, "problem.json")
    for key, value in change.items():
        body = without(body, key) if value is None else {**body, key: value}
    with pytest.raises(PayloadError) as caught:
        parse(body)
    assert caught.value.path == path
    assert str(caught.value)


@pytest.mark.parametrize("body", [b"[]", b"{}", b"null", b'"text"', b"{"])
def test_not_an_event(body):
    with pytest.raises(PayloadError):
        parse(body)


def test_macros_inside_text_are_not_refused(fixtures_dir):
    body = {**fixture(fixtures_dir, "problem.json"), "subject": "Problem: {#FSNAME} is full",
            "message": "Value {ITEM.LASTVALUE} too high"}
    assert parse(body)[0].title == "Problem: {#FSNAME} is full"


# --------------------------------------------------------------------------------------- through the stack

CONFIG = f"""
{ONE_TEAM}
routes:
  zabbix-prod: {{source: zabbix, team: infra, token: {ROUTE_TOKEN}}}
"""


async def _incident_in(stack: StackHandle, status: str) -> dict[str, Any] | None:
    items = await stack.incidents()
    return items[0] if len(items) == 1 and items[0]["status"] == status else None


async def test_problem_acknowledge_recovery_through_the_stack(stack, fixtures_dir):
    await stack.start(CONFIG)
    folder = fixtures_dir / "zabbix"

    status, answer = await stack.post_alert("zabbix", (folder / "problem.json").read_bytes(), ROUTE_TOKEN)
    assert status == 202, answer
    assert answer["accepted"] == 1 and answer["alerts"][0]["dedup_key"] == "zabbix-418273"
    incident = await eventually(lambda: _incident_in(stack, "triggered"))
    assert incident["source"] == "zabbix" and incident["route"] == "zabbix-prod"
    assert incident["title"] == "Problem: High CPU utilization (over 90% for 5m)"
    assert incident["severity"] == "critical"

    status, answer = await stack.post_alert("zabbix", (folder / "update-ack.json").read_bytes(), ROUTE_TOKEN)
    assert status == 202, answer
    incident = await eventually(lambda: _incident_in(stack, "acknowledged"))
    assert incident["acknowledged_by"] == "zabbix"

    status, answer = await stack.post_alert("zabbix", (folder / "recovery.json").read_bytes(), ROUTE_TOKEN)
    assert status == 202, answer
    incident = await eventually(lambda: _incident_in(stack, "resolved"))
    assert incident["resolved_by"] == "system"
    assert incident["alert_count"] == 3


async def test_comment_attaches_without_acknowledging(stack, fixtures_dir):
    await stack.start(CONFIG)
    problem = fixture(fixtures_dir, "problem.json")
    assert (await stack.post_alert("zabbix", problem, ROUTE_TOKEN))[0] == 202
    await eventually(lambda: _incident_in(stack, "triggered"))
    comment = {**problem, "event_update": "1", "subject": "Updated problem in 2m: High CPU utilization"}
    assert (await stack.post_alert("zabbix", comment, ROUTE_TOKEN))[0] == 202

    async def attached() -> dict[str, Any] | None:
        items = await stack.incidents()
        return items[0] if len(items) == 1 and items[0]["alert_count"] == 2 else None
    incident = await eventually(attached)
    assert incident["status"] == "triggered"


async def test_unexpanded_macro_answers_422_with_the_path(stack, fixtures_dir):
    await stack.start(CONFIG)
    body = {**fixture(fixtures_dir, "problem.json"), "event_id": "{EVENT.ID}"}
    status, answer = await stack.post_alert("zabbix", body, ROUTE_TOKEN)
    assert status == 422, answer
    assert answer["error"]["code"] == "unprocessable"
    assert answer["error"]["details"]["path"] == "event_id"
    assert "{EVENT.ID}" in answer["error"]["message"]


# -------------------------------------------------------------------------------------- the shipped media type

def media_type() -> dict[str, Any]:
    export = yaml.safe_load(MEDIA_TYPE.read_text())
    assert set(export) == {"zabbix_export"}
    [media] = export["zabbix_export"]["media_types"]
    return media  # type: ignore[no-any-return]


def test_media_type_yaml_has_the_export_structure():
    export = yaml.safe_load(MEDIA_TYPE.read_text())["zabbix_export"]
    # A 6.0 export: Zabbix 6.0 imports it, and 6.2 ... 7.x convert it on import (nothing of it changes).
    assert export["version"] == "6.0"
    assert set(export) == {"version", "media_types"}
    media = media_type()
    # Only keys of the 6.0 and 7.0 import schemas for a media type (media types have no uuid).
    assert set(media) <= {"name", "type", "parameters", "script", "timeout", "process_tags", "show_event_menu",
                          "event_menu_url", "event_menu_name", "description", "message_templates", "status",
                          "max_sessions", "attempts", "attempt_interval"}
    assert media["name"] == "Tocsin" and media["type"] == "WEBHOOK"
    assert media.get("process_tags", "NO") == "NO"
    assert media.get("show_event_menu", "NO") == "NO"
    names = [p["name"] for p in media["parameters"]]
    assert names == sorted(names)     # as Zabbix exports them
    assert set(names) == FIXTURE_FIELDS | {"tocsin_url", "tocsin_token"}
    values = {p["name"]: p["value"] for p in media["parameters"]}
    assert {k: values[k] for k in FIXTURE_FIELDS} == MACROS
    templates = {(t["event_source"], t["operation_mode"]): t for t in media["message_templates"]}
    assert set(templates) == {("TRIGGERS", "PROBLEM"), ("TRIGGERS", "UPDATE"), ("TRIGGERS", "RECOVERY")}
    assert templates["TRIGGERS", "PROBLEM"]["subject"] == "Problem: {EVENT.NAME}"
    assert templates["TRIGGERS", "UPDATE"]["subject"] == "Updated problem in {EVENT.AGE}: {EVENT.NAME}"
    assert templates["TRIGGERS", "RECOVERY"]["subject"] == "Resolved in {EVENT.DURATION}: {EVENT.NAME}"
    assert all(t["message"].strip() for t in templates.values())


def test_media_type_script_is_es5():
    """Duktape is ES5: a cheap guard for when neither engine below is on the machine."""
    script = media_type()["script"]
    for es6 in ("=>", "`", "let ", "const ", "class ", "...", ".includes(", ".startsWith(", ".endsWith("):
        assert es6 not in script, es6


# The script as Zabbix runs it: the body of a function of `value` (the parameters as JSON), with
# HttpRequest and Zabbix.log provided. The fakes record what the script does.
SHIM = """
var __sent = {url: null, body: null, headers: [], proxy: null};
function HttpRequest() {}
HttpRequest.prototype.addHeader = function (header) { __sent.headers.push(header); };
HttpRequest.prototype.setProxy = function (proxy) { __sent.proxy = proxy; };
HttpRequest.prototype.post = function (url, body) { __sent.url = url; __sent.body = body; return __ANSWER; };
HttpRequest.prototype.getStatus = function () { return __STATUS; };
var Zabbix = {log: function (level, text) {}};
var __outcome;
try {
    __outcome = {returned: (function (value) {
__SCRIPT
    })(__VALUE)};
}
catch (error) {
    __outcome = {thrown: String(error)};
}
__outcome.sent = __sent;
var __result = JSON.stringify(__outcome);
"""


def harness(params: dict[str, str], status: int, answer: str) -> str:
    return (SHIM.replace("__SCRIPT", media_type()["script"])
            .replace("__VALUE", json.dumps(json.dumps(params)))
            .replace("__STATUS", str(status))
            .replace("__ANSWER", json.dumps(answer)))


def run_node(source: str) -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH")
    done = subprocess.run([node, "-e", source + "\nprocess.stdout.write(__result);"], capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


# duktape.h (2.x): duk_peval_string() is duk_eval_raw() with these flags.
_DUK_EVAL_FLAGS = (1 << 3) | (1 << 7) | (1 << 9) | (1 << 10) | (1 << 11)  # EVAL SAFE NOSOURCE STRLEN NOFILENAME


def run_duktape(source: str) -> str:
    """Zabbix's own engine, when the machine has the shared library (Debian: libduktape207)."""
    path = ctypes.util.find_library("duktape") or next(
        (str(p) for p in Path("/usr/lib").glob("*/libduktape.so*")), None)
    if path is None:
        pytest.skip("libduktape is not installed")
    lib = ctypes.CDLL(path)
    lib.duk_create_heap.restype = ctypes.c_void_p
    lib.duk_create_heap.argtypes = [ctypes.c_void_p] * 5
    lib.duk_eval_raw.restype = ctypes.c_int
    lib.duk_eval_raw.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint]
    lib.duk_safe_to_lstring.restype = ctypes.c_char_p
    lib.duk_safe_to_lstring.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    lib.duk_destroy_heap.argtypes = [ctypes.c_void_p]
    ctx = lib.duk_create_heap(None, None, None, None, None)
    assert ctx
    try:
        failed = lib.duk_eval_raw(ctx, (source + "\n__result;").encode(), 0, _DUK_EVAL_FLAGS)
        text = lib.duk_safe_to_lstring(ctx, -1, None).decode()
        assert not failed, f"duktape: {text}"
        return text
    finally:
        lib.duk_destroy_heap(ctx)


ENGINES = {"duktape": run_duktape, "node": run_node}


def run_script(engine: str, params: dict[str, str], status: int = 202, answer: str = "") -> dict[str, Any]:
    return json.loads(ENGINES[engine](harness(params, status, answer)))  # type: ignore[no-any-return]


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("url", ["https://tocsin.example.net", "https://tocsin.example.net/ ",
                                 "https://tocsin.example.net/api/v1/intake/zabbix"])
def test_script_posts_exactly_the_fixture(fixtures_dir, engine, url):
    problem = fixture(fixtures_dir, "problem.json")
    params = {**problem, "tocsin_url": url, "tocsin_token": ROUTE_TOKEN}
    outcome = run_script(engine, params, 202, '{"accepted": 1, "alerts": []}')
    assert outcome.get("thrown") is None
    assert outcome["returned"] == "OK"
    sent = outcome["sent"]
    assert sent["url"] == "https://tocsin.example.net/api/v1/intake/zabbix"
    assert sent["headers"] == ["Content-Type: application/json", f"Authorization: Bearer {ROUTE_TOKEN}"]
    assert json.loads(sent["body"]) == problem
    assert sent["proxy"] is None


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_script_body_is_accepted_by_the_parser(fixtures_dir, engine):
    params = {**fixture(fixtures_dir, "update-ack.json"), "tocsin_url": "http://127.0.0.1:8080",
              "tocsin_token": ROUTE_TOKEN, "tocsin_proxy": "http://proxy:3128"}
    outcome = run_script(engine, params)
    assert outcome["sent"]["proxy"] == "http://proxy:3128"
    [alert] = parse(outcome["sent"]["body"].encode())
    assert alert.acknowledge and alert.dedup_key == "zabbix-418273"


ERROR_422 = json.dumps({"error": {"code": "unprocessable", "message": "event_id is '{EVENT.ID}', a macro",
                                  "details": {"path": "event_id"}}})


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize(("status", "answer", "says"), [
    (422, ERROR_422, "Tocsin answered 422: event_id is '{EVENT.ID}', a macro (at event_id)"),
    (401, json.dumps({"error": {"code": "unauthorized", "message": "missing or unknown route token"}}),
     "Tocsin answered 401: missing or unknown route token"),
    (502, "<html>Bad Gateway</html>", "Tocsin answered 502: <html>Bad Gateway</html>"),
])
def test_script_throws_on_an_error_answer(fixtures_dir, engine, status, answer, says):
    params = {**fixture(fixtures_dir, "problem.json"), "tocsin_url": "https://tocsin.example.net",
              "tocsin_token": ROUTE_TOKEN}
    outcome = run_script(engine, params, status, answer)
    assert outcome["thrown"] == f"Sending to Tocsin failed: {says}"


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize(("settings", "says"), [
    ({"tocsin_url": "<put your Tocsin URL>", "tocsin_token": ROUTE_TOKEN}, '"tocsin_url"'),
    ({"tocsin_url": "https://tocsin.example.net", "tocsin_token": "<put your route token>"}, '"tocsin_token"'),
    ({"tocsin_url": "https://tocsin.example.net", "tocsin_token": " "}, '"tocsin_token"'),
])
def test_script_refuses_to_send_unconfigured(fixtures_dir, engine, settings, says):
    outcome = run_script(engine, {**fixture(fixtures_dir, "problem.json"), **settings})
    assert says in outcome["thrown"]
    assert outcome["sent"]["url"] is None
