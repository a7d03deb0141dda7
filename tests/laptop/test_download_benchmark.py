"""The serial download benchmark still runs end to end (it once stopped, unnoticed, when the
laptop learnt to refuse a ward secret cheaper than a unit's): one simulated day of journal,
pulled over the emulated cable at full speed through the benchmark's own ``download``."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from benchmarks import download as bench

from bedside.journal.journal import Journal
from bedside.unit import simulate


def test_the_download_benchmark_pulls_a_day(tmp_path: Path) -> None:
    data = tmp_path / "unit-data"
    start = datetime(2026, 10, 25, 6, 0, tzinfo=bench.CFG.tz)
    sim = simulate.build(bench.CFG, data, start)
    sim.unit.run(until=start + timedelta(days=1))
    sim.close()
    j = Journal(data, bench.CFG.tz, "test", readonly=True)
    try:
        records = len(list(j.records()))
    finally:
        j.close()
    got = bench.download(data, tmp_path / "run", None)
    assert got["records"] >= records > 10
    assert got["to_laptop"] > 0 and got["to_unit"] > 0
