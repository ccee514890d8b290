"""Fallback: when a page to a person fails for good, page their next contact at once.

The router follows DELIVERIES (`router-deliveries`). For a `DeliveryFailed` of a person's page, while the
incident is still triggered, it finds the page the notification belonged to (the `incident.paged` event
whose step and round give that notification id) and the person's next contact rule, in their `rules`
order, that this page has not used yet: not sent with the page, not sent by a delayed rule's timer or an
earlier fallback (a key in the delivery ledger), and deliverable by this version. It records
`incident.fallback` on the timeline (event id from the failed notification, so a redelivered failure is
recorded once), then sends the page to that contact with the notification id the person's plan gives it,
so a delayed rule firing later for the same contact is kept out by the ledger, and a fallback repeated
after a crash is the same notification again.

Not for shared channels, notices or reminders (their ids come from no page), and not once the incident
is acknowledged or resolved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from nats.aio.msg import Msg
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from tocsin.events import deliveries, incidents, notify
from tocsin.events.base import stable_id
from tocsin.events.bus import Bus, consume, decode_or_drop
from tocsin.events.config import DELIVERABLE_KINDS
from tocsin.events.configbus import ConfigWatcher
from tocsin.events.directory import ContactStep
from tocsin.events.incidents import ContactFellBack, IncidentState, TargetsPaged
from tocsin.events.repository import IncidentRepository
from tocsin.events.streams import DELIVERY_LEDGER_BUCKET, INCIDENTS, ROUTER_DELIVERIES
from tocsin.router.paging import public_fields

log = logging.getLogger("tocsin.router")


class Fallback:
    def __init__(self, bus: Bus, config: ConfigWatcher, repo: IncidentRepository,
                 link: Callable[[IncidentState], str], clock: Callable[[], datetime]) -> None:
        self.bus = bus
        self.config = config
        self.repo = repo
        self.link = link
        self.clock = clock

    async def run(self) -> None:
        self.ledger: KeyValue = await self.bus.kv(DELIVERY_LEDGER_BUCKET)
        sub = await self.bus.pull(ROUTER_DELIVERIES)
        await consume(sub, self._handle, batch=500, name="router-deliveries")

    async def _handle(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            event = await decode_or_drop(msg, deliveries.decoder, "router")
            if isinstance(event, deliveries.DeliveryFailed) and event.user and event.aggregate_id:
                await self.on_failed(event)
            await msg.ack()

    async def on_failed(self, failed: deliveries.DeliveryFailed) -> None:
        history = [incidents.decoder.decode(data) for _, data in
                   await self.bus.read_subject(INCIDENTS.name, incidents.subject(failed.aggregate_id))]
        state = incidents.replay(history)
        if state is None or state.status != "triggered":
            return
        found = self._locate(history, failed)
        if found is None:
            return   # a reminder, or a page the current config no longer explains: nothing to fall back on
        paged, plan, index = found
        if failed.notification_id in state.fallen_back:
            # Recorded by an earlier try that may have stopped before sending: send the same page again.
            done = next(e for e in history if isinstance(e, ContactFellBack)
                        and e.failed_notification_id == failed.notification_id)
            rule = next((r for r in plan if r.contact == done.contact), None)
            if rule is not None:
                await self._send(state, paged, failed.user, rule)
            return
        rule = await self._next_contact(state, paged, failed.user, plan[index + 1:])
        nid = self._nid(state, paged, failed.user, rule) if rule else ""
        _, events = await self.repo.execute(state.id, incidents.FallBack(
            user=failed.user, failed_notification_id=failed.notification_id, failed_contact=plan[index].contact,
            error=failed.error, contact=rule.contact if rule else "", notification_id=nid),
            at=self.clock, event_id=stable_id("fallback", failed.notification_id))
        if events and rule is not None:
            log.info("incident %s: %s/%s failed; paging %s/%s instead", state.id, failed.user,
                     plan[index].contact, failed.user, rule.contact)
            await self._send(state, paged, failed.user, rule)

    def _locate(self, history: list[incidents.IncidentEvent], failed: deliveries.DeliveryFailed) -> tuple[
            TargetsPaged, list[ContactStep], int] | None:
        """The page (step and round) the failed notification belonged to, the person's plan, and where in
        it the failed contact is."""
        plan = self.config.directory.contact_plan(failed.user)
        for paged in reversed([e for e in history if isinstance(e, TargetsPaged)]):
            if failed.user not in paged.users:
                continue
            for index, rule in enumerate(plan):
                if self._nid_at(failed.aggregate_id, paged, failed.user, rule) == failed.notification_id:
                    return paged, plan, index
        return None

    async def _next_contact(self, state: IncidentState, paged: TargetsPaged, user: str,
                            rest: list[ContactStep]) -> ContactStep | None:
        for rule in rest:
            if rule.kind not in DELIVERABLE_KINDS:
                continue
            nid = self._nid(state, paged, user, rule)
            if nid in paged.notification_ids or await self._in_ledger(nid):
                continue   # sent with the page, by its delayed rule, or by an earlier fallback
            return rule
        return None

    async def _in_ledger(self, nid: str) -> bool:
        try:
            await self.ledger.get(nid)
        except KeyNotFoundError:
            return False
        return True

    @staticmethod
    def _nid_at(incident_id: str, paged: TargetsPaged, user: str, rule: ContactStep) -> str:
        # The id paging.plan_step gives this person's contact at this step and round.
        return stable_id("notify", incident_id, f"{paged.step}.{paged.repeat}", user, rule.contact)

    def _nid(self, state: IncidentState, paged: TargetsPaged, user: str, rule: ContactStep) -> str:
        return self._nid_at(state.id, paged, user, rule)

    async def _send(self, state: IncidentState, paged: TargetsPaged, user: str, rule: ContactStep) -> None:
        first = (paged.step, paged.repeat) == (0, 0)
        note = notify.NotificationRequested(
            id=self._nid(state, paged, user, rule), aggregate_id=state.id, at=self.clock(), channel_kind=rule.kind,
            channel=f"{user}/{rule.contact}", user=user, destination=public_fields(rule.destination),
            message_kind="page" if first else "escalation", incident_number=state.number, title=state.title,
            body=state.details, severity=state.severity, link=self.link(state), status=state.status)
        await self.bus.publish_many([(notify.subject(rule.kind), note)])
