"""One trace per page: the intake request, the router's decision and the notifier's delivery share a trace id."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from harness import eventually

TOKEN = "trace-route-token-00001"

_exporter = InMemorySpanExporter()


@pytest.fixture(scope="session")
def span_exporter() -> InMemorySpanExporter:
    # set_tracer_provider takes effect once per process: install ours once, clear it per test.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_exporter))
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is not provider:
        pytest.skip("another tracer provider was installed first in this process")
    return _exporter


async def test_one_trace_from_intake_to_delivery(stack, ntfy, span_exporter):
    span_exporter.clear()
    await stack.start(f"""
security: {{allow_private_networks: true}}
providers: {{ntfy: {{server: "{ntfy.url}"}}}}
users:
  alice: {{contacts: {{push: {{type: ntfy, topic: alice}}}}}}
teams:
  infra:
    members: [alice]
    rotations: {{primary: {{members: [alice], shift: 1d, start: "2026-01-01T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"]}}]}}
routes:
  prom: {{source: alertmanager, team: infra, token: {TOKEN}}}
""")
    body = json.dumps({"version": "4", "alerts": [
        {"status": "firing", "labels": {"alertname": "A"}, "fingerprint": "a"},
        {"status": "firing", "labels": {"alertname": "B"}, "fingerprint": "b"}]})
    assert (await stack.post_alert("alertmanager", body, TOKEN))[0] == 202
    await ntfy.wait_for(2)

    def spans_named(name: str) -> list:
        return [s for s in span_exporter.get_finished_spans() if s.name == name]

    await eventually(lambda: _async(len(spans_named("notifier.deliver")) == 2))
    [intake] = spans_named("intake.receive")
    routers = spans_named("router.alert")
    delivers = spans_named("notifier.deliver")
    trace_id = intake.context.trace_id
    assert len(routers) == 2 and len(delivers) == 2
    assert {s.context.trace_id for s in routers + delivers} == {trace_id}
    # and each hop is a child of the hop before it
    assert {r.parent.span_id for r in routers} == {intake.context.span_id}
    assert {d.parent.span_id for d in delivers} <= {r.context.span_id for r in routers}
    # the provider's request carries no trace header of ours, but every page has its own notification id
    assert len({r.json()["topic"] for r in ntfy.requests}) == 1


async def _async(value: object) -> object:
    return value


async def test_an_escalation_page_continues_the_alerts_trace(stack, ntfy, clock, span_exporter):
    from datetime import timedelta
    span_exporter.clear()
    await stack.start(f"""
security: {{allow_private_networks: true}}
providers: {{ntfy: {{server: "{ntfy.url}"}}}}
users:
  alice: {{contacts: {{push: {{type: ntfy, topic: alice}}}}}}
  bob: {{contacts: {{push: {{type: ntfy, topic: bob}}}}}}
teams:
  infra:
    members: [alice, bob]
    rotations: {{primary: {{members: [alice], shift: 1d, start: "2026-01-01T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"], wait: 5m}}, {{notify: ["user:bob"]}}]}}
routes:
  prom: {{source: alertmanager, team: infra, token: {TOKEN}}}
""")
    body = json.dumps({"version": "4", "alerts": [{"status": "firing", "labels": {"alertname": "A"},
                                                    "fingerprint": "a"}]})
    assert (await stack.post_alert("alertmanager", body, TOKEN))[0] == 202
    await ntfy.wait_for(1)
    clock.advance(timedelta(minutes=6))
    await ntfy.wait_for(2)
    await eventually(lambda: _async(len([s for s in span_exporter.get_finished_spans()
                                         if s.name == "notifier.deliver"]) == 2))
    [intake] = [s for s in span_exporter.get_finished_spans() if s.name == "intake.receive"]
    [timer] = [s for s in span_exporter.get_finished_spans() if s.name == "router.timer"]
    delivers = [s for s in span_exporter.get_finished_spans() if s.name == "notifier.deliver"]
    assert timer.context.trace_id == intake.context.trace_id
    assert {d.context.trace_id for d in delivers} == {intake.context.trace_id}
