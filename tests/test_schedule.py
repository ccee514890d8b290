"""Rotation math: tables for the clock changes people trip over, properties for everything else.

Expected names in the tables come from counting calendar days and weeks by hand, not from the code.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tocsin.events.schedule import Override, Rotation, Shift

DAY, SECOND = timedelta(days=1), timedelta(seconds=1)
TINY = timedelta(microseconds=1)
BERLIN, NEW_YORK, LORD_HOWE = "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def berlin_weekly(*overrides: Override) -> Rotation:
    # Weekly, hand-off Monday 09:00 Berlin; week 0 (alice) starts Monday 2026-03-02.
    return Rotation(
        "primary", ("alice", "bob", "carol"), timedelta(weeks=1), datetime(2026, 3, 2, 9), "Europe/Berlin",
        overrides,
    )


# -- tables around clock changes ------------------------------------------------------------------

BERLIN_WEEKLY = [
    ("2026-02-23T07:59:59", "bob"),  # before the start the rotation runs backwards: week -2
    ("2026-02-23T08:00:00", "carol"),  # week -1, 09:00 CET
    ("2026-03-02T08:00:00", "alice"),  # first hand-off
    ("2026-03-23T07:59:59", "carol"),
    ("2026-03-23T08:00:00", "alice"),  # 09:00 CET
    ("2026-03-29T12:00:00", "alice"),  # Sunday, clocks went forward at 01:00Z
    ("2026-03-30T06:59:59", "alice"),
    ("2026-03-30T07:00:00", "bob"),  # 09:00 CEST: one hour earlier in UTC
    ("2026-03-30T07:30:00", "bob"),  # a fixed-UTC rotation would still say alice
    ("2026-10-19T06:59:59", "carol"),
    ("2026-10-19T07:00:00", "alice"),  # week 33, 09:00 CEST
    ("2026-10-25T00:30:00", "alice"),  # 02:30 CEST, first pass through the fold
    ("2026-10-25T01:30:00", "alice"),  # 02:30 CET, second pass
    ("2026-10-26T07:30:00", "alice"),  # 08:30 CET: not yet
    ("2026-10-26T07:59:59", "alice"),
    ("2026-10-26T08:00:00", "bob"),  # 09:00 CET: one hour later in UTC
]


@pytest.mark.parametrize(("at", "who"), BERLIN_WEEKLY)
def test_berlin_weekly_on_call(at: str, who: str) -> None:
    assert berlin_weekly().on_call_at(utc(at)) == who


@pytest.mark.parametrize(
    ("k", "instant"),
    [
        (-1, "2026-02-23T08:00:00"),
        (0, "2026-03-02T08:00:00"),
        (3, "2026-03-23T08:00:00"),
        (4, "2026-03-30T07:00:00"),
        (33, "2026-10-19T07:00:00"),
        (34, "2026-10-26T08:00:00"),
    ],
)
def test_berlin_weekly_handoff_keeps_nine_local(k: int, instant: str) -> None:
    rotation = berlin_weekly()
    assert rotation.handoff(k) == utc(instant)
    local = rotation.handoff(k).astimezone(ZoneInfo("Europe/Berlin"))
    assert (local.weekday(), local.time()) == (0, time(9))


NEW_YORK_DAILY = [
    ("2026-03-07T13:59:59", "ana"),
    ("2026-03-07T14:00:00", "ben"),  # 09:00 EST
    ("2026-03-08T12:59:59", "ben"),
    ("2026-03-08T13:00:00", "cy"),  # 09:00 EDT, day of the change
    ("2026-03-09T13:00:00", "ana"),
    ("2026-10-31T13:00:00", "cy"),  # day 239
    ("2026-11-01T13:30:00", "cy"),  # 08:30 EST
    ("2026-11-01T14:00:00", "ana"),  # 09:00 EST, day 240
    ("2026-11-02T13:59:59", "ana"),
    ("2026-11-02T14:00:00", "ben"),
]


@pytest.mark.parametrize(("at", "who"), NEW_YORK_DAILY)
def test_new_york_daily_on_call(at: str, who: str) -> None:
    rotation = Rotation("ops", ("ana", "ben", "cy"), timedelta(days=1), datetime(2026, 3, 6, 9), NEW_YORK)
    assert rotation.on_call_at(utc(at)) == who


def test_new_york_gap_and_fold_rule() -> None:
    # 02:30 does not exist on 2026-03-08: read with the pre-gap offset (EST), i.e. 03:30 EDT.
    gap = Rotation("ops", ("ana", "ben"), timedelta(days=1), datetime(2026, 3, 6, 2, 30), NEW_YORK)
    assert [gap.handoff(k) for k in (1, 2, 3)] == [
        utc("2026-03-07T07:30:00"),
        utc("2026-03-08T07:30:00"),
        utc("2026-03-09T06:30:00"),
    ]
    # 01:30 happens twice on 2026-11-01: the first one (EDT) is the hand-off.
    fold = Rotation("ops", ("ana", "ben"), timedelta(days=1), datetime(2026, 10, 30, 1, 30), NEW_YORK)
    assert [fold.handoff(k) for k in (1, 2, 3)] == [
        utc("2026-10-31T05:30:00"),
        utc("2026-11-01T05:30:00"),
        utc("2026-11-02T06:30:00"),
    ]


LORD_HOWE_DAILY = [
    ("2026-04-03T21:59:59", "ana"),
    ("2026-04-03T22:00:00", "ben"),  # 09:00 +11:00
    ("2026-04-04T22:00:00", "ben"),  # a fixed-UTC rotation would hand off here
    ("2026-04-04T22:29:59", "ben"),
    ("2026-04-04T22:30:00", "ana"),  # 09:00 +10:30, after the half-hour fall-back
    ("2026-10-02T22:30:00", "ben"),  # day 183, 09:00 +10:30
    ("2026-10-03T21:59:59", "ben"),
    ("2026-10-03T22:00:00", "ana"),  # 09:00 +11:00, after the half-hour spring-forward
]


@pytest.mark.parametrize(("at", "who"), LORD_HOWE_DAILY)
def test_lord_howe_daily_on_call(at: str, who: str) -> None:
    rotation = Rotation("ops", ("ana", "ben"), timedelta(days=1), datetime(2026, 4, 3, 9), LORD_HOWE)
    assert rotation.on_call_at(utc(at)) == who


def test_lord_howe_half_hour_gap_and_fold() -> None:
    # 02:15 on 2026-10-04 is inside the 02:00-02:30 gap: it moves forward by the gap, to 02:45 (+11:00).
    gap = Rotation("x", ("ana", "ben"), timedelta(days=1), datetime(2026, 10, 3, 2, 15), LORD_HOWE)
    assert gap.handoff(1) == utc("2026-10-03T15:45:00")
    assert gap.handoff(0) < gap.handoff(1) < gap.handoff(2)
    # 01:45 on 2026-04-05 happens twice: the first is at +11:00.
    fold = Rotation("x", ("ana", "ben"), timedelta(days=1), datetime(2026, 4, 4, 1, 45), LORD_HOWE)
    assert fold.handoff(1) == utc("2026-04-04T14:45:00")
    assert fold.handoff(2) == utc("2026-04-05T15:15:00")


def test_twelve_hour_shift_is_absolute_time() -> None:
    # 21:00 CET on 2026-03-28 is 20:00Z; twelve real hours later the local clock says 10:00 CEST.
    rotation = Rotation("x", ("ana", "ben"), timedelta(hours=12), datetime(2026, 3, 28, 21), "Europe/Berlin")
    assert rotation.handoff(1) == utc("2026-03-29T08:00:00")
    assert rotation.handoff(1).astimezone(ZoneInfo("Europe/Berlin")).time() == time(10)
    assert rotation.handoff(-3) == utc("2026-03-27T08:00:00")
    assert rotation.on_call_at(utc("2026-03-29T07:59:59")) == "ana"
    assert rotation.on_call_at(utc("2026-03-29T08:00:00")) == "ben"
    assert rotation.next_handoff(utc("2026-03-29T08:00:00")) == utc("2026-03-29T20:00:00")


def test_thirty_minute_shift_runs_through_the_fold() -> None:
    # 01:00 CEST on 2026-10-25 is 23:00Z; 01:00 to 03:00 local is three real hours that night.
    rotation = Rotation("x", ("a", "b", "c"), timedelta(minutes=30), datetime(2026, 10, 25, 1), BERLIN)
    window = rotation.shifts(utc("2026-10-24T23:00:00"), utc("2026-10-25T02:00:00"))
    assert [s.user for s in window] == ["a", "b", "c", "a", "b", "c"]
    assert all(s.end - s.start == timedelta(minutes=30) for s in window)
    assert rotation.on_call_at(utc("2026-10-25T01:15:00")) == "b"  # 02:15 CET, the second one


def test_skipped_calendar_day_keeps_handoffs_strictly_increasing() -> None:
    # Samoa skipped 2011-12-30 entirely (a 24 h gap); a daily midnight hand-off has no day to land on.
    for hour in (0, 9, 23):
        rotation = Rotation("x", ("a", "b"), timedelta(days=1), datetime(2011, 12, 27, hour), "Pacific/Apia")
        handoffs = [rotation.handoff(k) for k in range(7)]
        assert handoffs == sorted(set(handoffs))
        for k, h in enumerate(handoffs):
            assert rotation.index_at(h) == k
            assert rotation.index_at(h - TINY) == k - 1


# -- overrides ----------------------------------------------------------------------------------------

CHRISTMAS = Override("carol", utc("2026-12-23T23:00:00"), utc("2026-12-26T23:00:00"))  # Dec 24-27, Berlin


def december_rotation(*overrides: Override) -> Rotation:
    # The example from CONFIG.md: first hand-off Monday 2026-11-30 09:00 Berlin; Dec 21 is alice's week.
    return Rotation(
        "primary", ("alice", "bob", "carol"), timedelta(weeks=1), datetime(2026, 11, 30, 9), "Europe/Berlin",
        overrides,
    )


def test_override_is_exact_to_the_second() -> None:
    rotation = december_rotation(CHRISTMAS)
    assert rotation.on_call_at(CHRISTMAS.start - SECOND) == "alice"
    assert rotation.on_call_at(CHRISTMAS.start - TINY) == "alice"
    assert rotation.on_call_at(CHRISTMAS.start) == "carol"
    assert rotation.on_call_at(CHRISTMAS.end - TINY) == "carol"
    assert rotation.on_call_at(CHRISTMAS.end) == "alice"
    assert rotation.scheduled_at(CHRISTMAS.start) == "alice"


def test_one_second_override() -> None:
    at = utc("2026-12-02T12:00:00")
    rotation = december_rotation(Override("dave", at, at + SECOND))
    assert [rotation.on_call_at(t) for t in (at - TINY, at, at + SECOND - TINY, at + SECOND)] == [
        "alice", "dave", "dave", "alice",
    ]


def test_last_listed_override_wins() -> None:
    first = Override("dave", utc("2026-12-02T00:00:00"), utc("2026-12-04T00:00:00"))
    second = Override("erin", utc("2026-12-03T00:00:00"), utc("2026-12-05T00:00:00"))
    rotation = december_rotation(first, second)
    assert rotation.on_call_at(utc("2026-12-02T12:00:00")) == "dave"
    assert rotation.on_call_at(utc("2026-12-03T12:00:00")) == "erin"
    assert rotation.on_call_at(utc("2026-12-04T12:00:00")) == "erin"
    assert december_rotation(second, first).on_call_at(utc("2026-12-03T12:00:00")) == "dave"


def test_next_on_call_follows_overrides() -> None:
    rotation = december_rotation(CHRISTMAS)
    assert rotation.next_on_call(utc("2026-12-22T12:00:00")) == ("carol", CHRISTMAS.start)
    assert rotation.next_on_call(utc("2026-12-24T12:00:00")) == ("alice", CHRISTMAS.end)
    assert rotation.next_on_call(utc("2026-12-27T12:00:00")) == ("bob", utc("2026-12-28T08:00:00"))
    assert rotation.next_handoff(utc("2026-12-24T12:00:00")) == utc("2026-12-28T08:00:00")


def test_next_on_call_skips_handoffs_under_a_long_override() -> None:
    cover = Override("zed", utc("2026-01-01T00:00:00"), utc("2026-03-01T00:00:00"))
    rotation = Rotation("x", ("a", "b"), timedelta(days=1), datetime(2025, 12, 1), "UTC", (cover,))
    # 59 hand-offs fall under the override; the next change is its end, to whoever is scheduled then.
    assert rotation.next_on_call(utc("2026-01-05T00:00:00")) == ("a", cover.end)


def test_next_on_call_ignores_an_override_for_the_person_already_on_call() -> None:
    same = Override("a", utc("2026-01-01T12:00:00"), utc("2026-01-02T12:00:00"))
    rotation = Rotation("x", ("a", "b"), timedelta(days=1), datetime(2026, 1, 1), "UTC", (same,))
    # a's own shift ends at 2026-01-02 00:00, but the override keeps a on call until 12:00.
    assert rotation.next_on_call(utc("2026-01-01T06:00:00")) == ("b", same.end)


def test_next_on_call_single_member_is_the_next_shift() -> None:
    rotation = Rotation("x", ("solo",), timedelta(weeks=1), datetime(2026, 1, 5, 9), "Europe/Berlin")
    assert rotation.next_on_call(utc("2026-01-06T00:00:00")) == ("solo", utc("2026-01-12T08:00:00"))


# -- shifts() -------------------------------------------------------------------------------------------


def test_shifts_over_ninety_days_with_override() -> None:
    start, end = utc("2026-12-01T00:00:00"), utc("2027-03-01T00:00:00")  # 90 days
    got = december_rotation(CHRISTMAS).shifts(start, end)
    monday = [utc(f"{d}T08:00:00") for d in (
        "2027-01-04", "2027-01-11", "2027-01-18", "2027-01-25", "2027-02-01", "2027-02-08", "2027-02-15",
        "2027-02-22",
    )]
    assert got == [
        Shift("alice", start, utc("2026-12-07T08:00:00")),
        Shift("bob", utc("2026-12-07T08:00:00"), utc("2026-12-14T08:00:00")),
        Shift("carol", utc("2026-12-14T08:00:00"), utc("2026-12-21T08:00:00")),
        Shift("alice", utc("2026-12-21T08:00:00"), CHRISTMAS.start),
        Shift("carol", CHRISTMAS.start, CHRISTMAS.end, override=True),
        Shift("alice", CHRISTMAS.end, utc("2026-12-28T08:00:00")),
        Shift("bob", utc("2026-12-28T08:00:00"), monday[0]),
        Shift("carol", monday[0], monday[1]),
        Shift("alice", monday[1], monday[2]),
        Shift("bob", monday[2], monday[3]),
        Shift("carol", monday[3], monday[4]),
        Shift("alice", monday[4], monday[5]),
        Shift("bob", monday[5], monday[6]),
        Shift("carol", monday[6], monday[7]),
        Shift("alice", monday[7], end),
    ]


def test_shifts_twelve_hours_for_ninety_days() -> None:
    cover = Override("zed", utc("2026-02-10T03:00:00"), utc("2026-02-11T05:00:00"))
    rotation = Rotation("x", ("a", "b", "c"), timedelta(hours=12), datetime(2026, 1, 1, 8), BERLIN, (cover,))
    start, end = utc("2026-01-15T00:00:00"), utc("2026-04-15T00:00:00")
    got = rotation.shifts(start, end)
    assert_tiles(got, start, end)
    # 180 hand-offs in the window, plus the override (it spans 2 hand-offs: -2 +1) and its after-piece.
    assert len(got) == 181 + 1 - 2 + 1
    assert [s for s in got if s.override] == [Shift("zed", cover.start, cover.end, override=True)]
    for s in got:
        assert rotation.on_call_at(s.start) == s.user == rotation.on_call_at(s.end - TINY)


def test_override_for_the_scheduled_person_is_its_own_piece() -> None:
    own = Override("alice", utc("2026-12-02T00:00:00"), utc("2026-12-03T00:00:00"))
    got = december_rotation(own).shifts(utc("2026-12-01T00:00:00"), utc("2026-12-04T00:00:00"))
    assert [(s.user, s.override) for s in got] == [("alice", False), ("alice", True), ("alice", False)]


def test_shifts_of_an_empty_window() -> None:
    at = utc("2026-12-01T00:00:00")
    assert berlin_weekly().shifts(at, at) == []


# -- bad input ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"members": ()}, "at least one member"),
        ({"members": "alice"}, "list of names"),
        ({"shift": timedelta(0)}, "positive"),
        ({"shift": timedelta(hours=-1)}, "positive"),
        ({"shift": timedelta(seconds=30)}, "at least 1 minute"),
        ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"timezone": ""}, "unknown time zone"),
        ({"timezone": "../../etc/passwd"}, "unknown time zone"),
        ({"start": datetime(2026, 1, 1, tzinfo=UTC)}, "naive"),
    ],
)
def test_bad_rotation(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "name": "x", "members": ("a",), "shift": timedelta(days=1), "start": datetime(2026, 1, 1),
        "timezone": "UTC",
    }
    with pytest.raises(ValueError, match=message):
        Rotation(**{**args, **kwargs})  # type: ignore[arg-type]


def test_bad_override() -> None:
    at = utc("2026-01-01T00:00:00")
    with pytest.raises(ValueError, match="must end after it starts"):
        Override("a", at, at)
    with pytest.raises(ValueError, match="timezone-aware"):
        Override("a", datetime(2026, 1, 1), datetime(2026, 1, 2))


def test_other_time_zones_come_back_as_utc() -> None:
    berlin = ZoneInfo(BERLIN)
    cover = Override("dave", datetime(2026, 12, 2, 1, tzinfo=berlin), datetime(2026, 12, 2, 2, tzinfo=berlin))
    assert (cover.start, cover.end) == (utc("2026-12-02T00:00:00"), utc("2026-12-02T01:00:00"))
    got = december_rotation().shifts(datetime(2026, 12, 7, 9, tzinfo=berlin), utc("2026-12-08T00:00:00"))
    assert got == [Shift("bob", utc("2026-12-07T08:00:00"), utc("2026-12-08T00:00:00"))]
    assert got[0].start.tzinfo is UTC


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        berlin_weekly().on_call_at(datetime(2026, 1, 1))


# -- properties -----------------------------------------------------------------------------------------

PROPERTY = settings(max_examples=200, deadline=None)
WHOLE_DAY_ZONES = (BERLIN, NEW_YORK, LORD_HOWE)
ZONES = (*WHOLE_DAY_ZONES, "UTC", "Asia/Kolkata", "America/St_Johns", "Pacific/Chatham", "Pacific/Apia")
SHIFTS = tuple(
    timedelta(**kw)
    for kw in ({"days": 1}, {"weeks": 1}, {"weeks": 2}, {"hours": 12}, {"hours": 36}, {"minutes": 30},
               {"minutes": 1}, {"hours": 8, "minutes": 20})
)
# Hand-off times near clock changes are drawn far more often than uniform times would be.
wall_times = st.one_of(
    st.sampled_from([time(h, m) for h in (0, 1, 2) for m in (0, 15, 30, 45)] + [time(3), time(9)]),
    st.times().map(lambda t: t.replace(microsecond=0)),
)


def clock_change_dates(zone: str, first: date = date(2015, 1, 1), years: int = 21) -> list[date]:
    """Local dates on which the zone changes its UTC offset."""
    tz, days = ZoneInfo(zone), (first.replace(year=first.year + years) - first).days
    dates = (first + timedelta(days=i) for i in range(days))
    return [
        d for d in dates
        if tz.utcoffset(datetime.combine(d, time(0))) != tz.utcoffset(datetime.combine(d, time(23, 59, 59)))
    ]


# Uniform dates and instants almost never meet a clock change, so half of them are drawn next to one.
CHANGES_BY_ZONE = {zone: clock_change_dates(zone) for zone in ZONES}
CLOCK_CHANGES = sorted({d for dates in CHANGES_BY_ZONE.values() for d in dates})
near_changes = st.builds(lambda d, i: d + i * DAY, st.sampled_from(CLOCK_CHANGES), st.integers(-1, 1))
start_dates = st.one_of(st.dates(date(2000, 1, 1), date(2035, 12, 31)), near_changes)
instants = st.one_of(
    st.datetimes(datetime(1990, 1, 1), datetime(2060, 1, 1), timezones=st.just(UTC)),
    st.builds(
        lambda d, s: datetime.combine(d, time(0), UTC) + timedelta(seconds=s),
        st.sampled_from(CLOCK_CHANGES),
        st.integers(-36 * 3600, 60 * 3600),
    ),
)


@st.composite
def rotations(draw: st.DrawFn) -> Rotation:
    members = tuple(draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=4)))
    start = datetime.combine(draw(start_dates), draw(wall_times))
    return Rotation("r", members, draw(st.sampled_from(SHIFTS)), start, draw(st.sampled_from(ZONES)))


@st.composite
def overrides_near(draw: st.DrawFn, around: datetime, n: int = 3) -> tuple[Override, ...]:
    result = []
    for _ in range(draw(st.integers(0, n))):
        begin = around + timedelta(seconds=draw(st.integers(-20 * 86400, 20 * 86400)))
        length = timedelta(seconds=draw(st.integers(1, 10 * 86400)))
        result.append(Override(draw(st.sampled_from(["x", "y", "a"])), begin, begin + length))
    return tuple(result)


@PROPERTY
@given(rotation=rotations(), when=instants)
def test_property_exactly_one_shift_holds_any_instant(rotation: Rotation, when: datetime) -> None:
    k = rotation.index_at(when)
    assert rotation.handoff(k) <= when < rotation.handoff(k + 1)
    assert rotation.handoff(k - 1) < rotation.handoff(k)
    assert rotation.scheduled_at(when) == rotation.members[k % len(rotation.members)]
    assert rotation.on_call_at(when) in rotation.members
    assert rotation.next_handoff(when) == rotation.handoff(k + 1)
    # The neighbouring shifts claim none of it.
    assert not rotation.handoff(k - 1) <= when < rotation.handoff(k)
    assert not rotation.handoff(k + 1) <= when < rotation.handoff(k + 2)
    assert rotation.index_at(rotation.handoff(k)) == k
    assert rotation.index_at(rotation.handoff(k + 1) - TINY) == k


@PROPERTY
@given(
    data=st.data(),
    zone=st.sampled_from(WHOLE_DAY_ZONES),
    days=st.sampled_from([1, 7, 14]),
    wall=wall_times,
    k=st.integers(-400, 400),
)
def test_property_whole_day_handoffs_keep_wall_clock_time(
    data: st.DataObject, zone: str, days: int, wall: time, k: int
) -> None:
    target = data.draw(st.one_of(st.sampled_from(CHANGES_BY_ZONE[zone]), start_dates))
    # Pick the k-th hand-off's wall time first and work back to the start, so it can land on a change.
    tz = ZoneInfo(zone)
    expected = datetime.combine(target, wall).replace(fold=0)  # st.times() may set fold; config cannot
    rotation = Rotation("r", ("a", "b"), timedelta(days=days), expected - timedelta(days=k * days), zone)
    got = rotation.handoff(k)
    local = got.astimezone(tz).replace(tzinfo=None)
    if local != expected:
        # The documented gap rule: the wall time does not exist, so it is read with the pre-gap offset
        # (fold=0), which lands after the gap, later by exactly the gap's length.
        event("wall time skipped by a clock change")
        gap = tz.utcoffset(expected.replace(fold=1)) - tz.utcoffset(expected)  # type: ignore[operator]
        assert gap > timedelta(0)
        assert got == expected.replace(tzinfo=tz).astimezone(UTC)
        assert local == expected + gap
    elif tz.utcoffset(expected) != tz.utcoffset(expected.replace(fold=1)):
        event("wall time repeated by a clock change")
        assert got.astimezone(tz).fold == 0  # the first of the two
    assert rotation.handoff(k - 1) < got < rotation.handoff(k + 1)


@PROPERTY
@given(data=st.data(), rotation=rotations(), when=instants)
def test_property_overrides_cover_exactly_their_interval(
    data: st.DataObject, rotation: Rotation, when: datetime
) -> None:
    length = timedelta(seconds=data.draw(st.integers(1, 30 * 86400)))
    cover = Override("zed", when, when + length)
    with_cover = replace(rotation, overrides=(cover,))
    for t in (when - SECOND, when - TINY, cover.end, cover.end + TINY):
        assert with_cover.on_call_at(t) == rotation.on_call_at(t) != "zed"
    inside = when + timedelta(seconds=data.draw(st.integers(0, int(length.total_seconds()) - 1)))
    for t in (when, inside, cover.end - TINY):
        assert with_cover.on_call_at(t) == "zed"
        assert with_cover.scheduled_at(t) == rotation.scheduled_at(t)
    assert with_cover.next_on_call(when - TINY) == ("zed", when)
    assert with_cover.next_on_call(when) == (rotation.on_call_at(cover.end), cover.end)


@PROPERTY
@given(data=st.data(), rotation=rotations(), start=instants, span=st.integers(1, 45 * 86400))
def test_property_shifts_tile_the_window(
    data: st.DataObject, rotation: Rotation, start: datetime, span: int
) -> None:
    end = start + timedelta(seconds=span)
    overrides = data.draw(overrides_near(start))
    rotation = replace(rotation, overrides=overrides)
    got = rotation.shifts(start, end)
    assert_tiles(got, start, end)
    for s in got:
        assert rotation.on_call_at(s.start) == s.user == rotation.on_call_at(s.end - TINY)
        covered = any(o.covers(s.start) for o in overrides)
        assert s.override == covered
        if not s.override:
            # A regular piece never spans a hand-off.
            assert rotation.index_at(s.start) == rotation.index_at(s.end - TINY)


def assert_tiles(got: list[Shift], start: datetime, end: datetime) -> None:
    assert got, "a non-empty window always has somebody on call"
    assert got[0].start == start
    assert got[-1].end == end
    for s in got:
        assert s.start < s.end
    for before, after in itertools.pairwise(got):
        assert before.end == after.start


@pytest.mark.parametrize("zone", WHOLE_DAY_ZONES)
def test_every_quarter_hour_of_a_clock_change_day(zone: str) -> None:
    # Exhaustive where the properties only sample: each 2026 change day, each quarter hour, 1d and 1w.
    tz = ZoneInfo(zone)
    changes = [d for d in CHANGES_BY_ZONE[zone] if d.year == 2026]
    assert len(changes) == 2
    quarters = [timedelta(minutes=m) for m in range(0, 24 * 60, 15)]
    for wall in (datetime.combine(d, time()) + q for d in changes for q in quarters):
        for days in (1, 7):
            rotation = Rotation("r", ("a", "b"), timedelta(days=days), wall - timedelta(days=days), zone)
            got = rotation.handoff(1)
            local = got.astimezone(tz)
            before_gap, after_gap = tz.utcoffset(wall), tz.utcoffset(wall.replace(fold=1))
            if before_gap < after_gap:  # type: ignore[operator]
                assert local.replace(tzinfo=None) == wall + (after_gap - before_gap)  # type: ignore[operator]
            else:
                assert (local.replace(tzinfo=None), local.fold) == (wall, 0)
            assert rotation.handoff(0) < got < rotation.handoff(2)
            assert (rotation.index_at(got - TINY), rotation.index_at(got)) == (0, 1)
