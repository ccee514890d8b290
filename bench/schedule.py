"""90 days of shifts for 100 rotations: how long `Rotation.shifts(now, now + 90d)` takes for all of them.

    python bench/schedule.py [--rotations 100] [--days 90] [--repeats 50] [--now 2026-03-01T00:00:00Z] [--json]

Pure CPU, one process, no servers. The bench builds `--rotations` rotations the way `Directory.build`
does from a config: shift lengths 12h, 1d and 1w in turn, time zones Europe/Berlin, America/New_York and
Australia/Lord_Howe (a 30-minute clock change) in turn, so every length meets every zone; 3 to 8
members; hand-offs at 09:00, 08:30, 18:00 or 02:30 local time (02:30 does not exist on Berlin's and New
York's spring-forward nights, so those rotations take the RFC 5545 gap path); and 3 to 5 overrides each,
inside the window, 2 hours to 3 days long, some overlapping. Everything comes from a seeded random
generator, so every run builds the same rotations.

The default window starts on 2026-03-01 00:00 UTC, so its 90 days cross New York's (8 March) and Berlin's
(29 March) spring-forward nights and Lord Howe's autumn change (5 April): whole-day hand-offs there
take the slow path of the clock-change check. `--now now` uses the current time instead.

One measurement is one full computation: `shifts(now, now + days)` for every rotation, timed with
`time.perf_counter()`, repeated `--repeats` times after 3 untimed warm-up passes. The garbage collector
stays on, as in the API. Reported: p50, p99 and max of one computation, against the aim of 50 ms.

Baselines, measured in the same run on the same rotations and window:
1. (the ratio) a naive implementation of the same thing: step through every hand-off in the window,
   converting each local hand-off time with `datetime.replace(tzinfo=ZoneInfo(...)).astimezone(UTC)`,
   then paint every override over the list with a linear scan. It produces the same shifts, which the
   bench checks, so it is a like-for-like reference: it says what the library's arithmetic saves over
   the obvious code, and whether the library's overhead beyond the unavoidable per-hand-off zone
   conversion is reasonable.
2. one `on_call_at()` call per generated shift (at the shift's midpoint): what the same answer would
   cost if it were assembled from point look-ups, as a caller without `shifts()` would have to.

Exit status is non-zero only on errors (the naive baseline disagreeing with `shifts()` counts as one),
never because the aim is missed.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shlex
import sys
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from measure import load_average, machine, pct

from tocsin.events.schedule import Override, Rotation, Shift

SHIFTS = (("12h", timedelta(hours=12)), ("1d", timedelta(days=1)), ("1w", timedelta(weeks=1)))
ZONES = ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe")
HANDOFF_TIMES = ((9, 0), (8, 30), (18, 0), (2, 30))
AIM_MS = 50.0



def build_rotations(count: int, now: datetime, days: int, seed: int = 20261127) -> list[Rotation]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        label, shift = SHIFTS[i % 3]
        zone = ZONES[(i // 3) % 3]
        hour, minute = HANDOFF_TIMES[rng.randrange(len(HANDOFF_TIMES))]
        # The rotation started somewhere in the year before the window, on a local wall-clock time.
        start = datetime(2025, 1, 1, hour, minute) + timedelta(days=rng.randrange(0, 365))
        members = tuple(f"u{i}-{m}" for m in range(3 + i % 6))
        overrides = []
        for _ in range(rng.randint(3, 5)):
            o_start = now + timedelta(minutes=rng.randrange(0, days * 24 * 60))
            o_end = o_start + timedelta(minutes=rng.randrange(120, 3 * 24 * 60))
            overrides.append(Override(user=f"cover-{rng.randrange(4)}", start=o_start, end=o_end))
        out.append(Rotation(name=f"r{i}-{label}-{zone}", members=members, shift=shift, start=start,
                            timezone=zone, overrides=tuple(overrides)))
    return out


# ----------------------------------------------------------------------------- the naive baseline


def naive_shifts(rot: Rotation, start: datetime, end: datetime) -> list[Shift]:
    """The obvious implementation: one zoneinfo conversion per hand-off, overrides painted by a linear scan."""
    tz = ZoneInfo(rot.timezone)
    whole_days = rot.shift % timedelta(days=1) == timedelta(0)
    start_utc = rot.start.replace(tzinfo=tz).astimezone(UTC)

    def handoff(k: int) -> datetime:
        if whole_days:   # calendar days in local time, converted one by one
            return (rot.start + k * rot.shift).replace(tzinfo=tz).astimezone(UTC)
        return start_utc + k * rot.shift

    k = (start.astimezone(tz).replace(tzinfo=None) - rot.start) // rot.shift
    while handoff(k) > start:
        k -= 1
    while handoff(k + 1) <= start:
        k += 1
    pieces: list[tuple[datetime, datetime, str, bool]] = []
    t = start
    while t < end:
        nxt = min(handoff(k + 1), end)
        pieces.append((t, nxt, rot.members[k % len(rot.members)], False))
        t, k = nxt, k + 1
    for o in rot.overrides:
        s, e = max(o.start, start), min(o.end, end)
        if s >= e:
            continue
        painted: list[tuple[datetime, datetime, str, bool]] = []
        placed = False
        for a, b, user, flag in pieces:
            if b <= s or a >= e:
                painted.append((a, b, user, flag))
                continue
            if a < s:
                painted.append((a, s, user, flag))
            if not placed:
                painted.append((s, e, o.user, True))
                placed = True
            if b > e:
                painted.append((e, b, user, flag))
        pieces = painted
    return [Shift(user, a, b, flag) for a, b, user, flag in pieces]


# ----------------------------------------------------------------------------- measuring


def timed(fn, repeats: int, warmup: int = 3) -> list[float]:  # type: ignore[no-untyped-def]
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out




def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rotations", type=int, default=100, help="rotations (default 100)")
    parser.add_argument("--days", type=int, default=90, help="window length in days (default 90)")
    parser.add_argument("--repeats", type=int, default=50, help="timed full computations (default 50)")
    parser.add_argument("--now", default="2026-03-01T00:00:00Z",
                        help="window start, ISO 8601 with offset, or 'now' (default 2026-03-01T00:00:00Z)")
    parser.add_argument("--json", action="store_true", help="also print one JSON line of results")
    args = parser.parse_args()
    now = datetime.now(UTC) if args.now == "now" else datetime.fromisoformat(args.now).astimezone(UTC)
    end = now + timedelta(days=args.days)
    load_before = load_average()
    rotations = build_rotations(args.rotations, now, args.days)

    # Correctness first: the baseline must produce exactly what the library produces.
    results = [r.shifts(now, end) for r in rotations]
    mismatched = [r.name for r, got in zip(rotations, results, strict=True) if naive_shifts(r, now, end) != got]
    n_shifts = sum(len(s) for s in results)
    overrides = sum(len(r.overrides) for r in rotations)
    probes = [[s.start + (s.end - s.start) / 2 for s in shifts] for shifts in results]

    def library() -> None:
        for r in rotations:
            r.shifts(now, end)

    def naive() -> None:
        for r in rotations:
            naive_shifts(r, now, end)

    def point_lookups() -> None:
        for r, instants in zip(rotations, probes, strict=True):
            for when in instants:
                r.on_call_at(when)

    cpu0 = time.process_time()
    lib = timed(library, args.repeats)
    base_naive = timed(naive, args.repeats)
    base_points = timed(point_lookups, args.repeats)
    by_length = {}
    for label, shift in SHIFTS:
        subset = [r for r in rotations if r.shift == shift]
        times = timed(lambda subset=subset: [r.shifts(now, end) for r in subset], args.repeats)
        by_length[label] = {"rotations": len(subset), "shifts": sum(len(r.shifts(now, end)) for r in subset),
                            "p50_ms": pct(times, .5), "p99_ms": pct(times, .99)}
    cpu = time.process_time() - cpu0

    r = {
        "command": shlex.join(["python", *sys.argv]), "machine": machine(), "load_before": load_before,
        "load_after": load_average(),
        "window": f"{now.isoformat()} .. {end.isoformat()}", "rotations": len(rotations), "overrides": overrides,
        "shifts": n_shifts, "repeats": args.repeats, "gc": gc.isenabled(), "mismatched": mismatched,
        "p50_ms": pct(lib, .5), "p99_ms": pct(lib, .99), "max_ms": pct(lib, 1),
        "naive_p50_ms": pct(base_naive, .5), "naive_p99_ms": pct(base_naive, .99),
        "points_p50_ms": pct(base_points, .5), "points_p99_ms": pct(base_points, .99),
        "by_length": by_length, "cpu_s": cpu,
    }
    rows = [
        ("command", r["command"]),
        ("machine", f"{r['machine']}; load average {load_before} before, {r['load_after']} after"),
        ("window", f"{r['window']} ({args.days} days)"),
        ("rotations / overrides / shifts", f"{r['rotations']} / {overrides} / {n_shifts} "
                                           "(12h, 1d, 1w in Berlin, New York, Lord Howe)"),
        ("runs", f"{args.repeats} timed full computations after 3 warm-ups; gc on; {cpu:.1f} s CPU in all"),
        ("shifts() for all rotations p50 / p99 / max",
         f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f} / {r['max_ms']:.2f} ms "
         f"({1e6 * pct(lib, .5) / 1000 / max(n_shifts, 1):.2f} µs a shift)"),
    ]
    for label, b in by_length.items():
        rows.append((f"  of which {label} rotations p50 / p99",
                     f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f} ms ({b['rotations']} rotations, {b['shifts']} shifts)"))
    rows += [
        ("baseline: naive loop p50 / p99", f"{r['naive_p50_ms']:.2f} / {r['naive_p99_ms']:.2f} ms "
                                           f"(same output: {'yes' if not mismatched else 'NO'})"),
        ("shifts() p50 / naive p50", f"{r['p50_ms'] / r['naive_p50_ms']:.2f}x"),
        ("reference: on_call_at once a shift p50 / p99", f"{r['points_p50_ms']:.2f} / {r['points_p99_ms']:.2f} ms "
                                                         f"({n_shifts} calls)"),
        ("shifts() p50 / on_call_at p50", f"{r['p50_ms'] / r['points_p50_ms']:.2f}x"),
        (f"aim: p99 ≤ {AIM_MS:g} ms per full computation",
         "met" if r["p99_ms"] <= AIM_MS else f"MISSED by {r['p99_ms'] - AIM_MS:.1f} ms"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    if args.json:
        print(json.dumps(r, default=str))
    if mismatched:
        print(f"ERROR: the naive baseline disagrees with shifts() for {len(mismatched)} rotations: "
              f"{', '.join(mismatched[:5])}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
