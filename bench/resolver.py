"""``nsentry bench oncall``: the resolver against ``recurring_ical_events``.

One 3-layer schedule with 50 overrides (America/New_York, so the year
includes both DST changes) is evaluated two ways in the same run:

* ours: :func:`services.oncall.resolver.oncall` (the full answer: person,
  source, shift bounds and next person) and :func:`~services.oncall.resolver.shifts`
  for a one-year final schedule;
* the same schedule written as iCalendar (one recurring RRULE event per
  layer participant, restrictions folded into the rule, one event per
  override), serialised, parsed back and queried with
  ``recurring_ical_events`` (``.at(T)`` plus the priority choice an
  iCalendar-based tool must make; ``.between()`` for the year).

Both answer the same random instants, and the answers are compared: the
benchmark only counts if the two agree. It prints the sample counts, per-call
timings and the ratios against the SPEC's targets (``oncall at T`` at least
50× faster; a one-year final schedule under 10 ms). Timings are medians of
individually timed calls; the two sides are measured in interleaved rounds so
that a shared, noisy machine slows both alike: compare the ratios.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from services.oncall.resolver import Schedule, oncall, person_at, shifts

ZONE = "America/New_York"
FIRST_MONDAY = datetime(2026, 1, 5)  # handoff anchor of every layer (a Monday)
BUSINESS = ["biz-ann", "biz-bob", "biz-cy", "biz-dee", "biz-eve"]
NIGHTS = ["night-fay", "night-gus", "night-hal", "night-ivy"]
BACKSTOP = ["mgr-jo", "mgr-kim"]
SUBSTITUTES = ["sub-lee", "sub-max", "sub-ned"]
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR"]
ALL_DAYS = [*WEEKDAYS, "SA", "SU"]

TARGET_ONCALL_RATIO = 50.0
TARGET_YEAR_MS = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``nsentry bench oncall``."""
    parser.add_argument("--samples", type=int, default=2000, help="random T for our oncall(at)")
    parser.add_argument(
        "--ical-samples", type=int, default=200, help="random T for recurring_ical_events (slow)"
    )
    parser.add_argument("--repeat", type=int, default=30, help="timed one-year final schedules")
    parser.add_argument("--ical-repeat", type=int, default=3, help="timed one-year .between()")
    parser.add_argument("--overrides", type=int, default=50, help="overrides in the schedule")
    parser.add_argument(
        "--rounds", type=int, default=10, help="interleaved rounds (evens out a noisy machine)"
    )
    parser.add_argument("--seed", type=int, default=7)


def bench_schedule(seed: int = 7, n_overrides: int = 50) -> dict[str, Any]:
    """The benchmark schedule in the SPEC's JSON shape, overrides included."""
    rng = random.Random(seed)
    handoff = FIRST_MONDAY.replace(hour=9).isoformat(timespec="minutes")
    tz = ZoneInfo(ZONE)
    year = datetime(2026, 1, 12, tzinfo=tz)
    overrides = []
    created = list(range(n_overrides))
    rng.shuffle(created)
    for i in range(n_overrides):
        start = year + timedelta(minutes=rng.randrange(0, 350 * 24 * 60))
        overrides.append(
            {
                "id": f"ovr-{i:02d}",
                "person_id": rng.choice(SUBSTITUTES + BUSINESS + NIGHTS),
                "start": start.astimezone(UTC).isoformat(),
                "end": (start + timedelta(minutes=rng.randrange(60, 72 * 60)))
                .astimezone(UTC)
                .isoformat(),
                "created_at": (
                    datetime(2025, 12, 1, tzinfo=UTC) + timedelta(hours=created[i])
                ).isoformat(),
                "reason": "swap",
            }
        )
    return {
        "id": "bench",
        "name": "Bench: business hours, nights, backstop",
        "timezone": ZONE,
        "layers": [
            {
                "name": "business",
                "rotation": {
                    "type": "daily",
                    "length": 1,
                    "handoff": handoff,
                    "participants": BUSINESS,
                },
                "restrictions": [
                    {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
                ],
            },
            {
                "name": "nights",
                "rotation": {
                    "type": "weekly",
                    "length": 1,
                    "handoff": handoff,
                    "participants": NIGHTS,
                },
                "restrictions": [
                    {
                        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                        "start": "17:00",
                        "end": "09:00",
                    }
                ],
            },
            {
                "name": "backstop",
                "rotation": {
                    "type": "weekly",
                    "length": 1,
                    "handoff": handoff,
                    "participants": BACKSTOP,
                },
            },
        ],
        "overrides": overrides,
    }


def bench_ical(spec: dict[str, Any]) -> bytes:
    """The same schedule as an iCalendar document with recurring events.

    Layer priority and override creation order go in ``X-NSENTRY-RANK``
    (lower wins), which the evaluator reads back.
    """
    from icalendar import Calendar, Event

    tz = ZoneInfo(ZONE)
    cal = Calendar()
    cal.add("prodid", "-//nself//nSentry bench//EN")
    cal.add("version", "2.0")

    def event(
        uid: str, person: str, rank: int, start: datetime, end: datetime, rule: dict | None
    ) -> None:
        ev = Event()
        ev.add("uid", uid)
        ev.add("dtstamp", datetime(2026, 1, 1, tzinfo=UTC))
        ev.add("summary", person)
        ev.add("dtstart", start)
        ev.add("dtend", end)
        ev.add("x-nsentry-rank", str(rank))
        if rule:
            ev.add("rrule", rule)
        cal.add_component(ev)

    monday = FIRST_MONDAY.replace(tzinfo=tz)
    # business: daily turns, person i on days i, i+5, ...; only Mon-Fri 09:00-17:00.
    for i, person in enumerate(BUSINESS):
        day = monday + timedelta(days=i)
        event(
            f"biz-{i}",
            person,
            1_000_001,
            day.replace(hour=9),
            day.replace(hour=17),
            {"freq": "daily", "interval": len(BUSINESS), "byday": WEEKDAYS},
        )
    # nights: weekly turns from Monday 09:00; every night 17:00 → 09:00 of that week.
    for j, person in enumerate(NIGHTS):
        day = monday + timedelta(weeks=j)
        event(
            f"night-{j}",
            person,
            1_000_002,
            day.replace(hour=17),
            (day + timedelta(days=1)).replace(hour=9),
            {"freq": "weekly", "interval": len(NIGHTS), "byday": ALL_DAYS},
        )
    # backstop: weekly turns, Monday 09:00 to Monday 09:00.
    for k, person in enumerate(BACKSTOP):
        day = monday + timedelta(weeks=k)
        event(
            f"backstop-{k}",
            person,
            1_000_003,
            day.replace(hour=9),
            (day + timedelta(weeks=1)).replace(hour=9),
            {"freq": "weekly", "interval": len(BACKSTOP)},
        )
    # overrides: newest created first.
    order = sorted(spec["overrides"], key=lambda o: o["created_at"], reverse=True)
    for rank, o in enumerate(order):
        event(
            o["id"],
            o["person_id"],
            rank,
            datetime.fromisoformat(o["start"]),
            datetime.fromisoformat(o["end"]),
            None,
        )
    return cal.to_ical()


def ical_person_at(query: Any, at: datetime) -> str | None:
    """Who an iCalendar-based tool says is on call: the best-ranked event containing ``at``."""
    best: tuple[int, str] | None = None
    for ev in query.at(at):
        if not ev.decoded("dtstart") <= at < ev.decoded("dtend"):
            continue
        candidate = (int(str(ev["x-nsentry-rank"])), str(ev["summary"]))
        if best is None or candidate < best:
            best = candidate
    return None if best is None else best[1]


class Timings:
    """Per-call CPU and wall-clock durations of one measurement."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cpu: list[float] = []
        self.wall: list[float] = []

    def run(self, fn: Callable[[Any], Any], args: list[Any]) -> list[Any]:
        """Call ``fn`` on each argument, timing each call; return the results."""
        results = []
        cpu, wall = time.process_time, time.perf_counter
        for a in args:
            c0, w0 = cpu(), wall()
            results.append(fn(a))
            w1, c1 = wall(), cpu()
            self.cpu.append(c1 - c0)
            self.wall.append(w1 - w0)
        return results

    def median(self, clock: str = "cpu") -> float:
        """Median seconds per call on ``clock`` ("cpu" or "wall")."""
        return statistics.median(getattr(self, clock))


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs" if seconds < 1e-2 else f"{seconds * 1e3:,.1f} ms"


def _say(step: str, message: str) -> None:
    print(f"[{step}] {message}", flush=True)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print the ratios; 0 on success (targets are reported, not enforced)."""
    try:
        import recurring_ical_events
        from icalendar import Calendar
    except ModuleNotFoundError as exc:  # the bench extra is optional
        print(
            f"nsentry bench oncall needs {exc.name} (pip install 'nsentry[bench]')", file=sys.stderr
        )
        return 2

    rng = random.Random(args.seed)
    tz = ZoneInfo(ZONE)
    since = datetime(2026, 1, 12, tzinfo=tz)
    until = since + timedelta(days=365)
    span_us = int((until - since).total_seconds() * 1e6)

    def random_instants(n: int) -> list[datetime]:
        return [
            (since + timedelta(microseconds=rng.randrange(span_us))).astimezone(UTC)
            for _ in range(n)
        ]

    _say("1/5", f"building the schedule: 3 layers, {args.overrides} overrides, zone {ZONE}")
    spec = bench_schedule(args.seed, args.overrides)
    t0 = time.perf_counter()
    schedule = Schedule.from_dict(spec)
    build = time.perf_counter() - t0
    oncall(schedule, since)  # compile + learn the zone's transitions once (like parsing the .ics)
    ics = bench_ical(spec)
    t0 = time.perf_counter()
    query = recurring_ical_events.of(Calendar.from_ical(ics))
    parse = time.perf_counter() - t0
    n_events = ics.count(b"BEGIN:VEVENT")
    _say(
        "1/5",
        f"schedule built in {_us(build)}; iCalendar: {n_events} VEVENTs, "
        f"{len(ics):,} bytes, parsed in {_us(parse)}",
    )

    rounds = max(1, args.rounds)
    _say(
        "2/5",
        f"oncall at T: {args.samples} random T (ours) and {args.ical_samples} random T "
        f"(recurring_ical_events) in {since.date()}..{until.date()}, "
        f"interleaved in {rounds} rounds",
    )
    ours = Timings("oncall(at), full answer")
    who = Timings("person_at(at)")
    cold = Timings("oncall(at) cold: from_dict + compile + resolve")
    ical = Timings("recurring_ical_events .at(T) + priority")
    ical_cold = Timings("ical cold: parse .ics + .at(T) + priority")
    sample: list[datetime] = []
    ical_answers: list[str | None] = []
    for r in range(rounds):
        ours.run(lambda t: oncall(schedule, t), random_instants(args.samples // rounds))
        who.run(lambda t: person_at(schedule, t), random_instants(args.samples // rounds))
        cold.run(lambda t: oncall(Schedule.from_dict(spec), t), random_instants(20))
        batch = random_instants(max(1, args.ical_samples // rounds))
        ical_answers += ical.run(lambda t: ical_person_at(query, t), batch)
        ical_cold.run(
            lambda t: ical_person_at(recurring_ical_events.of(Calendar.from_ical(ics)), t),
            random_instants(2),
        )
        sample += batch
        _say(
            "2/5", f"round {r + 1}/{rounds}: ours {len(ours.cpu)} calls, ical {len(ical.cpu)} calls"
        )
    ours_answers = [person_at(schedule, t) for t in sample]
    agree = sum(a == b for a, b in zip(ical_answers, ours_answers, strict=True))

    _say("3/5", f"one-year final schedule x{args.repeat}")
    year = Timings("shifts(): one-year final schedule")
    finals = year.run(lambda _: shifts(schedule, since, until), list(range(args.repeat)))
    fresh = Timings("shifts(): one-year, fresh from_dict each time")
    fresh.run(lambda _: shifts(Schedule.from_dict(spec), since, until), list(range(args.repeat)))
    final = finals[-1]

    _say("4/5", f"recurring_ical_events .between() for the year x{args.ical_repeat}")
    between = Timings("recurring_ical_events .between(year)")
    occurrences = between.run(lambda _: query.between(since, until), list(range(args.ical_repeat)))

    _say("5/5", "results (per call; CPU time is robust on a shared machine, wall time too)")
    print(f"  {'measurement':50s} {'samples':>8s} {'CPU median':>12s} {'wall median':>12s}")
    for m in (ours, who, cold, ical, ical_cold, year, fresh, between):
        print(f"  {m.name:50s} {len(m.cpu):8d} {_us(m.median()):>12s} {_us(m.median('wall')):>12s}")
    print(
        f"  one-year final schedule: {len(final.segments)} segments, "
        f"coverage {final.coverage:.4f}; "
        f".between(): {len(occurrences[-1])} event occurrences"
    )
    print(f"  answers agree with recurring_ical_events on {agree}/{len(sample)} instants")
    ratio_cpu = ical.median() / ours.median()
    ratio_wall = ical.median("wall") / ours.median("wall")
    verdict = "PASS" if ratio_cpu >= TARGET_ONCALL_RATIO else "MISS"
    print(
        f"  RATIO oncall at T, recurring_ical_events / ours: {ratio_cpu:,.0f}x CPU, "
        f"{ratio_wall:,.0f}x wall (goal >= {TARGET_ONCALL_RATIO:.0f}x): {verdict}"
    )
    print(
        f"  RATIO cold oncall at T (parse + answer, both sides): "
        f"{ical_cold.median() / cold.median():,.1f}x CPU"
    )
    print(
        f"  RATIO who is on call at T (person only, like .at()): "
        f"{ical.median() / who.median():,.0f}x CPU"
    )
    print(
        f"  RATIO one-year schedule, .between() / shifts(): "
        f"{between.median() / year.median():,.1f}x CPU"
    )
    year_ms = year.median() * 1e3
    verdict = "PASS" if year_ms < TARGET_YEAR_MS else "MISS"
    print(
        f"  one-year final schedule: {year_ms:.2f} ms CPU median, "
        f"{year.median('wall') * 1e3:.2f} ms wall median, {max(year.wall) * 1e3:.2f} ms wall max "
        f"(goal < {TARGET_YEAR_MS:.0f} ms): {verdict}"
    )
    if agree != len(sample):
        bad = [
            (t, a, b) for t, a, b in zip(sample, ical_answers, ours_answers, strict=True) if a != b
        ]
        for t, a, b in bad[:5]:
            print(f"  disagreement at {t.astimezone(tz)}: ical={a} ours={b}")
        return 1
    return 0
