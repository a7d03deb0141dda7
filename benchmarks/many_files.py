"""Benchmark of a data directory holding many files: the unit's start (CPU from opening the
journal to the start record), the serial link's attach and ``hello`` (one loop step each) and
one pass of the journal check, with traced peak memory and the directory's reads counted.

Kinds: ``junk`` (files whose names are not a segment's: never opened), ``small`` (100-byte
files named ``journal-NNNNNN.sqlite``, numbered on after the unit's own: SQLite refuses each,
salvage describes it). The files are hard links to a few 100-byte files (ext4 allows 65,000
links to one file), so a million take seconds to make. Each case runs twice, each time in a
child process of its own, cold: once for CPU (``time.process_time``, nothing traced) and once
for the traced peak of the start and the attach and ``hello`` (tracemalloc adds to the CPU, so a
traced run's CPU is not the figure). The check's pass runs after them in the timed child, on
the calling thread (the unit runs it on a worker thread).

Usage: ``python benchmarks/many_files.py`` (every case, about fifteen minutes here), or
``python benchmarks/many_files.py KIND COUNT [--memory] [--no-check]`` for one (``--no-check``:
without the check's pass, which took minutes for a million files before its count of files); prints one line a case, for
docs/performance.md ("Hostile input") and docs/security.md ("Readers of outside bytes").
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "device"))

CASES = [("junk", 100_000), ("junk", 1_000_000), ("small", 2_000), ("small", 100_000), ("small", 1_000_000)]
LINKS = 60_000           # names a source file is linked to (ext4: at most 65,000)
MAX_NUMBER = 989_999     # the highest crafted segment number


def fill(d: Path, kind: str, n: int) -> None:
    src = d.parent / "src"
    src.mkdir()
    dfd = os.open(d, os.O_RDONLY)
    try:
        for start in range(0, n, LINKS):
            s = src / f"s{start}"
            s.write_bytes(b"x" * 100)
            for i in range(start, min(n, start + LINKS)):
                # (Segment numbers have six digits: past MAX_NUMBER the rest are other names, so
                # that the unit can still number its own next segment.)
                name = f"junk-{i:07d}" if kind == "junk" or i + 10 > MAX_NUMBER else f"journal-{i + 10:06d}.sqlite"
                os.link(s, name, dst_dir_fd=dfd)
    finally:
        os.close(dfd)


def one(kind: str, n: int, base: Path, traced: bool, check_pass: bool = True) -> str:
    from bedside.core import config
    from bedside.journal import salvage, segments
    from bedside.link.on_loop import LinkService
    from bedside.unit import simulate
    from bedside.unit.journal_check import JournalCheck

    cfg = config.Config()
    now = datetime.fromisoformat("2026-11-17T06:05").replace(tzinfo=cfg.tz)
    d = base / "unit"
    d.mkdir()
    sim = simulate.build(cfg, d, now)
    sim.unit.start()
    sim.close()
    fill(d, kind, n)
    counts = getattr(segments, "counts", None)
    reads0 = counts["listings"] if counts is not None else 0
    t0 = time.process_time()
    if traced:
        tracemalloc.start()
    sim = simulate.build(cfg, d, now)
    sim.unit.start()
    start = time.process_time() - t0
    reads = counts["listings"] - reads0 if counts is not None else None
    svc = LinkService(sim.unit, None)
    svc.attach(sim.clock.now())
    hello = svc.hello(1, "n", sim.clock.now())
    step = time.process_time() - t0 - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    quiet = None
    if not traced and hasattr(segments, "QUIET_NS"):
        # A nurse plugs in later: the directory has been still (the unit's own writes seldom change it).
        time.sleep(segments.QUIET_NS / 1e9 + 0.5)
        with contextlib.suppress(Exception):
            sim.unit.store.tick(sim.clock.now(), "simulated")
        t2 = time.process_time()
        svc.attach(sim.clock.now())
        svc.hello(2, "n", sim.clock.now())
        quiet = time.process_time() - t2
    if traced:
        sim.close()
        return f"traced peak {peak:.1f} MiB"
    given: list[object] = []
    pass_s = None
    if check_pass:
        check = JournalCheck(sim.unit, d, in_thread=False)
        t1 = time.process_time()
        check._checks(None, given.append)
        pass_s = time.process_time() - t1
    sim.close()
    opened = ""
    if hasattr(salvage, "CHECK_FILES"):
        # The pass's budget is gone; what it spent is in the verdict's delivery (given[0]'s args).
        budgets = [getattr(g, "args", (None,) * 4)[3] for g in given]
        b = next((x for x in budgets if x is not None), None)
        if b is not None:
            from bedside.unit.journal_check import _carry_on
            opened = (f", opened {b.opened} files not the unit's own ({len(b.described)} in all), listed "
                      f"{len(b.listing[1]) if b.listing else '-'}, the next pass after {_carry_on('', b) or '-'}")
    return (f"{n:,} files ({kind}): start {start:.2f} s of CPU (Zero 2 W ~{start * 10:.0f} s)"
            + (f", {reads} directory reads (one of them before the start's budget)" if reads is not None else "")
            + f"; attach and hello {step:.2f} s (~{step * 10:.0f} s); hello lists {len(hello.get('segments', []))}, "
            f"counts {hello.get('segments_more', 0)} more, names {len(hello.get('unread', []))} not read yet and "
            f"counts {hello.get('unread_more', 0)} more"
            + (f"; again, the directory still for {segments.QUIET_NS / 1e9:.0f} s: attach and hello {quiet:.2f} s "
               f"(~{quiet * 10:.0f} s)" if quiet is not None else "")
            + (f"; a check pass {pass_s:.2f} s (~{pass_s * 10:.0f} s){opened}" if pass_s is not None else ""))


def main() -> None:
    if len(sys.argv) >= 3:
        with tempfile.TemporaryDirectory() as tmp:
            print(one(sys.argv[1], int(sys.argv[2]), Path(tmp), traced="--memory" in sys.argv[3:],
                      check_pass="--no-check" not in sys.argv[3:]), end="")
        return
    for kind, n in CASES:
        timed = subprocess.run([sys.executable, __file__, kind, str(n)], check=True, capture_output=True, text=True)
        peak = subprocess.run([sys.executable, __file__, kind, str(n), "--memory"], check=True,
                              capture_output=True, text=True)
        print(f"{timed.stdout}; {peak.stdout}", flush=True)


if __name__ == "__main__":
    main()
