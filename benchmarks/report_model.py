"""Peak memory of the report's model (``report.adherence.build``) and of the stick export's
stream, for crafted journals that make a model grow and for a healthy year.

Usage: ``python benchmarks/report_model.py [--stick | --stick-only] [--device DIR] [N ...]`` (default: 40000
100000 400000 records of each crafted kind). Kinds:

* ``faults``: every record a ``fault`` of its own (a notable event each), a second apart;
* ``sessions``: every record a ``prompt`` of a session of its own that never ends, a second apart;
* ``days``: every record a ``done`` session of its own, spread over the years a unit's clock can
  show (1971 to 2099: about 47,000 days, so a clock fault and as many days as there can be).

Each case runs in a child process of its own, with tracemalloc started before the records are
made: the records are generated one at a time, so the traced peak is the model's (and the HTML
and CSV rendered from it), not the input's. Then a healthy year (``benchmarks/journals.py``,
read from its journal). ``--stick``: the same journals written into a data directory and given
to the stick export (``stick.export.collect`` and its three files written to a local folder),
its traced peak (the journals are written on /dev/shm, a tmpfs, where there is one).
``--device DIR``: run against another tree's ``device`` folder (a "before").
CPU time is each child's own (not wall time). Figures go to docs/performance.md ("Hostile input").
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
MIB = 2**20
KINDS = ("faults", "sessions", "days")

# The crafted records, one at a time (shared by the model child and the journal builder).
RECORDS = r'''
from datetime import UTC, datetime, timedelta
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
D0 = datetime(1971, 1, 2, 9, 0, tzinfo=UTC)
DAYS = 47000
def crafted(kind, n):
    """(type, session, time, fields) of record i."""
    for i in range(n):
        if kind == "faults":
            yield "fault", None, T0 + timedelta(seconds=i), {"part": "sensor", "problem": f"crafted fault {i}"}
        elif kind == "sessions":
            t = T0 + timedelta(seconds=i)
            yield "prompt", f"{t:%Y-%m-%dT%H:%M} hourly {i}", t, {"kind": "hourly", "due": t.isoformat()}
        elif kind == "healthy":        # 16 sessions a day from 07:00, each prompted, started and done
            day, slot, step = i // 48, (i % 48) // 3, i % 3
            due = T0.replace(hour=7) + timedelta(days=day, hours=slot)
            sid = f"{due:%Y-%m-%dT%H:%M} hourly"
            t = due + timedelta(minutes=step)
            if step == 0:
                yield "prompt", sid, t, {"kind": "hourly", "due": due.isoformat()}
            elif step == 1:
                yield "press", sid, t, {"action": "start"}
            else:
                yield "done", sid, t, {"kind": "hourly", "due": due.isoformat(), "reps": 10, "planned": 10,
                                       "late_min": 1, "duration_s": 60}
        else:
            t = D0 + timedelta(days=i % DAYS, seconds=i // DAYS)
            yield "done", f"{t:%Y-%m-%dT%H:%M} hourly {i}", t, {"kind": "hourly", "due": t.isoformat(),
                                                               "reps": 10, "planned": 10, "late_min": 0}
'''

MODEL = RECORDS + r'''
import resource, sys, time, tracemalloc
from bedside.report import adherence, model
from bedside.report.html import render
kind, n = sys.argv[1], int(sys.argv[2])
def records():
    if kind == "year":
        from bedside.journal.journal import Journal
        from zoneinfo import ZoneInfo
        j = Journal(__import__("pathlib").Path(sys.argv[3]), ZoneInfo("UTC"), "r", readonly=True)
        yield from j.records()
        j.close()
        return
    for seq, (typ, sid, t, fields) in enumerate(crafted(kind, n), 1):
        rec = {"seq": seq, "type": typ, "time": t.isoformat(), "tq": "rtc", **fields}
        if sid is not None:
            rec["session"] = sid
        yield rec
tracemalloc.start()
cpu = time.process_time()
m = adherence.build(records())
built = tracemalloc.get_traced_memory()[1]
report = model.Report(m, model.Verification(True, m.record_count, m.record_count, "0" * 64, (), "chain"), None, "x")
page, sheet = render(report, datetime(2026, 12, 7, tzinfo=UTC)), model.csv_text(report)
whole = tracemalloc.get_traced_memory()[1]
print(m.record_count, built, whole, len(page), len(sheet), len(m.days), time.process_time() - cpu)
'''

STICK = RECORDS + r'''
import os, sys, time, tracemalloc
from pathlib import Path
from bedside.core import config
from bedside.stick import export, files
data, out = Path(sys.argv[1]), sys.argv[2]
root = os.open(out, os.O_RDONLY | os.O_DIRECTORY)
tracemalloc.start()
cpu = time.process_time()
with export.collect(data, config.Config(), datetime(2099, 12, 31, tzinfo=UTC), "bench") as got:
    written = files.write_export(root, "bench", got.files)
print(got.header["records"], tracemalloc.get_traced_memory()[1], len(got.files), time.process_time() - cpu)
'''

BUILD = RECORDS + r'''
import sys
from pathlib import Path
from zoneinfo import ZoneInfo
from bedside.core.events import Instant, Record
from bedside.journal.journal import Journal
kind, n, data = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
j = Journal(data, ZoneInfo("UTC"), "bench")
try:
    for i, (typ, sid, t, fields) in enumerate(crafted(kind, n)):
        j.append(Record(typ, sid, None, fields), Instant(t, float(i)), "rtc")
finally:
    j.close()
'''


def run(code: str, args: list[str], device: Path) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=False, capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": f"{device}:{ROOT}"})
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr[-3000:]}")
    return out.stdout.split()


def model_row(what: str, args: list[str], device: Path) -> str:
    count, built, whole, page, sheet, days, cpu = run(MODEL, args, device)
    return (f"| {what} | {int(count):,} | {int(built) / 1024:,.0f} KiB | {int(whole) / 1024:,.0f} KiB | "
            f"{int(page) / 1024:,.0f} KiB + {int(sheet) / 1024:,.0f} KiB | {int(days):,} | {float(cpu):.1f} s "
            f"({float(cpu) / max(int(count), 1) * 1e6:.0f} µs a record) |")


def stick_row(kind: str, n: int, device: Path, tmp: Path) -> str:
    data = tmp / f"{kind}-{n}"
    run(BUILD, [kind, str(n), str(data)], device)
    with tempfile.TemporaryDirectory() as stick:
        records, peak, made, cpu = run(STICK, [str(data), stick], device)
    return (f"| stick export, {kind} | {int(records):,} | {int(peak) / MIB:.1f} MiB traced | {made} files | "
            f"{float(cpu):.1f} s |")


def main() -> None:
    args = sys.argv[1:]
    stick = "--stick" in args or "--stick-only" in args
    only = "--stick-only" in args
    device = ROOT / "device"
    if "--device" in args:
        device = Path(args[args.index("--device") + 1]).resolve()
        del args[args.index("--device"):args.index("--device") + 2]
    sizes = [int(a) for a in args if not a.startswith("--")] or [40_000, 100_000, 400_000]
    print(f"device: {device}")
    print("| journal | records | model traced peak | with HTML and CSV | HTML + CSV size | days | CPU |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for kind in KINDS if not only else ():
        for n in sizes:
            print(model_row(f"crafted {kind}", [kind, str(n)], device), flush=True)
    from benchmarks import journals

    # The journals are written on a tmpfs where there is one (each record's fsync would make a
    # 400,000-record journal take half an hour to write); only reading them is measured.
    with tempfile.TemporaryDirectory(dir="/dev/shm" if Path("/dev/shm").is_dir() else None) as d:
        tmp = Path(d)
        if not only:
            year = tmp / "year"
            journals.build(year, 365, tmp / "hospital-key.json")
            print(model_row("a healthy year (`benchmarks/journals.py`: one day's 15 sessions again each day)",
                            ["year", "0", str(year)], device), flush=True)
            print(model_row("a year of 16 distinct sessions a day, each prompted, started and done",
                            ["healthy", str(365 * 48)], device), flush=True)
        if stick:
            for kind in KINDS:
                for n in sizes:
                    print(stick_row(kind, n, device, tmp), flush=True)


if __name__ == "__main__":
    main()
