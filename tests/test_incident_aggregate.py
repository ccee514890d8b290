"""The incident aggregate as given-events / when-command / then-events, and appends guarded by sequence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from tocsin.events import incidents
from tocsin.events.bus import ConcurrencyConflict
from tocsin.events.incidents import (
    Acknowledge,
    AddNote,
    AttachAlert,
    Envelope,
    Escalate,
    IncidentAcknowledged,
    IncidentEscalated,
    IncidentOpened,
    IncidentResolved,
    InvalidTransition,
    NoteAdded,
    Open,
    Resolve,
)
from tocsin.events.repository import IncidentRepository

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
OPEN = Open(incident_id="i1", number=7, route="prod", team="infra", source="alertmanager", dedup_key="fp1",
            title="Disk full", severity="critical", alert_id="a1")


def env(n: int = 1) -> Envelope:
    return Envelope(event_id=f"e{n}", at=T0 + timedelta(minutes=n))


def given(*commands: incidents.Command) -> incidents.IncidentState | None:
    state = None
    for i, command in enumerate(commands):
        for event in incidents.decide(state, command, env(i)):
            state = incidents.evolve(state, event)
    return state


def test_open_gives_a_triggered_incident():
    [event] = incidents.decide(None, OPEN, env())
    assert isinstance(event, IncidentOpened) and event.version == 1 and event.number == 7
    state = incidents.evolve(None, event)
    assert state.status == "triggered" and state.firing_alerts == {"fp1"} and state.alert_id == "a1"


def test_open_twice_decides_nothing():
    assert incidents.decide(given(OPEN), OPEN, env()) == []


@pytest.mark.parametrize(("history", "command", "then"), [
    ((OPEN,), Acknowledge(by="alice"), [IncidentAcknowledged]),
    ((OPEN,), Resolve(by="alice"), [IncidentResolved]),
    ((OPEN, Acknowledge(by="alice")), Resolve(by="bob"), [IncidentResolved]),
    ((OPEN,), AddNote(by="alice", note="looking"), [NoteAdded]),
    ((OPEN,), Escalate(from_step=0, from_repeat=0, to_step=1, to_repeat=0), [IncidentEscalated]),
    # a timer for a step the incident has left is stale
    ((OPEN, Escalate(from_step=0, from_repeat=0, to_step=1, to_repeat=0)),
     Escalate(from_step=0, from_repeat=0, to_step=1, to_repeat=0), []),
    # an acknowledged incident does not escalate by itself, but a person may escalate it
    ((OPEN, Acknowledge(by="alice")), Escalate(from_step=0, from_repeat=0, to_step=1, to_repeat=0), []),
    ((OPEN, Acknowledge(by="alice")),
     Escalate(from_step=0, from_repeat=0, to_step=1, to_repeat=0, by="alice"), [IncidentEscalated]),
    # the last firing alert resolving resolves the incident
    ((OPEN,), AttachAlert(alert_id="a2", dedup_key="fp1", status="resolved"),
     [incidents.AlertAttached, IncidentResolved]),
    ((OPEN,), AttachAlert(alert_id="a2", dedup_key="fp1", status="firing"), [incidents.AlertAttached]),
])
def test_decide(history, command, then):
    state = given(*history)
    events = incidents.decide(state, command, env(9))
    assert [type(e) for e in events] == then
    versions = [e.version for e in events]
    assert versions == list(range(state.version + 1, state.version + 1 + len(events)))


@pytest.mark.parametrize(("history", "command", "message"), [
    ((OPEN, Acknowledge(by="alice")), Acknowledge(by="bob"), "acknowledged, not triggered"),
    ((OPEN, Resolve(by="alice")), Acknowledge(by="bob"), "resolved, not triggered"),
    ((OPEN, Resolve(by="alice")), Resolve(by="bob"), "already resolved"),
    ((OPEN, Resolve(by="alice")), Escalate(from_step=0, from_repeat=0, to_step=1, to_repeat=0, by="a"),
     "resolved"),
    ((OPEN, Resolve(by="alice")), AttachAlert(alert_id="a2", dedup_key="fp1", status="firing"), "resolved"),
    ((OPEN,), AddNote(by="alice", note="   "), "needs some text"),
    ((), Acknowledge(by="alice"), "no such incident"),
])
def test_invalid_transitions(history, command, message):
    with pytest.raises(InvalidTransition, match=message):
        incidents.decide(given(*history), command, env(9))


def test_evolve_tracks_who_and_when():
    state = given(OPEN, Acknowledge(by="alice"), Resolve(by="bob"))
    assert state.acknowledged_by == "alice" and state.acknowledged_at == T0 + timedelta(minutes=1)
    assert state.resolved_by == "bob" and state.status == "resolved" and state.version == 3


def test_old_event_without_new_fields_still_decodes():
    # An IncidentOpened written before `labels`, `details` and `traceparent` existed.
    old = (b'{"type":"incident.opened","id":"e1","aggregate_id":"i1","version":1,"at":"2026-01-01T00:00:00Z",'
           b'"number":1,"route":"r","team":"t","source":"webhook","dedup_key":"k","title":"x",'
           b'"severity":"error"}')
    event = incidents.decoder.decode(old)
    assert isinstance(event, IncidentOpened) and event.labels == {} and event.details == ""


def test_events_round_trip():
    for event in incidents.decide(None, OPEN, env()):
        assert incidents.decoder.decode(msgspec.json.encode(event)) == event


async def test_a_stale_append_is_rejected(bus):
    repo = IncidentRepository(bus)
    await repo.execute("i1", OPEN, at=lambda: T0, event_id="open-i1")
    _, seq = await repo.load("i1")
    # Somebody else acknowledges first...
    await IncidentRepository(bus).execute("i1", Acknowledge(by="bob"), at=lambda: T0)
    # ...so an append that still believes the old sequence is refused by JetStream.
    [event] = incidents.decide(given(OPEN), Resolve(by="alice"), env(5))
    with pytest.raises(ConcurrencyConflict):
        await bus.publish(incidents.subject("i1"), event, expected_last_subject_seq=seq)
    # The repository reloads and decides again on the new state.
    with pytest.raises(InvalidTransition, match="acknowledged"):
        await repo.execute("i1", Acknowledge(by="alice"), at=lambda: T0)
    state, _events = await repo.execute("i1", Resolve(by="alice"), at=lambda: T0)
    assert state.status == "resolved" and state.acknowledged_by == "bob" and state.version == 3


async def test_concurrent_writers_never_interleave(bus):
    import asyncio
    await IncidentRepository(bus).execute("i2", msgspec.structs.replace(OPEN, incident_id="i2"), at=lambda: T0)
    repos = [IncidentRepository(bus) for _ in range(8)]
    results = await asyncio.gather(*(r.execute("i2", AddNote(by=f"u{i}", note="n"), at=lambda: T0)
                                     for i, r in enumerate(repos)))
    state, _ = await IncidentRepository(bus).load("i2")
    assert state.version == 9
    assert sorted(r[0].version for r in results) == list(range(2, 10))


async def test_a_retried_decision_finishes_what_a_crash_cut_short(bus):
    """The router stored AlertAttached, then died before the automatic IncidentResolved: its retry (same ids)
    must still write the resolve."""
    repo = IncidentRepository(bus)
    await repo.execute("i3", msgspec.structs.replace(OPEN, incident_id="i3"), at=lambda: T0, event_id="open-i3")
    state, seq = await repo.load("i3")
    attach = AttachAlert(alert_id="a9", dedup_key="fp1", status="resolved")
    first, _second = incidents.decide(state, attach, Envelope(event_id="attach-a9", at=T0))
    await bus.publish(incidents.subject("i3"), first, expected_last_subject_seq=seq)   # ...and the crash
    state, events = await IncidentRepository(bus).execute("i3", attach, at=lambda: T0, event_id="attach-a9")
    assert state.status == "resolved"
    assert [type(e) for e in events] == [IncidentResolved]
    state, _ = await IncidentRepository(bus).load("i3")
    assert state.version == 3 and state.alert_count == 2
