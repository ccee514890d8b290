"""The web UI's server side, over real HTTP against a running stack: the page and its files (types,
caching, Content-Security-Policy, router fallback), and the incident event stream `/api/v1/stream`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import web

from harness import StackHandle, eventually, free_port
from tocsin.api.app import create_app
from tocsin.api.stream import APPLICATION_NAME
from tocsin.api.ui import CSP

TOKEN = "ui-route-token-0001"
CONFIG = f"""
users:
  alice: {{contacts: {{out: {{type: log}}}}}}
  bob: {{contacts: {{out: {{type: log}}}}}}
teams:
  infra:
    members: [alice, bob]
    rotations: {{primary: {{members: [alice, bob], shift: 1d, start: "2026-01-01T09:00"}}}}
    escalation: {{steps: [{{notify: ["rotation:primary"]}}]}}
routes:
  hooks: {{source: webhook, team: infra, token: {TOKEN}}}
"""


async def get(stack: StackHandle, path: str, **headers: str) -> tuple[int, Any, bytes]:
    assert stack.session
    async with stack.session.get(stack.url + path, headers=headers, allow_redirects=False) as resp:
        return resp.status, resp.headers.copy(), await resp.read()


async def test_page_and_files_are_served_with_types_caching_and_csp(stack):
    await stack.start(CONFIG)
    status, headers, body = await get(stack, "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["Content-Security-Policy"] == CSP
    assert "script-src 'self';" in CSP and "unsafe-inline" not in CSP
    assert headers["X-Content-Type-Options"] == "nosniff"
    page = body.decode()
    assert "<script>" not in page and "style=" not in page, "no inline script or style"
    scripts = re.findall(r'src="(/ui/[0-9a-f]{12}/app\.js)"', page)
    assert scripts, page
    status, headers, js = await get(stack, scripts[0])
    assert status == 200
    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert b"import" in js
    # Modules import each other by relative path under the same versioned folder.
    version = scripts[0].split("/")[2]
    for name, ctype in (("pages/incident.js", "text/javascript; charset=utf-8"), ("app.css", "text/css; charset=utf-8"),
                        ("icon.svg", "image/svg+xml")):
        status, headers, _ = await get(stack, f"/ui/{version}/{name}")
        assert (status, headers["Content-Type"]) == (200, ctype), name
    # A conditional request is answered 304.
    status, headers, _ = await get(stack, scripts[0])
    status, _, body = await get(stack, scripts[0], **{"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")
    # An older version's URL still works, but is not kept.
    status, headers, _ = await get(stack, "/ui/000000000000/app.js")
    assert (status, headers["Cache-Control"]) == (200, "no-cache")


async def test_router_paths_fall_back_to_the_page_and_unknown_files_are_404(stack):
    await stack.start(CONFIG)
    for path in ("/incidents", "/incidents/5b1c0f7e-0000-4000-8000-000000000000", "/calendar", "/profile",
                 "/signin"):
        status, _, body = await get(stack, path)
        assert status == 200, path
        assert b'type="module"' in body
    for path in ("/ui/x/../../pyproject.toml", "/ui/x/%2e%2e/app.py", "/ui/x/index.html", "/ui/x/nope.js",
                 "/no-such-page"):
        status, _, body = await get(stack, path)
        assert status == 404, path
        assert json.loads(body)["error"]["code"] == "not_found"
    # API paths are untouched by the UI: still JSON errors.
    status, _, body = await get(stack, "/api/v1/incidents")
    assert status == 401 and json.loads(body)["error"]["code"] == "unauthorized"


class Stream:
    """An open `/api/v1/stream`, read event by event."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp
        self.comments: list[str] = []

    async def next(self, timeout: float = 20) -> tuple[str, Any]:
        async with asyncio.timeout(timeout):
            event, data = "message", []
            while True:
                line = (await self.resp.content.readline()).decode()
                if line == "":
                    raise EOFError("stream ended")
                line = line.rstrip("\n")
                if line == "":
                    if data:
                        return event, json.loads("\n".join(data))
                    continue
                if line.startswith(":"):
                    self.comments.append(line)
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())

    async def until(self, want: str, match: Any = lambda d: True, timeout: float = 20) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                event, data = await self.next(timeout)
                if event == want and match(data):
                    return data


@contextlib.asynccontextmanager
async def open_stream(session: aiohttp.ClientSession, url: str, token: str) -> AsyncIterator[Stream]:
    async with session.get(f"{url}/api/v1/stream", headers={"Authorization": f"Bearer {token}"},
                           timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert resp.headers["Cache-Control"].startswith("no-cache")
        stream = Stream(resp)
        assert (await stream.next())[0] == "hello"
        yield stream


async def test_stream_pushes_new_incidents_and_their_changes(stack):
    await stack.start(CONFIG)
    token = await stack.token("alice")
    assert stack.session
    async with open_stream(stack.session, stack.url, token) as stream:
        status, answer = await stack.post_alert("webhook", {"title": "Disk full on db-01", "id": "d1"}, TOKEN)
        assert status == 202, answer
        opened = await stream.until("incident", lambda d: d["title"] == "Disk full on db-01")
        assert opened["status"] == "triggered" and opened["team"] == "infra" and opened["number"] >= 1
        # The change is committed when the stream says so: the API already reads it.
        status, body = await stack.api("GET", f"/api/v1/incidents/{opened['id']}")
        assert status == 200 and body["title"] == "Disk full on db-01"
        status, _ = await stack.api("POST", f"/api/v1/incidents/{opened['id']}/acknowledge")
        assert status == 200
        acked = await stream.until("incident", lambda d: d["id"] == opened["id"] and d["status"] == "acknowledged")
        assert acked["acknowledged_by"] == "alice"
        # Escalating pages again: the new page's delivery is announced. (The first page's delivery may be
        # projected before its incident is; then the incident's own event stands for both.)
        status, _ = await stack.api("POST", f"/api/v1/incidents/{opened['id']}/escalate")
        assert status == 200
        await stream.until("delivery", lambda d: d["incident_id"] == opened["id"])


async def test_stream_needs_a_token_with_incidents_read(stack):
    await stack.start(CONFIG)
    for headers, status in (({}, 401), ({"Authorization": "Bearer tcs_nope"}, 401)):
        code, _, body = await get(stack, "/api/v1/stream", **headers)
        assert code == status
        assert json.loads(body)["error"]["code"] == "unauthorized"
    async with stack.pool.acquire() as conn:
        from tocsin.api.auth import create_token
        weak = await create_token(conn, "alice", scopes=("config:read",))
    code, _, body = await get(stack, "/api/v1/stream", Authorization=f"Bearer {weak}")
    assert code == 403, body


async def test_a_second_api_replica_streams_changes_the_first_one_projected(stack):
    """Only one replica projects (advisory lock); every replica's stream still hears every change."""
    await stack.start(CONFIG)
    assert stack.stack
    port = free_port()
    settings = replace(stack.stack.api_settings, listen=f"127.0.0.1:{port}", config_file="", stream_heartbeat=0.5)
    runner = web.AppRunner(create_app(settings), shutdown_timeout=5)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    token = await stack.token("alice")
    try:
        async with aiohttp.ClientSession() as session:
            async with open_stream(session, f"http://127.0.0.1:{port}", token) as stream:
                status, _ = await stack.post_alert("webhook", {"title": "Seen by replica two", "id": "r2"}, TOKEN)
                assert status == 202
                seen = await stream.until("incident", lambda d: d["title"] == "Seen by replica two")
                assert seen["status"] == "triggered"
                # Quiet streams carry keep-alive comments (this replica: every 0.5 s).
                await eventually(lambda: _comment_after(stream), timeout=10)
    finally:
        await runner.cleanup()


async def _comment_after(stream: Stream) -> bool:
    try:
        await stream.next(timeout=1.5)
    except TimeoutError:
        pass
    return any(c.startswith(": keep-alive") for c in stream.comments)


async def test_open_streams_end_when_the_server_stops(stack):
    await stack.start(CONFIG)
    token = await stack.token("alice")
    assert stack.session and stack.stack
    async with open_stream(stack.session, stack.url, token) as stream:
        stopping = asyncio.create_task(stack.stack.stop())
        try:
            async with asyncio.timeout(20):
                while True:
                    try:
                        await stream.next(timeout=20)
                    except (EOFError, aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError):
                        break
        finally:
            await stopping
        stack.stack = None


async def _delivered(stack: StackHandle, incident_id: str) -> bool:
    status, body = await stack.api("GET", f"/api/v1/incidents/{incident_id}", user="carol")
    return status == 200 and any(d["status"] == "delivered" for d in body["deliveries"])


async def test_a_stream_carries_only_the_callers_teams(stack):
    """Like the incident list: a person sees the incidents of teams they have a role in."""
    await stack.start(CONFIG.replace("routes:", """  dba:
    members: [carol]
    rotations: {primary: {members: [carol], shift: 1d, start: "2026-01-01T09:00"}}
    escalation: {steps: [{notify: ["rotation:primary"]}]}
routes:
  dba-hooks: {source: webhook, team: dba, token: dba-route-token-0001}""").replace(
        "  bob: {contacts: {out: {type: log}}}", "  bob: {contacts: {out: {type: log}}}\n"
        "  carol: {contacts: {out: {type: log}}}"))
    assert stack.session
    async with open_stream(stack.session, stack.url, await stack.token("alice")) as alices, \
            open_stream(stack.session, stack.url, await stack.token("carol")) as carols:
        status, _ = await stack.post_alert("webhook", {"title": "Replica lag", "id": "lag"}, "dba-route-token-0001")
        assert status == 202
        lag = await carols.until("incident", lambda d: d["title"] == "Replica lag")
        assert lag["team"] == "dba"
        await eventually(lambda: _delivered(stack, lag["id"]))
        # Every change of the dba incident is committed, so noticed, before the infra alert is even sent:
        # had alice's stream not filtered them, they would come before her own.
        status, _ = await stack.post_alert("webhook", {"title": "Disk full", "id": "disk"}, TOKEN)
        assert status == 202
        heard: list[tuple[str, Any]] = []
        while not any(e == "incident" and d["title"] == "Disk full" for e, d in heard):
            heard.append(await alices.next())
        disk = heard[-1][1]["id"]
        about = [d["id"] if e == "incident" else d["incident_id"] for e, d in heard]
        assert set(about) == {disk}, f"alice heard of another team's incident: {heard}"


async def test_streams_end_when_the_listen_connection_is_lost_and_work_again_after(stack):
    """Notices sent while nobody listens are lost, so open streams end (their clients reconnect and read
    again), new ones are refused until the replica listens again, which it does by itself."""
    await stack.start(CONFIG)
    token = await stack.token("alice")
    assert stack.session
    async with open_stream(stack.session, stack.url, token) as stream:
        killed = await stack.pool.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = $1 AND datname = current_database()", APPLICATION_NAME)
        assert killed == 1
        async with asyncio.timeout(30):
            while True:
                try:
                    await stream.next(timeout=30)
                except (EOFError, aiohttp.ClientPayloadError):
                    break

    async def listening() -> bool:
        return bool(await stack.pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
            APPLICATION_NAME))
    await eventually(listening, timeout=30)

    async def accepted() -> bool:
        async with stack.session.get(f"{stack.url}/api/v1/stream",  # type: ignore[union-attr]
                                     headers={"Authorization": f"Bearer {token}"}) as resp:
            if resp.status == 503:
                assert (await resp.json())["error"]["code"] == "unavailable"
                assert resp.headers["Retry-After"] == "2"
            return resp.status == 200
    await eventually(accepted, timeout=30)
    async with open_stream(stack.session, stack.url, token) as stream:
        status, _ = await stack.post_alert("webhook", {"title": "After the reconnect", "id": "again"}, TOKEN)
        assert status == 202
        await stream.until("incident", lambda d: d["title"] == "After the reconnect")
