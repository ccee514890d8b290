"""The `routing` part of `GET /api/v1/alerts/{id}`: what the router did with the alert, and why."""

from __future__ import annotations

import json
from typing import Any

import asyncpg


async def routing_answer(pool: asyncpg.Pool, alert_id: str) -> dict[str, Any]:
    """The router's recorded outcome for the alert (see tocsin.events.routing), or `pending` when the
    router has not handled it yet (or its outcome is not projected yet)."""
    row = await pool.fetchrow("SELECT body FROM api_alert_routing WHERE alert_id = $1", alert_id)
    if row is None:
        return {"outcome": "pending", "paged": False,
                "reason": "the router has not recorded an outcome for this alert yet"}
    body = json.loads(row["body"])
    for key in ("type", "id", "aggregate_id", "version", "traceparent", "alert_id"):
        body.pop(key, None)
    body["routed_at"] = body.pop("at", None)
    if not body.get("silence"):
        body.pop("silence", None)
    if not body.get("failed_matchers"):
        body.pop("failed_matchers", None)
    return body
