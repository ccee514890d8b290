"""The machinery around the channels: dead letters, pacing, per-contact bundling, the channels' declarations.

Pacing's arithmetic runs on a virtual clock (no sleeping, no timing). Everything else runs a real notifier
on real NATS against the fake webhook provider. Bundling and pacing are shown with webhook channel classes
that turn them on (the real webhook does not bundle): the same wire format, a different declaration.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
from aiohttp import web

from harness import FakeProvider, Received, eventually
from tocsin.events import deadletters, deliveries, notify
from tocsin.events.base import new_id, utcnow
from tocsin.events.bus import Bus
from tocsin.events.config import CONFIG_SUBJECT, Config, ConfigApplied, Security
from tocsin.events.configbus import ConfigWatcher
from tocsin.events.notify import NotificationRequested
from tocsin.events.streams import DEADLETTER, DELIVERIES, NOTIFY, notifier_consumer
from tocsin.notifier.app import Notifier
from tocsin.notifier.bundling import bundle_message
from tocsin.notifier.channels import REGISTRY
from tocsin.notifier.channels.base import Channel
from tocsin.notifier.channels.webhook import WebhookChannel
from tocsin.notifier.pacing import Pacer, SlotTooFar
from tocsin.notifier.policies import Bundling, RateLimit
from tocsin.notifier.pump import Flow, LoopLag
from tocsin.notifier.settings import Settings


def page(nid: str, url: str, *, number: int = 42, channel: str = "alice/hook", user: str = "alice",
         **changes: Any) -> NotificationRequested:
    fields: dict[str, Any] = {
        "id": nid, "aggregate_id": f"inc-{number}", "at": utcnow(), "channel_kind": "webhook",
        "channel": channel, "user": user, "destination": {"url": url}, "incident_number": number,
        "title": f"Disk {number} full", "body": "details", "severity": "critical",
        "link": f"https://tocsin.example/incidents/inc-{number}"}
    fields.update(changes)
    return NotificationRequested(**fields)


async def apply_config(bus: Bus) -> None:
    config = Config(security=Security(allow_private_networks=True))
    await bus.publish(CONFIG_SUBJECT, ConfigApplied(id=new_id(), at=utcnow(), revision=1, config=config))


@contextlib.asynccontextmanager
async def running(bus: Bus, nats_url: str, registry: dict[str, type[Channel]] | None = None,
                  **settings: Any) -> AsyncIterator[asyncio.Task[None]]:
    await apply_config(bus)
    watcher = ConfigWatcher(bus)
    await watcher.start()
    notifier = Notifier(Settings(nats_url=nats_url, kinds=("webhook",), **{"send_deadline": 1.0, **settings}),
                        bus, watcher, registry=registry)
    task = asyncio.create_task(notifier.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await watcher.stop()


async def recorded(bus: Bus) -> list[deliveries.DeliveryEvent]:
    return [deliveries.decoder.decode(d) for _, d in
            await bus.read_subject(DELIVERIES.name, deliveries.subject("webhook"))]


async def dead(bus: Bus) -> list[deadletters.DeadLettered]:
    return [deadletters.decoder.decode(d) for _, d in
            await bus.read_subject(DEADLETTER.name, deadletters.subject("webhook"))]


async def outcomes(bus: Bus, task: asyncio.Task[None], ids: set[str]) -> dict[str, deliveries.DeliveryEvent]:
    async def check() -> dict[str, deliveries.DeliveryEvent] | None:
        if task.done():
            task.result()
            raise AssertionError("the notifier stopped")
        found = {e.notification_id: e for e in await recorded(bus)
                 if isinstance(e, deliveries.Delivered | deliveries.DeliveryFailed) and e.notification_id in ids}
        return found if set(found) == ids else None
    return await eventually(check, timeout=30)


# ------------------------------------------------------------------ dead letters


async def test_a_permanent_failure_is_dead_lettered_with_the_command(bus, nats_url, webhook):
    webhook.default = lambda _: web.Response(status=400, text="bad field")
    command = page("n-perm", f"{webhook.url}/hook")
    await bus.publish(notify.subject("webhook"), command)
    async with running(bus, nats_url) as task:
        await outcomes(bus, task, {"n-perm"})
        [letter] = await eventually(lambda: dead(bus))

    assert (letter.reason, letter.notification_id, letter.channel, letter.user) == (
        "permanent", "n-perm", "alice/hook", "alice")
    assert letter.error.startswith("HTTP 400: bad field")
    assert letter.subject == "notify.webhook"
    assert notify.decoder.decode(base64.b64decode(letter.payload)) == command
    assert len(webhook.requests) == 1


async def test_an_undecodable_command_is_dead_lettered_and_never_comes_back(bus, nats_url, webhook):
    ack = await bus.js.publish(notify.subject("webhook"), b'{"type": "notification.requested", "id": 7}',
                               headers={"Nats-Msg-Id": "junk-1"})
    async with running(bus, nats_url):
        [letter] = await eventually(lambda: dead(bus))

        async def settled() -> bool:
            info = await bus.js.consumer_info(NOTIFY.name, "notifier-webhook")
            return info.ack_floor.stream_seq >= ack.seq and info.num_ack_pending == 0
        await eventually(settled)
    assert (letter.reason, letter.notification_id) == ("undecodable", "")
    assert base64.b64decode(letter.payload) == b'{"type": "notification.requested", "id": 7}'
    assert webhook.requests == []


async def test_max_deliveries_reached_is_recorded_failed_and_dead_lettered(bus, nats_url, webhook):
    webhook.default = 503
    await bus.publish(notify.subject("webhook"), page("n-max", f"{webhook.url}/hook"))
    async with running(bus, nats_url, send_deadline=0.2, max_deliveries=2) as task:
        event = (await outcomes(bus, task, {"n-max"}))["n-max"]
        [letter] = await eventually(lambda: dead(bus))
    assert isinstance(event, deliveries.DeliveryFailed)
    assert letter.reason == "max_deliveries"
    assert letter.attempts == event.attempts == len(webhook.requests) >= 2


async def test_a_delivered_page_leaves_no_dead_letter(bus, nats_url, webhook):
    await bus.publish(notify.subject("webhook"), page("n-ok", f"{webhook.url}/hook"))
    async with running(bus, nats_url) as task:
        await outcomes(bus, task, {"n-ok"})
    assert await dead(bus) == []


# ------------------------------------------------------------------ pacing, on a virtual clock


class VirtualTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.log: list[tuple[str, float]] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        # Time moves only when a sender waits.
        self.now += seconds

    async def send(self, pacer: Pacer, destination: str, limit: RateLimit | None, provider: str = "p",
                   provider_limit: RateLimit | None = None) -> None:
        await pacer.wait(destination, limit, provider, provider_limit)
        self.log.append((destination, self.now))


async def test_one_destination_is_spaced_by_its_limit():
    t = VirtualTime()
    pacer = Pacer(clock=t.clock, sleep=t.sleep)
    for _ in range(3):
        t.now = 1000.0          # all three asked for at the same instant
        await t.send(pacer, "a", RateLimit(1))
    assert [at for _, at in t.log] == [1000.0, 1001.0, 1002.0]


async def test_another_destination_is_not_held_behind_a_busy_one():
    pacer = Pacer(clock=lambda: 1000.0, sleep=_no_sleep)
    # "a" has three sends queued (slots at +0, +1, +2); "b" asked for now goes now.
    for _ in range(3):
        await pacer.wait("a", RateLimit(1), "p", None)
    assert await pacer.wait("b", RateLimit(1), "p", None) == 0.0
    assert pacer._next["a"] == 1003.0 and pacer._next["b"] == 1001.0


async def _no_sleep(_: float) -> None:
    return None


async def test_the_provider_limit_spaces_every_destination_of_the_provider():
    t = VirtualTime()
    pacer = Pacer(clock=t.clock, sleep=t.sleep)
    for dest in ("a", "b", "c"):
        await t.send(pacer, dest, RateLimit(1), "bot-1", RateLimit(2))
    await t.send(pacer, "d", RateLimit(1), "bot-2", RateLimit(2))   # another bot: not behind bot-1
    assert t.log == [("a", 1000.0), ("b", 1000.5), ("c", 1001.0), ("d", 1001.0)]


async def test_a_slot_too_far_away_is_refused_without_reserving_it():
    pacer = Pacer(max_hold=5.0, clock=lambda: 1000.0, sleep=_no_sleep)
    await pacer.wait("a", RateLimit(1, per=10.0), "p", None)
    with pytest.raises(SlotTooFar) as refused:
        await pacer.wait("a", RateLimit(1, per=10.0), "p", None)
    assert refused.value.delay == 10.0
    assert pacer._next["a"] == 1010.0, "the refused send took no slot"


class SlowHook(WebhookChannel):
    kind: ClassVar[str] = "webhook"
    rate_limit: ClassVar[RateLimit | None] = RateLimit(1, per=30.0)


async def test_a_paced_destination_does_not_block_the_next_one_on_the_bus(bus, nats_url, webhook):
    await bus.publish_many([(notify.subject("webhook"), page(nid, f"{webhook.url}/{path}", channel=path, user=""))
                            for nid, path in (("a-1", "a"), ("a-2", "a"), ("b-1", "b"))])
    async with running(bus, nats_url, registry={"webhook": SlowHook}) as task:
        await outcomes(bus, task, {"a-1", "b-1"})
        assert [r.path for r in webhook.requests if r.path == "/a"] == ["/a"], "a-2 waits for its slot"
        # Past the consumer's ack wait (15 s): the waiting page is kept in progress, not redelivered.
        await asyncio.sleep(notifier_consumer("webhook").ack_wait.total_seconds() + 2)
        info = await bus.js.consumer_info(NOTIFY.name, "notifier-webhook")
        assert (info.num_ack_pending, info.num_redelivered) == (1, 0), "held in progress, not handed back"
    assert sorted(r.path for r in webhook.requests) == ["/a", "/b"]


# ------------------------------------------------------------------ bundling


class BundledHook(WebhookChannel):
    kind: ClassVar[str] = "webhook"
    bundle: ClassVar[Bundling | None] = Bundling(threshold=2, window=3.0)


def numbered_answers(webhook: FakeProvider, refuse_bundles: bool = False) -> None:
    def answer(received: Received) -> web.Response:
        if refuse_bundles and "more incidents" in received.json()["title"]:
            return web.Response(status=400, text="too long")
        return web.Response(status=200, headers={"X-Request-Id": f"req-{len(webhook.requests)}"})
    webhook.default = answer


async def test_a_burst_to_one_contact_becomes_one_message_and_every_page_is_recorded(bus, nats_url, webhook):
    numbered_answers(webhook)
    ids = {f"n-{i}" for i in range(1, 11)}
    await bus.publish_many([(notify.subject("webhook"), page(f"n-{i}", f"{webhook.url}/alice", number=i))
                            for i in range(1, 11)])
    async with running(bus, nats_url, registry={"webhook": BundledHook}) as task:
        events = await outcomes(bus, task, ids)

    assert all(isinstance(e, deliveries.Delivered) for e in events.values())
    alone = {r.headers["X-Tocsin-Notification-Id"] for r in webhook.requests
             if "more incidents" not in r.json()["title"]}
    bundles = [r for r in webhook.requests if "more incidents" in r.json()["title"]]
    assert len(alone) == 2 and bundles, [r.json()["title"] for r in webhook.requests]
    covered = set(alone)
    for request in bundles:
        bundle_id = request.headers["X-Tocsin-Notification-Id"]
        members = {nid for nid, e in events.items() if isinstance(e, deliveries.Delivered) and e.bundle_id == bundle_id}
        numbers = sorted(int(n.split("-")[1]) for n in members)
        body = request.json()
        assert body["title"] == f"{len(members)} more incidents: " + ", ".join(f"#{n}" for n in numbers)
        assert body["details"].splitlines() == [f"#{n} [CRITICAL] Disk {n} full" for n in numbers]
        assert body["link"] == "https://tocsin.example/incidents"
        provider_id = f"req-{webhook.requests.index(request) + 1}"
        assert {events[n].provider_id for n in members} == {provider_id}   # type: ignore[union-attr]
        assert not covered & members
        covered |= members
    assert covered == ids, "every page went out, alone or in a bundle"
    assert len(webhook.requests) < 10


async def test_a_failed_bundle_fails_every_page_in_it(bus, nats_url, webhook):
    numbered_answers(webhook, refuse_bundles=True)
    ids = {f"n-{i}" for i in range(1, 7)}
    await bus.publish_many([(notify.subject("webhook"), page(f"n-{i}", f"{webhook.url}/alice", number=i))
                            for i in range(1, 7)])
    async with running(bus, nats_url, registry={"webhook": BundledHook}) as task:
        events = await outcomes(bus, task, ids)
        failed = {n for n, e in events.items() if isinstance(e, deliveries.DeliveryFailed)}
        letters = await eventually(lambda: _at_least(dead(bus), len(failed)))
    assert failed and len(failed) == 6 - 2, "the two sent alone were delivered; the bundled ones failed"
    assert {letter.notification_id for letter in letters} == failed


async def _at_least(items: Any, n: int) -> Any:
    found = await items
    return found if len(found) >= n else None


async def test_other_contacts_and_answers_are_not_bundled(bus, nats_url, webhook):
    numbered_answers(webhook)
    pages = [page(f"a-{i}", f"{webhook.url}/alice", number=i) for i in range(1, 3)]
    pages += [page("b-1", f"{webhook.url}/bob", number=3, channel="bob/hook", user="bob"),
              page("a-3", f"{webhook.url}/alice", number=4, message_kind="test")]
    await bus.publish_many([(notify.subject("webhook"), p) for p in pages])
    async with running(bus, nats_url, registry={"webhook": BundledHook}) as task:
        events = await outcomes(bus, task, {p.id for p in pages})
    assert all(isinstance(e, deliveries.Delivered) and not e.bundle_id for e in events.values())
    assert len(webhook.requests) == 4


def test_bundle_message_names_every_incident_and_the_worst_severity():
    members = [page("x", "u", number=7, severity="warning"), page("y", "u", number=9, severity="critical"),
               page("z", "u", number=0, severity="info", title="Backup late")]
    message = bundle_message(members)
    assert message.title == "3 more incidents: #7, #9"
    assert message.body.splitlines() == ["#7 [WARNING] Disk 7 full", "#9 [CRITICAL] Disk 9 full",
                                         "[INFO] Backup late"]
    assert (message.severity, message.aggregate_id, message.channel, message.user) == (
        "critical", "", "alice/hook", "alice")
    assert message.id == bundle_message(list(reversed(members))).id, "the same pages make the same bundle"


# ------------------------------------------------------------------ what the channel classes declare

DECLARED = [
    ("sms", "provider_rate_limit"), ("voice", "provider_rate_limit"), ("sms", "bundle"), ("voice", "bundle"),
    ("pushover", "bundle"), ("email", "bundle"), ("telegram", "provider_rate_limit"), ("telegram", "rate_limit"),
    ("slack", "rate_limit"), ("discord", "rate_limit"),
]


@pytest.mark.parametrize(("kind", "attribute"), DECLARED)
def test_channel_classes_declare_their_limits_and_bundling(kind, attribute):
    if kind not in REGISTRY:
        pytest.skip(f"no {kind} channel in this build")
    assert getattr(REGISTRY[kind], attribute) is not None, f"{kind} should declare {attribute}"


def test_channels_without_provider_limits_declare_none():
    for kind in ("webhook", "log"):
        assert (REGISTRY[kind].rate_limit, REGISTRY[kind].provider_rate_limit, REGISTRY[kind].bundle) == (
            None, None, None)



# ------------------------------------------------------------------ seeing and replaying dead letters


async def tocsin(nats_url: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "TOCSIN_NATS_URL": nats_url}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "tocsin", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_dead_letters_are_listed_and_replayed_once_the_cause_is_fixed(bus, nats_url, webhook):
    webhook.default = lambda _: web.Response(status=404, text="no such hook")
    await bus.publish(notify.subject("webhook"), page("n-dead", f"{webhook.url}/hook"))
    await bus.js.publish(notify.subject("webhook"), b"garbage", headers={"Nats-Msg-Id": "garbage-1"})
    async with running(bus, nats_url) as task:
        await outcomes(bus, task, {"n-dead"})
        await eventually(lambda: _at_least(dead(bus), 2))

        code, out, _ = await tocsin(nats_url, "dead-letters", "list")
        assert code == 0
        lines = out.splitlines()
        assert len(lines) == 2
        [failed] = [line for line in lines if "n-dead" in line]
        [junk] = [line for line in lines if "(undecodable)" in line]
        assert "webhook alice/hook  permanent  n-dead  HTTP 404: no such hook" in failed
        seq, junk_seq = failed.split()[0], junk.split()[0]

        webhook.default = 200   # the receiver is fixed
        code, out, err = await tocsin(nats_url, "dead-letters", "replay", seq)
        assert (code, err) == (0, ""), err
        new_id = out.split()[-1]
        assert out.startswith(f"replayed {seq} as notification ")
        delivered = await outcomes(bus, task, {new_id})
        assert isinstance(delivered[new_id], deliveries.Delivered)

        code, _, _ = await tocsin(nats_url, "dead-letters", "replay", seq)   # again: the same notification
        assert code == 0
        code, _, err = await tocsin(nats_url, "dead-letters", "replay", junk_seq, "999")
        assert code == 1
        assert f"dead letter {junk_seq} holds no readable command (undecodable)" in err
        assert "no dead letter 999" in err

        async def settled() -> bool:
            info = await bus.js.consumer_info(NOTIFY.name, "notifier-webhook")
            return info.num_pending == 0 and info.num_ack_pending == 0
        await eventually(settled)
    ids = [r.headers["X-Tocsin-Notification-Id"] for r in webhook.requests]
    assert ids == ["n-dead", new_id], "the replay was sent once; the first refusal is not sent again"


# ------------------------------------------------------------------ the pump's flow


def test_flow_grows_while_the_loop_keeps_time_and_shrinks_when_it_runs_late():
    lag = LoopLag()
    flow = Flow(300, 200, least=8, lag=lag)
    assert flow.limit == 8, "a slow start"
    flow.tasks = 8
    assert flow.free() == 0
    for _ in range(40):
        lag.measured(0.0)       # the loop keeps time: sends wait on providers, not on the CPU
    assert flow.limit == 200 and flow.room.is_set()
    for _ in range(10):
        lag.measured(0.080)     # 80 ms late: short of CPU
    assert flow.limit == 8 and not flow.room.is_set()


def test_held_messages_leave_their_place_to_others():
    flow = Flow(10, least=4, lag=LoopLag())
    flow.limit = 4
    flow.tasks = 4
    assert flow.free() == 0
    with flow.hold(), flow.hold():
        assert flow.free() == 2 and flow.room.is_set()
    assert flow.free() == 0 and not flow.room.is_set()
    flow.tasks, flow.holding = 10, 10
    assert flow.free() == 0, "never more than `most` in hand"


async def test_a_provider_that_hangs_does_not_stall_the_other_destinations(bus, nats_url, webhook):
    release = asyncio.Event()

    async def hang_on_slow(received: Received) -> web.Response:
        if received.path == "/slow":
            await release.wait()
        return web.Response(status=200)

    webhook.default = hang_on_slow
    pages = [page(f"slow-{i}", f"{webhook.url}/slow", channel="slow", user="") for i in range(40)]
    pages.append(page("fast-1", f"{webhook.url}/fast", channel="fast", user=""))
    await bus.publish_many([(notify.subject("webhook"), p) for p in pages])
    try:
        async with running(bus, nats_url, send_deadline=30.0) as task:
            await outcomes(bus, task, {"fast-1"})
            assert len([r for r in webhook.requests if r.path == "/slow"]) == 40, "all 40 hang at once"
    finally:
        release.set()


async def test_a_patient_send_waits_for_a_far_slot_instead_of_refusing():
    t = VirtualTime()
    pacer = Pacer(max_hold=5.0, clock=t.clock, sleep=t.sleep)
    await pacer.wait("a", RateLimit(1, per=10.0), "p", None)
    assert await pacer.wait("a", RateLimit(1, per=10.0), "p", None, patient=True) == 10.0
