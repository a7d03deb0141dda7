"""``bedside ward`` streams each export from its file: the memory it takes to read a unit does
not grow with the size of the unit's export (a 400,000-record export took about 8x its size
when exports were held whole). Counted with tracemalloc (bytes Python allocated), which hardly
depends on the machine; the whole command's peak memory is the benchmark's (benchmarks/ward.py)."""

from __future__ import annotations

import tracemalloc
from datetime import date, datetime, timedelta
from pathlib import Path

from bedside.report import ward
from tests.rigs import ward_rig as wr

END = wr.local("2026-11-30T15:30")


def _export(folder: Path, days: int) -> Path:
    first = END.date() - timedelta(days=days)
    admit = datetime.combine(first, datetime.min.time()).replace(hour=9)
    bed = wr.Bed("bed01", first, END, admits=[(admit, "E1", admit.date())],
                 missed=lambda d, h: (d.day + h) % 11 == 0)
    return wr.as_pull(folder, bed.unit, wr.records(bed), wr.aware("2026-11-30T15:35"))


def _peak(path: Path) -> int:
    """Bytes allocated at the peak while a unit's row is made from its export."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        (u,) = ward.merge(ward.find([path], print))
        (row,) = ward.rows([u], wr.aware("2026-11-30T16:00"))
        assert row.verdict == "verified", row.verdict_text
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_a_units_row_takes_memory_for_its_model_not_for_its_export(tmp_path: Path) -> None:
    small = _export(tmp_path / "small", 20)
    large = _export(tmp_path / "large", 400)          # twenty times the records
    _peak(small)                     # the first read imports and fills caches: not counted
    small_peak, large_peak = _peak(small), _peak(large)
    size, small_size = large.stat().st_size, small.stat().st_size
    # Held whole, an export took about 8x its size; streamed, what stays is the unit's model of
    # its sessions and days (1.7x the file when measured: 6.7 MB for a 4.0 MB export; 0.35 MB
    # for 0.2 MB): in proportion to the sessions, never to the bytes of the records.
    assert large_peak < 2 * size, (large_peak, size)
    assert small_peak < 2 * small_size, (small_peak, small_size)


def test_a_streamed_export_is_judged_as_when_it_was_held(tmp_path: Path) -> None:
    """The streamed verdict and counts are those of the export read whole (``model.load``)."""
    from bedside.journal import verify
    from bedside.report.model import load

    path = _export(tmp_path, 30)
    (u,) = ward.merge(ward.find([path], print))
    loaded = load(path)
    held = ward._described(path, loaded, loaded.records, verify.verify_export(path))
    (whole,) = ward.merge([held])
    now = wr.aware("2026-11-30T16:00")
    assert ward.row(u, now) == ward.row(whole, now)
    assert list(u.records) == list(whole.records) and u.verdict.ok and u.broken == []
    assert date(2026, 11, 30) == ward.row(u, now).today.day


def test_a_rows_model_of_the_stay_now_is_that_stay_of_the_whole_model() -> None:
    """A row asks the model for the bed's stay now only (``stay_now``): the same stay, days and
    sessions as the whole model gives for it, at a bed never admitted, admitted, discharged,
    and admitted again; the whole record's days, which a row never reads, are not made."""
    from bedside.report import adherence as ad

    first = date(2026, 11, 20)
    nine = datetime(2026, 11, 22, 9)
    beds = [
        wr.Bed("never", first, END, missed=lambda d, h: h % 5 == 0),
        wr.Bed("in", first, END, admits=[(nine, "E1", nine.date())], missed=lambda d, h: (d.day + h) % 7 == 0),
        wr.Bed("out", first, END, admits=[(nine, "E1", nine.date())], discharges=[nine + timedelta(days=3)]),
        wr.Bed("again", first, END, admits=[(nine, "E1", nine.date()), (nine + timedelta(days=4), "E2", nine.date())],
               discharges=[nine + timedelta(days=3)], missed=lambda d, h: h == 10),
    ]
    for bed in beds:
        recs = wr.records(bed)
        whole, now = ad.build(recs), ad.build(recs, stay_now=True)
        ep = ad.current_stay(whole.episodes)
        if not whole.episodes:
            want = whole.stays[:1]
        else:
            want = tuple(s for s in whole.stays if ep is not None and s.episode == ep)
        assert now.stays == tuple(want), bed.unit
        assert (now.last, now.episodes, now.first) == (whole.last, whole.episodes, whole.first)
        assert now.days == ()
        assert [len(s.days) > 0 for s in now.stays] == ([] if bed.unit == "out" else [True]), bed.unit
