"""The router decides: route, dedup into an open incident, who to page, and when to escalate."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from opentelemetry import context as otel_context

from tocsin.events import alerts, hostwatch, incidents, notify, routing, timers
from tocsin.events.base import Event, stable_id, utcnow
from tocsin.events.bus import Bus, consume, decode_or_drop, extract_context
from tocsin.events.config import DELIVERABLE_KINDS
from tocsin.events.configbus import ConfigWatcher
from tocsin.events.durations import parse_duration
from tocsin.events.incidents import IncidentState
from tocsin.events.observability import tracer
from tocsin.events.repository import IncidentRepository
from tocsin.events.routing import AlertRouted, SilenceRef
from tocsin.events.silences import SilenceWatcher
from tocsin.events.streams import (
    COUNTERS_BUCKET,
    DEDUP_BUCKET,
    ROUTER_ALERTS,
    ROUTER_HOSTS,
    ROUTER_INCIDENTS,
    ROUTER_TIMERS,
)
from tocsin.router import hosts
from tocsin.router.fallback import Fallback
from tocsin.router.matching import failed, matches
from tocsin.router.paging import (
    HOST_ROUTE_PREFIX,
    broadcast_channels,
    next_position,
    plan_step,
    public_fields,
    resolve_targets,
)
from tocsin.router.settings import Settings
from tocsin.router.silencing import active_silence

log = logging.getLogger("tocsin.router")
_tracer = tracer("router")


class DedupSlot(msgspec.Struct):
    incident_id: str
    number: int


class Router:
    def __init__(self, settings: Settings, bus: Bus, config: ConfigWatcher,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.bus = bus
        self.config = config
        self.clock = clock
        self.repo = IncidentRepository(bus)
        self._counter: tuple[int, int] | None = None   # incident number counter: (value, KV revision)
        self._counter_lock = asyncio.Lock()
        self.silences = SilenceWatcher(bus)   # the API's silences; the config's are in the directory

    # ------------------------------------------------------------------ running

    async def run(self) -> None:
        self.dedup = await self.bus.kv(DEDUP_BUCKET)
        self.counters = await self.bus.kv(COUNTERS_BUCKET)
        alerts_sub = await self.bus.pull(ROUTER_ALERTS)
        timers_sub = await self.bus.pull(ROUTER_TIMERS)
        incidents_sub = await self.bus.pull(ROUTER_INCIDENTS)
        hosts_sub = await self.bus.pull(ROUTER_HOSTS)
        fallback = Fallback(self.bus, self.config, self.repo, self._link, self.clock)
        await self.silences.start()
        try:
            await asyncio.gather(
                fallback.run(),
                consume(alerts_sub, self._handle_alerts, batch=self.settings.batch, name="router-alerts"),
                consume(timers_sub, self._handle_timers, batch=self.settings.batch, name="router-timers"),
                consume(incidents_sub, self._handle_incidents, batch=500, name="router-incidents"),
                consume(hosts_sub, self._handle_hosts, batch=self.settings.batch, name="router-hosts"),
            )
        finally:
            await self.silences.stop()

    async def _handle_alerts(self, msgs: list[Msg]) -> None:
        # Alerts with the same route and dedup key are handled in order (they touch one incident);
        # all others in parallel. Two routers sharing the consumer are kept apart by the CAS on the
        # dedup slot and the expected sequence on the incident.
        lanes: dict[tuple[str, str], list[tuple[Msg, alerts.AlertReceived]]] = {}
        for msg in msgs:
            event = await decode_or_drop(msg, alerts.decoder, "router")
            if event is not None:
                lanes.setdefault((event.route, self.incident_key(event)), []).append((msg, event))
        await asyncio.gather(*(self._alerts_in_order(lane) for lane in lanes.values()))

    async def _alerts_in_order(self, lane: list[tuple[Msg, alerts.AlertReceived]]) -> None:
        outcomes: list[tuple[str, Event]] = []
        for msg, event in lane:
            token = otel_context.attach(extract_context(msg))
            try:
                with _tracer.start_as_current_span("router.alert", attributes={"tocsin.alert_id": event.id}):
                    outcomes.append((routing.subject(event.route), await self.on_alert(event)))
            finally:
                otel_context.detach(token)
        # What routing did with each alert, stored before the acks: "why was nobody paged?" (same ids again
        # after a crash, so a lane handled twice records each outcome once).
        await self.bus.publish_many(outcomes)
        for msg, _ in lane:
            await msg.ack()

    async def _handle_hosts(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            event = await decode_or_drop(msg, hostwatch.decoder, "router")
            if event is not None:
                await hosts.on_notice(self, event)
            await msg.ack()

    async def _handle_timers(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            event = await decode_or_drop(msg, timers.decoder, "router")
            if isinstance(event, timers.TimerFired):
                token = otel_context.attach(extract_context(msg))
                try:
                    with _tracer.start_as_current_span("router.timer"):
                        await self.on_timer(event)
                finally:
                    otel_context.detach(token)
            await msg.ack()

    async def _handle_incidents(self, msgs: list[Msg]) -> None:
        """An acknowledgement (through the API or from a tool) starts the team's reminders."""
        out: list[tuple[str, Event]] = []
        for msg in msgs:
            event = await decode_or_drop(msg, incidents.decoder, "router")
            if isinstance(event, incidents.IncidentAcknowledged):
                state, _ = await self.repo.load(event.aggregate_id, fresh=True)
                timer = self._next_reminder(state, event.version, 1) if state is not None else None
                if timer is not None:
                    out.append((timers.requested_subject(event.aggregate_id), timer))
        if out:
            await self.bus.publish_many(out)
        for msg in msgs:
            await msg.ack()

    def _next_reminder(self, state: IncidentState, ack_version: int, count: int) -> timers.TimerRequested | None:
        """Reminder number `count` after the acknowledgement at `ack_version`, if the team wants them."""
        team = self.config.directory.config.teams.get(state.team)
        every = parse_duration(team.reminders.every) if team else None
        if not every:
            return None
        return timers.TimerRequested(
            id=stable_id("remind", state.id, str(ack_version), str(count)), aggregate_id=state.id,
            version=ack_version, at=self.clock(), kind="remind", due_at=self.clock() + every,
            incident_id=state.id, step=count)

    # ------------------------------------------------------------------ alerts

    def outcome(self, alert: alerts.AlertReceived, outcome: routing.Outcome, **fields: object) -> AlertRouted:
        return AlertRouted(id=stable_id("routed", alert.id), aggregate_id=alert.id, at=self.clock(),
                           alert_id=alert.id, route=alert.route, outcome=outcome, **fields)  # type: ignore[arg-type]

    async def on_alert(self, alert: alerts.AlertReceived) -> AlertRouted:
        directory = self.config.directory
        route = directory.config.routes.get(alert.route)
        # A manual incident names its team in its route (POST /api/v1/incidents).
        team = route.team if route is not None else alerts.manual_team(alert.route)
        if team is None or team not in directory.config.teams:
            log.warning("alert %s: route %r is not configured; not paged", alert.id, alert.route)
            what = "route" if route is None else f"team {route.team!r} of the route"
            return self.outcome(alert, "no_route", reason=f"{what} is not in the config (revision "
                                                          f"{directory.revision})")
        # Matchers decide what may open an incident; a resolve or an acknowledgement (which often carries
        # no labels: PagerDuty, Opsgenie) always reaches the incident its dedup key names.
        opening = alert.status == "firing" and not alert.acknowledge
        if opening and route is not None and route.match and not matches(route.match, alert.labels):
            log.info("alert %s: labels do not match route %s; not paged", alert.id, alert.route)
            misses = [routing.FailedMatcher(label=label, matcher=spec, actual=alert.labels.get(label))
                      for label, spec in failed(route.match, alert.labels)]
            return self.outcome(alert, "no_match", failed_matchers=misses,
                                reason=f"the labels fail {len(misses)} of the route's matchers")
        key = f"{alert.route}.{hashlib.sha256(self.incident_key(alert).encode()).hexdigest()[:40]}"
        return await self.settle(alert, key, team)

    async def settle(self, alert: alerts.AlertReceived, key: str, team: str) -> AlertRouted:
        """Attach the alert to the open incident of its dedup slot `key`, or open one (and page it)."""
        for _ in range(20):
            slot, revision = await self._slot(key)
            state: IncidentState | None = None
            if slot is not None:
                state, _ = await self.repo.load(slot.incident_id)
                if state is None:
                    # Claimed by a try that stopped before opening: open it now, under the claimed number.
                    return await self._open(slot, alert, team)
                if state.status != "resolved":
                    return await self._attach(state, alert)
            if alert.status == "resolved" or alert.acknowledge:
                what = "resolved" if alert.status == "resolved" else "acknowledged"
                log.info("alert %s: %s with no open incident for its dedup key", alert.id, what)
                return self.outcome(alert, "no_incident",
                                    reason=f"{what}, but no incident is open for its key: nothing to do")
            new_slot = DedupSlot(incident_id=stable_id("incident", alert.id), number=0)
            new_slot.number = await self._next_number()
            try:
                if revision is None:
                    await self.dedup.create(key, msgspec.json.encode(new_slot))
                else:
                    await self.dedup.update(key, msgspec.json.encode(new_slot), last=revision)
                # Claimed by us just now, so the incident's subject is empty: no need to read it.
                self.repo.assume_new(new_slot.incident_id)
            except KeyWrongLastSequenceError:
                continue  # somebody else opened an incident for this key first: attach to theirs
            except Exception as exc:
                if "wrong last sequence" in str(exc).lower() or getattr(exc, "err_code", 0) == 10071:
                    continue
                raise
            return await self._open(new_slot, alert, team)
        raise RuntimeError(f"alert {alert.id}: could not settle the dedup slot {key}")

    def incident_key(self, alert: alerts.AlertReceived) -> str:
        """What folds alerts into one incident: the alert's dedup key, or with the route's `group_by` the
        values of those labels (each alert still resolves on its own; the incident when all have)."""
        route = self.config.directory.config.routes.get(alert.route)
        if route is None or not route.group_by:
            return alert.dedup_key
        return "group\x1f" + "\x1f".join(f"{label}={alert.labels.get(label, '')}" for label in route.group_by)

    async def _slot(self, key: str) -> tuple[DedupSlot | None, int | None]:
        try:
            entry = await self.dedup.get(key)
        except KeyNotFoundError:
            return None, None
        if entry.value is None:
            return None, entry.revision
        return msgspec.json.decode(entry.value, type=DedupSlot), entry.revision

    async def _next_number(self) -> int:
        """The next incident number, by compare-and-set on one counter. The last value and revision seen
        are kept, so with one router the common case is a single round trip; within this process one
        allocation at a time (several would only collide), across routers the CAS decides."""
        async with self._counter_lock:
            return await self._allocate_number()

    async def _allocate_number(self) -> int:
        for _ in range(50):
            try:
                if self._counter is None:
                    entry = await self.counters.get("incident_number")
                    assert entry.revision is not None
                    self._counter = (int(entry.value or b"0"), entry.revision)
                value, revision = self._counter
                self._counter = None
                new_revision = await self.counters.update("incident_number", str(value + 1).encode(),
                                                          last=revision)
                self._counter = (value + 1, new_revision)
                return value + 1
            except KeyNotFoundError:
                try:
                    await self.counters.create("incident_number", b"1")
                    return 1
                except Exception:
                    continue
            except Exception as exc:
                if "wrong last sequence" in str(exc).lower() or isinstance(exc, KeyWrongLastSequenceError):
                    continue
                raise
        raise RuntimeError("could not allocate an incident number")

    async def _open(self, slot: DedupSlot, alert: alerts.AlertReceived, team: str) -> AlertRouted:
        command = incidents.Open(
            incident_id=slot.incident_id, number=slot.number, route=alert.route, team=team,
            source=alert.source, dedup_key=alert.dedup_key, title=alert.title, severity=alert.severity,
            details=alert.details, alert_id=alert.id, labels=alert.labels)
        state, _ = await self.repo.execute(slot.incident_id, command, at=self.clock,
                                           event_id=stable_id("opened", slot.incident_id))
        assert state is not None
        return self._opened(alert, state, await self._page_or_silence(state))

    def _opened(self, alert: alerts.AlertReceived, state: IncidentState, silence: SilenceRef | None) -> AlertRouted:
        if silence is None:
            return self.outcome(alert, "opened", paged=True, incident_id=state.id, incident_number=state.number,
                                reason=f"opened incident #{state.number} and paged its first step")
        return self.outcome(alert, "silenced", incident_id=state.id, incident_number=state.number, silence=silence,
                            reason=f"opened incident #{state.number} under silence {silence.id}: not paged "
                                   "until it ends, then paged if still firing")

    async def _page_or_silence(self, state: IncidentState, ended: str = "") -> SilenceRef | None:
        """Page the first step, unless a silence matches the incident's labels: then record it on the
        timeline and ask for a timer at its end (same ids when done again after a crash). `ended` is the
        silence that has just ended, if this is its timer."""
        silence = self.active_silence(state.labels, self.clock(), exclude=ended)
        if silence is None:
            await self._page(state, 0, 0, message_kind="page", include_broadcast=True)
            return None
        assert silence.ends is not None
        until = silence.ends
        silenced, _ = await self.repo.execute(
            state.id, incidents.Silence(until=until, comment=silence.comment, silence_id=silence.id), at=self.clock,
            event_id=stable_id("silenced", state.id, until.isoformat()))
        await self.bus.publish_many([(timers.requested_subject(state.id), timers.TimerRequested(
            id=stable_id("unsilence", state.id, until.isoformat()), aggregate_id=state.id,
            version=(silenced or state).version, at=self.clock(), kind="unsilence", due_at=until,
            incident_id=state.id, payload=msgspec.Raw(msgspec.json.encode(timers.Unsilence(silence.id)))))])
        return silence

    def active_silence(self, labels: dict[str, str], when: datetime, exclude: str = "") -> SilenceRef | None:
        """The silence (config or API) that covers these labels now and ends last, if any."""
        return active_silence(self.config.directory, self.silences.silences, labels, when, exclude)

    async def _attach(self, state: IncidentState, alert: alerts.AlertReceived) -> AlertRouted:
        if state.alert_id == alert.id:
            # This very alert opened the incident and was redelivered: finish its paging (same ids).
            silence = None
            if (state.step, state.repeat) == (0, 0) and state.status == "triggered":
                silence = await self._page_or_silence(state)
            return self._opened(alert, state, silence)
        command = incidents.AttachAlert(alert_id=alert.id, dedup_key=alert.dedup_key, status=alert.status,
                                        title=alert.title)
        try:
            new_state, events = await self.repo.execute(state.id, command, at=self.clock,
                                                        event_id=stable_id("attach", alert.id))
        except incidents.InvalidTransition:
            # Resolved in the meantime; a redelivery will open a new one if it still fires.
            return self.outcome(alert, "no_incident", incident_id=state.id, incident_number=state.number,
                                reason=f"incident #{state.number} was resolved while this alert was routed")
        effect = ""
        if new_state is not None and any(isinstance(e, incidents.IncidentResolved) for e in events):
            effect = "resolved"
            if not new_state.route.startswith(HOST_ROUTE_PREFIX):   # a host says "is back" instead
                await self._notify_resolved(new_state)
        elif alert.acknowledge and new_state is not None and new_state.status == "triggered":
            # The sending tool says someone acknowledged it there (PagerDuty, Opsgenie, Zabbix).
            with contextlib.suppress(incidents.InvalidTransition):
                await self.repo.execute(state.id, incidents.Acknowledge(by=f"{alert.source}", via="alert"),
                                        at=self.clock, event_id=stable_id("acknowledged", alert.id))
                effect = "acknowledged"
        why = f"incident #{state.number} is already open for the same key: attached"
        return self.outcome(alert, "attached", incident_id=state.id, incident_number=state.number, effect=effect,
                            reason=f"{why}, and it {effect} the incident" if effect else
                            f"duplicate: {why}, not paged again")

    # ------------------------------------------------------------------ timers

    async def on_timer(self, fired: timers.TimerFired) -> None:
        if fired.kind == "shift":
            await self._shift_reminder(fired)
            return
        state, _ = await self.repo.load(fired.incident_id, fresh=True)
        if state is None or state.status == "resolved":
            return
        directory = self.config.directory
        if state.team not in directory.config.teams:
            return
        if fired.kind == "remind":
            await self._remind(state, fired)
            return
        if fired.kind == "unsilence":
            # The silence ended: page if it still fires and nobody acknowledged (a longer silence that
            # covers it now silences it again).
            if state.status == "triggered" and state.firing_alerts and (state.step, state.repeat) == (0, 0):
                await self._page_or_silence(state, ended=timers.unsilence_payload(fired.payload).silence_id)
            return
        if fired.kind == "contact":
            if state.status == "triggered" and bytes(fired.payload) != b"null":
                note = msgspec.json.decode(fired.payload, type=notify.NotificationRequested)
                await self.bus.publish_many([(notify.subject(note.channel_kind), note)])
            return
        nxt = next_position(directory, state.team, fired.step, fired.repeat)
        if nxt is None and fired.by != "system":
            nxt = (0, fired.repeat + 1)  # a person asked to escalate past the end: start another round
        if nxt is None:
            return
        if (state.step, state.repeat) == nxt:
            # Escalated by an earlier try of this timer that stopped before paging: page again (same ids).
            await self._page(state, *nxt, message_kind="escalation", include_broadcast=False)
            return
        command = incidents.Escalate(from_step=fired.step, from_repeat=fired.repeat, to_step=nxt[0],
                                     to_repeat=nxt[1], by=fired.by)
        try:
            new_state, events = await self.repo.execute(state.id, command, at=self.clock,
                                                        event_id=stable_id("escalated", fired.timer_id))
        except incidents.InvalidTransition:
            return
        if events and new_state is not None:
            await self._page(new_state, *nxt, message_kind="escalation", include_broadcast=False)

    async def _shift_reminder(self, fired: timers.TimerFired) -> None:
        """Tell someone their shift starts soon, through their contact rules, in the rotation's zone."""
        shift = msgspec.json.decode(fired.payload, type=timers.ShiftDue)
        zone = ZoneInfo(shift.timezone)
        start, end = (t.astimezone(zone).strftime("%a %d %b %H:%M") for t in (shift.start, shift.end))
        title = f"On call for {shift.team} ({shift.rotation}) from {start} to {end} {shift.timezone}"
        out: list[tuple[str, Event]] = []
        for rule in self.config.directory.contact_plan(shift.user):
            if rule.kind in DELIVERABLE_KINDS:
                out.append((notify.subject(rule.kind), notify.NotificationRequested(
                    id=stable_id("shift", fired.timer_id, rule.contact), at=self.clock(), channel_kind=rule.kind,
                    channel=f"{shift.user}/{rule.contact}", user=shift.user,
                    destination=public_fields(rule.destination), message_kind="shift", title=title,
                    severity="info", status="")))
        if out:
            await self.bus.publish_many(out)

    async def _remind(self, state: IncidentState, fired: timers.TimerFired) -> None:
        """Still acknowledged, and by the same acknowledgement: remind whoever acknowledged (or, for an
        acknowledgement from a tool, the first step's people), then ask for the next reminder."""
        if state.status != "acknowledged" or state.acknowledged_version != fired.version:
            return   # resolved, escalated again, or acknowledged anew (which started its own reminders)
        directory = self.config.directory
        who = state.acknowledged_by or ""
        users = [who] if who in directory.config.users else resolve_targets(directory, state, 0, self.clock())[0]
        now = self.clock()
        out: list[tuple[str, Event]] = []
        for user in users:
            for rule in directory.contact_plan(user):
                if rule.kind not in DELIVERABLE_KINDS:
                    continue
                nid = stable_id("remind", state.id, str(fired.version), str(fired.step), user, rule.contact)
                out.append((notify.subject(rule.kind), notify.NotificationRequested(
                    id=nid, aggregate_id=state.id, at=now, channel_kind=rule.kind, channel=f"{user}/{rule.contact}",
                    user=user, destination=public_fields(rule.destination), message_kind="reminder",
                    incident_number=state.number, title=state.title, body=state.details, severity=state.severity,
                    link=self._link(state), status=state.status)))
        following = self._next_reminder(state, fired.version, fired.step + 1)
        if following is not None:
            out.append((timers.requested_subject(state.id), following))
        if out:
            await self.bus.publish_many(out)

    # ------------------------------------------------------------------ paging

    def _link(self, state: IncidentState) -> str:
        return f"{self.settings.public_url}/incidents/{state.id}"

    async def _page(self, state: IncidentState, step: int, repeat: int, *, message_kind: notify.MessageKind,
                    include_broadcast: bool) -> None:
        directory = self.config.directory
        page = plan_step(directory, state, step, repeat, now=self.clock(), link=self._link(state),
                         message_kind=message_kind, include_broadcast=include_broadcast)
        record = incidents.RecordPage(step=step, repeat=repeat, users=page.users, channels=page.channels,
                                      notification_ids=[n.id for n in page.notifications],
                                      undeliverable=page.undeliverable)
        if page.undeliverable:
            log.warning("incident %s: cannot deliver to %s", state.id, "; ".join(page.undeliverable))
        await self.repo.execute(state.id, record, at=self.clock,
                                event_id=stable_id("paged", state.id, str(step), str(repeat)))
        out: list[tuple[str, Event]] = [(notify.subject(n.channel_kind), n) for n in page.notifications]
        out += [(timers.requested_subject(state.id), t) for t in page.timers]
        if out:
            await self.bus.publish_many(out)

    async def _notify_resolved(self, state: IncidentState) -> None:
        """Tell the shared channels that were told of the incident that it is over."""
        directory = self.config.directory
        out: list[tuple[str, Event]] = []
        for name in broadcast_channels(directory, state):
            found = directory.channel(name)
            if found is None:
                continue
            kind, dest = found
            if kind not in DELIVERABLE_KINDS:
                continue
            out.append((notify.subject(kind), notify.NotificationRequested(
                id=stable_id("notify", state.id, "resolved", name), aggregate_id=state.id, at=self.clock(),
                channel_kind=kind, channel=name, destination=public_fields(dest),
                message_kind="resolved", incident_number=state.number, title=state.title,
                severity=state.severity, link=self._link(state), status="resolved", by=state.resolved_by or "")))
        if out:
            await self.bus.publish_many(out)


async def run(settings: Settings, bus: Bus | None = None, clock: Callable[[], datetime] = utcnow) -> None:
    """The router as its own process (or task): connect, follow the config, consume until cancelled."""
    own_bus = bus is None
    bus = bus or await Bus.connect(settings.nats_url, "tocsin-router")
    watcher = ConfigWatcher(bus)
    try:
        await bus.ensure_streams()
        await watcher.start()
        await Router(settings, bus, watcher, clock).run()
    finally:
        await watcher.stop()
        if own_bus:
            with contextlib.suppress(Exception):
                await bus.close()
