"""``bedside ward`` given a folder of many exports (a hostile or merely huge stick): the first
pass keeps a path and a unit id per export, each unit is read and let go in turn, a page holds
at most ``ward.MAX_UNITS`` units and the walk examines at most ``ward.MAX_ENTRIES`` files and
folders, and what a cap leaves out is named, never dropped silently."""

from __future__ import annotations

import os
import tracemalloc
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from bedside.report import ward, ward_page
from tests.rigs import ward_rig as wr
from tests.rigs.cli import run

TAKEN = wr.aware("2026-11-30T15:35")
NOW = wr.aware("2026-11-30T16:00")
PER_EXPORT = 1024          # bytes the first pass may keep per export (a path and a unit id: about 300)


def crafted(folder: Path, n: int, start: int = 0) -> None:
    """``n`` exports of one record each, every one claiming a unit of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        unit = f"u{i:05d}"
        bed = wr.Bed(unit, date(2026, 11, 1), wr.local("2026-11-01T08:00"), admits=[], missed=lambda d, h: False)
        (folder / f"{unit}-journal.jsonl").write_text(wr.export_text(wr.records(bed)[:1], TAKEN))


def _peak(folder: Path) -> tuple[int, int]:
    """(bytes allocated at the peak, rows) of the whole ward's work over ``folder``."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        plan = ward.scan([folder], print)
        rows = ward.rows(ward.units(plan, print), NOW)
        return tracemalloc.get_traced_memory()[1] - before, len(rows)
    finally:
        tracemalloc.stop()


def test_many_exports_cost_a_path_and_a_unit_each_and_one_units_work(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ward, "MAX_UNITS", 20)        # the page's rows alike in both; the first pass is measured
    n = 300
    crafted(tmp_path / "n", n)
    crafted(tmp_path / "4n", 4 * n)
    small, rows_small = _peak(tmp_path / "n")
    large, rows_large = _peak(tmp_path / "4n")
    assert rows_small == rows_large == 20
    assert large - small <= 3 * n * PER_EXPORT, (small, large)


def test_a_plan_keeps_no_source(tmp_path: Path) -> None:
    crafted(tmp_path, 3)
    plan = ward.scan([tmp_path], print)
    assert plan.exports == 3
    assert all(isinstance(p, str) for paths in plan.groups.values() for p in paths)
    assert sorted(plan.groups) == ["u00000", "u00001", "u00002"]


def test_units_past_the_cap_are_named_on_the_page_and_stderr_and_the_exit_says_incomplete(tmp_path: Path) -> None:
    crafted(tmp_path / "stick", ward.MAX_UNITS + 5)
    out = tmp_path / "ward.html"
    r = run("ward", str(tmp_path / "stick"), "-o", str(out), "--as-of", "2026-11-30T16:00", timeout=300)
    assert r.returncode == 3, r.stderr
    line = (f"5 more units not shown (a page holds at most {ward.MAX_UNITS}): u00200, u00201, u00202, u00203, "
            "u00204; give a narrower folder")
    assert f"bedside: {line}\n" in r.stderr
    page = out.read_text()
    assert f"This page is incomplete:</b> {line}." in page
    assert "u00200" not in page.split("This page is incomplete")[0]
    assert f"{ward.MAX_UNITS} unit(s) from {ward.MAX_UNITS} export(s)" in r.stdout


def test_the_walk_stops_at_its_cap_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ward, "MAX_ENTRIES", 10)
    crafted(tmp_path / "a", 4)
    crafted(tmp_path / "b", 20, start=4)
    told: list[str] = []
    plan = ward.scan([tmp_path], told.append)
    assert plan.exports == 4 + 4         # the two folders, a's four files, then four of b's entries
    assert plan.walk_capped == [str(tmp_path)]
    assert any("stopped after examining 10 files and folders" in line for line in plan.incomplete)
    assert len(ward.find([tmp_path], told.append)) == plan.exports
    assert any("give a narrower folder" in t for t in told)


def test_the_walk_finds_what_os_walk_found(tmp_path: Path) -> None:
    """The same exports in the same order as before: depth first, each folder's in name order,
    hidden folders and links to folders passed over, a data directory taken whole."""
    crafted(tmp_path / "b", 2)
    crafted(tmp_path / "a" / "z", 2, start=2)
    crafted(tmp_path / "a", 1, start=4)
    crafted(tmp_path / ".bedside", 1, start=5)
    (tmp_path / "link").symlink_to(tmp_path / "b")
    capped: list[bool] = []
    got = [p.relative_to(tmp_path).as_posix() for p in ward._walk(tmp_path, capped)]
    assert got == ["a/u00004-journal.jsonl", "a/z/u00002-journal.jsonl", "a/z/u00003-journal.jsonl",
                   "b/u00000-journal.jsonl", "b/u00001-journal.jsonl"]
    assert not capped


def _missed(d: date, h: int, i: int) -> bool:
    return (d.day + h + i) % 7 == 0


def _normal_ward(folder: Path) -> None:
    first = date(2026, 11, 1)
    for i in range(6):
        admit = datetime.combine(first + timedelta(days=i), datetime.min.time()).replace(hour=9)
        bed = wr.Bed(f"ward7-bed{i:02d}", first, wr.local("2026-11-30T15:30"),
                     admits=[(admit, f"E-{i}", admit.date())], missed=partial(_missed, i=i))
        recs = wr.records(bed)
        cut = wr.aware("2026-11-20T12:00")
        wr.as_pull(folder / "pull-20", bed.unit, [r for r in recs if r["time"] <= cut.isoformat()], cut)
        wr.as_pull(folder / "pull-30", bed.unit, recs, TAKEN)
    (folder / "pull-30" / "notes.jsonl").write_text("not an export\n")


def test_a_normal_wards_page_is_the_same_as_read_all_at_once(tmp_path: Path) -> None:
    _normal_ward(tmp_path / "in")
    out = tmp_path / "ward.html"
    r = run("ward", str(tmp_path / "in"), "-o", str(out), "--as-of", NOW.isoformat())
    assert r.returncode == 0, r.stderr
    problems: list[str] = []
    rows = ward.rows(ward.merge(ward.find([tmp_path / "in"], problems.append)), NOW)
    assert problems and "This page is incomplete" not in out.read_text()
    assert out.read_text() == ward_page.render(rows, NOW, out, problems)


def test_a_huge_unit_id_in_a_header_is_kept_short(tmp_path: Path) -> None:
    unit = "x" * 100_000
    bed = wr.Bed(unit, date(2026, 11, 1), wr.local("2026-11-01T08:00"), admits=[], missed=lambda d, h: False)
    (tmp_path / "a-journal.jsonl").write_text(wr.export_text(wr.records(bed)[:1], TAKEN))
    (tmp_path / "b-journal.jsonl").write_text(wr.export_text(wr.records(bed)[:1], TAKEN))
    plan = ward.scan([tmp_path], print)
    (key,) = plan.groups
    assert len(key) < 200 and key.startswith("x" * 64) and "100000 characters" in key
    assert len(plan.groups[key]) == 2
    (u,) = ward.units(plan, print)
    assert u.unit == unit and len(u.exports) == 2


def test_a_fifo_among_the_exports_is_named_not_opened(tmp_path: Path) -> None:
    crafted(tmp_path, 1)
    os.mkfifo(tmp_path / "u99999-journal.jsonl")      # opening it would wait for a writer for ever
    told: list[str] = []
    plan = ward.scan([tmp_path], told.append)
    assert list(plan.groups) == ["u00000"]
    assert told == [f"{tmp_path / 'u99999-journal.jsonl'} is not a regular file: not read"]
