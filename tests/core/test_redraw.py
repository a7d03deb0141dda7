"""Between two steps only the picture moves: at any instant before ``step_due`` a step with a
Tick changes nothing but the state's own clock and shows what ``redraw`` shows without it.
This is what lets the loop draw a hold's bar and the idle clock's minute with a view alone.

Walked through whole days of the machine (any plan, presses short and long, a clock set
from outside), checking at every wake-up and at random instants between them."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bedside.core import machine
from bedside.core.config import Config
from bedside.core.events import ButtonEdge, Instant, Led, Show, Tick
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
            assert redraw <= self.state.last.mono + MAX_SLEEP_S
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
