"""The planner's per-day memos are bounded: a unit that runs for a year asks about each new
day, and what it keeps must not grow with the days it has run (counted, not timed)."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

from bedside.core import episodes, planner, views
from bedside.core.config import Config
from bedside.core.memo import DAYS_KEPT


def _live_sessions() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, planner.Session))


def _days(cfg: Config, start: datetime, n: int) -> None:
    # What the loop asks each turn, a turn every ten minutes of every day.
    for minute in range(0, n * 1440, 10):
        t = start + timedelta(minutes=minute)
        planner.is_awake(cfg, t)
        planner.next_event_after(cfg, t)
        planner.offered_between(cfg, t, t + timedelta(days=2))


def test_a_year_of_days_keeps_as_many_plans_as_two_months() -> None:
    cfg = Config()
    start = datetime(2026, 11, 24, 6, tzinfo=UTC)
    for memo in (planner.window, planner._raw_day, planner._day, episodes.rules, views._planned_day):
        memo.cache_clear()
    _days(cfg, start, DAYS_KEPT + 10)
    after_two_months = _live_sessions()
    _days(cfg, start + timedelta(days=DAYS_KEPT + 10), 120)
    assert _live_sessions() <= after_two_months
    assert max(planner._day.cache_info().currsize, episodes.rules.cache_info().currsize) <= DAYS_KEPT
