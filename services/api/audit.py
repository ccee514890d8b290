"""The audit trail: record what people change and do (AUDIT stream), and let administrators read it.

`GET /api/v1/audit?actor=&action=&team=&target=&since=&until=&limit=&cursor=` → `{"items", "next_cursor"}`,
newest first. `action` matches exactly, or by prefix when it ends in `.` (`incident.`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from aiohttp import web

from tocsin.api.access import Caller
from tocsin.api.context import Context
from tocsin.events import audit
from tocsin.events.bus import Bus
from tocsin.events.openapi import Endpoint, Param
from tocsin.events.web import ApiError, limit_param


async def record(bus: Bus, actor: Caller | str, action: str, *, target: str = "", team: str = "",
                 via: str = "", details: dict[str, Any] | None = None) -> None:
    if isinstance(actor, Caller):
        via = via or actor.via
        actor = actor.user
    await bus.publish(audit.subject(action), audit.recorded(actor, action, target=target, team=team, via=via,
                                                           details=details))


def _time(text: str, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ApiError(422, f"{name} is not an ISO 8601 time", details={"path": name}) from None
    if value.tzinfo is None:
        raise ApiError(422, f"{name} needs a UTC offset (2026-11-27T09:00Z)", details={"path": name})
    return value


async def list_audit(request: web.Request) -> web.Response:
    ctx = Context.of(request)
    (await ctx.caller(request)).require_admin()
    q = request.query
    limit = limit_param(q)
    where: list[str] = []
    args: list[Any] = []

    def add(sql: str, value: Any) -> None:
        args.append(value)
        where.append(sql.replace("?", f"${len(args)}"))
    for key in ("actor", "team", "target"):
        if q.get(key):
            add(f"{key} = ?", q[key])
    if q.get("action"):
        if q["action"].endswith("."):
            add("starts_with(action, ?)", q["action"])
        else:
            add("action = ?", q["action"])
    if q.get("since"):
        add("at >= ?", _time(q["since"], "since"))
    if q.get("until"):
        add("at < ?", _time(q["until"], "until"))
    if q.get("cursor"):
        if not q["cursor"].isdigit():
            raise ApiError(422, "invalid cursor", details={"path": "cursor"})
        add("seq < ?", int(q["cursor"]))
    args.append(limit + 1)
    rows = await ctx.pool.fetch(
        f"SELECT * FROM api_audit {'WHERE ' + ' AND '.join(where) if where else ''} "
        f"ORDER BY seq DESC LIMIT ${len(args)}", *args)
    items = [{"id": r["id"], "at": r["at"].isoformat(), "actor": r["actor"], "action": r["action"],
              "target": r["target"], "team": r["team"], "via": r["via"], "details": json.loads(r["details"])}
             for r in rows[:limit]]
    return web.json_response({"items": items, "next_cursor": str(rows[limit - 1]["seq"]) if len(rows) > limit
                              else None})


ENDPOINTS = [
    Endpoint("GET", "/api/v1/audit", list_audit, "The audit trail, newest first (administrators)", scope="admin",
             params=(Param("actor"), Param("action", description="exact, or a prefix ending in '.'"),
                     Param("team"), Param("target"),
                     Param("since", schema={"type": "string", "format": "date-time"}),
                     Param("until", schema={"type": "string", "format": "date-time"}),
                     Param("limit", schema={"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
                     Param("cursor", description="`next_cursor` of the previous page")), tag="audit"),
]
