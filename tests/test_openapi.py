"""The OpenAPI document is generated from the route registry: it lists exactly the routes served, its
schemas are the structs that shape the answers, and a schemathesis run against a live stack finds no 5xx
and no answer that breaks the schema."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from harness import ONE_TEAM, StackHandle
from tocsin.events.openapi import spec_path

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


def served(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, path) of every route on the app, as the spec spells the path. HEAD comes with each GET."""
    out = set()
    for route in app.router.routes():
        if route.method in ("HEAD", "*"):
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path") or ""
        out.add((route.method, spec_path(path)))
    return out


def documented(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}


async def test_every_served_route_is_in_the_spec_and_nothing_else(stack: StackHandle) -> None:
    await stack.start(ONE_TEAM)
    assert stack.session and stack.stack and stack.stack.runner
    async with stack.session.get(f"{stack.url}/api/openapi.json") as resp:
        assert resp.status == 200
        doc = await resp.json()
    assert doc["openapi"] == "3.1.0"
    routes = served(stack.stack.runner.app)
    assert routes == documented(doc)
    # The intake shares the listener under `tocsin up`; its paths are in the same document.
    assert ("POST", "/api/v1/intake/{source}") in routes
    assert ("POST", "/api/v1/incidents/{id}/acknowledge") in routes
    # Answers are described by the structs the code encodes them with.
    ok = doc["paths"]["/api/v1/incidents"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/IncidentPage"}
    summary = doc["components"]["schemas"]["IncidentSummary"]
    assert {"id", "number", "status", "created_at", "alert_count"} <= set(summary["required"])
    assert summary["properties"]["created_at"] == {"type": "string", "format": "date-time"}
    # Each operation that needs a token says so, and names its scope.
    op = doc["paths"]["/api/v1/incidents"]["post"]
    assert op["security"] == [{"token": []}, {"session": []}] and "incidents:write" in op["description"]
    assert "security" not in doc["paths"]["/healthz"]["get"]


async def test_swagger_ui_is_served_from_vendored_files(stack: StackHandle) -> None:
    await stack.start(ONE_TEAM)
    assert stack.session
    async with stack.session.get(f"{stack.url}/docs") as resp:
        page = await resp.text()
        assert resp.status == 200 and "/docs/swagger-ui-bundle.js" in page and "/api/openapi.json" in page
    async with stack.session.get(f"{stack.url}/docs/swagger-ui-bundle.js") as resp:
        assert resp.status == 200 and resp.content_type == "application/javascript"
        assert len(await resp.read()) > 500_000
    async with stack.session.get(f"{stack.url}/docs/swagger-ui.css") as resp:
        assert resp.status == 200 and resp.content_type == "text/css"
    async with stack.session.get(f"{stack.url}/docs/..%2fapp.py") as resp:
        assert resp.status == 404


async def test_a_declared_path_twice_is_refused() -> None:
    from tocsin.api.app import ENDPOINTS
    from tocsin.events.openapi import Registry
    app = web.Application()
    registry = Registry()
    registry.install(app, ENDPOINTS)
    with pytest.raises(ValueError, match="declared twice"):
        registry.install(app, ENDPOINTS[:1])


@pytest.mark.e2e
async def test_schemathesis_finds_no_server_error_and_no_answer_off_schema(stack: StackHandle,
                                                                           tmp_path: Path) -> None:
    # alice as an administrator, so the run reaches every handler (who may call what is tests/test_rbac.py).
    await stack.start(ONE_TEAM.replace("alice: {", "alice: {role: admin, ") + """
routes:
  am: {source: alertmanager, team: infra, token: "am-route-token-0123456789"}
channels:
  hook: {type: webhook, url: "http://127.0.0.1:9/hook", secret: "hook-secret-0123"}
hosts:
  web-01: {team: infra, channels: [hook]}
""")
    token = await stack.token("alice")
    status, opened = await stack.api("POST", "/api/v1/incidents", json={"team": "infra", "title": "disk full"})
    assert status == 201, opened
    # Real ids for the path parameters, so the run reaches past the 404s into the handlers.
    settings = tmp_path / "schemathesis.toml"
    settings.write_text(f'[parameters]\n"path.id" = "{opened["id"]}"\n"path.rotation" = "infra.primary"\n'
                        f'"path.host" = "web-01"\n"path.team" = "infra"\n"path.user" = "alice"\n'
                        f'"path.contact" = "out"\n"path.channel" = "hook"\n"path.route" = "am"\n')
    report = tmp_path / "report.xml"
    proc = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS), "--config-file", str(settings), "run", f"{stack.url}/api/openapi.json", "--url", stack.url,
        "-H", f"Authorization: Bearer {token}",
        "--checks", "not_a_server_error,response_schema_conformance,content_type_conformance",
        "--max-examples", os.environ.get("TOCSIN_SCHEMATHESIS_EXAMPLES", "8"),
        "--phases", "examples,fuzzing", "--workers", "2", "--request-timeout", "20", "--no-shrink",
        "--generation-database", "none", "--seed", "1", "--no-color",
        # Swagger UI's own files are not JSON; the answer endpoints' pages are covered in test_answers. The
        # event stream stays open until the request timeout (each example would take 20 s); test_ui_server
        # covers it.
        "--exclude-path-regex", "^/docs|^/api/v1/stream$",
        "--report", "junit", "--report-junit-path", str(report),
        cwd=tmp_path,   # schemathesis keeps a cache folder where it runs
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
