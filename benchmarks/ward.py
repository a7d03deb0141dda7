"""Benchmark of the laptop's ward commands: ``bedside ward`` over 30 and 200 units, each a 30-day
record (hourly sessions 08:00-20:00, an admission and some discharges, some misses) in a pull
folder, and ``bedside fhir`` over 30 days of one unit; timed from outside as a nurse runs them,
with the sizes of what they write.

Usage: ``make bench`` (with the others) or ``python benchmarks/ward.py`` (a minute or two;
``--fhir`` for the FHIR section alone).
Results go between the ``bench:ward`` and ``bench:fhir`` markers of docs/performance.md.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.rigs import ward_rig as wr

from benchmarks import docs

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3
FIRST = date(2026, 11, 1)
END = wr.local("2026-11-30T15:30")


def ward_folder(folder: Path, units: int) -> int:
    """``units`` pull exports of 30 days each; returns the records written."""
    total = 0
    for i in range(units):
        admit = datetime.combine(FIRST + timedelta(days=i % 7), datetime.min.time()).replace(hour=9)
        def missed(d: date, h: int, i: int = i) -> bool:
            return (d.day + h + i) % 11 == 0

        bed = wr.Bed(f"ward7-bed{i:03d}", FIRST, END, admits=[(admit, f"E2026-{i:04d}", admit.date())],
                     discharges=[admit + timedelta(days=20)] if i % 3 == 2 else [], missed=missed)
        recs = wr.records(bed)
        total += len(recs)
        wr.as_pull(folder, bed.unit, recs, wr.aware("2026-11-30T15:35"))
    return total


def timed(*args: str) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one ``bedside`` run, medians of RUNS."""
    times, cpu = [], []
    for _ in range(RUNS):
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "bedside", *args], capture_output=True, text=True, cwd=ROOT,
                           check=False)
        times.append(time.perf_counter() - t0)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime)
        if r.returncode not in (0, 3):
            raise SystemExit(f"bedside {args[0]} failed:\n{r.stdout}{r.stderr}")
    return statistics.median(cpu), statistics.median(times)


def measure_fhir() -> list[tuple[str, str, str]]:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "pulls"
        records = ward_folder(folder, 1)
        out = Path(d) / "bundle.json"
        for extra, what in (((), "the daily summaries"), (("--per-session",), "and a Procedure per session")):
            cpu, wall = timed("fhir", str(folder), "-o", str(out), *extra)
            doc = json.loads(out.read_text())
            kinds = [e["resource"]["resourceType"] for e in doc["entry"]]
            rows.append((f"`bedside fhir {' '.join(extra)}`".replace(" `", "`") +
                         f", one unit × 30 days ({records} records; {what}: {len(kinds)} resources, "
                         f"{kinds.count('Observation')} Observations, {kinds.count('Procedure')} Procedures), "
                         "checked against the R4 models", "a few seconds on a laptop",
                         f"{cpu:.2f} CPU-s, {wall:.2f} s wall (medians of {RUNS}); bundle "
                         f"{out.stat().st_size / 1e3:.0f} kB"))
            print(rows[-1], flush=True)
    rows += measure_post()
    return rows


def measure_post() -> list[tuple[str, str, str]]:
    """One unit's month posted to the test's real FHIR engine (Medplum's router in memory, 8 entries a
    transaction, as it takes), then the same again: wall seconds of the post alone, in this process.
    The engine's in-memory searches scan every resource of a type, so its time grows with what it
    holds: this measures the round trip, not a hospital server's speed."""
    from tests.rigs import fhir_engine

    from bedside.laptop import fhir_post
    from bedside.report import fhir, ward

    if fhir_engine.available() is not None:
        print(f"skipped the post: {fhir_engine.available()}")
        return []
    rows = []
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "pulls"
        records = ward_folder(folder, 1)
        units = ward.merge(ward.find([folder], print))
        doc = fhir.bundle(units, exported=wr.aware("2026-11-30T16:00"))
        with fhir_engine.Engine() as eng:
            times = []
            for _ in range(2):
                t0 = time.perf_counter()
                got = fhir_post.post(eng.url, doc, max_entries=8, timeout=600)
                times.append(time.perf_counter() - t0)
            stored = sum(len(eng.search(k)) for k in ("Device", "Encounter", "CarePlan", "Observation", "Provenance"))
        rows.append((f"`bedside fhir --post` of one unit × 30 days ({records} records, {len(doc['entry'])} entries) to "
                     f"the test engine, {got.transactions} transactions of at most 8", "well inside the 120 s deadline",
                     f"first post {times[0]:.1f} s, the same again {times[1]:.1f} s (all {got.updated} already "
                     f"there); {stored} resources on the server"))
        print(rows[-1], flush=True)
    return rows


def measure() -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for units in (30, 200):
        with tempfile.TemporaryDirectory() as d:
            folder = Path(d) / "pulls"
            records = ward_folder(folder, units)
            out, table = Path(d) / "ward.html", Path(d) / "ward.csv"
            cpu, wall = timed("ward", str(folder), "-o", str(out), "--csv", str(table), "--as-of",
                              "2026-11-30T16:00+01:00")
            size = sum(p.stat().st_size for p in folder.glob("*.jsonl"))
            rows.append((f"`bedside ward`, {units} units × 30 days ({records} records, {size / 1e6:.1f} MB of exports)",
                         "a few seconds on a laptop",
                         f"{cpu:.2f} CPU-s, {wall:.2f} s wall (medians of {RUNS}); "
                         f"page {out.stat().st_size / 1e3:.0f} kB, CSV {table.stat().st_size / 1e3:.0f} kB"))
            print(rows[-1], flush=True)
    return rows


def outside(*args: str, code: Path | None = None) -> tuple[float, float]:
    """(CPU seconds, peak resident MiB) of one ``bedside`` run, from outside (GNU time); with
    ``code``, the package found there (an earlier version's, ``base_code``) instead of this one."""
    env = {**os.environ, "PYTHONPATH": str(code)} if code is not None else None
    r = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", sys.executable, "-m", "bedside", *args],
                       capture_output=True, text=True, cwd=ROOT, check=False, env=env)
    if r.returncode not in (0, 3):
        raise SystemExit(f"bedside {args[0]} failed:\n{r.stdout}{r.stderr}")
    user, system, kib = r.stderr.strip().splitlines()[-1].split()
    return float(user) + float(system), int(kib) / 1024


# The version to run beside this one, as a git ref (e.g. the previous release's commit):
# BEDSIDE_BENCH_BASE=<ref>. Its package is taken from git into a temporary folder.
BASE = os.environ.get("BEDSIDE_BENCH_BASE")


def base_code(ref: str, into: Path) -> Path:
    """The ``device`` folder (the package) as it was at git ``ref``."""
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "device"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=tar, check=True)
    return into / "device"


def long_export(folder: Path, records: int) -> Path:
    """One unit's export of about ``records`` records (a bed's hourly sessions, years of them)."""
    days = records // 26 + 1
    first = END.date() - timedelta(days=days)
    admit = datetime.combine(first, datetime.min.time()).replace(hour=9)
    bed = wr.Bed("ward7-bed-long", first, END, admits=[(admit, "E-long", admit.date())],
                 missed=lambda d, h: (d.day + h) % 11 == 0)
    return wr.as_pull(folder, bed.unit, wr.records(bed), wr.aware("2026-11-30T15:35"))


def streaming_rows(runs: int = RUNS) -> list[tuple[str, str, str]]:
    """``bedside ward`` over 200 units, and over one unit's export of 400,000 records: CPU and
    peak memory of the whole command (medians of ``runs``), beside the size of what it read."""
    return [two_hundred(runs), one_long(runs)]


def two_hundred(runs: int = RUNS) -> tuple[str, str, str]:
    """``bedside ward`` over 200 units (in turn with ``BASE``'s code when it is given)."""
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d) / "pulls"
        records = ward_folder(folder, 200)
        size = sum(p.stat().st_size for p in folder.glob("*.jsonl"))
        args = ("ward", str(folder), "-o", str(Path(d) / "w.html"), "--csv", str(Path(d) / "w.csv"),
                "--as-of", "2026-11-30T16:00+01:00")
        base = base_code(BASE, Path(d)) if BASE else None
        got, was = [], []
        for _ in range(runs):           # in turn, this version and the base, so both see the same machine
            got.append(outside(*args))
            if base is not None:
                was.append(outside(*args, code=base))
        cpu, mib = statistics.median(g[0] for g in got), statistics.median(g[1] for g in got)
        beside = ""
        if was:
            ratios = sorted(g[0] / w[0] for g, w in zip(got, was, strict=True))
            beside = (f"; in turn with {BASE}'s code on the same exports: {statistics.median(w[0] for w in was):.2f} "
                      f"CPU-s, peak {statistics.median(w[1] for w in was):.0f} MiB, ratio "
                      f"**{statistics.median(ratios):.2f}×** ({ratios[0]:.2f}–{ratios[-1]:.2f})")
        return (f"`bedside ward`, 200 units × 30 days ({records:,} records, {size / 1e6:.1f} MB of exports), "
                "whole command", "≤ 4 CPU-s, ≤ 100 MiB",
                f"{cpu:.2f} CPU-s, peak {mib:.0f} MiB (medians of {runs}){beside}. Before: 9.6 CPU-s, 348 MiB")


def one_long(runs: int = RUNS) -> tuple[str, str, str]:
    """``bedside ward`` on one export of 400,000 records: its peak memory against the file's size."""
    with tempfile.TemporaryDirectory() as d:
        path = long_export(Path(d) / "pulls", 400_000)
        n = sum(1 for _ in path.open()) - 1
        got = [outside("ward", str(path.parent), "-o", str(Path(d) / "w.html"), "--as-of", "2026-11-30T16:00+01:00")
               for _ in range(max(1, runs - 2))]
        cpu, mib = statistics.median(g[0] for g in got), statistics.median(g[1] for g in got)
        mib_file = path.stat().st_size / 2**20
        return (f"`bedside ward` on one export of {n:,} records ({mib_file:.0f} MiB)", "not ~8× its size",
                f"peak {mib:.0f} MiB = {mib / mib_file:.2f}× the file, {cpu:.1f} CPU-s. Before: about 8× (1.4 GB)")


def main() -> None:
    if "--fhir" not in sys.argv[1:]:
        ward_section()
    rows = measure_fhir()
    note = ("The whole command from outside: Python's start, reading and verifying the export, building the "
            "bundle, checking every resource against fhir.resources' R4 models, writing it. CPU seconds are the "
            "figure to trust on a shared machine; wall time includes waiting for a core. The post is timed in "
            "the benchmark's process against the tests' FHIR engine on 127.0.0.1 (Medplum's FHIR router, in "
            "memory, validating every resource); a hospital's server and network add their own time.")
    lines = [docs.measured_on("python benchmarks/ward.py", note), "", *docs.table(rows)]
    print(docs.write_section("fhir", "The FHIR bundle (laptop)", lines))


def ward_section() -> None:
    rows = measure()
    note = ("The whole command from outside: Python's start, reading and verifying every export, the page and "
            "the CSV. CPU seconds are the figure to trust on a shared machine; wall time includes waiting for a core.")
    lines = [docs.measured_on("python benchmarks/ward.py", note), "", *docs.table(rows)]
    print(docs.write_section("ward", "The ward overview (laptop)", lines))


if __name__ == "__main__":
    main()
