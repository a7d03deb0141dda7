"""The shortcuts in reading a record's time (core/wall.py) change no answer: one offset object
per offset (bounded), the last value remembered, the years that need no comparison."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bedside.core import wall


def test_equal_offsets_share_one_object_and_the_same_times_come_back() -> None:
    a = wall.clock_value("2026-11-01T08:00:00.000+01:00")
    b = wall.clock_value("2026-11-01T09:00:00.000+01:00")
    assert a.tzinfo is b.tzinfo and a.tzinfo == timezone(timedelta(hours=1))
    assert wall.clock_value("2026-11-01T09:00:00.000+01:00") is b
    assert (a.isoformat(), b.isoformat()) == ("2026-11-01T08:00:00+01:00", "2026-11-01T09:00:00+01:00")
    assert wall.clock_value("2026-11-01T09:00:00+00:00").tzinfo is UTC


def test_a_remembered_value_never_answers_for_another() -> None:
    wall.clock_value("2026-11-01T08:00:00+01:00")
    for bad in ("", "2026-11-01T08:00:00", "2026-12-31T23:59:60+00:00", None, 1):
        with pytest.raises(wall.ImpossibleTime):
            wall.clock_value(bad)
    assert wall.clock_value("2026-11-01T08:00:00+02:00").utcoffset() == timedelta(hours=2)


def test_offsets_kept_are_bounded_and_others_still_read() -> None:
    for minutes in range(0, 24 * 60, 7):
        t = wall.clock_value(f"2026-11-01T08:00:00+{minutes // 60:02d}:{minutes % 60:02d}")
        assert t.utcoffset() == timedelta(minutes=minutes)
    assert len(wall._ZONES) <= wall._ZONES_KEPT


@pytest.mark.parametrize(("text", "ok"), [
    ("1970-01-01T00:30:00+01:00", False), ("1970-01-01T01:00:00+01:00", True),
    ("1971-01-01T00:00:00+23:59", True), ("2098-12-31T23:59:00-23:59", True),
    ("2099-12-31T22:00:00-01:00", True), ("2099-12-31T23:00:00-01:00", False),
])
def test_the_range_is_the_same_at_its_ends(text: str, ok: bool) -> None:
    if ok:
        assert wall.parse(text) == datetime.fromisoformat(text)
    else:
        with pytest.raises(wall.ImpossibleTime):
            wall.parse(text)
    assert wall.parse("2026-11-01T08:00:00+01:00", earliest=datetime(2026, 1, 1, tzinfo=UTC)).year == 2026
