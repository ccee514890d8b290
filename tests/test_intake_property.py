"""The whole intake door, fed arbitrary JSON over HTTP for every source: 2xx or 4xx, never a 5xx."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_parsers_property import fixture_bodies, json_values, mutate

from harness import ONE_TEAM
from tocsin.intake.sources import PARSERS

TOKENS = {source: f"{source}-property-token-01" for source in PARSERS}
ROUTES = "\n".join(f"  {source}: {{source: {source}, team: infra, token: {token}, rate_limit: 1000000}}"
                   for source, token in TOKENS.items())


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_no_input_gets_a_5xx(stack, data):
    if stack.stack is None:
        await stack.start(f"{ONE_TEAM}\nroutes:\n{ROUTES}\n")
    source = data.draw(st.sampled_from(sorted(PARSERS)))
    bodies = fixture_bodies(source)
    if bodies and data.draw(st.booleans()):
        doc = mutate(data.draw(st.sampled_from(bodies)), data.draw)
    else:
        doc = data.draw(json_values)
    suffix = data.draw(st.sampled_from(["", "/x1/close?identifierType=alias", "/x1/acknowledge"]))
    assert stack.session
    async with stack.session.post(f"{stack.url}/api/v1/intake/{source}{suffix}", data=json.dumps(doc),
                                  headers={"Authorization": f"Bearer {TOKENS[source]}",
                                           "Content-Type": "application/json"}) as resp:
        body = await resp.json(content_type=None)
        assert resp.status < 500, (source, doc, body)
        assert resp.status in (202, 404, 413, 415, 422, 401), (resp.status, body)
        if resp.status != 202:
            assert set(body) == {"error"} and body["error"]["message"]
