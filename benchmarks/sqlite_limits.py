"""Benchmark of what SQLite itself is given to read (journal/segments.py, ``MAX_WAL_BYTES``,
``MAX_FILE_BYTES``, ``MAX_VALUE_BYTES``): two crafted data directories, each read in a child
process of its own.

* ``wal``: the unit's active segment left with a WAL of valid frames (a table of 1 MiB blobs,
  never checkpointed) of 64 MiB and of 1 GiB. The figure is the unit's start and its first hour in
  simulated time: its CPU, and the bytes the process read and wrote (``/proc/self/io``'s
  ``rchar`` and ``wchar``, counts that do not depend on the machine: SQLite reads the WAL whole
  before its first answer, and its checkpoint copies it into the file at the first commit).
* ``value``: a record of 64 MiB stored in the active segment (a valid SQLite row). The figure
  is the traced peak of reading every record (``bedside log verify``'s reader).

Usage: ``python benchmarks/sqlite_limits.py [--tree DIR]`` (``DIR``: another tree's
``device/``, for the figures before a change); about a minute. Prints one line a case.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIB = 2**20
WAL_MIB = (64, 1024)
VALUE_MIB = 64


def _io() -> tuple[int, int]:
    """Bytes this process has read and written through system calls (``rchar``, ``wchar``)."""
    with open("/proc/self/io") as f:
        got = dict(line.split(": ") for line in f.read().splitlines())
    return int(got["rchar"]), int(got["wchar"])


def make_unit(data: Path) -> Path:
    from bedside.core import config
    from bedside.journal.segments import segment_files
    from bedside.unit import simulate

    cfg = config.Config()
    start = datetime(2026, 11, 24, 6, 58, tzinfo=cfg.tz)
    sim = simulate.build(cfg, data, start)
    sim.unit.run(until=start.replace(hour=9))
    sim.close()
    return segment_files(data)[-1][1]


def craft(kind: str, data: Path, wal_mib: int = 0) -> None:
    active = make_unit(data)
    db = sqlite3.connect(active, isolation_level=None)
    if kind == "value":
        head = db.execute("SELECT max(seq) FROM records").fetchone()[0]
        body = json.dumps({"seq": head + 1, "pad": "x" * (VALUE_MIB * MIB)})
        db.execute("INSERT INTO records (seq, time, type, session, body, hash) VALUES (?, ?, ?, ?, ?, ?)",
                   (head + 1, "2026-11-24T09:00:00+00:00", "press", None, body, "0" * 64))
        db.close()
        os.sync()
        return
    wal = active.with_name(active.name + "-wal")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("CREATE TABLE junk (b BLOB)")
    blob = os.urandom(MIB)
    for _ in range(wal_mib):
        db.execute("INSERT INTO junk VALUES (?)", (blob,))
    kept = data.parent / "kept"
    kept.mkdir()
    shutil.copyfile(active, kept / "db")
    shutil.copyfile(wal, kept / "wal")
    db.close()
    shutil.copyfile(kept / "db", active)
    shutil.copyfile(kept / "wal", wal)
    shutil.rmtree(kept)
    os.sync()           # the crafting's writes are on the disk before the unit is timed


def measure(kind: str, data: Path, wal_mib: int = 0) -> str:
    from bedside.core import config
    from bedside.journal.journal import Journal

    cfg = config.Config()
    if kind == "value":
        tracemalloc.start()
        j = Journal(data, cfg.tz, "reader", readonly=True)
        n = sum(1 for _ in j.records())
        peak = tracemalloc.get_traced_memory()[1] / MIB
        return (f"a {VALUE_MIB} MiB value stored in a segment: reading every record ({n} given, "
                f"{len(j.read_errors)} named) traced peak {peak:.1f} MiB")
    from bedside.unit import simulate

    start = datetime(2026, 11, 24, 12, 0, tzinfo=cfg.tz)
    (r0, w0), c0 = _io(), time.process_time()
    sim = simulate.build(cfg, data, start)
    sim.unit.run(until=start.replace(hour=13, minute=5))
    sim.close()
    (r1, w1), cpu = _io(), time.process_time() - c0
    return (f"an active segment with a {wal_mib:,} MiB WAL: start and an hour {cpu:.2f} s of CPU here, "
            f"{(r1 - r0) / MIB:,.0f} MiB read and {(w1 - w0) / MIB:,.0f} MiB written")


def main() -> None:
    if len(sys.argv) >= 4 and sys.argv[1] in ("wal", "value"):
        print(measure(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])), end="")
        return
    tree = Path(sys.argv[sys.argv.index("--tree") + 1]) if "--tree" in sys.argv else ROOT / "device"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(ROOT)])}
    sys.path[:0] = [str(tree)]
    for kind, wal_mib in [*(("wal", m) for m in WAL_MIB), ("value", 0)]:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "unit"
            data.mkdir()
            craft(kind, data, wal_mib)
            got = subprocess.run([sys.executable, __file__, kind, str(data), str(wal_mib)], env=env, check=True,
                                 capture_output=True, text=True)
            print(got.stdout, flush=True)


if __name__ == "__main__":
    main()
