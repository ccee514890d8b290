"""Every intake parser, fed arbitrary JSON: it returns alerts or says 422/401, never anything else.

New sources are covered by adding them to the registry: the tests are parametrized over PARSERS.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tocsin.events.config import Route
from tocsin.intake.sources import PARSERS, Incoming, Normalized, PayloadError, SignatureError

FIXTURES = Path(__file__).resolve().parent / "fixtures"

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                    st.text(max_size=40))
json_values = st.recursive(scalars, lambda children: st.one_of(
    st.lists(children, max_size=5), st.dictionaries(st.text(max_size=12), children, max_size=6)), max_leaves=40)


def fixture_bodies(source: str) -> list[dict]:
    folder = FIXTURES / ("pagerduty" if source == "pagerduty" else source)
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


def mutate(doc: object, draw) -> object:  # type: ignore[no-untyped-def]
    """Replace one value somewhere in a real payload with arbitrary JSON: near misses find more bugs."""
    if isinstance(doc, dict) and doc:
        key = draw(st.sampled_from(sorted(doc)))
        if draw(st.booleans()):
            return {**doc, key: draw(json_values)}
        return {**doc, key: mutate(doc[key], draw)}
    if isinstance(doc, list) and doc:
        i = draw(st.integers(0, len(doc) - 1))
        return [*doc[:i], mutate(doc[i], draw), *doc[i + 1:]]
    return draw(json_values)


def check(source: str, body: bytes, secret: str = "") -> None:
    route = Route(source=source, team="infra", secret=secret,
                  fields={"title": "a.b", "severity": "sev", "dedup_key": "id", "status": "state"})
    try:
        out = PARSERS[source](Incoming(body=body, route=route, headers={}, query={}, path=""))
    except (PayloadError, SignatureError):
        return
    assert isinstance(out, list)
    for alert in out:
        assert isinstance(alert, Normalized)
        assert alert.status in ("firing", "resolved")
        assert alert.severity in ("critical", "error", "warning", "info")
        assert isinstance(alert.title, str) and alert.title.strip()
        assert isinstance(alert.dedup_key, str) and alert.dedup_key
        msgspec.json.encode(alert.labels)


SOURCES = sorted(PARSERS)


@pytest.mark.parametrize("source", SOURCES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=json_values)
def test_arbitrary_json_never_breaks_a_parser(source, doc):
    check(source, json.dumps(doc).encode())


@pytest.mark.parametrize("source", SOURCES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_near_misses_of_real_payloads_never_break_a_parser(source, data):
    bodies = fixture_bodies(source)
    if not bodies:
        pytest.skip(f"no fixtures for {source}")
    doc = data.draw(st.sampled_from(bodies))
    check(source, json.dumps(mutate(doc, data.draw)).encode())


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("body", [b"", b"{", b"null", b"[]", b"\xff\xfe", b'"text"', b"1e999", b'{"a":' * 200])
def test_broken_bodies_are_payload_errors(source, body):
    check(source, body)
