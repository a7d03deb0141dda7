"""The report's model costs a fixed budget whatever the records say (issue 22): a crafted or
runaway journal of events, sessions that never end, power cuts, admissions or days makes the
same model for N records as for 4N, and the report says how many items it did not list and
where to see them, while every day's numbers and the totals still count them all."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bedside.report import adherence as ad
from bedside.report import model
from bedside.report.html import render

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
D0 = datetime(2001, 1, 1, 9, 0, tzinfo=UTC)
KIB = 1024


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    """The budget made small, so that a test's few thousand records go well past it."""
    for name, value in (("OPEN_AT_MOST", 200), ("SESSIONS_A_DAY", 40), ("SESSIONS_LISTED", 300),
                        ("EVENTS_A_DAY", 20), ("EVENTS_LISTED", 150), ("GAPS_LISTED", 150),
                        ("EPISODES_LISTED", 30)):
        monkeypatch.setattr(ad, name, value)


def crafted(kind: str, n: int) -> Iterator[dict[str, Any]]:
    """Records made one at a time (never held), each a new item of ``kind``."""
    for i in range(n):
        t = T0 + timedelta(seconds=20 * i)
        rec: dict[str, Any] = {"seq": i + 1, "time": t.isoformat(), "tq": "rtc"}
        if kind == "faults":
            rec |= {"type": "fault", "part": "sensor", "problem": f"crafted fault {i}"}
        elif kind == "sessions":       # a prompt of a session of its own, never answered
            rec |= {"type": "prompt", "session": f"{t:%Y-%m-%dT%H:%M} hourly {i}", "kind": "hourly",
                    "due": t.isoformat()}
        elif kind == "power":          # a power cut each
            rec |= {"type": "power_loss", "last_known": (t - timedelta(seconds=10)).isoformat()}
        elif kind == "admissions":     # an admission, then a session done in it
            if i % 2 == 0:
                rec |= {"type": "admit", "episode": f"E{i}"}
            else:
                rec |= {"type": "done", "session": f"{t:%Y-%m-%dT%H:%M} hourly {i}", "kind": "hourly",
                        "due": t.isoformat(), "reps": 10, "planned": 10, "late_min": 0}
        else:                          # days: sessions done over 1,000 days (a clock fault: sparse days)
            t = D0 + timedelta(days=i % 1000, minutes=i // 1000)
            rec |= {"type": "done", "session": f"{t:%Y-%m-%dT%H:%M} hourly {i}", "kind": "hourly",
                    "due": t.isoformat(), "time": t.isoformat(), "reps": 10, "planned": 10, "late_min": 0}
        yield rec


def peak(kind: str, n: int) -> tuple[int, ad.Adherence]:
    """The traced peak of building the model and rendering the HTML and CSV from it."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        m = ad.build(crafted(kind, n))
        report = model.Report(m, model.Verification(True, n, n, "0" * 64, (), "chain"), None, "x")
        render(report, T0)
        model.csv_text(report)
        return tracemalloc.get_traced_memory()[1] - base, m
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kind", ["faults", "sessions", "power", "admissions", "days"])
def test_the_model_is_the_same_size_for_four_times_the_records(small: None, kind: str) -> None:
    n = 3000
    one, _ = peak(kind, n)
    four, m4 = peak(kind, 4 * n)
    assert m4.record_count == 4 * n
    # Counts, not times: the model's peak for 4N records is within a fixed margin of N's.
    assert four <= one + 256 * KIB, f"{kind}: {one / KIB:.0f} KiB for {n} records, {four / KIB:.0f} KiB for {4 * n}"
    assert four < 8 * MIB


MIB = 1024 * KIB


def test_a_day_with_more_events_than_a_page_shows_says_how_many_more_and_where(small: None) -> None:
    m = ad.build(crafted("faults", 100))     # 100 faults within the first hour: one day
    day = m.days[0]
    assert len(day.events) == ad.EVENTS_A_DAY and day.more_events == 100 - ad.EVENTS_A_DAY
    assert m.more_events == 100 - ad.EVENTS_A_DAY
    page = render(model.Report(m, model.Verification(True, 100, 100, "0" * 64, (), "chain"), None, "x"), T0)
    assert f"{100 - ad.EVENTS_A_DAY} more events this day are not listed" in page
    assert "bedside log export" in page


def test_sessions_past_the_budget_are_counted_on_their_day_and_named_in_the_csv(small: None) -> None:
    records = list(crafted("admissions", 400))   # 200 admissions, each with one session done
    m = ad.build(records)
    listed = len(m.sessions)
    assert listed == ad.SESSIONS_A_DAY and m.more_sessions == 200 - listed   # all on one day
    # Every session is in the numbers, listed or not: the day's and the whole record's.
    assert sum(d.counts.done for d in m.days) == 200
    assert sum(st.totals.done for st in m.stays) == 200
    assert m.days[0].more_sessions == 200 - listed
    # Admissions past the budget are counted together, not lost.
    assert m.more_episodes == 200 - ad.EPISODES_LISTED
    assert m.episodes[-1].id == ad.MORE_EPISODES
    sheet = model.csv_text(model.Report(m, model.Verification(True, 400, 400, "0" * 64, (), "chain"), None, "x"))
    assert sheet.count("\r\n") == 1 + listed + 1
    assert f"{200 - listed} more sessions are counted in the report but not listed here" in sheet.splitlines()[-1]


def test_sessions_that_can_no_longer_be_answered_count_as_open(small: None) -> None:
    m = ad.build(crafted("sessions", 1000))
    # As at the end of a record: open, not decided, never due or missed.
    assert m.totals.open == 1000 and m.totals.due == 0 and m.totals.missed == 0
    assert m.settled_open == 1000 - ad.OPEN_AT_MOST
    page = render(model.Report(m, model.Verification(True, 1000, 1000, "0" * 64, (), "chain"), None, "x"), T0)
    assert f"{1000 - ad.OPEN_AT_MOST} sessions were still open when {ad.OPEN_AT_MOST} newer sessions" in page


def test_power_cuts_past_the_budget_are_in_the_totals(small: None) -> None:
    m = ad.build(crafted("power", 500))
    assert len(m.gaps) == ad.GAPS_LISTED and m.more_gaps == 500 - ad.GAPS_LISTED
    assert m.totals.gaps == 500 and sum(d.counts.gaps for d in m.days) >= 500


def test_a_clock_fault_still_shows_every_day_with_records_and_draws_the_newest() -> None:
    m = ad.build(crafted("days", 1200))
    assert m.clock_fault is not None and len(m.days) == 1000
    assert sum(d.counts.done for d in m.days) == 1200
    page = render(model.Report(m, model.Verification(True, 1200, 1200, "0" * 64, (), "chain"), None, "x"), T0)
    assert page.count('<section class="day"') == 401
    assert "The newest 401 of 1000 days are drawn below" in page


def test_sessions_over_more_days_and_admissions_than_counted_apart_go_with_the_later_admissions(
        small: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ad, "TALLIES_AT_MOST", 50)

    def records() -> Iterator[dict[str, Any]]:
        seq = 0
        for e in range(20):                   # 20 admissions, each with a session done on 20 days
            seq += 1
            yield {"seq": seq, "type": "admit", "episode": f"E{e}", "time": (D0 + timedelta(days=30 * e)).isoformat()}
            for k in range(20):
                seq += 1
                t = D0 + timedelta(days=30 * e + k, hours=1)
                yield {"seq": seq, "type": "done", "session": f"{t:%Y-%m-%dT%H:%M} hourly", "kind": "hourly",
                       "due": t.isoformat(), "time": t.isoformat(), "reps": 10, "planned": 10, "late_min": 0}
    m = ad.build(records())
    assert m.folded > 0 and m.episodes[-1].id == ad.MORE_EPISODES
    assert sum(d.counts.done for d in m.days) == 400 == m.totals.done
    assert sum(st.totals.done for st in m.stays) == 400
    page = render(model.Report(m, model.Verification(True, 1, 1, "0" * 64, (), "chain"), None, "x"), T0)
    assert f"{m.folded} sessions spread over more days and admissions" in page
