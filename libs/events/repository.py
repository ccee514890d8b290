"""Load an incident from its own subject and append what `decide` says, guarded by the subject sequence."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

from tocsin.events import incidents
from tocsin.events.base import new_id
from tocsin.events.bus import Bus, ConcurrencyConflict
from tocsin.events.incidents import Command, Envelope, IncidentEvent, IncidentState
from tocsin.events.streams import INCIDENTS


class IncidentRepository:
    def __init__(self, bus: Bus, cache_size: int = 10_000) -> None:
        # cache_size 0 (the API) reads every time; the router caches, and is corrected by the sequence check.
        self.bus = bus
        self._cache: OrderedDict[str, tuple[IncidentState | None, int]] = OrderedDict()
        self._cache_size = cache_size

    async def load(self, incident_id: str, *, fresh: bool = False) -> tuple[IncidentState | None, int]:
        """The state and the stream sequence of its last event (0 when there is none)."""
        if not fresh and incident_id in self._cache:
            self._cache.move_to_end(incident_id)
            return self._cache[incident_id]
        state: IncidentState | None = None
        last_seq = 0
        for seq, data in await self.bus.read_subject(INCIDENTS.name, incidents.subject(incident_id)):
            state = incidents.evolve(state, incidents.decoder.decode(data))
            last_seq = seq
        self._remember(incident_id, state, last_seq)
        return state, last_seq

    def assume_new(self, incident_id: str) -> None:
        """The caller knows nothing was ever appended for this id (it just claimed it): skip the read. If it
        is wrong, the expected-sequence check refuses the append and the next try reads for real."""
        self._remember(incident_id, None, 0)

    def _remember(self, incident_id: str, state: IncidentState | None, seq: int) -> None:
        self._cache[incident_id] = (state, seq)
        self._cache.move_to_end(incident_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def execute(self, incident_id: str, command: Command, *, at: Callable[[], object],
                      event_id: str | None = None, traceparent: str = "",
                      attempts: int = 20) -> tuple[IncidentState | None, list[IncidentEvent]]:
        """Decide on the latest state and append; on a concurrent append, reload and decide again.

        Raises incidents.InvalidTransition when the command is not allowed in the current state."""
        fresh = False
        for _ in range(attempts):
            state, seq = await self.load(incident_id, fresh=fresh)
            env = Envelope(event_id=event_id or new_id(), at=at(), traceparent=traceparent)  # type: ignore[arg-type]
            events = incidents.decide(state, command, env)
            try:
                for event in events:
                    ack = await self.bus.publish(incidents.subject(incident_id), event,
                                                 expected_last_subject_seq=seq)
                    if ack.duplicate:
                        # An earlier try (before a crash) stored this very event. Carry on with the rest
                        # of the decision (an attach's automatic resolve, say) unless others wrote since.
                        self._cache.pop(incident_id, None)
                        state, seq = await self.load(incident_id, fresh=True)
                        if state is None or state.version != event.version:
                            return state, []
                        continue
                    state = incidents.evolve(state, event)
                    seq = ack.seq
            except ConcurrencyConflict:
                self._cache.pop(incident_id, None)
                fresh = True
                continue
            self._remember(incident_id, state, seq)
            return state, events
        raise ConcurrencyConflict(f"incident {incident_id}: too many concurrent changes")
