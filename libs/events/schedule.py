"""Rotation math: who is on call at an instant, and the shifts in a window. Pure, no I/O.

People hand over at a time of day, not at an instant: a weekly rotation that hands off on Monday at 09:00
in Berlin must still hand off at 09:00 after the clocks change, so whole-day shifts (`1d`, `1w`, `2w`)
are counted in local calendar days and converted to UTC one hand-off at a time. Shorter or uneven shifts
(`12h`, `30m`, `36h`) are a duration, so they are counted in absolute time from the first hand-off and
the clock change moves their local time instead.

Wall-clock times the clock change makes odd follow RFC 5545 (iCalendar), which is what calendars do:
- a time that happens twice (the autumn fold) means the first occurrence (`fold=0`);
- a time that never happens (the spring gap) is read with the UTC offset in force before the gap, so it
  moves forward by the length of the gap: 02:30 on the spring-forward night in Berlin is 03:30 CEST,
  02:15 on 2026-10-04 on Lord Howe Island is 02:45.
The one place that rule could break the order of hand-offs is a gap as long as the shift, where a whole
calendar day was skipped (Pacific/Apia 2011-12-30); there a hand-off never moves later than one second
before the next one, so hand-off instants are always strictly increasing and every instant belongs to
exactly one shift.

Before the first hand-off the rotation runs backwards, so somebody is always on call. Overrides are
half-open `[start, end)` in UTC; where several cover an instant, the last one listed wins.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DAY = timedelta(days=1)
# Wall-clock arithmetic goes through these instead of datetime.replace(), which costs ~30x more.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_ONE_SECOND = timedelta(seconds=1)
_MIN_SHIFT = timedelta(minutes=1)


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")


@dataclass(frozen=True, slots=True)
class Override:
    """`user` is on call instead of the rotation during [start, end) (aware datetimes, UTC)."""

    user: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if not self.user:
            raise ValueError("override user must not be empty")
        _require_aware("override start", self.start)
        _require_aware("override end", self.end)
        if self.end <= self.start:
            raise ValueError(
                f"override for {self.user!r} must end after it starts "
                f"({self.start.isoformat()} .. {self.end.isoformat()})"
            )
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "end", self.end.astimezone(UTC))

    def covers(self, when: datetime) -> bool:
        return self.start <= when < self.end


@dataclass(frozen=True, slots=True)
class Shift:
    """One stretch of being on call: [start, end) in UTC; `override` when an override put them there."""

    user: str
    start: datetime
    end: datetime
    override: bool = False


@dataclass(frozen=True)
class Rotation:
    """Members take turns in order, one `shift` each, from `start` (naive wall-clock time in `timezone`)."""

    name: str
    members: tuple[str, ...]
    shift: timedelta
    start: datetime
    timezone: str
    overrides: tuple[Override, ...] = ()

    # Derived once in __post_init__; not part of equality or repr.
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)
    _days: int = field(init=False, repr=False, compare=False)  # 0 when the shift is not whole days
    _local_step: timedelta = field(init=False, repr=False, compare=False)
    _start_utc: datetime = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = f"rotation {self.name!r}"
        if isinstance(self.members, str):
            raise ValueError(f"{where}: members must be a list of names, not the string {self.members!r}")
        # Accept lists from config loaders but keep the value immutable (and hashable).
        object.__setattr__(self, "members", tuple(self.members))
        object.__setattr__(self, "overrides", tuple(self.overrides))
        if not self.members:
            raise ValueError(f"{where}: needs at least one member")
        if any(not m for m in self.members):
            raise ValueError(f"{where}: member names must not be empty")
        if not isinstance(self.shift, timedelta) or self.shift <= timedelta(0):
            raise ValueError(f"{where}: shift must be a positive duration, got {self.shift!r}")
        if self.shift < _MIN_SHIFT:
            raise ValueError(f"{where}: shift must be at least 1 minute, got {self.shift}")
        if self.start.tzinfo is not None:
            raise ValueError(
                f"{where}: start must be a naive wall-clock time in {self.timezone!r}, "
                f"got {self.start.isoformat()}"
            )
        try:
            tz = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise ValueError(f"{where}: unknown time zone {self.timezone!r} (IANA names only)") from exc
        for o in self.overrides:
            if not isinstance(o, Override):
                raise ValueError(f"{where}: overrides must be Override values, got {o!r}")
        object.__setattr__(self, "start", self.start.replace(fold=0))  # fold means nothing in config
        object.__setattr__(self, "_tz", tz)
        object.__setattr__(self, "_days", self.shift.days if self.shift % _DAY == timedelta(0) else 0)
        object.__setattr__(self, "_local_step", timedelta(days=self._days))
        object.__setattr__(self, "_start_utc", self._wall_to_utc(self.start))

    # -- hand-offs --------------------------------------------------------------------------------

    def _offset(self, local: datetime) -> timedelta:
        # ZoneInfo reads a naive wall time with fold=0: the first occurrence of a repeated time, and the
        # offset in force before the gap for a skipped one (RFC 5545).
        offset = self._tz.utcoffset(local)
        assert offset is not None  # a ZoneInfo always has one
        return offset

    def _wall_to_utc(self, local: datetime) -> datetime:
        return _EPOCH + (local - _NAIVE_EPOCH - self._offset(local))

    def handoff(self, k: int) -> datetime:
        """The UTC instant of the k-th hand-off; 0 is `start`, negative k are before it."""
        if not self._days:
            return self._start_utc + k * self.shift
        local = self.start + k * self._local_step
        offset = self._offset(local)
        instant = _EPOCH + (local - _NAIVE_EPOCH - offset)
        if instant.astimezone(self._tz).utcoffset() != offset:
            # The wall time was skipped. Only a skipped calendar day can push the RFC 5545 reading past
            # the next hand-off; see the module docstring.
            following = self._wall_to_utc(local + self._local_step) - _ONE_SECOND
            instant = min(instant, following)
        return instant

    def index_at(self, when: datetime) -> int:
        """The k with handoff(k) <= when < handoff(k + 1)."""
        _require_aware("when", when)
        if not self._days:
            return (when - self._start_utc) // self.shift  # exact: integer microseconds
        # Counting in local wall-clock time is right to within a clock change; fix up the last step.
        wall = when - _EPOCH + self._offset(when.astimezone(self._tz))
        k = (wall - (self.start - _NAIVE_EPOCH)) // self.shift
        for _ in range(4):
            if self.handoff(k) > when:
                k -= 1
            elif self.handoff(k + 1) <= when:
                k += 1
            else:
                return k
        raise AssertionError(f"index_at did not settle for {when.isoformat()} in rotation {self.name!r}")

    def next_handoff(self, when: datetime) -> datetime:
        """The first hand-off strictly after `when`."""
        return self.handoff(self.index_at(when) + 1)

    # -- who is on call -----------------------------------------------------------------------------

    def scheduled_at(self, when: datetime) -> str:
        """Whom the rotation itself puts on call at `when`, ignoring overrides."""
        return self.members[self.index_at(when) % len(self.members)]

    def _override_at(self, when: datetime) -> Override | None:
        for o in reversed(self.overrides):
            if o.start <= when < o.end:
                return o
        return None

    def on_call_at(self, when: datetime) -> str:
        """Who is on call at `when`: the last override covering it, else the scheduled member."""
        _require_aware("when", when)
        o = self._override_at(when)
        return o.user if o is not None else self.scheduled_at(when)

    def next_on_call(self, when: datetime) -> tuple[str, datetime]:
        """Who takes over next and when: the first instant after `when` at which a different person is
        on call. If nobody different comes within the search bound (a one-person rotation, say), this
        is whoever starts the next shift, at the next hand-off."""
        current = self.on_call_at(when)
        live = [(i, o) for i, o in enumerate(self.overrides) if o.end > when]
        # Each step lands on a hand-off outside every override or on an override edge, so this bound
        # covers a full turn of the rotation twice plus both edges of every override.
        t = when
        for _ in range(2 * len(self.members) + 2 * len(live) + 2):
            t = self._next_boundary(t, live)
            who = self.on_call_at(t)
            if who != current:
                return who, t
        nxt = self.next_handoff(when)
        return self.on_call_at(nxt), nxt

    def _next_boundary(self, t: datetime, live: list[tuple[int, Override]]) -> datetime:
        """The next instant after t at which on_call_at could change."""
        top = -1
        for i, o in live:
            if o.start <= t < o.end:
                top = i
        if top >= 0:
            # Hand-offs under the winning override change nothing; only its end or a later-listed
            # (higher-priority) override starting can.
            nxt = self.overrides[top].end
            for i, o in live:
                if i > top and t < o.start < nxt:
                    nxt = o.start
            return nxt
        nxt = self.next_handoff(t)
        for _, o in live:
            if t < o.start < nxt:
                nxt = o.start
        return nxt

    # -- shifts in a window -------------------------------------------------------------------------

    def shifts(self, start: datetime, end: datetime) -> list[Shift]:
        """The on-call stretches covering [start, end) in order, overrides applied, ends clipped."""
        _require_aware("start", start)
        _require_aware("end", end)
        if end <= start:
            return []
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        members, n = self.members, len(self.members)
        k = self.index_at(start)
        pieces: list[tuple[datetime, datetime, str, bool]] = []
        t = start
        if self._days:
            while t < end:
                nxt = self.handoff(k + 1)
                stop = nxt if nxt < end else end
                pieces.append((t, stop, members[k % n], False))
                t, k = stop, k + 1
        else:
            # Absolute shifts: add the duration instead of recomputing start + k * shift each time.
            step, nxt, m = self.shift, self.handoff(k + 1), k % n
            while t < end:
                stop = nxt if nxt < end else end
                pieces.append((t, stop, members[m], False))
                t, nxt, m = stop, nxt + step, (m + 1) % n

        # Paint overrides in list order, so a later one lands on top of an earlier one.
        for o in self.overrides:
            if o.end <= start or o.start >= end:
                continue
            _paint(pieces, max(o.start, start), min(o.end, end), o.user)
        return [Shift(user, a, b, flag) for a, b, user, flag in pieces]


def _paint(pieces: list[tuple[datetime, datetime, str, bool]], s: datetime, e: datetime, user: str) -> None:
    """Replace [s, e) of a contiguous, sorted piece list with one override piece, splitting the edges."""
    first = bisect.bisect_right(pieces, s, key=lambda p: p[0]) - 1
    last = bisect.bisect_left(pieces, e, key=lambda p: p[0])  # pieces[first:last] meet [s, e)
    replacement = []
    head, tail = pieces[first], pieces[last - 1]
    if head[0] < s:
        replacement.append((head[0], s, head[2], head[3]))
    replacement.append((s, e, user, True))
    if tail[1] > e:
        replacement.append((e, tail[1], tail[2], tail[3]))
    pieces[first:last] = replacement
