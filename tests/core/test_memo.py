"""The memos of the questions the loop asks on every turn give the answers a fresh computation
gives: walked through time (forward, backward, across nights and DST changes) and through
whole days of the machine, with and without them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bedside.core import planner, views
from bedside.core.config import Config
from bedside.core.events import Admit, Discharge, Instant
from bedside.core.memo import Span
from tests.core.test_planner import DAYS, configs
from tests.rigs.driver import Driver

MEMOS = (planner._awake, planner._care_day, planner._next_event, views._today, views._next)




def _forget() -> None:
    for m in MEMOS:
        m.forget()


def test_a_span_answers_inside_its_span_for_an_equal_key_only() -> None:
    s: Span[str] = Span()
    a = datetime(2026, 11, 30, 9, tzinfo=UTC)
    b = a + timedelta(hours=1)
    assert s.get("k", a) is None
    s.put(("cfg", 1), a, b, "answer")
    assert s.get(("cfg", 1), a) == "answer"
    assert s.get(("cfg", 1), b - timedelta(microseconds=1)) == "answer"
    assert s.get(("cfg", 1), b) is None
    assert s.get(("cfg", 1), a - timedelta(microseconds=1)) is None
    assert s.get(("cfg", 2), a) is None
    s.forget()
    assert s.get(("cfg", 1), a) is None


@given(configs, st.sampled_from(DAYS), st.lists(st.integers(-180, 24 * 60), min_size=1, max_size=40))
def test_property_planner_memos_answer_as_a_fresh_computation(cfg: Config, d: date, steps: list[int]) -> None:
    t = datetime.combine(d, time(0), tzinfo=cfg.tz).astimezone(UTC)
    asked = []
    for minutes in steps:        # mostly forward, sometimes back (a clock set back)
        t += timedelta(minutes=minutes, seconds=minutes % 7)
        asked.append((t, planner.next_event_after(cfg, t), planner.care_day(cfg, t),
                      planner.awake_window_at(cfg, t)))
    for t, nxt, day, window in asked:
        _forget()
        assert planner.next_event_after(cfg, t) == nxt
        _forget()
        assert planner.care_day(cfg, t) == day
        _forget()
        assert planner.awake_window_at(cfg, t) == window


def _day(cfg: Config, start: datetime) -> list[tuple[Instant, object]]:
    """A day of the machine with presses, an admission, a discharge and clock changes."""
    d = Driver(cfg, start)
    for h, s in ((1, 0.3), (3, 0.3), (5, 2.5), (8, 0.3)):
        d.press(start + timedelta(hours=h, minutes=1), s)
    d.run_until(start + timedelta(hours=4))
    d.send(start + timedelta(hours=4, minutes=5), Admit("E2026-0042", start.date() - timedelta(days=2), None))
    d.run_until(start + timedelta(hours=6))
    d.jump_clock(timedelta(minutes=-50))
    d.run_until(start + timedelta(hours=9))
    d.jump_clock(timedelta(hours=3))
    d.send(start + timedelta(hours=14), Discharge("E2026-0042"))
    d.run_until(start + timedelta(hours=30))
    return [(h.at, h.effect) for h in d.log]


@pytest.mark.parametrize("zone,when", [("Europe/London", "2026-10-24T06:00"), ("America/New_York", "2026-03-07T06:00"),
                                       ("Australia/Lord_Howe", "2026-11-24T06:00")])
def test_whole_days_of_the_machine_are_the_same_without_the_memos(zone: str, when: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = Config(timezone=zone)
    start = datetime.fromisoformat(when).replace(tzinfo=cfg.tz)
    _forget()
    with_memos = _day(cfg, start)
    monkeypatch.setattr(Span, "get", lambda self, key, t: None)
    without = _day(cfg, start)
    assert len(with_memos) > 100
    assert with_memos == without
