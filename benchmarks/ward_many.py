"""Benchmark of ``bedside ward`` given a folder of many exports: 2,000 and 20,000 crafted exports
in one folder, each a header and one record under its own unit id (``u00001-journal.jsonl`` ...),
as a hostile or merely huge stick holds them, and a normal ward: 30 units with three pulls each
(10, 20 and 30 days, overlapping). Each is one whole ``bedside ward DIR -o ward.html`` run,
measured from outside with GNU time (its max RSS and CPU time), with the size of the page.

Usage: ``python benchmarks/ward_many.py`` (a minute or so); ``BEDSIDE_BENCH_BASE=<git ref>``
also runs that version's package on the same folders, for the figures before; ``--only N``
measures one folder of N crafted exports and prints it (the docs untouched).
Results go between the ``bench:ward_many`` markers of docs/performance.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.rigs import ward_rig as wr

from benchmarks import docs
from benchmarks.ward import base_code

ROOT = Path(__file__).resolve().parent.parent
FIRST = date(2026, 11, 1)
END = wr.local("2026-11-30T15:30")
TAKEN = wr.aware("2026-11-30T15:35")


def crafted(folder: Path, n: int) -> None:
    """``n`` exports of one record each, every one claiming a unit of its own."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        unit = f"u{i:05d}"
        bed = wr.Bed(unit, FIRST, wr.local("2026-11-01T08:00"), admits=[], missed=lambda d, h: False)
        (folder / f"{unit}-journal.jsonl").write_text(wr.export_text(wr.records(bed)[:1], TAKEN))


def _missed(d: date, h: int, i: int) -> bool:
    return (d.day + h + i) % 11 == 0


def normal_ward(folder: Path, units: int = 30) -> None:
    """``units`` beds, each pulled on days 10, 20 and 30 (three overlapping exports a bed)."""
    for i in range(units):
        admit = datetime.combine(FIRST + timedelta(days=i % 7), datetime.min.time()).replace(hour=9)
        bed = wr.Bed(f"ward7-bed{i:03d}", FIRST, END, admits=[(admit, f"E2026-{i:04d}", admit.date())],
                     discharges=[], missed=partial(_missed, i=i))
        recs = wr.records(bed)
        for day in (10, 20, 30):
            cut = wr.aware(f"2026-11-{day:02d}T12:00")
            part = [r for r in recs if r["time"] <= cut.isoformat()] if day < 30 else recs
            wr.as_pull(folder / f"pull-2026-11-{day:02d}", bed.unit, part, cut if day < 30 else TAKEN)


def outside(folder: Path, out: Path, code: Path | None) -> tuple[float, float, int, int]:
    """(CPU s, max RSS MiB, exit code, page bytes) of one whole run."""
    env = {**os.environ, "PYTHONPATH": str(code)} if code is not None else None
    r = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", sys.executable, "-m", "bedside", "ward", str(folder),
                        "-o", str(out), "--as-of", "2026-11-30T16:00"], capture_output=True, text=True, cwd=ROOT,
                       check=False, env=env)
    user, system, kib = r.stderr.strip().splitlines()[-1].split()
    return float(user) + float(system), int(kib) / 1024, r.returncode, out.stat().st_size if out.exists() else 0


GOAL = ("memory: one unit's work and a path and unit id (a few hundred bytes) an export found; "
        "at most ward.MAX_UNITS beds a page")


def first_pass(folder: Path) -> str:
    """The first pass alone (``ward.scan``), in this process: what its plan keeps an export
    (traced) and its CPU an export."""
    from bedside.report import ward

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    cpu = time.process_time()
    plan = ward.scan([folder], print)
    cpu = time.process_time() - cpu
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return (f"the first pass keeps {kept / plan.exports:.0f} bytes an export (traced) and takes "
            f"{cpu / plan.exports * 1e6:.0f} µs of CPU an export (tracing on)")


def measure() -> list[tuple[str, str, str]]:
    out: list[tuple[str, str, str]] = []
    base = os.environ.get("BEDSIDE_BENCH_BASE")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "base").mkdir()
        code = base_code(base, t / "base") if base else None
        cases: list[tuple[str, Path, Callable[[Path], None]]] = [
            ("2,000 crafted one-record exports, each its own unit, one folder", t / "c2k", partial(crafted, n=2000)),
            ("20,000 such exports", t / "c20k", partial(crafted, n=20000)),
            ("a normal ward: 30 units, three overlapping pulls each", t / "ward", normal_ward)]
        for what, folder, make in cases:
            make(folder)
            cpu, rss, code_, size = outside(folder, t / "page.html", None)
            now = f"{cpu:.1f} s CPU, {rss:.0f} MiB max RSS, page {size / 1e3:.0f} kB, exit {code_}"
            if code is not None:
                bcpu, brss, bcode, bsize = outside(folder, t / "page-base.html", code)
                now += f" (before: {bcpu:.1f} s, {brss:.0f} MiB, page {bsize / 1e3:.0f} kB, exit {bcode})"
            if code is not None and folder.name == "ward":
                same = (t / "page.html").read_bytes() == (t / "page-base.html").read_bytes()
                now += "; the page the same bytes as before" if same else "; the page DIFFERS from before"
            if folder.name == "c20k":
                now += "; " + first_pass(folder)
            print(f"{what}: {now}", flush=True)
            out.append((what, GOAL, now))
    return out


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--only":        # one crafted folder of N exports, printed only
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "many"
            crafted(folder, int(sys.argv[2]))
            cpu, rss, code_, size = outside(folder, Path(tmp) / "page.html", None)
            print(f"{sys.argv[2]} exports: {cpu:.1f} s CPU, {rss:.0f} MiB max RSS, page {size / 1e3:.0f} kB, "
                  f"exit {code_}; {first_pass(folder)}")
        return
    rows = measure()
    docs.write_section("ward_many", "Hostile input", [docs.measured_on(
        "python benchmarks/ward_many.py", "Each figure is one whole run of bedside ward over the folder, from "
        "outside (GNU time: user + system CPU, max RSS)."), "", *docs.table(rows)])


if __name__ == "__main__":
    main()
