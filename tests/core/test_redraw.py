"""Between two steps only the picture moves: at any instant before ``step_due`` a step with a
Tick changes nothing but the state's own clock and shows what ``redraw`` shows without it.
This is what lets the loop draw a hold's bar and the idle clock's minute with a view alone.

Walked through whole days of the machine (any plan, presses short and long, a clock set
from outside), checking at every wake-up and at random instants between them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bedside.core import machine, restart
from bedside.core.config import Config, Display
from bedside.core.events import ButtonEdge, Instant, Led, Record, Show, Tick
from bedside.core.state import MAX_SLEEP_S
from tests.conftest import budget
from tests.core.test_planner import DAYS, configs
from tests.rigs.driver import Driver


class Checked(Driver):
    """Drives the core as the loop does, and before each Tick checks that the instants before
    it that need no step (``step_due``) are drawn by ``redraw`` exactly as a step draws them."""

    checks = 0
    redraws = 0

    def check(self, mono: float) -> None:
        st = self.state
        now = Instant(self.offset + timedelta(seconds=mono), mono)
        shown = machine.redraw(self.cfg, st, now)
        after, fx = machine.step(self.cfg, st, Tick(), now)
        if abs((now.wall - st.last.wall).total_seconds() - (mono - st.last.mono)) > 2.0:
            assert shown is None          # a clock set from outside: only a step records it
            return
        if mono - st.last.mono >= MAX_SLEEP_S - machine.LOOK_EARLY_S:
            assert shown is None          # the step's look at the clock, a little early
            return
        assert shown is not None and mono < machine.step_due(self.cfg, st)
        assert all(isinstance(e, Show | Led) for e in fx), fx
        assert shown == fx
        # Nothing but the state's own clock moved.
        assert replace(after, last=st.last, cursor=st.cursor, stale_reason=st.stale_reason) == st
        self.checks += 1

    def run_until(self, until: datetime, samples: list[float] | None = None) -> None:
        end = self.at_wall(until)
        k = 0
        while True:
            due = machine.step_due(self.cfg, self.state)
            redraw = machine.redraw_due(self.cfg, self.state, self.state.last)
            d = min(due, redraw)
            assert d == machine.deadline(self.cfg, self.state)
            assert due <= self.state.last.mono + MAX_SLEEP_S
            nxt_edge = self.edges[0][0] if self.edges else float("inf")
            if min(d, nxt_edge) > end:
                break
            t = min(d, nxt_edge)
            if samples:
                # A random instant between the last step and the next wake-up.
                u = samples[k % len(samples)]
                k += 1
                at = self.state.last.mono + u * (min(t, due) - self.state.last.mono)
                if at < due:
                    self.check(at)
            if t < due:
                self.check(t)
                self.redraws += 1
            if nxt_edge <= d:
                at, level = self.edges.pop(0)
                self._step(at, ButtonEdge(level))
            else:
                self._step(d, Tick())
        self._step(end, Tick())


presses = st.lists(st.tuples(st.integers(0, 30 * 60 - 1), st.sampled_from([0.3, 0.3, 2.5, 4.0])), max_size=12)


@settings(budget(6), deadline=None)
@given(cfg=configs, day=st.sampled_from(DAYS), taps=presses,
       samples=st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=1, max_size=8),
       jump=st.sampled_from([timedelta(0), timedelta(minutes=-50), timedelta(hours=3)]))
def test_property_before_step_due_a_step_only_redraws(cfg: Config, day: object, taps: list[tuple[int, float]],
                                                    samples: list[float], jump: timedelta) -> None:
    assert isinstance(day, type(DAYS[0]))
    start = datetime.combine(day, time(6, 0), tzinfo=cfg.tz)
    d = Checked(cfg, start)
    for minute, held in taps:
        d.press(start + timedelta(minutes=minute), held)
    d.run_until(start + timedelta(hours=9), samples)
    d.jump_clock(jump)
    d.run_until(start + timedelta(hours=30), samples)
    assert d.checks > 0


def test_a_guided_session_and_an_idle_day_are_mostly_redraws() -> None:
    """The hold's frames and the idle clock's minutes need no step: most wake-ups of a day."""
    cfg = Config()
    start = datetime(2026, 11, 24, 6, 0, tzinfo=cfg.tz)
    d = Checked(cfg, start)
    for h in (1, 3, 9):
        d.press(start + timedelta(hours=h, minutes=2), 0.3)
    d.run_until(start + timedelta(hours=24))
    assert d.redraws > 0.6 * d.wakeups, (d.redraws, d.wakeups)


def _as_the_loop(cfg: Config, start: datetime, hours: float, ppm: float,
                 jump_at: float | None = None) -> tuple[list[Record], int, int]:
    """The core driven as the loop drives it (a step when one is due, ``redraw`` otherwise), on a
    wall clock that runs ``ppm`` fast (a clock being slewed by NTP) and, at ``jump_at`` hours,
    is set 3 s forward. Returns the records, the steps and the wake-ups."""
    mono = 5000.0
    wall = start.astimezone(UTC)
    st, _ = restart.start(cfg, [], Instant(wall, mono), time_quality="rtc", version="test", boot="b")
    drawn = st.last
    records: list[Record] = []
    steps = wakeups = 0
    end = mono + hours * 3600
    jumped = jump_at is None
    while mono < end:
        due = machine.step_due(cfg, st)
        t = min(due, machine.redraw_due(cfg, st, drawn if drawn.mono >= st.last.mono else st.last))
        wall += timedelta(seconds=(t - mono) * (1 + ppm / 1e6))
        mono = t
        if not jumped and mono >= 5000.0 + jump_at * 3600:   # type: ignore[operator]
            wall += timedelta(seconds=3)
            jumped = True
        now = Instant(wall, mono)
        wakeups += 1
        if mono < due and machine.redraw(cfg, st, now) is not None:
            drawn = now
            continue
        st, fx = machine.step(cfg, st, Tick(), now)
        steps += 1
        drawn = now
        records += [e for e in fx if isinstance(e, Record)]
    return records, steps, wakeups


@pytest.mark.parametrize("night", ["off", "dim"])
def test_a_slewed_clock_is_not_a_jump_however_long_only_the_picture_moves(night: str) -> None:
    """A night with nothing due is hours without a plan event: the state still looks at the wall
    clock every five minutes, so a clock slewed at NTP's fastest (500 ppm) never adds up to a
    jump; a real one (3 s) is recorded once."""
    cfg = Config(display=Display(night=night))
    start = datetime(2026, 11, 24, 21, 0, tzinfo=cfg.tz)
    records, steps, wakeups = _as_the_loop(cfg, start, 14, ppm=500)
    assert not [r for r in records if r.type == "clock_set"]
    assert steps >= 14 * 3600 / MAX_SLEEP_S * 0.9
    if night == "dim":
        assert wakeups > 14 * 60 * 0.9 and steps < wakeups / 3     # the minute's redraws carry the looks
    records, _, _ = _as_the_loop(cfg, start, 14, ppm=500, jump_at=5)
    assert [r.data["source"] for r in records if r.type == "clock_set"] == ["detected"]
