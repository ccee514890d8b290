"""A silence expired before its end (`DELETE /api/v1/silences/{id}`) brings its `unsilence` timers forward.

The incidents it kept quiet then page at once if they still fire, exactly as when a silence ends on time.
Every replica may run the same update; it only ever moves a pending timer earlier, so that is harmless.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg

name = "silence_expiry"

BRING_FORWARD = """
UPDATE scheduler_timers t SET due_at = s.ends
FROM unnest($1::text[], $2::timestamptz[]) AS s(id, ends)
WHERE t.state = 'pending' AND t.kind = 'unsilence' AND t.silence_id = s.id AND t.due_at > s.ends
"""


async def tick(conn: asyncpg.Connection, ended: dict[str, datetime]) -> int:
    """`ended`: silence id -> its (new) end, as the scheduler's silence watcher saw them; emptied here."""
    if not ended:
        return 0
    items = list(ended.items())
    result = await conn.execute(BRING_FORWARD, [i for i, _ in items], [e for _, e in items])
    for silence_id, end in items:
        if ended.get(silence_id) == end:
            del ended[silence_id]
    return int(result.split()[-1])
