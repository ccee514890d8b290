"""`tocsin channel test NAME`: one test message through one channel, with the running installation's config.

NAME is a shared channel (`ops-slack`) or a person's contact (`alice/push`). The config is the last one
applied (the CONFIG stream), the secrets are added as for a real page, and the same safety applies
(private addresses, redaction). One try, no retries: the point is to see the provider's own answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tocsin.events.base import new_id, utcnow
from tocsin.events.bus import Bus
from tocsin.events.config import CONFIG_SUBJECT, Config, applied_decoder, is_secret
from tocsin.events.configbus import ConfigWatcher
from tocsin.events.directory import Directory
from tocsin.events.notify import NotificationRequested
from tocsin.events.streams import CONFIG
from tocsin.notifier.app import Notifier
from tocsin.notifier.channels import REGISTRY
from tocsin.notifier.channels.base import DeliveryResult
from tocsin.notifier.settings import Settings


class UnknownChannel(Exception):
    pass


@dataclass(frozen=True)
class ChannelTestOutcome:
    name: str
    kind: str
    result: DeliveryResult

    def describe(self) -> str:
        if self.result.outcome == "ok":
            provider_id = f", provider id {self.result.provider_id}" if self.result.provider_id else ""
            return f"ok: {self.name} ({self.kind}) accepted the test message{provider_id}"
        later = " (a page would be retried)" if self.result.outcome == "retry" else " (a page would not be retried)"
        return f"failed, {self.result.outcome}{later}: {self.name} ({self.kind}): {self.result.error}"


async def applied_config(bus: Bus) -> Config:
    last = await bus.last_on_subject(CONFIG.name, CONFIG_SUBJECT)
    return applied_decoder.decode(last[1]).config if last else Config()


def names(directory: Directory) -> list[str]:
    config = directory.config
    return [*sorted(config.channels),
            *sorted(f"{user}/{contact}" for user, u in config.users.items() for contact in u.contacts)]


def test_message_for(directory: Directory, name: str) -> NotificationRequested:
    user, contact = name.split("/", 1) if "/" in name else ("", "")
    if user:
        found = next(((s.kind, s.destination) for s in directory.contact_plan(user) if s.contact == contact), None)
        if found is None and user in directory.config.users and contact in directory.config.users[user].contacts:
            spec = directory.config.users[user].contacts[contact]   # a contact no rule names: still testable
            found = (str(spec["type"]), {k: str(v) for k, v in spec.items() if k != "type"})
    else:
        found = directory.channel(name)
    if found is None:
        known = names(directory)
        raise UnknownChannel(f"unknown channel {name!r}; the applied config has "
                             + (", ".join(known) if known else "no channels and no contacts"))
    kind, destination = found
    if kind not in REGISTRY:
        raise UnknownChannel(f"{name} is a {kind} channel, which this version cannot send to "
                             f"(it sends to {', '.join(REGISTRY)})")
    return NotificationRequested(
        id=new_id(), at=utcnow(), channel_kind=kind, channel=name, user=user,
        destination={k: v for k, v in destination.items() if not is_secret(k, {**destination, "type": kind})},
        message_kind="test",
        title=f"Tocsin test message for {name}", body="Sent with `tocsin channel test`. Nobody needs to act.",
        severity="info", status="")


async def send_test(bus: Bus, name: str, settings: Settings | None = None) -> ChannelTestOutcome:
    watcher = ConfigWatcher(bus)
    watcher.directory = Directory.build(await applied_config(bus))
    message = test_message_for(watcher.directory, name)
    # send_deadline 0: one try. The provider's own answer is what a person testing a channel wants to see.
    # The installation's key opens the sealed secrets (TOCSIN_SECRET_KEY, or the data dir's).
    notifier = Notifier(settings or replace(Settings.from_env(), send_deadline=0.0), bus, watcher)
    async with notifier.sessions():
        result, _ = await notifier.send_now(message)
    return ChannelTestOutcome(name, message.channel_kind, result)
