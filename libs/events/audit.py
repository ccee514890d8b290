"""The AUDIT stream: who changed what, and who did what to an incident, as events.

One event type. `action` is `<object>.<verb>` (`config.applied`, `token.created`, `incident.acknowledged`,
...), `actor` the person (or `cli:<os user>`, `file:<path>` for config applied outside the API), `via` how
(`session`, `token`, `cli`, `link`, ...). `details` never carries a secret: a token is named by its id.
"""

from __future__ import annotations

from typing import Any

import msgspec

from tocsin.events.base import Event, new_id, utcnow


class AuditRecorded(Event, frozen=True, kw_only=True, tag="audit.recorded"):
    actor: str
    action: str
    target: str = ""
    team: str = ""
    via: str = ""
    details: dict[str, Any] = {}


decoder = msgspec.json.Decoder(AuditRecorded)


def subject(action: str) -> str:
    """`audit.<object>`: consumers can follow one kind (`audit.incident`) without reading the rest."""
    return f"audit.{action.partition('.')[0] or 'other'}"


def recorded(actor: str, action: str, *, target: str = "", team: str = "", via: str = "",
             details: dict[str, Any] | None = None) -> AuditRecorded:
    return AuditRecorded(id=new_id(), at=utcnow(), actor=actor, action=action, target=target, team=team, via=via,
                         details=details or {})
