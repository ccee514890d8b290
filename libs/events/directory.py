"""The running services' view of the applied config: who is on call, how to reach them, where a token goes."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tocsin.events.config import PERSONAL_DEFAULTS, Config, Route, Rule, hash_token
from tocsin.events.durations import parse_duration
from tocsin.events.schedule import Override, Rotation


@dataclass(frozen=True)
class ContactStep:
    contact: str
    kind: str
    destination: dict[str, str]
    after: timedelta


@dataclass
class Directory:
    config: Config
    revision: int = 0
    _by_token: dict[str, str] = field(default_factory=dict)
    _rotations: dict[tuple[str, str], Rotation] = field(default_factory=dict)

    @classmethod
    def build(cls, config: Config, revision: int = 0) -> Directory:
        d = cls(config=config, revision=revision)
        d._by_token = {r.token_sha256: name for name, r in config.routes.items() if r.token_sha256}
        for tname, team in config.teams.items():
            for rname, spec in team.rotations.items():
                zone = spec.timezone or config.timezone
                overrides = tuple(
                    Override(user=o.user, start=local_to_utc(o.start, zone), end=local_to_utc(o.end, zone))
                    for o in team.overrides if o.rotation == rname)
                d._rotations[(tname, rname)] = Rotation(
                    name=rname, members=tuple(spec.members), shift=parse_duration(spec.shift),
                    start=datetime.fromisoformat(spec.start), timezone=zone, overrides=overrides)
        return d

    # -------------------------------------------------------------- routes

    def route_for_token(self, token: str) -> tuple[str, Route] | None:
        digest = hash_token(token)
        name = self._by_token.get(digest)
        if name is None:
            return None
        route = self.config.routes[name]
        if not hmac.compare_digest(route.token_sha256, digest):
            return None
        return name, route

    # -------------------------------------------------------------- schedules

    def rotation(self, team: str, name: str) -> Rotation:
        return self._rotations[(team, name)]

    def rotations(self) -> dict[tuple[str, str], Rotation]:
        return dict(self._rotations)

    def on_call(self, team: str, rotation: str, when: datetime) -> str:
        return self._rotations[(team, rotation)].on_call_at(when)

    # -------------------------------------------------------------- people

    def contact_plan(self, user: str) -> list[ContactStep]:
        """How to reach a person, in the order of their rules. Without rules: every contact, at once."""
        u = self.config.users.get(user)
        if u is None:
            return []
        rules: list[Rule] = u.rules or [Rule(contact=c) for c in u.contacts]
        plan = []
        for rule in rules:
            found = self.contact(user, rule.contact)
            if found is None:
                continue
            plan.append(ContactStep(contact=rule.contact, kind=found[0], destination=found[1],
                                    after=parse_duration(rule.after)))
        return plan

    def contact(self, user: str, name: str) -> tuple[str, dict[str, str]] | None:
        """One of a person's contacts as (kind, destination), with the person's email or phone filled in
        where the contact leaves it out; None when there is no such contact."""
        u = self.config.users.get(user)
        contact = u.contacts.get(name) if u is not None else None
        if u is None or contact is None:
            return None
        kind = str(contact["type"])
        dest = {k: _text(v) for k, v in contact.items() if k != "type"}
        if kind in PERSONAL_DEFAULTS:
            dest.setdefault(PERSONAL_DEFAULTS[kind], u.email if kind == "email" else u.phone)
        return kind, dest

    def channel(self, name: str) -> tuple[str, dict[str, str]] | None:
        ch = self.config.channels.get(name)
        if ch is None:
            return None
        return str(ch["type"]), {k: _text(v) for k, v in ch.items() if k != "type"}


def _text(value: object) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def local_to_utc(text: str, zone: str) -> datetime:
    from datetime import UTC
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
