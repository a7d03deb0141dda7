"""A data directory holding many small crafted files named as segments (100 bytes each, which
SQLite refuses): the unit's start and a serial step open, describe and salvage a bounded number
of them whatever their count, and name the rest. Counted, not timed: SQLite opens, salvage
scans and descriptions during a start, with ten times as many files (the budgets made small so
that the test stays quick: ``START_FILES`` 20, ``LIST_FILES`` 60)."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable
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
    # Ten times as many: no more work than the count allows (20 files opened, 60 listed; and the
    # newest listed, taken as the unit's own and opened whatever the count).
    for what in ("descriptions", "salvage scans"):
        assert many[what] <= 20 + 1 + 5, (what, many)
    assert many["sqlite opens"] <= 2 * 20 + 20, many
    # The rest are named: how many were not looked at, and why.
    assert len(many_faults) == 1
    fault = many_faults[0]
    # (The 150, the unit's own segment, and the one the start made after the newest, which it
    # could not open: 152 files; 20 of them opened under the count, and two as the newest file
    # (the newest crafted one, then the segment the start made after it).)
    assert fault["not_examined"] == 152 - 20 - 2
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
    # The active file and its WAL, and the unit's first segment, which keeps a WAL: none of the 300
    # (and the directory itself, whose times say whether its list can be taken again).
    stats = [p for p in stats if p != str(tmp_path)]
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


# --- a million files: every listing holds a bounded number of names, a start reads the
# directory a bounded number of times, and the check's passes open a bounded number of files --

def _linked(d: Path, numbers: Iterable[int], junk: int = 0) -> None:
    """Files named as segments (and ``junk`` others): hard links to one 100-byte file, quick to make."""
    import os

    src = d.parent / f"{d.name}-src"
    src.write_bytes(b"x" * 100)
    for n in numbers:
        os.link(src, d / f"journal-{n:06d}.sqlite")
    for i in range(junk):
        os.link(src, d / f"junk-{i:06d}")


START_PEAK = """
import json, sys, tempfile, tracemalloc
from datetime import datetime
from pathlib import Path
from bedside.core import config
from bedside.journal import salvage, segments
from bedside.unit import simulate
cfg = config.Config()
now = datetime.fromisoformat(sys.argv[2])
with tempfile.TemporaryDirectory() as empty:      # every module the start imports, imported
    sim = simulate.build(cfg, Path(empty), now)
    sim.unit.start()
    sim.close()
salvage.forget()
segments.counts.update(listings=0, names_held=0)
tracemalloc.start()
sim = simulate.build(cfg, Path(sys.argv[1]), now)
opened = tracemalloc.get_traced_memory()[1]
sim.unit.start()
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
started = sim.unit.state is not None
sim.close()
print(json.dumps({"opened": opened, "peak": peak, "started": started, **segments.counts}))
"""


def test_opening_the_journal_and_starting_hold_a_bounded_number_of_names(tmp_path: Path) -> None:
    """20,000 crafted names: the traced peak of opening the journal (``Journal()``, outside the
    start's budget) and of the whole start stays under a bound that every name held would break
    (before: 9.9 MiB for ``Journal()`` alone at 20,000 names, 44 MiB for 100,000); the directory
    is read a few times, and no read holds more than LIST_FILES names. Measured in a process of
    its own, its modules imported first: in a test worker, what earlier tests left made the
    same start trace 10 MiB now and then."""
    import json
    import subprocess
    import sys

    d = tmp_path / "unit"
    d.mkdir()
    unit_with_junk(d, 0)
    _linked(d, range(10, 20_010))
    got = json.loads(subprocess.run([sys.executable, "-c", START_PEAK, str(d), NOW.isoformat()], capture_output=True,
                                    text=True, check=True, cwd=Path(__file__).resolve().parents[2],
                                    timeout=300).stdout)
    assert got["started"]
    assert got["opened"] < 1 * 2**20, got            # one name held (measured: 0.1 MiB)
    assert got["peak"] < 8 * 2**20, got              # measured: 6.7 MiB (before, in a test worker: 10.9 MiB)
    assert got["listings"] <= 8, got
    assert got["names_held"] <= salvage.LIST_FILES + 3
    faults = [r for r in journal_records(d) if r["type"] == "fault" and "not_examined" in r]
    assert faults and faults[0]["not_examined"] >= 20_000 - salvage.START_FILES


def test_a_budget_reads_the_directory_once_until_the_journal_changes_it(tmp_path: Path) -> None:
    """Within one budget the list is cached: asking again reads nothing, and the journal's own
    new segment is seen (the cache is dropped by its creates and deletes)."""
    sim = simulate.build(CFG, tmp_path, NOW)
    sim.unit.start()
    j = sim.unit.store.journal
    assert j is not None
    _linked(tmp_path, range(100, 110))
    segments.counts.update(listings=0)
    with salvage.bounded(0, files=salvage.STEP_FILES):
        first = segments.segment_files(tmp_path)
        for _ in range(5):
            assert segments.segment_files(tmp_path) == first
            j.size_bytes()
        assert segments.counts["listings"] == 1
        (tmp_path / "journal-000200.sqlite").write_bytes(b"x" * 100)
        assert segments.segment_files(tmp_path) == first        # others' files: seen by the next budget
        segments.changed()                                       # (as the journal's own create does)
        assert segments.segment_files(tmp_path)[-1][0] == 200
        assert segments.counts["listings"] == 2
    sim.close()
    salvage.forget()


def test_later_budgets_take_the_list_while_the_directory_is_unchanged(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A loop step after a quiet while reads the directory only if its times show a change."""
    import os

    monkeypatch.setattr(segments, "QUIET_NS", 0)
    d = tmp_path / "unit"
    d.mkdir()
    _linked(d, range(1, 300))
    past = 1_700_000_000 * 10**9
    os.utime(d, ns=(past, past))
    segments.counts.update(listings=0, reused=0)
    lists = []
    for _ in range(3):
        with salvage.bounded(0, files=salvage.STEP_FILES) as budget:
            assert budget is not None
            lists.append((segments.segment_files(d), budget.not_listed))
    assert segments.counts["listings"] == 1 and segments.counts["reused"] == 2
    assert lists[0] == lists[1] == lists[2]
    (d / "journal-000500.sqlite").write_bytes(b"x" * 100)      # someone else's file: the times change
    with salvage.bounded(0, files=salvage.STEP_FILES):
        assert segments.segment_files(d)[-1][0] == 500
    assert segments.counts["listings"] == 2


def test_size_accounting_remembers_at_most_the_listed_names(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(salvage, "LIST_FILES", 60)
    sim = simulate.build(CFG, tmp_path, NOW)
    sim.unit.start()
    j = sim.unit.store.journal
    assert j is not None
    _linked(tmp_path, range(10, 510), junk=100)
    j.size_bytes()
    sim.close()
    salvage.forget()
    assert len(j._closed_sizes) <= 60


def test_the_checks_passes_open_a_bounded_number_of_files_and_reach_them_all(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """150 crafted files after the unit's own segments, a pass allowed 20 of them (and a list
    of 100 names: the unit's own fit in its oldest quarter, as a real unit's do in 512): each
    pass opens at most 20 files that are not the unit's own, names the rest, checks every
    record of the unit's own, and the passes go on where the last stopped until every file was
    opened once; then they stop."""
    from bedside.unit import journal_check

    monkeypatch.setattr(salvage, "CHECK_FILES", 20)
    monkeypatch.setattr(salvage, "LIST_FILES", 100)
    sim = simulate.build(CFG, tmp_path, NOW)
    sim.unit.store.segment_bytes = 24 * 1024
    sim.advance(datetime(2026, 11, 19, 20, 0, tzinfo=CFG.tz))
    sim.unit.shutdown("test")
    sim.close()
    own = [n for n, _ in segments.segment_files(tmp_path)]
    assert 3 <= len(own) <= 25
    # Numbered after the unit's own: the newest is a crafted one, so the start goes on in a new
    # segment after it (the unit's own are then at both ends, as LIST_FILES expects).
    crafted = list(range(own[-1] + 1, own[-1] + 151))
    _linked(tmp_path, crafted)
    own_records = journal_records(tmp_path)
    salvage.forget()
    sim = simulate.build(CFG, tmp_path, datetime(2026, 11, 19, 20, 5, tzinfo=CFG.tz))
    sim.unit.start()
    assert segments.newest_file(tmp_path) == (own[-1] + 151, segments.segment_path(tmp_path, own[-1] + 151))
    check = journal_check.JournalCheck(sim.unit, tmp_path, in_thread=False)
    opened: list[set[int]] = []
    in_pass = False
    real = segments.connect_reader

    def connect(p: Path) -> Any:
        if in_pass:
            opened[-1].add(int(p.name[8:14]))
        return real(p)

    from bedside.journal import journal as journal_mod
    from bedside.journal import verify as verify_mod
    monkeypatch.setattr(segments, "connect_reader", connect)
    monkeypatch.setattr(journal_mod, "connect_reader", connect)
    monkeypatch.setattr(verify_mod, "connect_reader", connect)
    verdicts = []
    for _ in range(40):
        opened.append(set())
        posted: list[Any] = []
        in_pass = True
        check._checks(None, posted.append)           # the pass (on the worker thread in the unit)
        in_pass = False
        for call in posted:
            if call.args[0] == "whole":
                verdicts.append(call.args[1])
            call(sim.clock.now())
        if check.due is None:
            break
        check.due = None
    sim.close()
    salvage.forget()
    assert check.after == "" and 150 // 20 <= len(opened) <= 150 // 20 + 3, len(opened)
    for got in opened:
        assert len(got & set(crafted)) <= 20                   # files not the unit's own, a pass
    assert set().union(*opened) >= set(crafted)              # every one opened in the round
    seqs = {r["seq"] for r in own_records}
    assert len(verdicts) == len(check.passes) == len(opened)
    for v, spent in zip(verdicts, check.passes, strict=True):
        assert v.records >= len(seqs)                        # the unit's own records, every pass
        assert spent.opened <= 20
        # What the pass left out of its list is named in its verdict (and so in a fault record).
        assert any("were not listed" in p.text for p in v.problems) == (spent.not_listed > 0)


@pytest.mark.parametrize("after", ["", "journal-000300.sqlite", "journal-000999.sqlite", "journal-005000.sqlite"])
def test_a_check_pass_lists_the_oldest_where_it_goes_on_and_the_newest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, after: str) -> None:
    """A check pass's list against a sort of every name: the oldest quarter, the lowest quarter
    after ``after``, the newest half, and the first number after ``after`` left out."""
    import random

    monkeypatch.setattr(salvage, "LIST_FILES", 40)
    numbers = sorted(random.Random(after).sample(range(1, 3000), 400))
    d = tmp_path / "d"
    d.mkdir()
    _linked(d, numbers, junk=50)
    with salvage.bounded(0, after=after, files=salvage.STEP_FILES) as budget:
        assert budget is not None
        got = [n for n, _ in segments.segment_files(d)]
    after_n = int(after[8:14]) if after else 0
    beyond = [n for n in numbers if n > after_n]
    # (A first pass, after "", lists the oldest and newest halves, as a start does.)
    want = sorted(set(numbers[:10]) | set(beyond[:10]) | set(numbers[-20:]) if after
                  else set(numbers[:20]) | set(numbers[-20:]))
    assert got == want
    assert budget.not_listed == len(numbers) - len(want)
    left = [n for n in beyond if n not in want and n < numbers[-20]]
    assert budget.first_unlisted == (left[0] if left else None)
    lo, hi = budget.not_listed_range or (0, 0)
    assert all(lo <= n <= hi for n in numbers if n not in want)
