"""A data directory holding many small crafted files named as segments (100 bytes each, which
SQLite refuses): the unit's start and a serial step open, describe and salvage a bounded number
of them whatever their count, and name the rest. Counted, not timed: SQLite opens, salvage
scans and descriptions during a start, with ten times as many files (the budgets made small so
that the test stays quick: ``START_FILES`` 20, ``LIST_FILES`` 60)."""

from __future__ import annotations

from collections import Counter, OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bedside.core import config
from bedside.journal import salvage, segments
from bedside.link.on_loop import LinkService
from bedside.unit import simulate
from tests.conftest import journal_records

CFG = config.Config()
NOW = datetime(2026, 11, 17, 6, 5, tzinfo=CFG.tz)


def unit_with_junk(d: Path, n: int) -> None:
    sim = simulate.build(CFG, d, NOW)
    sim.unit.start()
    sim.close()
    for i in range(n):
        (d / f"journal-{i + 10:06d}.sqlite").write_bytes(b"x" * 100)


def counted(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    calls: Counter[str] = Counter()
    real_connect, real_scan, real_describe = segments.connect_reader, salvage._scan, segments._describe

    def connect(p: Path) -> Any:
        calls["sqlite opens"] += 1
        return real_connect(p)

    def scan(p: Path) -> salvage.Salvaged:
        calls["salvage scans"] += 1
        return real_scan(p)

    def describe(n: int, p: Path) -> segments.Segment:
        calls["descriptions"] += 1
        return real_describe(n, p)

    from bedside.journal import journal as journal_mod
    monkeypatch.setattr(segments, "connect_reader", connect)
    monkeypatch.setattr(journal_mod, "connect_reader", connect)
    monkeypatch.setattr(salvage, "_scan", scan)
    monkeypatch.setattr(segments, "_describe", describe)
    return calls


def start_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int) -> tuple[Counter[str], list[dict[str, Any]]]:
    d = tmp_path / f"unit-{n}"
    d.mkdir()
    unit_with_junk(d, n)
    salvage.forget()
    with monkeypatch.context() as m:
        calls = counted(m)
        sim = simulate.build(CFG, d, NOW)
        sim.unit.start()
        assert sim.unit.state is not None                  # it starts
        sim.close()
    salvage.forget()
    return calls, [r for r in journal_records(d) if r["type"] == "fault" and "not_examined" in r]


def test_a_start_opens_a_bounded_number_of_files_and_names_the_rest(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(salvage, "START_FILES", 20)
    monkeypatch.setattr(salvage, "LIST_FILES", 60)
    few, few_faults = start_counts(tmp_path, monkeypatch, 15)
    many, many_faults = start_counts(tmp_path, monkeypatch, 150)
    # 15 files: each opened, salvaged and described once or twice (never once per read path).
    assert few["descriptions"] <= 15 + 8 and few["salvage scans"] <= 15 + 8
    assert few["sqlite opens"] <= 2 * 15 + 20
    assert not few_faults
    # Ten times as many: no more work than the count allows (20 files opened, 60 listed).
    for what in ("descriptions", "salvage scans"):
        assert many[what] <= 20 + 5, (what, many)
    assert many["sqlite opens"] <= 2 * 20 + 20, many
    # The rest are named: how many were not looked at, and why.
    assert len(many_faults) == 1
    fault = many_faults[0]
    # (The 150, the unit's own segment, and the one the start made after the newest, which it
    # could not open: 152 files, 20 of them opened.)
    assert fault["not_examined"] == 152 - 20
    assert "not opened" in fault["problem"] and "not listed" in fault["problem"]


def test_a_serial_step_opens_a_bounded_number_of_files_and_names_the_rest(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(salvage, "START_FILES", 20)
    monkeypatch.setattr(salvage, "STEP_FILES", 5)
    monkeypatch.setattr(salvage, "LIST_FILES", 60)
    d = tmp_path / "unit"
    d.mkdir()
    unit_with_junk(d, 150)
    salvage.forget()
    sim = simulate.build(CFG, d, NOW)
    sim.unit.start()
    with monkeypatch.context() as m:
        calls = counted(m)
        svc = LinkService(sim.unit, None)
        svc.attach(sim.clock.now())
        hello = svc.hello(1, "n", sim.clock.now())
    sim.close()
    salvage.forget()
    assert calls["descriptions"] <= 2 * 5 + 2, calls          # two steps of five files at most
    assert calls["sqlite opens"] <= 2 * (2 * 5) + 4, calls
    # Every file of the 151 named as segments is either listed or counted, and every one not
    # read is named or counted as not read yet.
    assert len(hello["segments"]) + hello.get("segments_more", 0) == 150 + 2
    assert len(hello["unread"]) + hello.get("unread_more", 0) >= 150 + 2 - 5 - 1


def test_within_a_budget_a_deferred_file_is_never_read() -> None:
    """A file a budget left (past its count) stays left for every read path of that budget."""
    b = salvage.Budget(1 << 30, files=0)
    b.defer("journal-000009.sqlite")
    salvage._per_thread.budget = b
    try:
        got = salvage.scan(Path("/nonexistent/journal-000009.sqlite"))
    finally:
        salvage._per_thread.budget = None
    assert got.deferred


class _NoWalk(OrderedDict):  # type: ignore[type-arg]
    def values(self) -> Any:
        raise AssertionError("an insertion walked every entry")


def test_the_shared_caches_do_constant_work_per_insertion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    salvage.forget()
    monkeypatch.setattr(salvage, "_cache", _NoWalk())
    monkeypatch.setattr(salvage, "_heads", _NoWalk())
    monkeypatch.setattr(salvage, "CACHE_BYTES", 50_000)      # room for a few dozen small indexes
    for i in range(200):
        p = tmp_path / f"journal-{i:06d}.sqlite"
        p.write_bytes(b"x" * 100)
        salvage.scan(p)
    kept = sum(n for n, _ in OrderedDict.values(salvage._cache))
    assert kept == salvage._totals["cache"] <= 50_000 and 0 < len(salvage._cache) < 200
    assert sum(n for n, _ in OrderedDict.values(salvage._heads)) == salvage._totals["heads"]
    salvage.forget()


def test_retention_reads_a_foreign_files_size_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Asked after each record: the files other than the active one are stat'ed once, not each time."""
    import os

    unit_with_junk(tmp_path, 300)
    sim = simulate.build(CFG, tmp_path, NOW)
    sim.unit.start()
    j = sim.unit.store.journal
    assert j is not None
    first = j.size_bytes()
    stats: list[str] = []
    real = os.stat

    def counted(p: Any, *a: Any, **k: Any) -> os.stat_result:
        stats.append(str(p))
        return real(p, *a, **k)

    monkeypatch.setattr(os, "stat", counted)
    assert j.size_bytes() == first
    monkeypatch.undo()
    sim.close()
    salvage.forget()
    # The active file and its WAL, and the unit's first segment, which keeps a WAL: none of the 300.
    assert len(stats) <= 4 and not any(10 <= int(Path(p).name[8:14]) < 310 for p in stats), stats


def _listing_peak(d: Path) -> tuple[list[tuple[int, Path]], int, tuple[int, int] | None, int]:
    import tracemalloc

    tracemalloc.start()
    try:
        with salvage.bounded(salvage.STEP_BYTES, files=salvage.STEP_FILES) as budget:
            assert budget is not None
            got = segments.segment_files(d)
        return got, budget.not_listed, budget.not_listed_range, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("count", [100, 4_000])
def test_a_budgeted_listing_keeps_the_oldest_and_newest_and_holds_only_those(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """Under a start's or a step's budget the directory is read an entry at a time: the list is
    the oldest and newest LIST_FILES / 2 segment files (what a sort of every name gives), the
    rest counted with their lowest and highest numbers, and the memory is that of the kept names
    (the same peak for 40 times as many names, foreign names among them)."""
    monkeypatch.setattr(salvage, "LIST_FILES", 60)
    d = tmp_path / "many"
    d.mkdir()
    numbers = list(range(1, count * 7, 7))          # not in creation order
    for i, n in enumerate(reversed(numbers)):
        (d / f"journal-{n:06d}.sqlite").touch()
        (d / f"junk-{i:06d}").touch()
    got, not_listed, span, peak = _listing_peak(d)
    want = numbers if count <= 60 else numbers[:30] + numbers[-30:]
    assert [n for n, _ in got] == want
    assert all(p == d / f"journal-{n:06d}.sqlite" for n, p in got)
    if count > 60:
        assert not_listed == count - 60 and span == (numbers[30], numbers[-31])
    else:
        assert not_listed == 0 and span is None
    small = tmp_path / "few"
    small.mkdir()
    for n in range(1, 101):
        (small / f"journal-{n:06d}.sqlite").touch()
    assert peak < 2 * _listing_peak(small)[3] + 64 * 1024
