"""`tocsin demo`: a small installation to try Tocsin with, applied like any config file.

Everything pages the terminal (contact and channel type `log`), so it works with no accounts anywhere.
The file merges by name, like `tocsin config apply`: it adds the demo objects and leaves the rest alone,
and loading it again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from tocsin.api import config_store
from tocsin.events.bus import Bus
from tocsin.events.config import read_config
from tocsin.events.sealing import Sealer

DEMO = """
users:
  demo-alice:
    name: Alice (demo)
    email: alice@example.com
    timezone: Europe/Berlin
    contacts: {terminal: {type: log}}
  demo-bob:
    name: Bob (demo)
    email: bob@example.com
    contacts: {terminal: {type: log}}
  demo-carol:
    name: Carol (demo)
    email: carol@example.com
    contacts: {terminal: {type: log}}

channels:
  demo-log: {type: log}

teams:
  demo-ops:
    members: [demo-alice, demo-bob, demo-carol]
    admins: [demo-alice]
    channels: [demo-log]
    rotations:
      primary: {members: [demo-alice, demo-bob, demo-carol], shift: 1w, start: "2026-01-05T09:00"}
      secondary: {members: [demo-bob, demo-carol, demo-alice], shift: 1w, start: "2026-01-05T09:00"}
    escalation:
      steps:
        - {notify: ["rotation:primary"], wait: 5m}
        - {notify: ["rotation:secondary"], wait: 10m}
        - {notify: ["team:demo-ops"]}
      repeat: 1

routes:
  demo-webhook: {source: webhook, team: demo-ops}
  demo-alertmanager: {source: alertmanager, team: demo-ops}
"""


@dataclass
class Loaded:
    revision: int
    changed: bool
    users: list[str]
    teams: list[str]
    routes: list[str]
    channels: list[str]
    tokens: dict[str, str]      # route -> its new token, only the first time


async def load(pool: asyncpg.Pool, bus: Bus, sealer: Sealer) -> Loaded:
    file = read_config(DEMO, env={})
    result = await config_store.apply(pool, bus, file, by="tocsin demo", sealer=sealer)
    config = file.config
    return Loaded(revision=result.revision, changed=result.changed, users=list(config.users),
                  teams=list(config.teams), routes=list(config.routes), channels=list(config.channels),
                  tokens=result.new_tokens)


def report(loaded: Loaded, http: str) -> str:
    lines = [f"demo loaded (config revision {loaded.revision})" if loaded.changed
             else f"the demo is already loaded (config revision {loaded.revision}); nothing changed",
             f"  users:    {', '.join(loaded.users)}",
             f"  teams:    {', '.join(loaded.teams)} (rotations primary and secondary, three escalation steps)",
             f"  channels: {', '.join(loaded.channels)} (pages are printed by the notifier, type log)",
             f"  routes:   {', '.join(loaded.routes)}"]
    token = loaded.tokens.get("demo-webhook")
    if token:
        lines += ["", "Route tokens (shown once; keep them):"]
        lines += [f"  {route}: {value}" for route, value in loaded.tokens.items()]
        lines += ["", "Send a test alert:",
                  f"  curl -s -X POST http://{http}/api/v1/intake/webhook \\",
                  f"    -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\",
                  """    -d '{"title": "Disk /var is 97% full on db-01", "severity": "critical"}'"""]
    else:
        lines += ["", "The route tokens were shown when the demo was first loaded (never again). To page whoever",
                  "is on call without an alert:",
                  "  TOKEN=$(tocsin token create demo-alice --scope incidents:read --scope incidents:write)",
                  f'  curl -s -X POST -H "Authorization: Bearer $TOKEN" http://{http}/api/v1/teams/demo-ops/test-alert']
    lines += ["", "Pages show in the log of `tocsin up`; incidents at",
              f'  curl -s -H "Authorization: Bearer $TOKEN" http://{http}/api/v1/incidents'
              "    # TOKEN=$(tocsin token create demo-alice)"]
    return "\n".join(lines)
